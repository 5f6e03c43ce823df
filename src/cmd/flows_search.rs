//! `flowmesh flows-search`: a collector's stored flows (its API, or a store file directly).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use flowmesh_collector::api::flows::{Found, MAX_FLOWS, SearchParams, from_proto};
use flowmesh_collector::store::Store;
use flowmesh_proto::v1::SearchFlowsRequest;

/// Find stored flows: JSON lines (DESIGN.md's record with `instance` and `profiles`), newest
/// first; or with --top, the busiest hosts, applications, protocols, profiles or talkers.
///
/// Ask a running collector (--config or --access), or read a store file that no collector has
/// open (--store, e.g. one written by `flowmesh check --store`).
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    api: super::api::ApiArgs,
    /// A store file instead of a running collector.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["config", "access"])]
    store: Option<PathBuf>,
    /// Only this instance's flows.
    #[arg(long)]
    instance: Option<String>,
    /// Flows active in this span (last packet at or after `--from`, first before `--to`).
    #[command(flatten)]
    span: super::span::Span,
    /// Either end's address in this IP or CIDR.
    #[arg(long)]
    host: Option<String>,
    /// Either end's port.
    #[arg(long)]
    port: Option<u16>,
    /// Master protocol (nDPI's name: TLS, DNS, ...).
    #[arg(long)]
    l7: Option<String>,
    /// Application (YouTube, Netflix, ...).
    #[arg(long)]
    app: Option<String>,
    /// Flows that matched this traffic profile.
    #[arg(long)]
    profile: Option<String>,
    /// Server name (SNI, HTTP host, DNS query) equal to this or under it (example.com).
    #[arg(long)]
    server_name: Option<String>,
    /// At most this many flows (the newest), or keys with --top.
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// Aggregates instead of flows: hosts, apps, l7, profiles or talkers.
    #[arg(long, value_parser = ["hosts", "apps", "l7", "profiles", "talkers"])]
    top: Option<String>,
    /// What --top ranks by.
    #[arg(long, default_value = "bytes", value_parser = ["bytes", "flows"])]
    by: String,
}

fn print(line: &impl serde::Serialize) -> bool {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, line).is_ok() && writeln!(out).is_ok()
}

fn show(found: Found) {
    match found {
        Found::Flows(flows, truncated) => {
            let n = flows.len();
            for f in &flows {
                if !print(f) {
                    return;
                }
            }
            if truncated {
                eprintln!(
                    "-- {n} flows shown, more match: narrow the search, or add --to with the oldest time shown"
                );
            }
        }
        Found::Top(top) => {
            for t in &top {
                if !print(t) {
                    return;
                }
            }
        }
    }
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let params = SearchParams {
        instance: a.instance,
        from_us: a.span.from,
        to_us: a.span.to,
        host: a.host,
        port: a.port.map(u32::from),
        l7: a.l7,
        app: a.app,
        profile: a.profile,
        server_name: a.server_name,
        limit: a.limit as usize,
        top: a.top,
        by_flows: a.by == "flows",
    };
    if let Some(path) = &a.store {
        if !path.exists() {
            anyhow::bail!("{}: no such store", path.display());
        }
        let store = Store::open(path)?;
        match params.run(&store, usize::MAX) {
            Ok(found) => show(found),
            Err(Ok(why)) => anyhow::bail!("{why}"),
            Err(Err(e)) => return Err(e.into()),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let top_asked = params.top.is_some();
    let mut request = SearchFlowsRequest::from(params);
    request.limit = request.limit.min(MAX_FLOWS as u32);
    let rt = super::runtime()?;
    let answer = rt.block_on(async {
        let mut client = a.api.connect().await?;
        anyhow::Ok(
            client
                .search_flows(request)
                .await
                .map_err(super::api::status_error)?
                .into_inner(),
        )
    })?;
    let (found, unread) = from_proto(answer, top_asked);
    if unread > 0 {
        tracing::warn!(
            unread,
            "flows the collector sent could not be read; skipped"
        );
    }
    show(found);
    Ok(ExitCode::SUCCESS)
}
