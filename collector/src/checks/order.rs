//! A sensor's watermarks in the order it sent them. JetStream delivers a stream in order
//! except for redeliveries: a batch handed to a collector that died before acknowledging it
//! (or to a pull request the dead one left open) comes again only after the ack wait, behind
//! later batches. A later batch's watermark would then judge periods the missing batch still
//! has records of. So a watermark counts only once every earlier batch of the sensor's run (its
//! boot) has come; records are counted as they come, in whatever order.
//!
//! A batch that never comes (dropped from a full outbox, or forged and refused) must not stop
//! the rules for good: a gap older than the wait the caller gives is given up, and the
//! watermarks held behind it count then.

use std::collections::{BTreeMap, BTreeSet};

/// Runs (boots) remembered per instance; an older one's gap is given up when it is forgotten.
const MAX_BOOTS: usize = 8;
/// Batches held behind a gap, at most: more than a collector has unacknowledged at once
/// (`max_ack_pending`). A flood of sequence numbers far ahead gives the gap up instead of
/// growing the state, which is stored with every batch.
const MAX_HELD: usize = 10_000;
/// Characters of a run's boot id kept (a sensor's is 16 hex digits).
const MAX_BOOT: usize = 32;

/// Where one run of a sensor is: the next batch expected and the later ones already here.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Run {
    boot: String,
    next: u64,
    ahead: BTreeSet<u64>,
}

impl Run {
    /// Sequence numbers before the last one here that have not come.
    fn missing(&self) -> u64 {
        self.ahead.last().map_or(0, |&last| {
            (last - self.next)
                .saturating_add(1)
                .saturating_sub(self.ahead.len() as u64)
        })
    }
}

/// The batches of one instance as they come, by run.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BatchOrder {
    runs: Vec<Run>,
    /// The highest watermark held back by a gap.
    held: Option<i64>,
    /// When (wall clock, µs) the oldest open gap was noticed.
    gap_since: Option<i64>,
    /// Batches given up on, ever (since this collector started).
    #[serde(skip)]
    given_up: u64,
    /// Gaps given up on in a row, none filled in between.
    #[serde(default)]
    give_ups_in_a_row: u32,
    /// The instance's batches are shared with other collectors (a shared consumer): gaps are
    /// theirs, so watermarks count as they come.
    #[serde(default)]
    shared: bool,
}

/// Gaps given up on in a row after which the batches are taken as shared with other
/// collectors (one consumer for several collectors spreads each sensor's batches among them).
const SHARED_AFTER: u32 = 3;

/// A gap given up on: which batches never came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GivenUp {
    /// The run (sensor boot id, hex).
    pub boot: String,
    /// The first missing sequence number.
    pub from: u64,
    /// The sequence number the run goes on from.
    pub to: u64,
}

impl BatchOrder {
    /// Batch `sequence` of run `boot` came at wall time `now`, carrying `watermark` (if any: a
    /// sensor's first batches may have none yet, and still count in the order). Returns the
    /// watermark that counts now, if any: none while an earlier batch is missing.
    pub fn arrive(
        &mut self,
        boot: &str,
        sequence: u64,
        watermark: Option<i64>,
        now: i64,
    ) -> Option<i64> {
        if self.shared {
            return watermark;
        }
        let boot = boot.get(..MAX_BOOT).unwrap_or(boot);
        let i = match self.runs.iter().position(|r| r.boot == boot) {
            Some(i) => i,
            None => {
                if self.runs.len() >= MAX_BOOTS {
                    // The oldest run is forgotten; whatever it still missed will not come.
                    self.runs.remove(0);
                }
                self.runs.push(Run {
                    boot: boot.to_string(),
                    ..Run::default()
                });
                self.runs.len() - 1
            }
        };
        let run = &mut self.runs[i];
        if sequence == run.next {
            run.next = run.next.saturating_add(1);
            while run.ahead.remove(&run.next) {
                run.next = run.next.saturating_add(1);
            }
        } else if sequence > run.next {
            run.ahead.insert(sequence);
        }
        if run.ahead.len() > MAX_HELD {
            self.given_up = self.given_up.saturating_add(run.missing());
            run.next = run.ahead.last().map_or(run.next, |l| l.saturating_add(1));
            run.ahead.clear();
        }
        self.held = self.held.max(watermark);
        if self.runs.iter().any(|r| !r.ahead.is_empty()) {
            self.gap_since.get_or_insert(now);
            return None;
        }
        if self.gap_since.take().is_some() {
            // A gap filled: batches do come here in the end.
            self.give_ups_in_a_row = 0;
        }
        self.held.take()
    }

    /// Whether a watermark is held behind a missing batch.
    pub fn is_waiting(&self) -> bool {
        self.gap_since.is_some()
    }

    /// Batches given up on (never came), ever.
    pub fn given_up(&self) -> u64 {
        self.given_up
    }

    /// Gives up gaps open since before `now - wait` (µs): the missing batches are skipped
    /// (reported to `gone`), and the watermark held behind them is returned to count now.
    pub fn give_up(&mut self, now: i64, wait: i64, gone: &mut impl FnMut(GivenUp)) -> Option<i64> {
        let since = self.gap_since?;
        if now.saturating_sub(since) < wait {
            return None;
        }
        for run in &mut self.runs {
            if let Some(&last) = run.ahead.last() {
                self.given_up = self.given_up.saturating_add(run.missing());
                gone(GivenUp {
                    boot: run.boot.clone(),
                    from: run.next,
                    to: last.saturating_add(1),
                });
                run.next = last.saturating_add(1);
                run.ahead.clear();
            }
        }
        self.gap_since = None;
        self.give_ups_in_a_row += 1;
        if self.give_ups_in_a_row >= SHARED_AFTER {
            self.shared = true;
            self.runs.clear();
        }
        self.held.take()
    }

    /// Whether the instance's batches are taken as shared with other collectors (see
    /// [`BatchOrder::give_up`]): its watermarks then count as they come.
    pub fn is_shared(&self) -> bool {
        self.shared
    }
}

/// The engine's saved state: the traffic rules' counts and the batch order. Stored with each
/// batch (see `Engine::snapshot`).
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct Saved {
    pub rules: serde_json::Value,
    pub order: BatchOrder,
}

impl Saved {
    /// Reads a saved state; one saved before the batch order existed is the rules alone.
    pub fn read(bytes: &[u8]) -> Option<(Vec<u8>, BatchOrder)> {
        if let Ok(s) = serde_json::from_slice::<Saved>(bytes) {
            return Some((serde_json::to_vec(&s.rules).ok()?, s.order));
        }
        Some((bytes.to_vec(), BatchOrder::default()))
    }
}

/// Sequence numbers missing per run, for a log line.
pub fn describe(gone: &[GivenUp]) -> BTreeMap<String, String> {
    gone.iter()
        .map(|g| (g.boot.clone(), format!("{}..{}", g.from, g.to)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watermark_waits_for_every_earlier_batch_of_its_run() {
        let mut o = BatchOrder::default();
        assert_eq!(o.arrive("a", 0, Some(100), 0), Some(100));
        // 3 and 4 before 1 and 2 (redelivered late): their watermarks wait.
        assert_eq!(o.arrive("a", 3, Some(400), 1), None);
        assert_eq!(o.arrive("a", 4, Some(500), 2), None);
        assert!(o.is_waiting());
        assert_eq!(o.arrive("a", 1, Some(200), 3), None);
        assert_eq!(o.arrive("a", 2, Some(300), 4), Some(500));
        assert!(!o.is_waiting());
        // A new run starts at 0; a duplicate of an old batch changes nothing.
        assert_eq!(o.arrive("b", 0, Some(600), 5), Some(600));
        assert_eq!(o.arrive("a", 2, Some(300), 6), Some(300));
    }

    #[test]
    fn batches_without_a_watermark_count_in_the_order() {
        let mut o = BatchOrder::default();
        // A sensor's first batches may carry records and no watermark yet.
        assert_eq!(o.arrive("a", 0, None, 0), None);
        assert_eq!(o.arrive("a", 2, Some(300), 1), None);
        assert!(o.is_waiting());
        assert_eq!(o.arrive("a", 1, None, 2), Some(300));
        assert!(!o.is_waiting());
    }

    #[test]
    fn a_gap_that_never_fills_is_given_up_after_the_wait() {
        let mut o = BatchOrder::default();
        assert_eq!(o.arrive("a", 1, Some(200), 1_000), None);
        assert_eq!(o.arrive("a", 2, Some(300), 2_000), None);
        let mut gone = Vec::new();
        assert_eq!(o.give_up(5_000, 10_000, &mut |g| gone.push(g)), None);
        assert_eq!(o.give_up(11_000, 10_000, &mut |g| gone.push(g)), Some(300));
        assert_eq!(
            gone,
            [GivenUp {
                boot: "a".into(),
                from: 0,
                to: 3
            }]
        );
        assert_eq!(o.given_up(), 1);
        assert_eq!(o.arrive("a", 3, Some(400), 12_000), Some(400));
        // Batch 0 coming after all is a late one: its watermark is behind already.
        assert_eq!(o.arrive("a", 0, Some(100), 13_000), Some(100));
    }

    #[test]
    fn batches_shared_with_other_collectors_are_recognised_after_three_gaps_given_up() {
        let mut o = BatchOrder::default();
        let mut t = 0;
        let mut seq = 0;
        for _ in 0..SHARED_AFTER {
            // Every other batch goes to another collector.
            seq += 2;
            t += 1;
            assert_eq!(o.arrive("a", seq, Some(t), t), None);
            t += 100;
            assert!(o.give_up(t, 50, &mut |_| {}).is_some());
        }
        assert!(o.is_shared());
        assert_eq!(o.arrive("a", seq + 2, Some(7), t), Some(7));
        // A gap that fills resets the count.
        let mut o = BatchOrder::default();
        o.arrive("a", 1, Some(1), 0);
        o.give_up(100, 50, &mut |_| {});
        o.arrive("a", 3, Some(3), 100);
        assert_eq!(o.arrive("a", 2, Some(2), 101), Some(3));
        o.arrive("a", 5, Some(5), 102);
        o.give_up(200, 50, &mut |_| {});
        o.arrive("a", 7, Some(7), 200);
        o.give_up(300, 50, &mut |_| {});
        assert!(!o.is_shared());
    }

    #[test]
    fn sequence_numbers_at_the_edge_of_the_range_and_floods_stay_bounded() {
        let mut o = BatchOrder::default();
        assert_eq!(o.arrive("a", u64::MAX, Some(100), 0), None);
        let mut gone = Vec::new();
        assert_eq!(o.give_up(i64::MAX, 1, &mut |g| gone.push(g)), Some(100));
        assert!(o.given_up() >= u64::MAX - 1);
        assert_eq!(o.arrive("a", u64::MAX, Some(200), 1), Some(200));
        // Far more batches ahead than may be held: the gap is given up, nothing grows.
        let mut o = BatchOrder::default();
        for q in 1..=(MAX_HELD as u64 + 1) {
            o.arrive("b", q * 2, Some(0), 0);
        }
        assert!(!o.is_waiting());
        assert!(o.runs.iter().all(|r| r.ahead.is_empty()));
        // Runs are bounded too.
        for boot in 0..100 {
            o.arrive(&format!("{boot:064}"), 1, Some(0), 0);
        }
        assert!(o.runs.len() <= MAX_BOOTS);
        assert!(o.runs.iter().all(|r| r.boot.len() <= MAX_BOOT));
    }

    #[test]
    fn a_saved_state_comes_back_and_an_old_one_is_the_rules_alone() {
        let mut o = BatchOrder::default();
        o.arrive("a", 2, Some(300), 1);
        let saved = serde_json::to_vec(&Saved {
            rules: serde_json::json!([{"rule": "r"}]),
            order: o.clone(),
        })
        .unwrap();
        let (rules, order) = Saved::read(&saved).unwrap();
        assert_eq!(rules, br#"[{"rule":"r"}]"#);
        assert_eq!(order, o);
        let (rules, order) = Saved::read(br#"[{"rule":"r"}]"#).unwrap();
        assert_eq!(rules, br#"[{"rule":"r"}]"#);
        assert_eq!(order, BatchOrder::default());
    }
}

/// The engine with batches out of order (see the module's text).
#[cfg(test)]
mod engine_tests {
    use crate::checks::Engine;
    use crate::checks::traffic_rules::tests::record;

    const POLICY: &str = "[[traffic_rule]]\ntarget = \"host:192.168.1.20\"\nmetric = \"total\"\nfrequency = \"5min\"\nkind = \"volume\"\nbound = \"above\"\nvalue = \"50B\"\n";
    const T0: i64 = 1_774_737_600_000_000;
    const FIVE_MIN: i64 = 300_000_000;

    fn engine() -> Engine {
        let (p, _) = crate::policy::parse(POLICY).unwrap_or_else(|r| panic!("{:#?}", r.errors));
        Engine::new(&p, "sensor-2")
    }

    /// Batch `i`: one 100-byte record in period `i`, with the watermark at the period's end.
    fn batch(i: i64) -> (flowmesh_record::FlowRecord, i64) {
        (record(T0 + i * FIVE_MIN + 1), T0 + (i + 1) * FIVE_MIN)
    }

    /// Feeds batches in `order` (the engine restarted from its snapshot after `restart_after`
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
            e.batch_watermark(("b00t", i as u64), Some(mark), 0, &mut |a| out.push(a));
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
            e.batch_watermark(("b00t", i as u64), Some(mark), 1_000, &mut |a| out.push(a));
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
}
