//! `flowmesh check`: sensor and policy engine in one process on a capture; alerts as JSON
//! lines. The packets' time is the clock, so a replay is deterministic.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use flowmesh_collector::alert::Alert;
use flowmesh_collector::policy;
use flowmesh_collector::store::flows::FlowSet;
use flowmesh_collector::store::{Commit, SeriesDelta, Store};

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
    /// Also keep the alerts, the traffic timeseries (5 min / hour / day) and every flow
    /// record in this store file (redb; created mode 0600). Checking the same capture again
    /// adds nothing twice. Read it back with `flowmesh series --store FILE` and
    /// `flowmesh flows-search --store FILE`.
    #[arg(long, value_name = "FILE")]
    store: Option<PathBuf>,
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
    let store = a.store.as_deref().map(Store::open).transpose()?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut alerts = 0u64;
    let mut kept = Vec::new();
    let mut series = SeriesDelta::default();
    let mut flows = FlowSet::default();
    let now = flowmesh_link::envelope::now_micros() as i64;
    let result = flowmesh_check::check_observed(
        || flowmesh_sensor::capture::CaptureReader::open(&a.file),
        &policy,
        &a.instance,
        &mut |alert| {
            alerts += 1;
            let _ = serde_json::to_writer(&mut out, &alert);
            let _ = out.write_all(b"\n");
            if store.is_some() {
                kept.push(alert);
            }
        },
        &mut |flow, t, profiles| {
            if store.is_some() {
                series.add_flow(flow, t);
                for p in profiles {
                    series.add_profile(p, flow, t);
                }
                flows.push(flow, profiles, now);
            }
        },
    );
    out.flush()?;
    if let (Some(store), Some(path)) = (&store, &a.store) {
        save(store, path, &a, &kept, &series, &flows)?;
    }
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

/// Stores what the check found, once per (instance, capture file as it is now).
fn save(
    store: &Store,
    path: &std::path::Path,
    a: &Args,
    alerts: &[Alert],
    series: &SeriesDelta,
    flows: &FlowSet,
) -> anyhow::Result<()> {
    let meta = std::fs::metadata(&a.file)?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_micros());
    let file = std::fs::canonicalize(&a.file)?;
    let batch_id = format!(
        "check:{}:{}:{}:{mtime}",
        a.instance,
        file.display(),
        meta.len()
    );
    let now_micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    let fresh = store.commit(&Commit {
        batch_id: Some(&batch_id),
        instance: &a.instance,
        alerts,
        series,
        now_micros,
        flows: Some(flows),
    })?;
    if fresh {
        tracing::info!(store = %path.display(), alerts = alerts.len(), flows = flows.len(), "stored alerts, timeseries and flows");
    } else {
        tracing::warn!(store = %path.display(), "this capture was already checked into the store: nothing added");
    }
    Ok(())
}
