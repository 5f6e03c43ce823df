use std::net::IpAddr;

use flowmesh_record::FlowRecord;

use super::*;
use crate::store::{Commit, SeriesDelta, Store};

const HOUR: i64 = 3_600_000_000;
/// 2026-11-30T00:00:00Z, µs.
const T0: i64 = 1_795_996_800_000_000;

fn flow(i: u32, t: i64) -> FlowRecord {
    FlowRecord {
        l4: "TCP",
        client_ip: IpAddr::from([192, 168, 1, (i % 50) as u8 + 1]),
        client_port: 40_000 + (i % 1000) as u16,
        server_ip: IpAddr::from([203, 0, 113, (i % 7) as u8]),
        server_port: if i.is_multiple_of(3) { 443 } else { 53 },
        vlan: i.is_multiple_of(5).then_some(10),
        tunnel: i.is_multiple_of(11).then_some("GTP"),
        l7: if i.is_multiple_of(3) { "TLS" } else { "DNS" },
        app: i.is_multiple_of(3).then_some("YouTube"),
        server_name: i
            .is_multiple_of(3)
            .then(|| format!("r{}.googlevideo.com", i % 4)),
        alpn: i
            .is_multiple_of(6)
            .then(|| vec!["h2".to_string(), "http/1.1".to_string()]),
        client_mac: Some([2, 0, 0, 0, 0, (i % 9) as u8]),
        server_mac: i.is_multiple_of(2).then_some([4, 0, 0, 0, 0, 1]),
        c2s_packets: u64::from(i % 13) + 1,
        c2s_bytes: u64::from(i) * 100 + 60,
        s2c_packets: u64::from(i % 4),
        s2c_bytes: u64::from(i % 4) * 1500,
        first_seen: t,
        last_seen: t + i64::from(i % 90) * 1_000_000,
        c2s_tcp_flags: 0x12,
        s2c_tcp_flags: 0x18,
        skip_flow_checks: false,
        export: i.is_multiple_of(7).then(|| flowmesh_record::Exported {
            exporter: IpAddr::from([192, 0, 2, (i % 3) as u8 + 1]),
            in_if: i % 5,
            out_if: 3,
            sampling: 1 + i % 2,
        }),
    }
}

fn profiles_of(i: u32) -> Vec<&'static str> {
    match i % 4 {
        0 => vec!["video"],
        1 => vec!["video", "guests"],
        _ => vec![],
    }
}

fn store_batch(store: &Store, id: &str, instance: &str, flows: &[(u32, FlowRecord)]) -> bool {
    let mut set = FlowSet::default();
    for (i, f) in flows {
        set.push(f, &profiles_of(*i), T0 + 48 * HOUR);
    }
    store
        .commit(&Commit {
            batch_id: Some(id),
            instance,
            alerts: &[],
            series: &SeriesDelta::default(),
            now_micros: T0,
            flows: Some(&set),
        })
        .expect("commit")
}

fn sample(n: u32, start: i64) -> Vec<(u32, FlowRecord)> {
    (0..n)
        .map(|i| (i, flow(i, start + i64::from(i) * 1_000_000)))
        .collect()
}

fn stored_eq(s: &StoredFlow, instance: &str, i: u32, f: &FlowRecord) {
    assert_eq!(s.instance, instance);
    assert_eq!(&s.record, f, "flow {i}");
    assert_eq!(s.profiles, profiles_of(i));
}

#[test]
fn every_field_comes_back_newest_first_and_redelivery_adds_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(&dir.path().join("s.redb")).expect("open");
    let flows = sample(300, T0);
    assert!(store_batch(&store, "a/1", "eu", &flows));
    assert!(
        !store_batch(&store, "a/1", "eu", &flows),
        "a redelivery is recognised"
    );
    let all = store.search_flows(&FlowQuery::default()).expect("search");
    assert_eq!(all.len(), 300);
    assert!(
        all.windows(2)
            .all(|w| w[0].record.last_seen >= w[1].record.last_seen)
    );
    for s in &all {
        let i = flows
            .iter()
            .find(|(_, f)| *f == s.record)
            .map(|(i, _)| *i)
            .expect("a stored flow is one that was sent");
        stored_eq(s, "eu", i, &flows[i as usize].1);
    }
    let stats = store.flow_stats().expect("stats");
    assert_eq!(stats.flows, 300);
    assert!(stats.bytes > 0 && stats.bytes < 300 * 40, "{stats:?}");
}

#[test]
fn filters_select_exactly_the_flows_that_match() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(&dir.path().join("s.redb")).expect("open");
    let flows = sample(500, T0);
    store_batch(&store, "a/1", "eu", &flows[..250]);
    store_batch(&store, "b/1", "us", &flows[250..]);
    let count = |q: FlowQuery, pred: &dyn Fn(u32, &FlowRecord, &str) -> bool| {
        let got = store.search_flows(&q).expect("search").len();
        let want = flows
            .iter()
            .filter(|(i, f)| pred(*i, f, if *i < 250 { "eu" } else { "us" }))
            .count();
        assert_eq!(got, want, "{q:?}");
        assert!(want > 0 || q.l7.is_some(), "{q:?} selects something");
    };
    let q = FlowQuery::default;
    count(
        FlowQuery {
            instance: Some("us".into()),
            ..q()
        },
        &|_, _, i| i == "us",
    );
    count(
        FlowQuery {
            host: Some("192.168.1.7".parse().expect("ip")),
            ..q()
        },
        &|_, f, _| f.client_ip == IpAddr::from([192, 168, 1, 7]),
    );
    count(
        FlowQuery {
            host: Some("203.0.113.0/30".parse().expect("cidr")),
            ..q()
        },
        &|_, f, _| matches!(f.server_ip, IpAddr::V4(a) if a.octets()[3] < 4),
    );
    count(
        FlowQuery {
            port: Some(443),
            ..q()
        },
        &|_, f, _| f.server_port == 443,
    );
    count(
        FlowQuery {
            l7: Some("tls".into()),
            ..q()
        },
        &|_, f, _| f.l7 == "TLS",
    );
    count(
        FlowQuery {
            l7: Some("SSH".into()),
            ..q()
        },
        &|_, _, _| false,
    );
    count(
        FlowQuery {
            app: Some("YouTube".into()),
            ..q()
        },
        &|_, f, _| f.app.is_some(),
    );
    count(
        FlowQuery {
            profile: Some("guests".into()),
            ..q()
        },
        &|i, _, _| i % 4 == 1,
    );
    count(
        FlowQuery {
            server_name: Some("googlevideo.com".into()),
            ..q()
        },
        &|_, f, _| f.server_name.is_some(),
    );
    let (from, to) = (T0 + 100_000_000, T0 + 200_000_000);
    count(
        FlowQuery {
            from_us: Some(from),
            to_us: Some(to),
            ..q()
        },
        &|_, f, _| f.last_seen >= from && f.first_seen < to,
    );
    let newest = store
        .search_flows(&FlowQuery {
            limit: 5,
            port: Some(53),
            ..q()
        })
        .expect("search");
    let mut want: Vec<i64> = flows
        .iter()
        .filter(|(_, f)| f.server_port == 53)
        .map(|(_, f)| f.last_seen)
        .collect();
    want.sort_unstable_by(|a, b| b.cmp(a));
    let got: Vec<i64> = newest.iter().map(|s| s.record.last_seen).collect();
    assert_eq!(got, want[..5]);
}

#[test]
fn top_counts_match_a_plain_sum() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(&dir.path().join("s.redb")).expect("open");
    let flows = sample(400, T0);
    store_batch(&store, "a/1", "eu", &flows[..100]);
    store_batch(&store, "a/2", "eu", &flows[100..]);
    let top = store
        .top_flows(&FlowQuery::default(), TopKind::L7, false, 10)
        .expect("top");
    let tls: u64 = flows
        .iter()
        .filter(|(_, f)| f.l7 == "TLS")
        .map(|(_, f)| f.c2s_bytes + f.s2c_bytes)
        .sum();
    let entry = top.iter().find(|e| e.key == "TLS").expect("TLS listed");
    assert_eq!(entry.bytes, tls);
    assert!(top.windows(2).all(|w| w[0].bytes >= w[1].bytes));
    let apps = store
        .top_flows(&FlowQuery::default(), TopKind::Apps, true, 0)
        .expect("top");
    let keys: Vec<&str> = apps.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        ["DNS", "YouTube"],
        "apps, the protocol where none is known"
    );
    assert_eq!(apps.iter().map(|e| e.flows).sum::<u64>(), 400);
    let hosts = store
        .top_flows(&FlowQuery::default(), TopKind::Hosts, true, 3)
        .expect("top");
    assert_eq!(hosts.len(), 3);
    let profiles = store
        .top_flows(&FlowQuery::default(), TopKind::Profiles, true, 0)
        .expect("top");
    let video = profiles.iter().find(|e| e.key == "video").expect("video");
    assert_eq!(video.flows, 200);
    let talkers = store
        .top_flows(&FlowQuery::default(), TopKind::Talkers, false, 1)
        .expect("top");
    assert!(talkers[0].key.contains(" -> "), "{talkers:?}");
}

#[test]
fn retention_drops_oldest_hours_and_compaction_keeps_every_flow() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(&dir.path().join("s.redb")).expect("open");
    // Ten small batches in each of three hours.
    let mut all = Vec::new();
    for h in 0..3 {
        for b in 0..10 {
            let flows = sample(20, T0 + h * HOUR + b * 60_000_000);
            store_batch(&store, &format!("a/{h}/{b}"), "eu", &flows);
            all.extend(flows);
        }
    }
    let before = store.flow_stats().expect("stats");
    assert_eq!((before.flows, before.blocks), (600, 30));
    let now = (T0 + 3 * HOUR) / 1_000_000 + 3600;
    let merged = store.compact_flows(now, 600).expect("compact");
    assert_eq!(merged, 30);
    let after = store.flow_stats().expect("stats");
    assert_eq!((after.flows, after.blocks), (600, 3));
    assert!(after.bytes < before.bytes, "{before:?} -> {after:?}");
    let mut got: Vec<FlowRecord> = store
        .search_flows(&FlowQuery::default())
        .expect("search")
        .into_iter()
        .map(|s| s.record)
        .collect();
    let mut want: Vec<FlowRecord> = all.into_iter().map(|(_, f)| f).collect();
    let key = |f: &FlowRecord| (f.first_seen, f.last_seen, f.client_port, f.c2s_bytes);
    got.sort_by_key(key);
    want.sort_by_key(key);
    assert_eq!(got, want);
    // Size: drop until under the bound, oldest first.
    let d = store
        .prune_flows(now, 365 * 86_400, after.bytes - 1)
        .expect("prune");
    assert_eq!((d.hours, d.flows), (1, 200));
    // Age: everything that ended more than an hour ago.
    let d = store.prune_flows(now, 2 * 3600, 0).expect("prune");
    assert_eq!(d.hours, 1);
    assert_eq!(store.flow_stats().expect("stats").flows, 200);
}

#[test]
fn parquet_files_hold_every_flow_of_their_hour() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(&dir.path().join("s.redb")).expect("open");
    store_batch(&store, "a/1", "eu", &sample(100, T0));
    store_batch(&store, "a/2", "eu", &sample(50, T0 + HOUR));
    let now = (T0 + 2 * HOUR) / 1_000_000 + 3600;
    let hours = store.hours_to_export(now, 600).expect("hours");
    assert_eq!(hours.len(), 2);
    let out = dir.path().join("pq");
    for (hour, seq) in &hours {
        let path = parquet::hour_path(&out, *hour);
        let n = store.export_hour(*hour, &path).expect("export");
        assert!(n == 100 || n == 50);
        store.mark_exported(*hour, *seq).expect("mark");
        let reader = ::parquet::file::reader::SerializedFileReader::new(
            std::fs::File::open(&path).expect("file"),
        )
        .expect("a Parquet file");
        use ::parquet::file::reader::FileReader;
        assert_eq!(reader.metadata().file_metadata().num_rows() as u64, n);
    }
    let file = out.join("date=2026-11-30/hour=00/flows.parquet");
    use std::os::unix::fs::PermissionsExt;
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(file.parent().expect("dir")), 0o700);
    assert!(store.hours_to_export(now, 600).expect("hours").is_empty());
}

#[test]
fn damaged_blocks_are_refused_not_trusted() {
    let mut b = BlockBuilder::default();
    for (i, f) in sample(50, T0) {
        b.push(&f, &profiles_of(i));
    }
    let bytes = b.finish(3);
    assert_eq!(decode_block("x", &bytes).expect("whole").len(), 50);
    for cut in [0, 3, 4, 10, bytes.len() / 2, bytes.len() - 1] {
        assert!(decode_block("x", &bytes[..cut]).is_err(), "cut at {cut}");
    }
    let mut flipped = bytes.clone();
    for i in (5..flipped.len()).step_by(7) {
        flipped[i] ^= 0x55;
        // Any answer but a panic.
        let _ = decode_block("x", &flipped);
    }
}
