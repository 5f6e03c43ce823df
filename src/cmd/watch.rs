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

/// Events waiting for the webhook at most.
const WEBHOOK_QUEUE: usize = 4096;

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
    // The webhook queue is bounded: a receiver that is down for long must not grow the
    // process without end. What does not fit is dropped, counted and logged.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(WEBHOOK_QUEUE);
    let mut dropped = 0u64;
    let hook_on = hook.is_some();
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
                if hook_on && tx.try_send(line.into_bytes()).is_err() {
                    dropped += 1;
                    if dropped.is_power_of_two() {
                        tracing::warn!(dropped, queue = WEBHOOK_QUEUE, "webhook queue full: events dropped");
                    }
                }
                seen += 1;
                limit.is_none_or(|n| seen < n)
            }) => r,
            _ = super::wait_for_stop_signal() => Ok(()),
        }
    });
    if dropped > 0 {
        tracing::warn!(dropped, "webhook events dropped while its queue was full");
    }
    // Give queued webhook deliveries a moment.
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    result.map_err(anyhow::Error::msg)?;
    Ok(ExitCode::SUCCESS)
}
