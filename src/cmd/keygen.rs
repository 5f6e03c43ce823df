//! `flowmesh keygen`.

use std::path::PathBuf;
use std::process::ExitCode;

use flowmesh_link::cloud_key::{record_name, signing_record_name};
use flowmesh_link::{Identity, IdentityKind};

/// Create an identity file.
#[derive(clap::Args)]
pub struct Args {
    /// Where to write the identity (created with mode 0600).
    #[arg(long)]
    out: PathBuf,
    /// Replace an existing file (everything sealed to the old key becomes unreadable).
    #[arg(long)]
    force: bool,
    /// Create the cloud operator's key pair and print the two DNS TXT records to publish: its
    /// key (`cloud._pubkey`) and its signing key (`cloud._signkey`).
    #[arg(long)]
    cloud: bool,
    /// With --cloud: the domain, to print the full record name.
    #[arg(long, requires = "cloud")]
    domain: Option<String>,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let kind = if a.cloud {
        IdentityKind::Cloud
    } else {
        IdentityKind::User
    };
    let id = Identity::generate(kind);
    id.write(&a.out, a.force)?;
    match kind {
        IdentityKind::User => {
            eprintln!(
                "wrote user identity {} (mode 0600); copy it to each of your instances",
                a.out.display()
            );
            println!("{}", id.public());
        }
        IdentityKind::Cloud => {
            let domain = a.domain.as_deref().unwrap_or("<your-domain>");
            eprintln!(
                "wrote cloud identity {} (mode 0600); publish these TXT records:",
                a.out.display()
            );
            println!("{} IN TXT \"{}\"", record_name(domain), id.public());
            println!(
                "{} IN TXT \"{}\"",
                signing_record_name(domain),
                flowmesh_link::cloud_sig::public_key(&id).to_hex()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
