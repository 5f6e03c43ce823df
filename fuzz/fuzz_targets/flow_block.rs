//! Stored flow blocks (the collector's flow store). Any bytes decode to flows or to an error,
//! never a panic; and records made from the input (every field, names from this build's
//! tables, profiles) come back from a block exactly as they went in.
#![no_main]

use std::net::IpAddr;

use flowmesh_collector::store::flows::{BlockBuilder, decode_block};
use flowmesh_record::{FlowRecord, L7, Tunnel};
use libfuzzer_sys::fuzz_target;

fn u64_at(b: &[u8], i: usize) -> u64 {
    let mut x = [0u8; 8];
    for (k, v) in x.iter_mut().enumerate() {
        *v = b.get(i + k).copied().unwrap_or(0);
    }
    u64::from_le_bytes(x)
}

fn record(b: &[u8]) -> (FlowRecord, Vec<&'static str>) {
    let w = |i| u64_at(b, i);
    let ip = |i: usize, v6: bool| -> IpAddr {
        if v6 {
            IpAddr::from(std::net::Ipv6Addr::from((u128::from(w(i)) << 64) | u128::from(w(i + 8))))
        } else {
            IpAddr::from((w(i) as u32).to_be_bytes())
        }
    };
    let flags = w(0);
    let first = (w(8) as i64) >> 8;
    let names = ["web", "guests", "a,b", ""];
    let profiles = names
        .iter()
        .enumerate()
        .filter(|(k, _)| flags >> (40 + k) & 1 == 1)
        .map(|(_, n)| *n)
        .collect();
    let r = FlowRecord {
        l4: flowmesh_record::l4_name(b.get(16).copied().unwrap_or(6)),
        client_ip: ip(17, flags & 1 == 1),
        client_port: w(33) as u16,
        server_ip: ip(35, flags & 2 == 2),
        server_port: w(51) as u16,
        vlan: (flags & 4 == 4).then_some(w(53) as u16),
        tunnel: (flags & 8 == 8).then(|| Tunnel::ALL[(w(55) % 10) as usize].name()),
        l7: L7::ALL
            .get((w(57) as usize) % (L7::ALL.len() + 1))
            .map_or("Unknown", |l| l.name()),
        app: (flags & 16 == 16).then_some("YouTube"),
        server_name: (flags & 32 == 32)
            .then(|| String::from_utf8_lossy(b.get(60..70).unwrap_or(&[])).into_owned()),
        alpn: None,
        client_mac: (flags & 64 == 64).then(|| w(70).to_le_bytes()[..6].try_into().unwrap_or([0; 6])),
        server_mac: (flags & 128 == 128).then(|| w(76).to_le_bytes()[..6].try_into().unwrap_or([0; 6])),
        c2s_packets: w(82),
        c2s_bytes: w(90) >> (flags >> 8 & 63),
        s2c_packets: w(98) >> 40,
        s2c_bytes: w(106),
        first_seen: first,
        last_seen: first.wrapping_add((w(114) >> 20) as i64),
        c2s_tcp_flags: (flags >> 16) as u8,
        s2c_tcp_flags: (flags >> 24) as u8,
        skip_flow_checks: false,
        // Flows from exporters carry the exporter and its interfaces.
        export: (flags & 256 == 256).then(|| flowmesh_record::Exported {
            exporter: ip(118, flags & 512 == 512),
            in_if: w(122) as u32,
            out_if: (w(122) >> 32) as u32,
            sampling: (w(126) as u32).max(1),
        }),
    };
    (r, profiles)
}

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((0, rest)) => {
            let mut b = BlockBuilder::default();
            let made: Vec<_> = rest.chunks(128).take(64).map(record).collect();
            for (r, p) in &made {
                b.push(r, p);
            }
            let back = decode_block("fuzz", &b.finish(1)).expect("a block just made decodes");
            assert_eq!(back.len(), made.len());
            for (s, (r, p)) in back.iter().zip(&made) {
                assert_eq!(&s.record, r);
                assert_eq!(&s.profiles, p);
            }
        }
        _ => {
            let _ = decode_block("fuzz", data);
        }
    }
});
