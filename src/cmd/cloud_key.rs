//! `flowmesh cloud-key`.

use std::net::SocketAddr;
use std::process::ExitCode;

use flowmesh_link::cloud_key::{CloudKeyConfig, resolve};

/// Look up the cloud key.
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
    /// Seconds to wait for DNS.
    #[arg(long, default_value_t = 5)]
    timeout: u64,
}

pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let key = resolve(&CloudKeyConfig {
        domain: a.domain,
        name_server: a.name_server,
        pinned: a.pinned,
        timeout_secs: Some(a.timeout),
    })
    .await?;
    println!("{key}");
    Ok(ExitCode::SUCCESS)
}
