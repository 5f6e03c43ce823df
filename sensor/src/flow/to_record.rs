//! A flow of the table as the record it reports.

use flowmesh_record::{FlowRecord, l4_name};

use super::table::Flow;

/// The record of a flow as it stands.
pub fn record_of(f: &Flow) -> FlowRecord {
    let (client, server) = f.endpoints();
    FlowRecord {
        l4: l4_name(f.key.proto),
        client_ip: client.0,
        client_port: client.1,
        server_ip: server.0,
        server_port: server.1,
        vlan: (f.key.vlan != 0xffff).then_some(f.key.vlan),
        tunnel: f.tunnel.map(|t| t.name()),
        l7: f.dpi.l7_name(),
        app: f.dpi.app(),
        server_name: f.dpi.server_name().map(str::to_string),
        alpn: f
            .dpi
            .alpn()
            .map(|a| a.split(',').map(str::to_string).collect()),
        client_mac: (f.client_mac != [0; 6]).then_some(f.client_mac),
        server_mac: (f.server_mac != [0; 6]).then_some(f.server_mac),
        c2s_packets: f.c2s_packets,
        c2s_bytes: f.c2s_bytes,
        s2c_packets: f.s2c_packets,
        s2c_bytes: f.s2c_bytes,
        first_seen: f.first_seen,
        last_seen: f.last_seen,
        c2s_tcp_flags: f.c2s_tcp_flags,
        s2c_tcp_flags: f.s2c_tcp_flags,
        skip_flow_checks: false,
        export: None,
    }
}
