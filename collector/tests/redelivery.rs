//! Batches of one sensor that come out of order (JetStream redelivers a batch handed to a
//! collector that died only after the ack wait, behind later ones) raise the traffic-rule
//! alerts they raise in order: a watermark counts once the batches before it are in, also
//! across a collector restart. A batch that never comes is given up after the wait.

use flowmesh_collector::checks::Engine;
use flowmesh_collector::policy;
use flowmesh_record::FlowRecord;

const POLICY: &str = r#"
[[traffic_rule]]
target = "host:192.168.1.20"
metric = "total"
frequency = "5min"
kind = "volume"
bound = "above"
value = "50B"
"#;

const T0: i64 = 1_774_737_600_000_000;
const FIVE_MIN: i64 = 300_000_000;

/// Batch `i`: one 100-byte record in period `i`, and the watermark at the period's end.
fn batch(i: i64) -> (FlowRecord, i64) {
    let t = T0 + i * FIVE_MIN + 1;
    let f = FlowRecord {
        l4: "UDP",
        client_ip: "192.168.1.20".parse().unwrap(),
        client_port: 5000,
        server_ip: "8.8.8.8".parse().unwrap(),
        server_port: 53,
        l7: "DNS",
        c2s_packets: 1,
        c2s_bytes: 100,
        first_seen: t,
        last_seen: t,
        ..FlowRecord::default()
    };
    (f, T0 + (i + 1) * FIVE_MIN)
}

fn engine() -> Engine {
    let (p, _) = policy::parse(POLICY).unwrap_or_else(|r| panic!("{:#?}", r.errors));
    Engine::new(&p, "sensor-2")
}

/// Feeds batches in `order` (restarting the engine from its snapshot after `restart_after`
/// batches) and returns the periods alerted on, sorted.
fn alerted(order: &[i64], restart_after: Option<usize>) -> Vec<String> {
    let mut e = engine();
    let mut out = Vec::new();
    for (n, &i) in order.iter().enumerate() {
        if restart_after == Some(n) {
            let saved = e.snapshot().expect("traffic rules are saved");
            e = engine();
            e.restore(&saved);
        }
        let (f, mark) = batch(i);
        e.flow(&f, &mut |a| out.push(a));
        e.batch_watermark(("b00t", i as u64), mark, 0, &mut |a| out.push(a));
    }
    let mut periods: Vec<String> = out
        .iter()
        .filter(|a| a.kind == "traffic_rule")
        .map(|a| {
            a.fields["period_start"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    periods.sort();
    periods
}

#[test]
fn batches_redelivered_behind_later_ones_raise_the_alerts_of_the_order_they_were_sent_in() {
    let in_order = alerted(&[0, 1, 2, 3, 4, 5, 6, 7, 8], None);
    assert_eq!(in_order.len(), 9, "{in_order:?}");
    // 0–3 went to a collector that died: they come again after 4–8.
    assert_eq!(alerted(&[4, 5, 6, 7, 8, 0, 1, 2, 3], None), in_order);
    assert_eq!(alerted(&[4, 5, 6, 7, 8, 0, 1, 2, 3], Some(6)), in_order);
    assert_eq!(alerted(&[0, 2, 1, 4, 3, 6, 5, 8, 7], Some(3)), in_order);
}

#[test]
fn a_batch_that_never_comes_is_given_up_after_the_wait() {
    let mut e = engine();
    let mut out = Vec::new();
    for i in [1, 2, 3] {
        let (f, mark) = batch(i);
        e.flow(&f, &mut |a| out.push(a));
        e.batch_watermark(("b00t", i as u64), mark, 1_000, &mut |a| out.push(a));
    }
    assert!(out.is_empty() && e.is_waiting());
    assert!(
        e.give_up_missing(30_000_000, 60_000_000, &mut |a| out.push(a))
            .is_empty()
    );
    let gone = e.give_up_missing(61_001_000, 60_000_000, &mut |a| out.push(a));
    assert_eq!(gone.len(), 1);
    assert_eq!((gone[0].from, gone[0].to), (0, 4));
    assert_eq!(out.len(), 3, "periods 1–3 judged once batch 0 is given up");
    assert!(!e.is_waiting());
}
