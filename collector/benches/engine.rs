//! Flows/s through the policy engine on one core, with 1,000 ACL rules, 10,000 typed devices,
//! 100 profiles and 50 traffic rules (issue 4's figure). `cargo bench -p flowmesh-collector`.
//!
//! Configurations: ACL + host policy + device apps; plus 100 profiles; plus 50 traffic rules on
//! those profiles — the profiles once as the record matcher takes them and once written so that
//! libpcap must judge each (the baseline of the same run). Criterion reports time per batch of
//! 10,000 records and elements/s.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use flowmesh_collector::checks::Engine;
use flowmesh_collector::policy;
use flowmesh_record::FlowRecord;

#[path = "../tests/common/site.rs"]
mod site;

fn records(n: usize) -> Vec<FlowRecord> {
    (0..n)
        .map(|i| site::record(i, 1_700_000_000_000_000 + (i as i64) * 1000))
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
    let mut p = String::new();
    // The LAN's usual traffic is allowed, so alerts stay rare, as on a real network.
    site::acl(&mut p);
    p.push_str("[host_policy]\nrestricted = [\"192.168.1.30\"]\ncore = [\"192.168.1.1\"]\nwhitelisted = [\"8.8.8.8\"]\n\n");
    site::device_types(
        &mut p,
        10_000,
        &["workstation", "laptop", "phone", "tablet", "networking"],
    );
    if profiles != Profiles::None {
        let tail = if profiles == Profiles::Libpcap {
            " and not vlan"
        } else {
            ""
        };
        site::profiles(&mut p, 100, tail);
    }
    if rules {
        site::traffic_rules(&mut p, 50);
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
