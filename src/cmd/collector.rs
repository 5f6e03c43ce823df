//! `flowmesh collector --config FILE`: consume the user's flow batches, run the policy, store
//! and publish alerts, turn heartbeats into status changes.

use std::path::PathBuf;
use std::process::ExitCode;

use flowmesh_collector::daemon::{self, CollectorConfig};

/// Run a collector: a durable JetStream consumer of the user's sealed flow batches (several
/// collectors share the work), the policy checks, alerts and traffic timeseries in a redb store
/// (a batch is stored once, even when delivered twice), alerts published sealed for `watch`,
/// and instance status changes from heartbeats.
#[derive(clap::Args)]
pub struct Args {
    /// The collector's config file (see deploy/quickstart.sh for an example).
    #[arg(long)]
    config: PathBuf,
    #[command(flatten)]
    mode: super::SealMode,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    flowmesh_update::at_start();
    let config = CollectorConfig::load(&a.config)?;
    super::run_daemon("collector", |stop| daemon::run(config, stop, a.mode.seal()))?;
    super::restart_if_asked("collector")?;
    Ok(ExitCode::SUCCESS)
}
