//! `flowmesh devices`: the device table of a capture.

use std::path::PathBuf;
use std::process::ExitCode;

use flowmesh_sensor::flow::rfc3339_micros;
use flowmesh_sensor::offline;
use serde_json::json;

/// Print the devices (MAC addresses) seen in a capture, one JSON object per line.
#[derive(clap::Args)]
pub struct Args {
    /// A pcap or pcapng file.
    file: PathBuf,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let (table, err) = match offline::devices_in_file(&a.file) {
        Ok((t, _)) => (Some(t), None),
        Err((_, e)) => (None, Some(e)),
    };
    if let Some(t) = &table {
        for d in t.all() {
            println!(
                "{}",
                json!({
                    "mac": d.mac,
                    "ips": d.ips,
                    "host_name": d.host_name,
                    "vendor": d.vendor,
                    "dhcp_fingerprint": d.dhcp_fingerprint,
                    "dhcp_vendor_class": d.dhcp_vendor_class,
                    "device_type": d.device_type,
                    "type_source": d.type_source,
                    "packets": d.packets,
                    "first_seen": rfc3339_micros(d.first_seen),
                    "last_seen": rfc3339_micros(d.last_seen),
                })
            );
        }
    }
    match err {
        None => Ok(ExitCode::SUCCESS),
        Some(e) => {
            eprintln!("error: {}: {e}", a.file.display());
            Ok(ExitCode::FAILURE)
        }
    }
}
