//! A site's traffic and policy, shared by the collector's benches and tests (included by path):
//! many local hosts and typed devices; DNS, web, SSH, NTP and named TLS; a policy of 1,000 ACL
//! rules that allows almost all of it, profiles and traffic rules on them.

#![allow(dead_code)] // each includer uses its part

use std::fmt::Write as _;

use flowmesh_record::FlowRecord;

/// Flow `i` of the site, its last packet at `t` (µs): client `192.168.x.y` of 62,500, server
/// `10.x.y.z`, one of six services by `i`, the client's MAC one of 10,240.
pub fn record(i: usize, t: i64) -> FlowRecord {
    let port = [53u16, 80, 443, 22, 8080, 123][i % 6];
    FlowRecord {
        l4: if port == 53 || port == 123 {
            "UDP"
        } else {
            "TCP"
        },
        client_ip: format!("192.168.{}.{}", (i / 250) % 250, i % 250 + 1)
            .parse()
            .expect("an IPv4 address"),
        client_port: 40000 + (i % 20000) as u16,
        server_ip: format!("10.{}.{}.{}", i % 7, (i / 7) % 250, i % 200 + 1)
            .parse()
            .expect("an IPv4 address"),
        server_port: port,
        l7: ["DNS", "HTTP", "TLS", "SSH", "HTTP", "NTP"][i % 6],
        server_name: (port == 443).then(|| "www.example.org".to_string()),
        client_mac: Some([2, 0, 0, 0, ((i / 256) % 40) as u8, (i % 256) as u8]),
        server_mac: Some([2, 0xaa, 0, 0, 0, 1]),
        c2s_packets: 5,
        c2s_bytes: 700,
        s2c_packets: 4,
        s2c_bytes: 3000,
        first_seen: t - 5000,
        last_seen: t,
        c2s_tcp_flags: 0x1a,
        s2c_tcp_flags: 0x12,
        ..FlowRecord::default()
    }
}

/// An `[acl]` of 1,000 rules (subnets, hosts, ports, ranges, an application) and the rules
/// that allow the site's usual traffic, so alerts stay rare, as on a real network.
pub fn acl(p: &mut String) {
    p.push_str("[acl]\nrules = \"\"\"\n");
    for i in 0..1000 {
        let _ = match i % 4 {
            0 => writeln!(p, "TCP;192.168.{}.0/24;*;{}", i % 250, 1000 + i),
            1 => writeln!(p, "UDP;192.168.{}.0/24;10.0.0.0/8;{}", i % 250, 2000 + i),
            2 => writeln!(p, "TCP;192.168.{}.{};10.0.0.0/8;HTTP", i % 250, i % 250 + 1),
            _ => writeln!(p, "TCP;*;10.{}.0.0/16;{}-{}", i % 250, 3000 + i, 3010 + i),
        };
    }
    p.push_str("TCP;192.168.0.0/16;*;443\nUDP;*;*;53\nUDP;*;*;123\nTCP;192.168.0.0/16;10.0.0.0/8;80\nTCP;192.168.0.0/16;10.0.0.0/8;8080\nTCP;192.168.0.0/17;10.0.0.0/8;22\nTCP;192.168.128.0/17;10.0.0.0/8;22\n\"\"\"\n\n");
}

/// `[device_types]` for the first `n` client MACs of [`record`], cycling through `types`.
pub fn device_types(p: &mut String, n: usize, types: &[&str]) {
    p.push_str("[device_types]\n");
    for i in 0..n {
        let _ = writeln!(
            p,
            "\"02:00:00:00:{:02x}:{:02x}\" = \"{}\"",
            (i / 256) % 40,
            i % 256,
            types[i % types.len()]
        );
    }
}

/// `n` profiles `p0`.. on ports no site flow uses, each BPF followed by `tail`.
pub fn profiles(p: &mut String, n: usize, tail: &str) {
    for i in 0..n {
        let _ = writeln!(
            p,
            "[[profile]]\nname = \"p{i}\"\nbpf = \"(tcp port {} or udp port {}){tail}\"",
            1000 + i,
            2000 + i
        );
    }
}

/// `n` traffic rules, one on each of the profiles `p0`.. (5-minute volume above 1 GB).
pub fn traffic_rules(p: &mut String, n: usize) {
    for i in 0..n {
        let _ = writeln!(
            p,
            "[[traffic_rule]]\ntarget = \"profile:p{i}\"\nmetric = \"total\"\nfrequency = \"5min\"\nkind = \"volume\"\nbound = \"above\"\nvalue = \"1GB\""
        );
    }
}
