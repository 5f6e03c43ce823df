//! `flowmesh series`: read the traffic timeseries of a store (`check --store`, the collector).

use std::path::PathBuf;
use std::process::ExitCode;

use flowmesh_collector::checks::parse_rfc3339_micros;
use flowmesh_collector::store::{Resolution, Store};
use flowmesh_sensor::flow::rfc3339_micros;
use serde_json::json;

/// List the series of an instance, or print one series' points as JSON lines.
#[derive(clap::Args)]
pub struct Args {
    /// The store file.
    #[arg(long, value_name = "FILE")]
    store: PathBuf,
    /// The instance whose series to read.
    #[arg(long, default_value = "check")]
    instance: String,
    /// The series: `total`, `l7:<protocol>`, `app:<application>` or `host:<local ip>`.
    /// Without it, the instance's series names are listed.
    #[arg(long)]
    series: Option<String>,
    /// Bucket size: 5m, 1h or 1d.
    #[arg(long, default_value = "5m", value_parser = parse_resolution)]
    resolution: Resolution,
    /// Only buckets starting at or after this time (RFC 3339, e.g. 2024-03-10T00:00:00Z).
    #[arg(long, value_parser = parse_time)]
    from: Option<i64>,
    /// Only buckets starting before this time (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    to: Option<i64>,
}

fn parse_resolution(s: &str) -> Result<Resolution, String> {
    Resolution::parse(s).ok_or_else(|| format!("{s:?}: use 5m, 1h or 1d"))
}

fn parse_time(s: &str) -> Result<i64, String> {
    parse_rfc3339_micros(s)
        .map(|us| us.div_euclid(1_000_000))
        .ok_or_else(|| format!("{s:?}: not an RFC 3339 time (e.g. 2024-03-10T00:00:00Z)"))
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    if !a.store.exists() {
        anyhow::bail!(
            "{}: no such store (create one with `flowmesh check --store FILE` or run a collector)",
            a.store.display()
        );
    }
    let store = Store::open(&a.store)?;
    let Some(series) = &a.series else {
        let names = store.series_names(&a.instance)?;
        if names.is_empty() {
            eprintln!(
                "no series for instance {:?} in {}",
                a.instance,
                a.store.display()
            );
        }
        for n in names {
            println!("{n}");
        }
        return Ok(ExitCode::SUCCESS);
    };
    let points = store.points(
        &a.instance,
        series,
        a.resolution,
        a.from.unwrap_or(i64::MIN),
        a.to.unwrap_or(i64::MAX),
    )?;
    for p in points {
        println!(
            "{}",
            json!({
                "series": p.series,
                "resolution": a.resolution,
                "start": rfc3339_micros(p.start * 1_000_000),
                "bytes": p.counters.bytes,
                "packets": p.counters.packets,
            })
        );
    }
    Ok(ExitCode::SUCCESS)
}
