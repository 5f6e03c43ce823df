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
    /// BENCHMARKS ONLY: publish flow batches unsealed, to measure what sealing costs. A
    /// collector accepts them only with the same flag.
    /// (Only in builds with the `bench-plaintext` feature: never in a release.)
    #[cfg(feature = "bench-plaintext")]
    #[arg(long, hide = true)]
    bench_plaintext: bool,
}

impl Args {
    /// Whether messages are sealed: always, unless a benchmark build asked otherwise.
    fn seal(&self) -> bool {
        #[cfg(feature = "bench-plaintext")]
        return !self.bench_plaintext;
        #[cfg(not(feature = "bench-plaintext"))]
        true
    }
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let config = SensorConfig::load(&a.config)?;
    let stats = super::run_daemon("sensor", |stop| daemon::run(config, stop, a.seal()))?;
    tracing::info!(packets = stats.packets, flows = stats.flows, "capture done");
    Ok(ExitCode::SUCCESS)
}
