//! A capture built for traffic-rule timing, with absolute times around the 2026 DST change in
//! Europe/Rome, and the truth it implies computed from its packets alone (not from flow
//! records): an upload that ends 30 s before a boundary, a long flow across many periods and a
//! local midnight, a UDP flow across a boundary, a host whose traffic triples, and traffic on
//! both sides of the next local midnight (a 23-hour day). Shared by the tests of `flowmesh
//! check` and of the pipeline.

use std::collections::BTreeMap;

use super::{eth, ipv4, tcp, udp};

/// One second, µs.
pub const S: i64 = 1_000_000;
/// Five minutes, µs.
pub const FIVE_MIN: i64 = 300 * S;
/// The local host that uploads.
pub const H20: [u8; 4] = [192, 168, 1, 20];
/// The local host whose traffic triples.
pub const H21: [u8; 4] = [192, 168, 1, 21];
/// Their peer.
pub const SERVER: [u8; 4] = [8, 8, 4, 4];

/// 2026-03-28T22:40:00Z (23:40 local, CET).
pub const T0: i64 = 1_774_737_600 * S;
/// Local midnights in Europe/Rome, UTC: 2026-03-28 00:00 CET, 2026-03-29 00:00 CET, 2026-03-30
/// 00:00 CEST (the day between them is 23 hours long).
pub const MIDNIGHTS: [i64; 3] = [1_774_652_400 * S, 1_774_738_800 * S, 1_774_821_600 * S];

/// A packet with its time and the local host it belongs to.
pub struct Packet {
    /// When, µs.
    pub t: i64,
    /// The Ethernet frame.
    pub frame: Vec<u8>,
    /// The local host it belongs to.
    pub host: [u8; 4],
}

fn packet(t: i64, host: [u8; 4], proto: u8, l4: Vec<u8>) -> Packet {
    let mac = [0x02, 0, 0, 0, 0, host[3]];
    Packet {
        t,
        frame: eth(
            mac,
            [0x02, 0, 0, 0, 0, 1],
            0x0800,
            &ipv4(host, SERVER, proto, &l4),
        ),
        host,
    }
}

/// The capture: see the module documentation.
pub fn capture() -> Vec<Packet> {
    let mut p = Vec::new();
    // A: 1.25 MB uploaded by .20 from T0 to T0+4:30, ending 30 s before the boundary.
    let chunk = vec![0x55u8; 1400];
    let n = 1_250_000 / 1400;
    for i in 0..n {
        let t = T0 + i as i64 * (270 * S) / n as i64;
        let flags = if i == 0 { 0x02 } else { 0x18 };
        p.push(packet(t, H20, 6, tcp(40000, 443, i as u32, flags, &chunk)));
    }
    // B: a long flow of .20, a packet every 10 s from 22:46:10 to 23:12:40 (past midnight).
    let mut t = T0 + 370 * S;
    while t <= T0 + 1960 * S {
        p.push(packet(t, H20, 6, tcp(40001, 443, 1, 0x18, &[0x33; 600])));
        t += 10 * S;
    }
    // C: a UDP flow of .20 across the 23:00 boundary (and local midnight).
    for k in 0..6 {
        p.push(packet(
            T0 + 1198 * S + k * S,
            H20,
            17,
            udp(5000, 53, &[0x11; 200]),
        ));
    }
    // D: .21 steady for two periods (1 packet/s), then three times as much for two.
    for s in 0..600 {
        p.push(packet(T0 + s * S, H21, 17, udp(6000, 123, &[0x22; 100])));
    }
    for s in 0..1800 {
        p.push(packet(
            T0 + 600 * S + s * S / 3,
            H21,
            17,
            udp(6000, 123, &[0x22; 100]),
        ));
    }
    // E: the next evening, on both sides of the (CEST) local midnight.
    let late = MIDNIGHTS[2];
    for (dt, len) in [(-120, 900), (-119, 901), (60, 700), (360, 50)] {
        p.push(packet(
            late + dt * S,
            H20,
            17,
            udp(7000, 53, &vec![0x44; len]),
        ));
    }
    p.sort_by_key(|x| x.t);
    p
}

/// A classic pcap with microsecond times.
pub fn pcap_micros(packets: &[Packet]) -> Vec<u8> {
    let mut f = vec![
        0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0,
    ];
    for p in packets {
        f.extend_from_slice(&((p.t / S) as u32).to_le_bytes());
        f.extend_from_slice(&((p.t % S) as u32).to_le_bytes());
        f.extend_from_slice(&(p.frame.len() as u32).to_le_bytes());
        f.extend_from_slice(&(p.frame.len() as u32).to_le_bytes());
        f.extend_from_slice(&p.frame);
    }
    f
}

/// Rules whose alerts the truth predicts: every 5-minute period of .20 (volume above 1 B),
/// .21 rising by more than 50%, and every local day of the interface.
pub const POLICY: &str = r#"
[settings]
timezone = "Europe/Rome"

[[traffic_rule]]
target = "host:192.168.1.20"
metric = "total"
frequency = "5min"
kind = "volume"
bound = "above"
value = "1B"

[[traffic_rule]]
target = "host:192.168.1.21"
metric = "total"
frequency = "5min"
kind = "percentage"
bound = "above"
value = "50"

[[traffic_rule]]
target = "interface:eth0"
metric = "total"
frequency = "day"
kind = "volume"
bound = "above"
value = "1B"
"#;

/// Bytes per period of the packets `keep` selects, periods from `start_of`.
pub fn truth(
    packets: &[Packet],
    keep: impl Fn(&Packet) -> bool,
    start_of: impl Fn(i64) -> i64,
) -> BTreeMap<i64, u64> {
    let mut out = BTreeMap::new();
    for p in packets.iter().filter(|p| keep(p)) {
        *out.entry(start_of(p.t)).or_default() += p.frame.len() as u64;
    }
    out
}

/// The 5-minute period holding `t`.
pub fn five_min(t: i64) -> i64 {
    t.div_euclid(FIVE_MIN) * FIVE_MIN
}

/// The local (Europe/Rome) day holding `t`.
pub fn local_day(t: i64) -> i64 {
    *MIDNIGHTS
        .iter()
        .rev()
        .find(|&&m| m <= t)
        .expect("within the days")
}
