//! `flowmesh sensor --config FILE`: capture or replay, and publish sealed flow batches.

use std::path::PathBuf;
use std::process::ExitCode;

use flowmesh_sensor::daemon::{self, SensorConfig};

/// Run a sensor: capture from an interface or replay a capture file, batch the flow records,
/// seal them to the user's key and publish them to the user's JetStream stream. While no broker
/// node answers, batches wait in a disk outbox (bounded) and are replayed in order. Heartbeats
/// every few seconds; SIGINT/SIGTERM publish what is left and a `stopping` status.
#[derive(clap::Args)]
pub struct Args {
    /// The sensor's config file (see deploy/quickstart.sh for an example).
    #[arg(long)]
    config: PathBuf,
    #[command(flatten)]
    mode: super::SealMode,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    flowmesh_update::at_start();
    let config = SensorConfig::load(&a.config)?;
    let stats = super::run_daemon("sensor", |stop| daemon::run(config, stop, a.mode.seal()))?;
    tracing::info!(packets = stats.packets, flows = stats.flows, "capture done");
    super::restart_if_asked("sensor")?;
    Ok(ExitCode::SUCCESS)
}
