//! `flowmesh alerts --config COLLECTOR.toml`: stored alerts, then (with --follow) live ones.

use std::io::Write;
use std::process::ExitCode;

use flowmesh_proto::v1::{QueryAlertsRequest, WatchRequest};

/// Print a collector's stored alerts as JSON lines (DESIGN.md's format), oldest first, through
/// its API; with --follow, go on printing new alerts and status changes as they happen.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    api: super::api::ApiArgs,
    /// Only this alert type (acl_violation, host_policy, instance_status, ...).
    #[arg(long = "type")]
    kind: Option<String>,
    /// Only alerts from this instance.
    #[arg(long)]
    instance: Option<String>,
    #[command(flatten)]
    span: super::span::Span,
    /// At most this many stored alerts, the newest (0: all).
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// After the stored alerts, stream new ones until interrupted.
    #[arg(long, short)]
    follow: bool,
}

fn print(json: &str) -> bool {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{json}").and_then(|_| out.flush()).is_ok()
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let (from, to) = (a.span.from, a.span.to);
    let rt = super::runtime()?;
    rt.block_on(async {
        let mut client = a.api.connect().await?;
        // Subscribe first, so nothing falls between the query and the stream.
        let live = if a.follow {
            let request = WatchRequest {
                r#type: a.kind.clone(),
                instance: a.instance.clone(),
            };
            Some(
                client
                    .watch(request)
                    .await
                    .map_err(super::api::status_error)?
                    .into_inner(),
            )
        } else {
            None
        };
        let stored = client
            .query_alerts(QueryAlertsRequest {
                r#type: a.kind.clone(),
                instance: a.instance.clone(),
                from_us: from,
                to_us: to,
                limit: a.limit,
            })
            .await
            .map_err(super::api::status_error)?
            .into_inner();
        for alert in &stored.alerts {
            if !print(&alert.json) {
                return Ok(ExitCode::SUCCESS);
            }
        }
        let Some(mut live) = live else {
            return Ok(ExitCode::SUCCESS);
        };
        eprintln!("-- following new alerts and status changes (Ctrl-C to stop)");
        loop {
            tokio::select! {
                next = live.message() => match next.map_err(super::api::status_error)? {
                    Some(alert) => if !print(&alert.json) { break },
                    None => anyhow::bail!("the collector ended the stream (stopped?)"),
                },
                _ = super::wait_for_stop_signal() => break,
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
