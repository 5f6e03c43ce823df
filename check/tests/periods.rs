//! Traffic rules and timeseries against the truth computed from the packets themselves: every
//! byte counts in the period in which it was seen, and each period is judged once complete.
//!
//! The capture (built here, absolute times around the 2026 DST change in Europe/Rome) has an
//! upload that ends 30 s before a boundary, a long flow across many periods and a local
//! midnight, a UDP flow across a boundary, a host whose traffic triples, and traffic on both
//! sides of the next local midnight (a 23-hour day).

use std::collections::BTreeMap;

use flowmesh_collector::policy;
use flowmesh_sensor::capture::CaptureReader;
use flowmesh_sensor::synth::periods::*;

fn rfc3339(t: i64) -> String {
    flowmesh_sensor::flow::rfc3339_micros(t)
}

#[test]
fn every_byte_counts_in_its_own_period_and_each_period_is_judged_once_complete() {
    let packets = capture();
    let bytes = pcap_micros(&packets);
    let (p, _) = policy::parse(POLICY).unwrap_or_else(|r| panic!("{:#?}", r.errors));
    let mut alerts = Vec::new();
    let mut observed: BTreeMap<i64, u64> = BTreeMap::new();
    flowmesh_check::check_observed(
        || CaptureReader::new(&bytes[..]),
        &p,
        "lab",
        &mut |a| alerts.push(serde_json::to_value(&a).unwrap()),
        &mut |f, t, _| {
            *observed.entry(five_min(t)).or_default() += f.c2s_bytes + f.s2c_bytes;
        },
    )
    .unwrap();
    let last = packets.last().unwrap().t;

    // The timeseries: every 5-minute point equals the packets' sum.
    let total = truth(&packets, |_| true, five_min);
    assert_eq!(observed, total, "5-minute series against per-packet sums");

    let of_rule = |frequency: &str, target: &str| -> BTreeMap<String, serde_json::Value> {
        alerts
            .iter()
            .filter(|a| a["type"] == "traffic_rule" && a["frequency"] == frequency)
            .filter(|a| a["target"] == target)
            .map(|a| {
                (
                    a["period_start"].as_str().unwrap().to_string(),
                    a["value"].clone(),
                )
            })
            .collect()
    };

    // Rule 1: each complete 5-minute period of .20's traffic, with exactly its bytes, its
    // period, and the alert's time at the period's end.
    let h20 = truth(&packets, |p| p.host == H20, five_min);
    let expected: BTreeMap<String, serde_json::Value> = h20
        .iter()
        .filter(|(start, _)| *start + FIVE_MIN <= last)
        .map(|(start, b)| (rfc3339(*start), serde_json::json!(b)))
        .collect();
    assert_eq!(of_rule("5min", "host:192.168.1.20"), expected);
    // The upload that ends 30 s before 22:45 is in the 22:40 period, whole.
    assert_eq!(
        expected[&rfc3339(T0)],
        serde_json::json!(h20[&T0]),
        "the upload's period"
    );
    for a in alerts.iter().filter(|a| a["type"] == "traffic_rule") {
        let start =
            flowmesh_sensor::flow::parse_rfc3339_micros(a["period_start"].as_str().unwrap())
                .unwrap();
        let end = flowmesh_sensor::flow::parse_rfc3339_micros(a["time"].as_str().unwrap()).unwrap();
        assert!(end > start, "an alert's time is its period's end: {a}");
    }

    // Rule 2: .21 triples from its third period: +200% there, and nothing else above 50%.
    let h21 = truth(&packets, |p| p.host == H21, five_min);
    let mut expected = BTreeMap::new();
    let mut prev: Option<u64> = None;
    let mut start = *h21.keys().next().unwrap();
    while start + FIVE_MIN <= last && start <= *h21.keys().last().unwrap() + FIVE_MIN {
        let cur = h21.get(&start).copied().unwrap_or(0);
        if let Some(pv) = prev.filter(|&pv| pv > 0) {
            let change = (cur as f64 - pv as f64) / pv as f64 * 100.0;
            if change > 50.0 {
                expected.insert(
                    rfc3339(start),
                    serde_json::json!((change * 10.0).round() / 10.0),
                );
            }
        }
        prev = Some(cur);
        start += FIVE_MIN;
    }
    assert_eq!(expected.len(), 1, "the test's own truth: one tripling");
    assert_eq!(
        expected.keys().next().unwrap(),
        &rfc3339(T0 + 600 * S),
        "the third period"
    );
    assert_eq!(of_rule("5min", "host:192.168.1.21"), expected);

    // Rule 3: local days, one of them 23 hours long; the day still open at the end of the
    // capture is not judged.
    let days = truth(&packets, |_| true, local_day);
    let expected: BTreeMap<String, serde_json::Value> = days
        .iter()
        .filter(|(start, _)| **start < MIDNIGHTS[2])
        .map(|(start, b)| (rfc3339(*start), serde_json::json!(b)))
        .collect();
    assert_eq!(expected.len(), 2);
    assert_eq!(of_rule("day", "interface:eth0"), expected);
}

#[test]
fn flows_prints_whole_flows_unless_asked_to_split_them() {
    let packets = capture();
    let bytes = pcap_micros(&packets);
    let mut whole = Vec::new();
    flowmesh_sensor::offline::run_reader(CaptureReader::new(&bytes[..]).unwrap(), &mut |r| {
        whole.push(r)
    })
    .unwrap();
    let mut split = Vec::new();
    let mut marks = Vec::new();
    flowmesh_sensor::offline::run_reader_observed(
        CaptureReader::new(&bytes[..]).unwrap(),
        flowmesh_sensor::flow::TableConfig {
            period_micros: flowmesh_sensor::flow::PERIOD_MICROS,
            ..Default::default()
        },
        &mut |_| {},
        &mut |w| marks.push(w),
        &mut |r| split.push(r),
    )
    .unwrap();
    assert!(split.len() > whole.len());
    let sum = |v: &[flowmesh_sensor::flow::FlowRecord]| -> u64 {
        v.iter().map(|r| r.c2s_bytes + r.s2c_bytes).sum()
    };
    assert_eq!(sum(&split), sum(&whole), "a flow's parts add up");
    for r in &split {
        let (first, last) = (r.first_seen, r.last_seen);
        assert_eq!(
            five_min(first),
            five_min(last),
            "a part lies within one period: {r:?}"
        );
    }
    // Each flow is judged once: exactly one part of each is not marked to skip the checks.
    let judged = split.iter().filter(|r| !r.skip_flow_checks).count();
    assert_eq!(
        judged,
        whole.len(),
        "whole: {:#?}\nsplit: {:#?}",
        whole
            .iter()
            .map(|r| (r.client_port, &r.first_seen, &r.last_seen))
            .collect::<Vec<_>>(),
        split
            .iter()
            .map(|r| (
                r.client_port,
                &r.first_seen,
                &r.last_seen,
                r.skip_flow_checks
            ))
            .collect::<Vec<_>>()
    );
    assert!(
        marks.windows(2).all(|w| w[0] < w[1]),
        "watermarks only move on"
    );
    assert!(
        marks
            .iter()
            .all(|m| m % FIVE_MIN == 0 || *m == packets.last().unwrap().t)
    );
}
