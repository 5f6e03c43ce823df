//! `flowmesh flows-export`: a store's flows as Parquet, one file per hour.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use flowmesh_collector::store::Store;
use flowmesh_collector::store::flows::parquet::hour_path;

/// Write the flows of a store file as Parquet: `OUT/date=YYYY-MM-DD/hour=HH/flows.parquet`,
/// which DuckDB (`read_parquet('OUT/**/*.parquet', hive_partitioning = true)`), ClickHouse and
/// Spark read as they are.
///
/// The store must not be open in a running collector (stop it, or copy the file); a running
/// collector writes each closed hour itself with `[flows] parquet_dir`.
#[derive(clap::Args)]
pub struct Args {
    /// The store file (a collector's `store`, or `flowmesh check --store`).
    #[arg(long, value_name = "FILE")]
    store: PathBuf,
    /// The directory to write into (files of the same hours are replaced).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Only the hours from the one holding `--from` to those starting before `--to`.
    #[command(flatten)]
    span: super::span::Span,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let (from, to) = (a.span.from, a.span.to);
    if !a.store.exists() {
        anyhow::bail!("{}: no such store", a.store.display());
    }
    let store = Store::open(&a.store)?;
    let secs = |us: i64| us.div_euclid(1_000_000);
    let from_s = from.map_or(i64::MIN, |t| {
        let s = secs(t);
        s - s.rem_euclid(3600)
    });
    let hours = store.flow_hours(from_s, to.map_or(i64::MAX, secs))?;
    if hours.is_empty() {
        eprintln!("no stored flows in that time: nothing written");
    }
    let mut total = 0;
    for hour in hours {
        let path = hour_path(&a.out, hour);
        let n = store
            .export_hour(hour, &path)
            .with_context(|| format!("writing {}", path.display()))?;
        total += n;
        eprintln!("{}: {n} flows", path.display());
    }
    tracing::info!(flows = total, "export done");
    Ok(ExitCode::SUCCESS)
}
