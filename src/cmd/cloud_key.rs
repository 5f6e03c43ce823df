//! `flowmesh cloud-key`.

use std::net::SocketAddr;
use std::process::ExitCode;

use flowmesh_link::cloud_key::{CloudKeyConfig, resolve, resolve_signing};

/// Look up the cloud's key (cloud._pubkey.<domain>) and signing key (cloud._signkey.<domain>);
/// prints both, one per line.
#[derive(clap::Args)]
pub struct Args {
    /// The domain whose cloud._pubkey.<domain> TXT record holds the key.
    #[arg(long)]
    domain: Option<String>,
    /// Ask this name server (ip:port) instead of the system's.
    #[arg(long)]
    name_server: Option<SocketAddr>,
    /// The key you expect (64 hex characters); a mismatch is an error.
    #[arg(long)]
    pinned: Option<String>,
    /// The signing key you expect (64 hex characters); a mismatch is an error.
    #[arg(long)]
    pinned_signing: Option<String>,
    /// Seconds to wait for DNS.
    #[arg(long, default_value_t = 5)]
    timeout: u64,
}

pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let cfg = CloudKeyConfig {
        domain: a.domain,
        name_server: a.name_server,
        pinned: a.pinned,
        pinned_signing: a.pinned_signing,
        timeout_secs: Some(a.timeout),
    };
    let key = resolve(&cfg).await?;
    println!("{key}");
    let signing = resolve_signing(&cfg).await?;
    println!("{}", signing.to_hex());
    Ok(ExitCode::SUCCESS)
}
