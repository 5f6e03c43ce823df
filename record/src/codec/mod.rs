//! Flow records to and from the protobuf `Flow` they travel as. Names map back to the static
//! names this build knows; a name it does not know (a newer sensor) becomes "Unknown"/none and
//! is counted by the caller rather than trusted as a string.

use std::net::IpAddr;

use flowmesh_proto::v1::Flow;

mod read;
mod write;
pub use read::{BatchView, FlowReader, ReadError, read_batch};
pub use write::{batch_entries, write_batch, write_batch_entry};

use crate::FlowRecord;

fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn ip_from(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(b).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(b).ok()?)),
        _ => None,
    }
}

/// A record as the protobuf message; `update` marks an active-timeout record.
pub fn to_proto(r: &FlowRecord, update: bool) -> Flow {
    Flow {
        l4: r.l4.to_string(),
        client_ip: ip_bytes(r.client_ip),
        client_port: u32::from(r.client_port),
        server_ip: ip_bytes(r.server_ip),
        server_port: u32::from(r.server_port),
        vlan: r.vlan.map(u32::from),
        tunnel: r.tunnel.map(str::to_string),
        l7: r.l7.to_string(),
        app: r.app.map(str::to_string),
        server_name: r.server_name.clone(),
        client_mac: r.client_mac.map(Vec::from).unwrap_or_default(),
        server_mac: r.server_mac.map(Vec::from).unwrap_or_default(),
        c2s_packets: r.c2s_packets,
        c2s_bytes: r.c2s_bytes,
        s2c_packets: r.s2c_packets,
        s2c_bytes: r.s2c_bytes,
        first_seen_us: r.first_seen,
        last_seen_us: r.last_seen,
        update,
        alpn: r.alpn.clone().unwrap_or_default(),
        c2s_tcp_flags: u32::from(r.c2s_tcp_flags),
        s2c_tcp_flags: u32::from(r.s2c_tcp_flags),
        skip_flow_checks: r.skip_flow_checks,
        exporter: r.export.map(|e| ip_bytes(e.exporter)).unwrap_or_default(),
        in_if: r.export.map_or(0, |e| e.in_if),
        out_if: r.export.map_or(0, |e| e.out_if),
        sampling: r.export.map_or(0, |e| e.sampling),
    }
}

/// Why a protobuf flow is not a record.
#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
pub enum FlowError {
    /// An address is neither 4 nor 16 bytes.
    #[error("flow with a {0}-byte address")]
    BadAddress(usize),
    /// A port above 65535.
    #[error("flow with port {0}")]
    BadPort(u32),
}

/// The record of a protobuf flow; its strings are moved, not copied.
pub fn from_proto(f: Flow) -> Result<FlowRecord, FlowError> {
    let mut r = FlowRecord::default();
    read::Raw::of(&f).fill(&mut r)?;
    r.server_name = f.server_name;
    r.alpn = (!f.alpn.is_empty()).then_some(f.alpn);
    Ok(r)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A record with every field set (the codec tests' base).
    pub(super) fn every_field() -> FlowRecord {
        FlowRecord {
            l4: "UDP",
            client_ip: "2001:db8::1".parse().unwrap(),
            client_port: 50000,
            server_ip: "2001:db8::2".parse().unwrap(),
            server_port: 443,
            vlan: Some(42),
            tunnel: Some("Teredo"),
            l7: "QUIC",
            app: Some("YouTube"),
            server_name: Some("www.youtube.com".into()),
            alpn: Some(vec!["h3".into()]),
            client_mac: Some([2, 0, 0, 0, 0, 0x0a]),
            server_mac: None,
            c2s_packets: 3,
            c2s_bytes: 3000,
            s2c_packets: 4,
            s2c_bytes: 5000,
            first_seen: 1_710_078_432_000_001,
            last_seen: 1_710_078_433_999_999,
            c2s_tcp_flags: 0x12,
            s2c_tcp_flags: 0x14,
            skip_flow_checks: true,
            export: Some(crate::Exported {
                exporter: "192.0.2.1".parse().unwrap(),
                in_if: 3,
                out_if: 7,
                sampling: 100,
            }),
        }
    }

    #[test]
    fn a_record_survives_the_round_trip() {
        let r = every_field();
        assert_eq!(from_proto(to_proto(&r, false)).unwrap(), r);
        let plain = FlowRecord { export: None, ..r };
        assert_eq!(from_proto(to_proto(&plain, false)).unwrap(), plain);
        // Exported fields show in the JSON record only for exported flows.
        let json = serde_json::to_string(&plain).unwrap();
        assert!(!json.contains("exporter"), "{json}");
    }

    #[test]
    fn hostile_flows_are_errors_or_unknown_names() {
        let mut f = Flow {
            client_ip: vec![1, 2, 3],
            ..Flow::default()
        };
        assert_eq!(from_proto(f.clone()), Err(FlowError::BadAddress(3)));
        f.client_ip = vec![10, 0, 0, 1];
        f.server_ip = vec![10, 0, 0, 2];
        f.server_port = 70_000;
        assert_eq!(from_proto(f.clone()), Err(FlowError::BadPort(70_000)));
        f.server_port = 1;
        f.l7 = "NotAProtocol".into();
        f.app = Some("NotAnApp".into());
        f.tunnel = Some("Wormhole".into());
        let r = from_proto(f).unwrap();
        assert_eq!(
            (r.l7, r.app, r.tunnel, r.l4),
            ("Unknown", None, None, "Unknown")
        );
    }
}
