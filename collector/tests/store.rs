//! The collector's redb store: timeseries rollups, idempotent batches, alerts, retention.

use flowmesh_collector::alert::Alert;
use flowmesh_collector::store::{AlertQuery, Commit, Resolution, SeriesDelta, Store};
use flowmesh_record::FlowRecord;
use redb::ReadableTable;
use serde_json::json;

/// 2024-03-10T00:00:00Z, seconds.
const DAY: i64 = 1_710_028_800;

fn flow(client: &str, server: &str, l7: &'static str, bytes: u64, t_secs: i64) -> FlowRecord {
    FlowRecord {
        l4: "TCP",
        client_ip: client.parse().unwrap(),
        client_port: 40000,
        server_ip: server.parse().unwrap(),
        server_port: 443,
        l7,
        app: (l7 == "TLS").then_some("YouTube"),
        c2s_packets: 1,
        c2s_bytes: bytes / 2,
        s2c_packets: 1,
        s2c_bytes: bytes - bytes / 2,
        first_seen: t_secs * 1_000_000,
        last_seen: t_secs * 1_000_000,
        ..FlowRecord::default()
    }
}

fn delta(flows: &[FlowRecord]) -> SeriesDelta {
    let mut d = SeriesDelta::default();
    for f in flows {
        d.add_flow(f, f.last_seen);
    }
    d
}

fn commit(store: &Store, id: Option<&str>, flows: &[FlowRecord], alerts: &[Alert]) -> bool {
    let series = delta(flows);
    // Applied when its last flow ended (or at DAY).
    let now_micros = flows
        .iter()
        .map(|f| f.last_seen)
        .max()
        .unwrap_or(DAY * 1_000_000);
    store
        .commit(&Commit {
            batch_id: id,
            instance: "s1",
            alerts,
            series: &series,
            now_micros,
            flows: None,
        })
        .unwrap()
}

fn bytes(store: &Store, series: &str, r: Resolution) -> Vec<(i64, u64)> {
    store
        .points("s1", series, r, i64::MIN, i64::MAX)
        .unwrap()
        .into_iter()
        .map(|p| (p.start - DAY, p.counters.bytes))
        .collect()
}

/// Two hosts' DNS and TLS over two 5-minute buckets, an hour and a day.
fn site_flows() -> [FlowRecord; 5] {
    [
        flow("192.168.1.20", "8.8.8.8", "DNS", 100, DAY + 10),
        flow("192.168.1.20", "142.250.1.1", "TLS", 1000, DAY + 299),
        flow("192.168.1.21", "142.250.1.1", "TLS", 10, DAY + 300),
        flow("192.168.1.20", "142.250.1.1", "TLS", 5, DAY + 3_600 + 1),
        flow("192.168.1.20", "142.250.1.1", "TLS", 7, DAY + 86_400 + 5),
    ]
}

#[test]
fn points_roll_up_into_hours_and_days() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.redb")).unwrap();
    let flows = site_flows();
    // In two batches, out of order: sums do not care.
    assert!(commit(&store, Some("s1/2"), &flows[3..], &[]));
    assert!(commit(&store, Some("s1/1"), &flows[..3], &[]));
    assert_eq!(
        bytes(&store, "total", Resolution::FiveMinutes),
        vec![(0, 1100), (300, 10), (3_600, 5), (86_400, 7)]
    );
    assert_eq!(
        bytes(&store, "total", Resolution::Hour),
        vec![(0, 1110), (3_600, 5), (86_400, 7)]
    );
    assert_eq!(
        bytes(&store, "total", Resolution::Day),
        vec![(0, 1115), (86_400, 7)]
    );
    assert_eq!(
        bytes(&store, "l7:TLS", Resolution::Day),
        vec![(0, 1015), (86_400, 7)]
    );
    assert_eq!(bytes(&store, "app:YouTube", Resolution::Hour)[0], (0, 1010));
    assert_eq!(
        bytes(&store, "host:192.168.1.21", Resolution::Day),
        vec![(0, 10)]
    );
    // Remote hosts have no series: they are unbounded.
    assert!(bytes(&store, "host:8.8.8.8", Resolution::Day).is_empty());
    let names = store.series_names("s1").unwrap();
    assert_eq!(
        names,
        [
            "app:YouTube",
            "host:192.168.1.20",
            "host:192.168.1.21",
            "l7:DNS",
            "l7:TLS",
            "total"
        ]
    );
    // A range query returns only the buckets that start inside it.
    let window = store
        .points(
            "s1",
            "total",
            Resolution::FiveMinutes,
            DAY + 300,
            DAY + 3_600,
        )
        .unwrap();
    assert_eq!(window.len(), 1);
    assert_eq!(window[0].counters.packets, 2);
}

#[test]
fn a_redelivered_batch_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.redb")).unwrap();
    let flows = [flow("192.168.1.20", "8.8.8.8", "DNS", 100, DAY)];
    let alert = Alert::new(
        "acl_violation_arp",
        "warning",
        "s1",
        DAY * 1_000_000,
        json!({"mac": "02:00:00:00:00:01"}),
    );
    assert!(commit(
        &store,
        Some("s1/7"),
        &flows,
        std::slice::from_ref(&alert)
    ));
    assert!(!commit(
        &store,
        Some("s1/7"),
        &flows,
        std::slice::from_ref(&alert)
    ));
    assert!(store.is_applied("s1/7").unwrap());
    assert_eq!(bytes(&store, "total", Resolution::Day), vec![(0, 100)]);
    assert_eq!(store.alert_count().unwrap(), 1);
    // Without an id nothing can be recognised: both count.
    assert!(commit(&store, None, &flows, &[]));
    assert!(commit(&store, None, &flows, &[]));
    assert_eq!(bytes(&store, "total", Resolution::Day), vec![(0, 300)]);
}

#[test]
fn everything_survives_a_reopen_and_the_file_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    {
        let store = Store::open(&path).unwrap();
        let a = Alert::new(
            "device_disconnected",
            "warning",
            "s1",
            DAY * 1_000_000,
            json!({"mac": "02:00:00:00:00:01"}),
        );
        commit(
            &store,
            Some("b1"),
            &[flow("10.0.0.1", "10.0.0.2", "SSH", 42, DAY)],
            &[a],
        );
    }
    let store = Store::open(&path).unwrap();
    assert!(store.is_applied("b1").unwrap());
    assert_eq!(
        bytes(&store, "l7:SSH", Resolution::FiveMinutes),
        vec![(0, 42)]
    );
    assert_eq!(
        store.alerts(&AlertQuery::default()).unwrap()[0]["type"],
        "device_disconnected"
    );
    // Adding to a point stored before the reopen, which the new store has not seen, sums.
    commit(
        &store,
        Some("b2"),
        &[flow("10.0.0.1", "10.0.0.2", "SSH", 8, DAY + 1)],
        &[],
    );
    assert_eq!(
        bytes(&store, "l7:SSH", Resolution::FiveMinutes),
        vec![(0, 50)]
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn alerts_are_queried_by_type_instance_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.redb")).unwrap();
    let at = |kind: &'static str, inst: &str, s: i64| {
        Alert::new(kind, "warning", inst, (DAY + s) * 1_000_000, json!({}))
    };
    let alerts = [
        at("acl_violation", "s1", 30),
        at("host_policy", "s1", 10),
        at("acl_violation", "s2", 20),
        at("acl_violation", "s1", 40),
    ];
    commit(&store, Some("b"), &[], &alerts);
    let times = |q: AlertQuery| -> Vec<String> {
        store
            .alerts(&q)
            .unwrap()
            .iter()
            .map(|a| {
                format!(
                    "{}@{}",
                    a["instance"].as_str().unwrap(),
                    &a["time"].as_str().unwrap()[17..19]
                )
            })
            .collect()
    };
    assert_eq!(
        times(AlertQuery::default()),
        ["s1@10", "s2@20", "s1@30", "s1@40"],
        "oldest first"
    );
    let acl_s1 = AlertQuery {
        kind: Some("acl_violation".into()),
        instance: Some("s1".into()),
        ..AlertQuery::default()
    };
    assert_eq!(times(acl_s1.clone()), ["s1@30", "s1@40"]);
    let window = AlertQuery {
        from_micros: Some((DAY + 20) * 1_000_000),
        to_micros: Some((DAY + 40) * 1_000_000),
        ..acl_s1
    };
    assert_eq!(times(window.clone()), ["s1@30"]);
    assert_eq!(
        times(AlertQuery {
            limit: 1,
            ..AlertQuery::default()
        }),
        ["s1@10"]
    );
}

#[test]
fn pruning_keeps_each_resolution_for_its_retention() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.redb")).unwrap();
    let old = DAY - 10 * 86_400;
    commit(
        &store,
        Some("old"),
        &[flow("10.0.0.1", "1.1.1.1", "DNS", 1, old)],
        &[],
    );
    commit(
        &store,
        Some("new"),
        &[flow("10.0.0.1", "1.1.1.1", "DNS", 2, DAY)],
        &[],
    );
    let removed = store
        .prune(DAY + 60, Resolution::default_retention_secs)
        .unwrap();
    // The old 5-minute points (total, l7:DNS, host:10.0.0.1) and the old batch id went.
    assert_eq!(removed, 4);
    assert_eq!(
        bytes(&store, "total", Resolution::FiveMinutes),
        vec![(0, 2)]
    );
    assert_eq!(
        bytes(&store, "total", Resolution::Hour),
        vec![(old - DAY, 1), (0, 2)],
        "hourly points are kept 90 days"
    );
    assert!(!store.is_applied("old").unwrap());
    assert!(store.is_applied("new").unwrap());
}

#[test]
fn a_pruned_point_does_not_come_back_with_a_late_flow() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.redb")).unwrap();
    let old = DAY - 10 * 86_400;
    commit(
        &store,
        None,
        &[flow("10.0.0.1", "1.1.1.1", "DNS", 5, old)],
        &[],
    );
    store
        .prune(DAY, Resolution::default_retention_secs)
        .unwrap();
    assert_eq!(bytes(&store, "total", Resolution::FiveMinutes), vec![]);
    // A late flow for the pruned bucket (a replayed backlog) counts alone: what the store
    // committed before the prune is not added to it again.
    commit(
        &store,
        None,
        &[flow("10.0.0.1", "1.1.1.1", "DNS", 3, old)],
        &[],
    );
    assert_eq!(
        bytes(&store, "total", Resolution::FiveMinutes),
        vec![(old - DAY, 3)]
    );
    assert_eq!(
        bytes(&store, "total", Resolution::Hour),
        vec![(old - DAY, 8)],
        "the hourly point was kept, and adds up"
    );
}

/// Writes points as earlier versions did: tuple keys, tables named `series_<resolution>`.
fn write_legacy(path: &std::path::Path, points: &[(&str, &'static str, &'static str, i64, u64)]) {
    type Legacy<'a> = redb::TableDefinition<'a, (&'static str, &'static str, i64), (u64, u64)>;
    let db = redb::Database::create(path).unwrap();
    let tx = db.begin_write().unwrap();
    for &(table, instance, name, start, bytes) in points {
        let mut t = tx.open_table(Legacy::new(table)).unwrap();
        let before = t
            .get((instance, name, start))
            .unwrap()
            .map_or(0, |v| v.value().0);
        t.insert((instance, name, start), (before + bytes, 1))
            .unwrap();
    }
    tx.commit().unwrap();
}

#[test]
fn a_store_of_an_earlier_version_keeps_its_points() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    write_legacy(
        &path,
        &[
            ("series_5m", "s1", "total", DAY, 10),
            ("series_5m", "s1", "total", DAY + 300, 20),
            ("series_5m", "s1", "l7:DNS", DAY, 5),
            ("series_5m", "s2", "total", DAY, 7),
            ("series_1d", "s1", "total", DAY, 30),
            ("series_1d", "s1", "l7:DNS", DAY, 5),
            ("series_1d", "s2", "total", DAY, 7),
        ],
    );
    let store = Store::open(&path).unwrap();
    assert_eq!(
        bytes(&store, "total", Resolution::FiveMinutes),
        vec![(0, 10), (300, 20)]
    );
    assert_eq!(bytes(&store, "total", Resolution::Day), vec![(0, 30)]);
    // An empty or reversed interval (a console's query) finds nothing.
    let none = |from, to| {
        store
            .points("s1", "total", Resolution::FiveMinutes, from, to)
            .unwrap()
    };
    assert_eq!(none(DAY, DAY), vec![]);
    assert_eq!(none(DAY + 300, DAY), vec![]);
    assert_eq!(store.series_names("s1").unwrap(), ["l7:DNS", "total"]);
    assert_eq!(store.series_names("s2").unwrap(), ["total"]);
    // New traffic adds to the moved points; a second open moves nothing twice.
    commit(
        &store,
        None,
        &[flow("10.0.0.1", "1.1.1.1", "DNS", 4, DAY + 1)],
        &[],
    );
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(
        bytes(&store, "total", Resolution::FiveMinutes),
        vec![(0, 14), (300, 20)]
    );
    assert_eq!(bytes(&store, "total", Resolution::Day), vec![(0, 34)]);
    drop(store);
    // An update rolled back: the earlier version writes its tables anew (it does not see the
    // moved points meanwhile); the next update adds what it wrote to them.
    write_legacy(&path, &[("series_5m", "s1", "total", DAY, 1)]);
    let store = Store::open(&path).unwrap();
    assert_eq!(
        bytes(&store, "total", Resolution::FiveMinutes),
        vec![(0, 15), (300, 20)]
    );
}

/// Every resolution of `series`, for comparing before and after a rollup.
fn every_resolution(store: &Store, series: &str) -> Vec<Vec<(i64, u64)>> {
    Resolution::ALL
        .iter()
        .map(|&r| bytes(store, series, r))
        .collect()
}

#[test]
fn a_point_counts_once_before_and_after_its_rollup() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let store = Store::open(&path).unwrap();
    let flows = site_flows();
    commit(&store, None, &flows, &[]);
    let before = every_resolution(&store, "total");
    let names = store.series_names("s1").unwrap();
    // The hourly prune two days later rolls up every point but those of the last two hours.
    store
        .prune(
            DAY + 86_400 + 3_600 + 60,
            Resolution::default_retention_secs,
        )
        .unwrap();
    assert_eq!(every_resolution(&store, "total"), before);
    assert_eq!(store.series_names("s1").unwrap(), names);
    // A late flow into a rolled-up hour counts once at every resolution, before and after its
    // own rollup, and after a reopen.
    commit(
        &store,
        None,
        &[flow("192.168.1.20", "8.8.8.8", "DNS", 20, DAY + 11)],
        &[],
    );
    let expected = vec![
        vec![(0, 1120), (300, 10), (3_600, 5), (86_400, 7)],
        vec![(0, 1130), (3_600, 5), (86_400, 7)],
        vec![(0, 1135), (86_400, 7)],
    ];
    assert_eq!(every_resolution(&store, "total"), expected);
    store
        .prune(DAY + 3 * 86_400, Resolution::default_retention_secs)
        .unwrap();
    assert_eq!(every_resolution(&store, "total"), expected);
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(every_resolution(&store, "total"), expected);
    assert_eq!(
        bytes(&store, "l7:DNS", Resolution::Day),
        vec![(0, 120)],
        "a series rolled up in two parts"
    );
}

#[test]
fn commits_and_rollups_in_any_order_sum_like_the_flows() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.redb")).unwrap();
    // What every resolution must hold: the flows' bytes summed per bucket.
    let mut model: Vec<std::collections::BTreeMap<i64, u64>> = vec![Default::default(); 3];
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut now = DAY;
    for round in 0..200 {
        // Flows up to three days back from `now` (late ones too), a batch at a time.
        let batch: Vec<FlowRecord> = (0..1 + next(5))
            .map(|_| {
                let t = now - next(3 * 86_400) as i64;
                flow("10.0.0.1", "1.1.1.1", "DNS", 1 + next(1000), t)
            })
            .collect();
        for f in &batch {
            let t = f.last_seen / 1_000_000;
            for (r, sums) in Resolution::ALL.iter().zip(model.iter_mut()) {
                *sums.entry(r.bucket(t) - DAY).or_default() += f.c2s_bytes + f.s2c_bytes;
            }
        }
        commit(&store, None, &batch, &[]);
        now += next(3 * 3_600) as i64;
        if round % 7 == 0 {
            // Nothing is past its retention: only the rollup moves points.
            store.prune(now, |_| 1_000 * 86_400).unwrap();
        }
    }
    for (r, sums) in Resolution::ALL.iter().zip(&model) {
        let want: Vec<(i64, u64)> = sums.iter().map(|(&s, &b)| (s, b)).collect();
        assert_eq!(bytes(&store, "total", *r), want, "{r:?}");
    }
}
