//! The record matcher answers as libpcap does on the record's frame, for every expression it
//! takes, on records of both families, every transport, both directions and many ports.

use std::net::IpAddr;

use flowmesh_bpf::{BpfFilter, frame_of, matcher};
use flowmesh_record::FlowRecord;

fn record(l4: &'static str, client: &str, cport: u16, server: &str, sport: u16) -> FlowRecord {
    FlowRecord {
        l4,
        client_ip: client.parse().unwrap(),
        client_port: cport,
        server_ip: server.parse().unwrap(),
        server_port: sport,
        l7: "Unknown",
        client_mac: Some([2, 0, 0, 0, 0, 0x0a]),
        server_mac: Some([2, 0, 0, 0, 0, 0x0b]),
        c2s_packets: 1,
        c2s_bytes: 60,
        ..FlowRecord::default()
    }
}

fn records() -> Vec<FlowRecord> {
    let mut out = Vec::new();
    let v4 = [
        "10.0.0.5",
        "10.1.2.3",
        "192.168.1.20",
        "8.8.8.8",
        "172.16.0.1",
    ];
    let v6 = ["2001:db8::1", "2001:db8:1::5", "fe80::1", "2a00:1450::200e"];
    let ports = [53u16, 80, 443, 22, 1000, 1050, 2000, 5353, 40000, 65535];
    for l4 in ["TCP", "UDP", "ICMP", "ICMPV6", "GRE", "Unknown"] {
        for (i, &c) in v4.iter().enumerate() {
            for (j, &s) in v4.iter().enumerate() {
                let (cp, sp) = (
                    ports[(i + j) % ports.len()],
                    ports[(i * 3 + j) % ports.len()],
                );
                out.push(record(l4, c, cp, s, sp));
            }
        }
        for (i, &c) in v6.iter().enumerate() {
            for (j, &s) in v6.iter().enumerate() {
                let (cp, sp) = (
                    ports[(i + 2 * j) % ports.len()],
                    ports[(j + 7) % ports.len()],
                );
                out.push(record(l4, c, cp, s, sp));
            }
        }
    }
    let mut odd = record("TCP", "10.0.0.5", 1, "10.0.0.6", 2);
    odd.client_mac = None;
    out.push(odd);
    out
}

const EXPRESSIONS: &[&str] = &[
    "tcp",
    "udp",
    "icmp",
    "icmp6",
    "ip",
    "ip6",
    "tcp or udp",
    "not tcp",
    "!udp",
    "port 53",
    "tcp port 80",
    "udp port 53",
    "src port 40000",
    "dst port 443",
    "tcp dst port 22",
    "portrange 1000-1050",
    "udp portrange 2000-5353",
    "tcp port 1000 or udp port 2000",
    "host 10.0.0.5",
    "src host 10.0.0.5",
    "dst host 8.8.8.8",
    "host 2001:db8::1",
    "ip host 10.1.2.3",
    "ip6 host 2001:db8::1",
    "net 10.0.0.0/8",
    "src net 192.168.0.0/16",
    "dst net 2001:db8::/32",
    "net 172.16.0.0/12 and tcp",
    "ip proto 47",
    "ip6 proto 58",
    "ip proto 6",
    "src or dst host 10.0.0.5",
    "src and dst net 10.0.0.0/8",
    "ether host 02:00:00:00:00:0a",
    "ether src host 02:00:00:00:00:0a",
    "ether dst host 02:00:00:00:00:0b",
    "not (tcp port 22 or udp port 53)",
    "tcp and (port 80 or port 443) and not host 8.8.8.8",
    "udp or tcp and port 53",
    "net 10.0.0.0/8 and not dst port 53",
    "(ip or ip6) and udp",
    "tcp && port 443 || icmp",
];

#[test]
fn the_matcher_takes_the_common_expressions_and_agrees_with_libpcap() {
    let recs = records();
    let mut checked = 0;
    for expr in EXPRESSIONS {
        let bpf = BpfFilter::new(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        let m = matcher::compile(expr).unwrap_or_else(|| panic!("{expr}: not compiled"));
        for r in &recs {
            let fast = m.matches(r).expect("an untagged, one-family record");
            let slow = bpf.matches(&frame_of(r));
            assert_eq!(
                fast,
                slow,
                "{expr} on {} {:?}",
                r.l4,
                (r.client_ip, r.client_port, r.server_ip, r.server_port)
            );
            checked += 1;
        }
    }
    assert!(checked > 10_000, "{checked}");
}

#[test]
fn what_the_matcher_does_not_model_goes_to_libpcap() {
    // Expressions: host names, masks, VLANs, lengths, byte offsets, implied qualifiers.
    for expr in [
        "vlan 10",
        "net 10.0.0.0 mask 255.0.0.0",
        "less 100",
        "ip[0] & 0xf != 5",
        "host 10.0.0.1 or 10.0.0.2",
        "src 10.0.0.1",
        "tcp[13] & 2 != 0",
        "net 10",
    ] {
        assert!(matcher::compile(expr).is_none(), "{expr}");
    }
    // Records: a VLAN tag, or addresses of two families.
    let m = matcher::compile("tcp").unwrap();
    let mut tagged = record("TCP", "10.0.0.5", 1, "10.0.0.6", 2);
    tagged.vlan = Some(7);
    assert_eq!(m.matches(&tagged), None);
    let mut mixed = record("TCP", "10.0.0.5", 1, "10.0.0.6", 2);
    mixed.server_ip = "2001:db8::1".parse::<IpAddr>().unwrap();
    assert_eq!(m.matches(&mixed), None);
    // Through RecordFilter both still get libpcap's answer.
    let f = flowmesh_bpf::RecordFilter::new("vlan 7 and tcp").unwrap();
    assert!(!f.is_fast());
    assert!(f.matches(&mut flowmesh_bpf::Probe::new(&tagged)));
    assert!(flowmesh_bpf::RecordFilter::new("tcp").unwrap().is_fast());
}
