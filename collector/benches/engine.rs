//! Flows/s through the policy engine on one core, with 1,000 ACL rules, 10,000 typed devices,
//! 100 profiles and 50 traffic rules (issue 4's figure). `cargo bench -p flowmesh-collector`.
//!
//! Configurations: ACL + host policy + device apps; plus 100 profiles; plus 50 traffic rules on
//! those profiles — the profiles once as the record matcher takes them and once written so that
//! libpcap must judge each (the baseline of the same run). Criterion reports time per batch of
//! 10,000 records and elements/s.

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use flowmesh_collector::checks::Engine;
use flowmesh_collector::policy;
use flowmesh_record::FlowRecord;

fn records(n: usize) -> Vec<FlowRecord> {
    (0..n)
        .map(|i| {
            let client = format!("192.168.{}.{}", (i / 250) % 250, i % 250 + 1)
                .parse()
                .unwrap();
            let server = format!("10.{}.{}.{}", i % 7, (i / 7) % 250, i % 200 + 1)
                .parse()
                .unwrap();
            let port = [53u16, 80, 443, 22, 8080, 123][i % 6];
            let l7 = ["DNS", "HTTP", "TLS", "SSH", "HTTP", "NTP"][i % 6];
            let t = 1_700_000_000_000_000 + (i as i64) * 1000;
            FlowRecord {
                l4: if port == 53 || port == 123 {
                    "UDP"
                } else {
                    "TCP"
                },
                client_ip: client,
                client_port: 40000 + (i % 20000) as u16,
                server_ip: server,
                server_port: port,
                l7,
                client_mac: Some([2, 0, 0, 0, ((i / 256) % 40) as u8, (i % 256) as u8]),
                server_mac: Some([2, 0xaa, 0, 0, 0, 1]),
                c2s_packets: 5,
                c2s_bytes: 700,
                s2c_packets: 4,
                s2c_bytes: 3000,
                first_seen: t - 5000,
                last_seen: t,
                ..FlowRecord::default()
            }
        })
        .collect()
}

/// How profiles are written: as the record matcher takes them, or with a `vlan` term it leaves to
/// libpcap (the same flows match: the records carry no VLAN), for the ratio between the two.
#[derive(Clone, Copy, PartialEq)]
enum Profiles {
    None,
    Matcher,
    Libpcap,
}

fn policy_text(profiles: Profiles, rules: bool) -> String {
    let mut p = String::from("[acl]\nrules = \"\"\"\n");
    for i in 0..1000 {
        let _ = match i % 4 {
            0 => writeln!(p, "TCP;192.168.{}.0/24;*;{}", i % 250, 1000 + i),
            1 => writeln!(p, "UDP;192.168.{}.0/24;10.0.0.0/8;{}", i % 250, 2000 + i),
            2 => writeln!(p, "TCP;192.168.{}.{};10.0.0.0/8;HTTP", i % 250, i % 250 + 1),
            _ => writeln!(p, "TCP;*;10.{}.0.0/16;{}-{}", i % 250, 3000 + i, 3010 + i),
        };
    }
    // The LAN's usual traffic is allowed, so alerts stay rare, as on a real network: only the
    // SSH of one subnet in a hundred violates the ACL.
    p.push_str("TCP;192.168.0.0/16;*;443\nUDP;*;*;53\nUDP;*;*;123\nTCP;192.168.0.0/16;10.0.0.0/8;80\nTCP;192.168.0.0/16;10.0.0.0/8;8080\nTCP;192.168.0.0/17;10.0.0.0/8;22\nTCP;192.168.128.0/17;10.0.0.0/8;22\n\"\"\"\n\n[host_policy]\nrestricted = [\"192.168.1.30\"]\ncore = [\"192.168.1.1\"]\nwhitelisted = [\"8.8.8.8\"]\n\n[device_types]\n");
    for i in 0..10_000 {
        let _ = writeln!(
            p,
            "\"02:00:00:00:{:02x}:{:02x}\" = \"{}\"",
            (i / 256) % 40,
            i % 256,
            ["workstation", "laptop", "phone", "tablet", "networking"][i % 5]
        );
    }
    if profiles != Profiles::None {
        let tail = if profiles == Profiles::Libpcap {
            " and not vlan"
        } else {
            ""
        };
        for i in 0..100 {
            let _ = writeln!(
                p,
                "[[profile]]\nname = \"p{i}\"\nbpf = \"(tcp port {} or udp port {}){tail}\"",
                1000 + i,
                2000 + i
            );
        }
    }
    if rules {
        for i in 0..50 {
            let _ = writeln!(
                p,
                "[[traffic_rule]]\ntarget = \"profile:p{i}\"\nmetric = \"total\"\nfrequency = \"5min\"\nkind = \"volume\"\nbound = \"above\"\nvalue = \"1GB\""
            );
        }
    }
    p
}

fn bench(c: &mut Criterion) {
    let recs = records(10_000);
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(recs.len() as u64));
    for (name, profiles, rules) in [
        ("acl+host+device_apps", Profiles::None, false),
        ("+100 profiles (libpcap)", Profiles::Libpcap, false),
        ("+100 profiles", Profiles::Matcher, false),
        ("+50 traffic rules (libpcap)", Profiles::Libpcap, true),
        ("+50 traffic rules", Profiles::Matcher, true),
    ] {
        let (p, _) = policy::parse(&policy_text(profiles, rules))
            .unwrap_or_else(|r| panic!("{:?}", r.errors.first()));
        group.bench_function(name, |b| {
            b.iter_batched(
                || Engine::new(&p, "bench"),
                |mut engine| {
                    let mut n = 0usize;
                    for r in &recs {
                        engine.flow(black_box(r), &mut |_| n += 1);
                    }
                    assert!(
                        n < recs.len() / 20,
                        "{n} alerts: the bench means a mostly-allowed network"
                    );
                    n
                },
                BatchSize::LargeInput,
            )
        });
    }
    // The collector's path since the flow store: every record tagged with all its profiles
    // (stored with it), the traffic rules reading those tags instead of matching again.
    let (p, _) = policy::parse(&policy_text(Profiles::Matcher, true))
        .unwrap_or_else(|r| panic!("{:?}", r.errors.first()));
    group.bench_function("+50 traffic rules, all 100 profiles tagged", |b| {
        b.iter_batched(
            || (Engine::new(&p, "bench"), Vec::new()),
            |(mut engine, mut tags)| {
                let mut n = 0usize;
                for r in &recs {
                    tags.clear();
                    engine.each_profile(black_box(r), &mut |t| tags.push(t));
                    engine.flow_tagged(r, &tags, &mut |_| n += 1);
                }
                n
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
    // The collector also counts every record into its timeseries (total, l7, app, local hosts).
    let mut group = c.benchmark_group("series");
    group.throughput(Throughput::Elements(recs.len() as u64));
    group.bench_function("SeriesDelta::add_flow", |b| {
        b.iter(|| {
            let mut d = flowmesh_collector::store::SeriesDelta::default();
            for (i, r) in recs.iter().enumerate() {
                d.add_flow(black_box(r), 1_700_000_000_000_000 + i as i64 * 1000);
            }
            d
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
