//! Issue 14: no allocation per record on the collector's path except what an alert needs.
//!
//! A counting allocator (this test binary's only test, counting on its own thread) measures one
//! batch of 1,000 flows judged as the collector judges a delivered batch — read from its
//! protobuf into one reused record, counted in the series, tagged with 100 profiles, kept for
//! the flow store, judged by 1,000 ACL rules, host policy, device types, 50 traffic rules and
//! the shared blacklist — once the engine has seen these hosts and devices. What a batch
//! allocates (its maps and columns growing, its dictionaries) is shared by its flows; one
//! allocation per flow would be at least 1,000.

use flowmesh_collector::checks::Engine;
use flowmesh_collector::checks::blacklist::Blacklist;
use flowmesh_collector::daemon::judge::judge_batch;
use flowmesh_collector::policy;
use flowmesh_proto::v1::{BlacklistBroadcast, BlacklistEntry};
use flowmesh_record::{FlowRecord, codec};

#[path = "../../tests/support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::allocations;

const FLOWS: usize = 1000;
/// 10 s into a 5-minute bucket (2026-11-30T10:00:10Z), and the wall clock a minute later.
const START: i64 = 1_796_032_810_000_000;
const NOW: i64 = START + 60_000_000;

#[path = "common/site.rs"]
mod site;

/// The site's flows with applications and ALPN on TLS; batch `round` one second after the one
/// before (the same 5-minute bucket).
fn record(i: usize, round: i64) -> FlowRecord {
    let r = site::record(i, START + round * 1_000_000 + (i as i64) * 1000);
    let tls = r.server_port == 443;
    FlowRecord {
        app: tls.then_some("Google"),
        server_name: tls.then(|| format!("host{}.example.org", i % 50)),
        alpn: tls.then(|| vec!["h2".to_string(), "http/1.1".to_string()]),
        ..r
    }
}

fn policy_text() -> String {
    let mut p = String::new();
    site::acl(&mut p);
    // Device tracking past its learning period, device apps that allow what the site's IoT and
    // NAS devices do; the restricted and core hosts are not among the flows' hosts.
    p.push_str("[host_policy]\nrestricted = [\"192.168.251.30\"]\ncore = [\"192.168.251.1\"]\nwhitelisted = [\"8.8.8.8\"]\n\n[devices]\nidle_timeout = \"1h\"\nlearning_period = \"1d\"\n[[devices.authorized]]\nmac = \"02:aa:00:00:00:01\"\nname = \"gateway\"\nalert_on_disconnect = true\n\n[device_apps.iot]\nclient = [\"HTTP\", \"TLS\", \"SSH\", \"NTP\"]\nserver = []\n[device_apps.nas]\nclient = [\"HTTP\", \"TLS\", \"SSH\", \"NTP\"]\nserver = [\"HTTP\"]\n\n");
    site::device_types(
        &mut p,
        FLOWS,
        &["workstation", "laptop", "phone", "iot", "nas"],
    );
    site::profiles(&mut p, 100, "");
    p.push_str("[[profile]]\nname = \"web\"\nbpf = \"tcp port 443 or tcp port 80\"\n");
    site::traffic_rules(&mut p, 50);
    p.push_str("[[traffic_rule]]\ntarget = \"profile:web\"\nmetric = \"total\"\nfrequency = \"5min\"\nkind = \"volume\"\nbound = \"above\"\nvalue = \"1000GB\"\n");
    p
}

/// The batch as a sensor sends it (sequence `sequence`, no watermark).
fn batch_bytes(records: &[FlowRecord], sequence: u64) -> Vec<u8> {
    let mut entries = Vec::new();
    for r in records {
        codec::write_batch_entry(r, false, &mut entries);
    }
    let mut out = Vec::new();
    codec::write_batch("sensor-1", sequence, &entries, &[7; 8], 0, &mut out);
    out
}

#[test]
fn judging_a_batch_allocates_nothing_per_flow() {
    let (policy, _) = policy::parse(&policy_text())
        .unwrap_or_else(|r| panic!("test policy: {:?}", r.errors.first()));
    let mut engine = Engine::new(&policy, "sensor-1");
    let mut blacklist = Blacklist::default();
    assert!(
        blacklist.apply(&BlacklistBroadcast {
            entries: (0..100)
                .map(|i| BlacklistEntry {
                    ip: format!("203.0.113.{i}"),
                    reason: "scanner".into(),
                    expires_us: NOW + 86_400_000_000,
                    reporters: 2,
                })
                .collect(),
            issued_us: NOW,
            part: 0,
            parts: 1,
        })
    );
    // The first batches meet the hosts and devices (the engine's tables grow, first-seen
    // alerts may come); the last is the steady state.
    let mut last = None;
    for sequence in 0..4 {
        let records: Vec<FlowRecord> = (0..FLOWS).map(|i| record(i, sequence as i64)).collect();
        let bytes = batch_bytes(&records, sequence);
        let batch = codec::read_batch(&bytes).expect("the test batch reads back");
        let before = allocations();
        let judged = judge_batch(
            &batch,
            "0707070707070707",
            &mut engine,
            &blacklist,
            true,
            NOW,
        );
        let spent = allocations() - before;
        assert_eq!(judged.bad, 0, "every test flow is well formed");
        assert_eq!(judged.records.as_ref().map(|s| s.len()), Some(FLOWS));
        assert!(!judged.series.is_empty());
        last = Some((spent, judged.alerts.len()));
    }
    let (spent, alerts) = last.unwrap();
    println!(
        "steady state: {spent} allocations for {FLOWS} flows ({:.3} per flow), {alerts} alerts",
        spent as f64 / FLOWS as f64
    );
    assert_eq!(
        alerts, 0,
        "the steady-state batch is of allowed, known traffic"
    );
    assert!(
        spent < FLOWS as u64 / 2,
        "{spent} allocations judging {FLOWS} flows: something allocates per flow"
    );
}
