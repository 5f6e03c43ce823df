//! `flowmesh check`: sensor and policy engine in one process on a capture; alerts as JSON
//! lines. The packets' time is the clock, so a replay is deterministic.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use flowmesh_collector::policy;

/// Run the policy checks on a capture and print one JSON alert per line.
#[derive(clap::Args)]
pub struct Args {
    /// The policy file (see `flowmesh policy validate`).
    #[arg(long)]
    policy: PathBuf,
    /// The capture (pcap or pcapng).
    file: PathBuf,
    /// The instance name alerts carry.
    #[arg(long, default_value = "check")]
    instance: String,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&a.policy)?;
    let policy = match policy::parse(&text) {
        Ok((p, report)) => {
            for w in report.warnings {
                eprintln!("{}:{}: warning: {}", a.policy.display(), w.line, w.message);
            }
            p
        }
        Err(report) => {
            for e in report.errors {
                eprintln!("{}:{}: error: {}", a.policy.display(), e.line, e.message);
            }
            eprintln!(
                "the policy has errors: nothing was checked (see `flowmesh policy validate`)"
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut alerts = 0u64;
    let result = flowmesh_collector::offline::check(
        || flowmesh_sensor::capture::CaptureReader::open(&a.file),
        &policy,
        &a.instance,
        &mut |alert| {
            alerts += 1;
            let _ = serde_json::to_writer(&mut out, &alert);
            let _ = out.write_all(b"\n");
        },
    );
    out.flush()?;
    match result {
        Ok(stats) => {
            tracing::info!(packets = stats.packets, flows = stats.flows, alerts, "done");
            Ok(ExitCode::SUCCESS)
        }
        Err((stats, e)) => {
            eprintln!(
                "error: {}: {e} (the {alerts} alerts above come from the {} flows read before it)",
                a.file.display(),
                stats.flows
            );
            Ok(ExitCode::FAILURE)
        }
    }
}
