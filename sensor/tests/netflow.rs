//! NetFlow v9 and IPFIX datagrams built by hand, for what a replayed softflowd export does not
//! show: data before its template, a template that changes, an options template carrying the
//! sampling rate, an exporter that restarts, IPFIX biflows, and garbage.

use std::net::SocketAddr;

use flowmesh_record::FlowRecord;
use flowmesh_sensor::netflow::synth::{V9_BASIC, be16, be32, ipfix, set, template, v9, v9_record};
use flowmesh_sensor::netflow::{Receiver, Settings};

const EXPORTER: &str = "192.0.2.7:40000";

fn receiver() -> Receiver {
    Receiver::new(Settings::default())
}

fn from() -> SocketAddr {
    EXPORTER.parse().unwrap()
}

/// Feeds datagrams, then flushes: every record out.
fn run(r: &mut Receiver, datagrams: &[Vec<u8>]) -> Vec<FlowRecord> {
    let mut out = Vec::new();
    for d in datagrams {
        r.datagram(from(), d, 0, &mut |f| out.push(f));
    }
    r.finish(&mut |f| out.push(f));
    out
}

#[test]
fn v9_records_pair_and_carry_exporter_interfaces_and_times() {
    let mut r = receiver();
    let out = run(
        &mut r,
        &[v9(
            1,
            10_000,
            &[
                set(0, &template(256, V9_BASIC)),
                set(
                    256,
                    &[
                        v9_record([10, 0, 0, 1], [10, 0, 0, 2], 50000, 443, 5, 500),
                        v9_record([10, 0, 0, 2], [10, 0, 0, 1], 443, 50000, 4, 4000),
                    ]
                    .concat(),
                ),
            ],
        )],
    );
    assert_eq!(out.len(), 1, "{out:?}");
    let f = &out[0];
    assert_eq!((f.client_port, f.server_port, f.l4), (50000, 443, "TCP"));
    assert_eq!(
        (f.c2s_packets, f.c2s_bytes, f.s2c_packets, f.s2c_bytes),
        (5, 500, 4, 4000)
    );
    let e = f.export.unwrap();
    assert_eq!(e.exporter.to_string(), "192.0.2.7");
    assert_eq!((e.in_if, e.out_if, e.sampling), (3, 5, 1));
    // Uptime 10 s at export time T: uptime 1 s is T - 9 s.
    let t = 1_767_225_600_000_000i64;
    assert_eq!((f.first_seen, f.last_seen), (t - 9_000_000, t - 7_000_000));
    assert_eq!(r.counters()[&e.exporter].records, 2);
}

#[test]
fn data_before_its_template_is_read_when_the_template_comes() {
    let mut r = receiver();
    let data = set(
        256,
        &v9_record([10, 0, 0, 1], [10, 0, 0, 2], 50000, 80, 1, 60),
    );
    let out = run(
        &mut r,
        &[
            v9(1, 10_000, std::slice::from_ref(&data)),
            v9(2, 10_000, &[set(0, &template(256, V9_BASIC))]),
        ],
    );
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].server_port, 80);
    // Held for its template, not lost: not counted as missing.
    let c = r.counters()[&"192.0.2.7".parse().unwrap()];
    assert_eq!((c.records, c.missing_template), (1, 0), "{c:?}");
}

#[test]
fn a_changed_template_and_an_exporter_restart_read_the_new_layout() {
    let mut r = receiver();
    // Same template id, ports first and no interfaces: the exporter restarted with a new layout
    // (sequence numbers start again).
    let swapped: &[(u16, u16)] = &[(7, 2), (11, 2), (8, 4), (12, 4), (4, 1), (2, 4), (1, 4)];
    let mut rec = Vec::new();
    be16(&mut rec, 1234);
    be16(&mut rec, 53);
    rec.extend_from_slice(&[10, 0, 0, 9, 8, 8, 8, 8, 17]);
    be32(&mut rec, 2);
    be32(&mut rec, 150);
    let out = run(
        &mut r,
        &[
            v9(
                100,
                50_000,
                &[
                    set(0, &template(256, V9_BASIC)),
                    set(
                        256,
                        &v9_record([10, 0, 0, 1], [10, 0, 0, 2], 50000, 443, 1, 60),
                    ),
                ],
            ),
            v9(1, 500, &[set(0, &template(256, swapped)), set(256, &rec)]),
        ],
    );
    assert_eq!(out.len(), 2, "{out:?}");
    let dns = out
        .iter()
        .find(|f| f.server_port == 53)
        .expect("the new layout read");
    assert_eq!((dns.l4, dns.client_port, dns.c2s_bytes), ("UDP", 1234, 150));
    assert_eq!(dns.server_ip.to_string(), "8.8.8.8");
}

#[test]
fn an_options_template_s_sampling_interval_scales_later_records() {
    let mut r = receiver();
    // v9 options template 257: scope system (1, 4 bytes), option SAMPLING_INTERVAL (34, 4).
    let mut opt_t = Vec::new();
    be16(&mut opt_t, 257);
    be16(&mut opt_t, 4); // scope length in bytes
    be16(&mut opt_t, 4); // option length in bytes
    be16(&mut opt_t, 1);
    be16(&mut opt_t, 4);
    be16(&mut opt_t, 34);
    be16(&mut opt_t, 4);
    let mut opt_d = Vec::new();
    be32(&mut opt_d, 0); // scope: the system
    be32(&mut opt_d, 100); // 1 in 100
    let out = run(
        &mut r,
        &[v9(
            1,
            10_000,
            &[
                set(0, &template(256, V9_BASIC)),
                set(1, &opt_t),
                set(257, &opt_d),
                set(
                    256,
                    &v9_record([10, 0, 0, 1], [10, 0, 0, 2], 50000, 443, 3, 300),
                ),
            ],
        )],
    );
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!((out[0].c2s_packets, out[0].c2s_bytes), (300, 30_000));
    assert_eq!(out[0].export.unwrap().sampling, 100);
}

#[test]
fn ipfix_with_absolute_times_and_biflow_counters() {
    let mut r = receiver();
    // src, dst (IPv6), sport, dport, proto, octets, packets, start/end ms, then the reverse
    // octets and packets (RFC 5103: enterprise 29305, fields 1 and 2).
    let mut t = Vec::new();
    be16(&mut t, 300);
    be16(&mut t, 11);
    for (id, len) in [
        (27u16, 16u16),
        (28, 16),
        (7, 2),
        (11, 2),
        (4, 1),
        (1, 8),
        (2, 8),
        (152, 8),
        (153, 8),
    ] {
        be16(&mut t, id);
        be16(&mut t, len);
    }
    for id in [1u16, 2] {
        be16(&mut t, 0x8000 | id);
        be16(&mut t, 8);
        be32(&mut t, 29305);
    }
    let mut d = Vec::new();
    d.extend_from_slice(
        &"2001:db8::1"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    d.extend_from_slice(
        &"2001:db8::2"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    be16(&mut d, 50001);
    be16(&mut d, 443);
    d.push(6);
    d.extend_from_slice(&1000u64.to_be_bytes());
    d.extend_from_slice(&10u64.to_be_bytes());
    d.extend_from_slice(&1_767_225_590_123u64.to_be_bytes());
    d.extend_from_slice(&1_767_225_595_456u64.to_be_bytes());
    d.extend_from_slice(&9000u64.to_be_bytes());
    d.extend_from_slice(&8u64.to_be_bytes());
    let out = run(&mut r, &[ipfix(1, &[set(2, &t), set(300, &d)])]);
    assert_eq!(out.len(), 1, "{out:?}");
    let f = &out[0];
    assert_eq!(f.client_ip.to_string(), "2001:db8::1");
    assert_eq!(
        (f.c2s_packets, f.c2s_bytes, f.s2c_packets, f.s2c_bytes),
        (10, 1000, 8, 9000)
    );
    assert_eq!(
        (f.first_seen, f.last_seen),
        (1_767_225_590_123_000, 1_767_225_595_456_000)
    );
}

#[test]
fn garbage_is_counted_never_a_panic() {
    let mut r = receiver();
    let mut junk = vec![0u8, 9, 0, 1, 0, 0];
    junk.extend(std::iter::repeat_n(0xff, 40));
    let out = run(
        &mut r,
        &[junk, vec![0, 10, 0, 4], vec![], vec![0, 5, 0, 30]],
    );
    assert!(out.is_empty(), "{out:?}");
    let c = r.counters()[&"192.0.2.7".parse().unwrap()];
    assert_eq!(c.datagrams, 4);
    assert!(c.malformed >= 2, "{c:?}");
}

#[test]
fn an_application_name_becomes_l7_and_app() {
    let mut r = receiver();
    // V9_BASIC and an applicationName (96) of 16 bytes, as nProbe sends nDPI's names.
    let mut layout = V9_BASIC.to_vec();
    layout.push((96, 16));
    let mut rec = v9_record([10, 0, 0, 1], [10, 0, 0, 2], 50000, 443, 2, 200);
    let mut name = b"TLS.YouTube".to_vec();
    name.resize(16, 0);
    rec.extend(name);
    let out = run(
        &mut r,
        &[v9(
            1,
            10_000,
            &[set(0, &template(256, &layout)), set(256, &rec)],
        )],
    );
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!((out[0].l7, out[0].app), ("TLS", Some("YouTube")));
}
