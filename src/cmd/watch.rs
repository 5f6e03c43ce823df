//! `flowmesh watch --config FILE`: alerts and status changes as JSON lines.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use flowmesh_collector::watch::{self, WatchConfig};
use flowmesh_collector::webhook::Webhook;

/// Stream the user's alerts and instance status changes, opened, one JSON object per line
/// (DESIGN.md's alert format; status changes are `instance_status` alerts). Any component's
/// config file works (it needs `identity` and `[broker]`); `[watch] webhook = "https://..."`
/// also POSTs each event, retrying.
#[derive(clap::Args)]
pub struct Args {
    /// A config file with `identity` and `[broker]`.
    #[arg(long)]
    config: PathBuf,
    /// Exit after this many events (for scripts).
    #[arg(long)]
    count: Option<u64>,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let config = WatchConfig::load(&a.config).map_err(anyhow::Error::msg)?;
    let rt = super::runtime()?;
    let hook = config
        .watch
        .webhook
        .as_deref()
        .map(|url| Webhook::new(url, config.watch.webhook_ca_file.as_deref()))
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let attempts = config.watch.webhook_attempts;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    if let Some(hook) = hook {
        rt.spawn(async move {
            while let Some(body) = rx.recv().await {
                hook.deliver(&body, attempts).await;
            }
        });
    }
    let mut seen = 0u64;
    let limit = a.count;
    let name = watch::client_name();
    let result = rt.block_on(async {
        tokio::select! {
            r = watch::watch(&config, &name, |v| {
                let line = v.to_string();
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
                let _ = tx.send(line.into_bytes());
                seen += 1;
                limit.is_none_or(|n| seen < n)
            }) => r,
            _ = super::wait_for_stop_signal() => Ok(()),
        }
    });
    // Give queued webhook deliveries a moment.
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    result.map_err(anyhow::Error::msg)?;
    Ok(ExitCode::SUCCESS)
}
