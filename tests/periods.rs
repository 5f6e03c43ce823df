//! Traffic rules through the pipeline against the truth computed from the packets: two sensors
//! replay the same capture (one of them in two runs), the collector is killed and restarted in
//! the middle, and every stored alert and 5-minute point is what the packets say.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use flowmesh_collector::store::{AlertQuery, Resolution, Store};
use flowmesh_sensor::synth::periods::*;
use flowmesh_testkit::process::wait_exit;
use support::*;

fn rfc3339(t: i64) -> String {
    flowmesh_sensor::flow::rfc3339_micros(t)
}

/// The traffic-rule alerts the truth predicts for one sensor that saw every packet:
/// (frequency, target, period start) → value.
fn expected(packets: &[Packet]) -> BTreeMap<(String, String, String), serde_json::Value> {
    let last = packets.last().unwrap().t;
    let mut out = BTreeMap::new();
    for (start, b) in truth(packets, |p| p.host == H20, five_min) {
        if start + FIVE_MIN <= last {
            out.insert(
                ("5min".into(), "host:192.168.1.20".into(), rfc3339(start)),
                serde_json::json!(b),
            );
        }
    }
    let h21 = truth(packets, |p| p.host == H21, five_min);
    let mut prev: Option<u64> = None;
    let (first, end) = (*h21.keys().next().unwrap(), *h21.keys().last().unwrap());
    let mut start = first;
    while start <= end + FIVE_MIN && start + FIVE_MIN <= last {
        let cur = h21.get(&start).copied().unwrap_or(0);
        if let Some(pv) = prev.filter(|&pv| pv > 0) {
            let change = (cur as f64 - pv as f64) / pv as f64 * 100.0;
            if change > 50.0 {
                out.insert(
                    ("5min".into(), "host:192.168.1.21".into(), rfc3339(start)),
                    serde_json::json!((change * 10.0).round() / 10.0),
                );
            }
        }
        prev = Some(cur);
        start += FIVE_MIN;
    }
    for (start, b) in truth(packets, |_| true, local_day) {
        if start < MIDNIGHTS[2] {
            out.insert(
                ("day".into(), "interface:eth0".into(), rfc3339(start)),
                serde_json::json!(b),
            );
        }
    }
    out
}

#[test]
fn two_sensors_and_a_collector_restart_store_the_alerts_and_series_the_packets_imply() {
    let p = Pipeline::start(1);
    let packets = capture();
    // sensor-1 replays the capture in two runs, split inside a 5-minute period.
    let mid = T0 + 1234 * S;
    let (before, after): (Vec<&Packet>, Vec<&Packet>) = packets.iter().partition(|x| x.t < mid);
    let write = |name: &str, ps: Vec<&Packet>| {
        let owned: Vec<Packet> = ps
            .into_iter()
            .map(|x| Packet {
                t: x.t,
                frame: x.frame.clone(),
                host: x.host,
            })
            .collect();
        let path = p.path(name);
        std::fs::write(&path, pcap_micros(&owned)).unwrap();
        path
    };
    let (first, second) = (write("first.pcap", before), write("second.pcap", after));
    let whole = p.path("whole.pcap");
    std::fs::write(&whole, pcap_micros(&packets)).unwrap();
    std::fs::write(p.path("policy.toml"), POLICY).unwrap();
    // The capture is from March 2026: keep its points (the default keeps 5-minute ones a week).

    let mut collector = p.collector_with(
        "collector-1",
        "[retention]\npoints_5m_days = 100000\npoints_1h_days = 100000\npoints_1d_days = 100000\n",
    );
    p.wait_consumers(&["collectors"]);
    let mut s1 = p.sensor_with("sensor-1", &first, 0.0, 50);
    assert!(
        wait_exit(&mut s1, Duration::from_secs(120)),
        "{}",
        p.log("sensor")
    );
    p.wait_drained(Duration::from_secs(60));
    // The collector dies with a period of sensor-1 half counted; its successor goes on.
    collector.kill().unwrap();
    collector.wait().unwrap();
    let mut collector = p.collector_with(
        "collector-1",
        "[retention]\npoints_5m_days = 100000\npoints_1h_days = 100000\npoints_1d_days = 100000\n",
    );
    let mut s1 = p.sensor_with("sensor-1", &second, 0.0, 50);
    let mut s2 = p.sensor_with("sensor-2", &whole, 0.0, 50);
    for (s, log) in [(&mut s1, "sensor"), (&mut s2, "sensor-2")] {
        assert!(
            wait_exit(s, Duration::from_secs(120)),
            "{log}: {}",
            p.log(log)
        );
    }
    p.wait_drained(Duration::from_secs(60));
    terminate(&mut collector);

    let store = Store::open(&p.path("collector-1.redb")).unwrap();
    let want = expected(&packets);
    let series = truth(&packets, |_| true, five_min);
    for instance in ["sensor-1", "sensor-2"] {
        let got: BTreeMap<(String, String, String), serde_json::Value> = store
            .alerts(&AlertQuery {
                kind: Some("traffic_rule".into()),
                instance: Some(instance.into()),
                ..AlertQuery::default()
            })
            .unwrap()
            .into_iter()
            .map(|a| {
                (
                    (
                        a["frequency"].as_str().unwrap().to_string(),
                        a["target"].as_str().unwrap().to_string(),
                        a["period_start"].as_str().unwrap().to_string(),
                    ),
                    a["value"].clone(),
                )
            })
            .collect();
        assert_eq!(
            got,
            want,
            "{instance}; collector log:\n{}\n{instance}'s log:\n{}",
            p.log("collector-1"),
            p.log(if instance == "sensor-1" {
                "sensor"
            } else {
                instance
            })
        );
        let points: BTreeMap<i64, u64> = store
            .points(
                instance,
                "total",
                Resolution::FiveMinutes,
                i64::MIN,
                i64::MAX,
            )
            .unwrap()
            .into_iter()
            .map(|pt| (pt.start * 1_000_000, pt.counters.bytes))
            .collect();
        assert_eq!(
            points, series,
            "{instance}: 5-minute series against per-packet sums"
        );
        // Hours and days are the same bytes rolled up.
        for (res, len) in [(Resolution::Hour, 3_600 * S), (Resolution::Day, 86_400 * S)] {
            let got: BTreeMap<i64, u64> = store
                .points(instance, "total", res, i64::MIN, i64::MAX)
                .unwrap()
                .into_iter()
                .map(|pt| (pt.start * 1_000_000, pt.counters.bytes))
                .collect();
            let want = truth(&packets, |_| true, |t| t.div_euclid(len) * len);
            assert_eq!(got, want, "{instance}: {res:?} series");
        }
    }
}
