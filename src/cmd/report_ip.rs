//! `flowmesh report-ip`: report an attacker's address to the cloud by hand.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use flowmesh_collector::cloud::report_ip;
use flowmesh_link::Identity;
use flowmesh_link::connect::connect;
use flowmesh_proto::v1::BlacklistReport;

/// Report an attacker's IP to the cloud's inbox (sealed to the cloud's key, found in DNS as
/// `[cloud]` says). The cloud shares it, for a day, with every user's collectors, which then
/// raise `blacklisted_host` on any flow to or from it. Only public addresses are taken.
#[derive(clap::Args)]
pub struct Args {
    /// An instance's config file with `identity`, `[broker]` and `[cloud]` (a collector's works).
    #[arg(long)]
    config: PathBuf,
    /// The address to report.
    ip: std::net::IpAddr,
    /// Why (shown to other users with the entry).
    #[arg(long, default_value = "reported by hand")]
    reason: String,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let n = super::InstanceConfig::load(&a.config)?;
    let cloud = n.cloud.with_context(|| {
        format!(
            "{}: no [cloud] table: add `[cloud] domain = \"example.org\"` (or `pinned = \"<key>\"` and `pinned_signing = \"<key>\"`)",
            a.config.display()
        )
    })?;
    let identity = Identity::load(&n.identity)?;
    let instance = n.name.unwrap_or_else(|| "cli".into());
    let rt = super::runtime()?;
    let reply = rt.block_on(async {
        let keys = cloud.keys().await.map_err(anyhow::Error::msg)?;
        let client = connect(
            &n.broker,
            &flowmesh_link::connect::tool_name(&instance, "report-ip"),
        )
        .await?;
        let report = BlacklistReport {
            ip: a.ip.to_string(),
            reason: a.reason.clone(),
            instance: instance.clone(),
        };
        report_ip(&client, &identity, &keys, &report)
            .await
            .map_err(anyhow::Error::msg)
    })?;
    if reply.accepted {
        eprintln!("{}: accepted by the cloud", a.ip);
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("{}: refused by the cloud: {}", a.ip, reply.error);
        Ok(ExitCode::FAILURE)
    }
}
