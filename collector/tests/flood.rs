//! A flood of random MACs and remote addresses through the policy engine: its state stays
//! within its bounds, and what it had to let go is counted.

use flowmesh_collector::checks::Engine;
use flowmesh_collector::checks::devices::MAX_TRACKED;
use flowmesh_collector::checks::traffic_rules::MAX_SERIES;
use flowmesh_collector::policy;
use flowmesh_record::FlowRecord;

const POLICY: &str = r#"
[devices]
idle_timeout = "5m"

[[traffic_rule]]
target = "host:*"
metric = "total"
frequency = "hour"
kind = "volume"
bound = "above"
value = "1GB"
"#;

/// A different (pseudo-random) value for each `i`.
fn mix(i: u64) -> u64 {
    let mut x = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[test]
fn a_million_random_macs_and_addresses_leave_the_engine_within_its_bounds() {
    let (p, _) = policy::parse(POLICY).unwrap_or_else(|r| panic!("{:#?}", r.errors));
    let mut engine = Engine::new(&p, "flood");
    let mut f = FlowRecord {
        l4: "TCP",
        client_ip: "192.168.1.20".parse().unwrap(),
        client_port: 40000,
        server_ip: "8.8.8.8".parse().unwrap(),
        server_port: 443,
        l7: "TLS",
        c2s_packets: 1,
        c2s_bytes: 100,
        // All within one hour: nothing expires, only the bounds keep the state small.
        first_seen: 1_795_946_400_000_000,
        last_seen: 1_795_946_401_000_000,
        ..FlowRecord::default()
    };
    let mut alerts = 0u64;
    let mut peak = flowmesh_collector::checks::Bounds::default();
    const N: u64 = 1_000_000;
    for i in 0..N {
        let r = mix(i).to_be_bytes();
        // A locally administered unicast MAC, random.
        f.client_mac = Some([2, r[0], r[1], r[2], r[3], r[4]]);
        // A different server each time (45.0.0.0/8 has room for all of them).
        f.server_ip = std::net::Ipv4Addr::from(0x2d00_0000 + i as u32).into();
        engine.flow(&f, &mut |_| alerts += 1);
        if i % 50_000 == 0 {
            let b = engine.bounds();
            peak.devices_tracked = peak.devices_tracked.max(b.devices_tracked);
            peak.series = peak.series.max(b.series);
        }
    }
    let b = engine.bounds();
    assert!(b.devices_tracked <= MAX_TRACKED as u64, "{b:?}");
    assert!(peak.devices_tracked <= MAX_TRACKED as u64, "{peak:?}");
    assert!(b.series <= 2 * MAX_SERIES as u64, "{b:?}");
    assert!(peak.series <= 2 * MAX_SERIES as u64, "{peak:?}");
    // Each MAC appeared once and alerted once; the ones forgotten were counted.
    assert_eq!(alerts, N, "one unexpected_device_connected per MAC");
    assert!(b.devices_evicted >= N - MAX_TRACKED as u64, "{b:?}");
    // 1M server addresses and one client: the client and the first MAX_SERIES-1 servers.
    assert!(b.series_dropped >= N - MAX_SERIES as u64, "{b:?}");
}
