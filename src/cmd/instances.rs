//! `flowmesh instances --config COLLECTOR.toml`: the instances a collector hears from.

use std::process::ExitCode;

use flowmesh_proto::v1::ListInstancesRequest;

/// List the sensor instances a running collector hears from, with their status (online,
/// offline, restarted, degraded, stopping), when each was last heard, and its counters — through
/// the collector's API.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    api: super::api::ApiArgs,
    /// One JSON object per instance instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let rt = super::runtime()?;
    let list = rt.block_on(async {
        let mut client = a.api.connect().await?;
        client
            .list_instances(ListInstancesRequest {})
            .await
            .map_err(super::api::status_error)
    })?;
    let list = list.into_inner();
    let instances = list.instances;
    if let Some(s) = &list.assist {
        let v = flowmesh_collector::assist::status_json(s);
        if a.json {
            println!("{}", serde_json::json!({ "remote_assistance": v }));
        } else {
            eprintln!(
                "remote assistance ACTIVE: session {} until {}{}, asked by {:?}; {} connections ({} open)",
                s.session,
                v["until"].as_str().unwrap_or_default(),
                if s.admin { " as admin" } else { "" },
                s.requested_by,
                s.connections,
                s.open
            );
        }
    }
    if a.json {
        for s in &instances {
            let v = serde_json::json!({
                "instance": s.instance,
                "status": s.status,
                "last_seen": flowmesh_sensor::flow::rfc3339_micros(s.time_us),
                "version": s.version,
                "uptime_s": s.uptime_s,
                "boot_id": hex::encode(&s.boot_id),
                "interfaces": s.interfaces,
                "packets_captured": s.packets_captured,
                "packets_dropped": s.packets_dropped,
                "flows_published": s.flows_published,
                "outbox_depth": s.outbox_depth,
                "outbox_bytes": s.outbox_bytes,
                "outbox_dropped": s.outbox_dropped,
                "devices_tracked": s.devices_tracked,
                "devices_evicted": s.devices_evicted,
                "series_dropped": s.series_dropped,
            });
            println!("{v}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    if instances.is_empty() {
        eprintln!("no instance heard from yet");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<20} {:<10} {:<28} {:>9} {:>12} {:>9} {:>10} {:>7} {:>8} {:>8}",
        "INSTANCE",
        "STATUS",
        "LAST SEEN",
        "UPTIME",
        "PACKETS",
        "DROPPED",
        "FLOWS",
        "OUTBOX",
        "DEVICES",
        "EVICTED"
    );
    for s in &instances {
        println!(
            "{:<20} {:<10} {:<28} {:>8}s {:>12} {:>9} {:>10} {:>7} {:>8} {:>8}",
            s.instance,
            s.status,
            flowmesh_sensor::flow::rfc3339_micros(s.time_us),
            s.uptime_s,
            s.packets_captured,
            s.packets_dropped,
            s.flows_published,
            s.outbox_depth,
            s.devices_tracked,
            s.devices_evicted + s.series_dropped
        );
    }
    Ok(ExitCode::SUCCESS)
}
