//! Traffic rules on timeseries: bytes per target and metric, in 5-minute, hourly or daily
//! periods of event time; a period is judged when time passes its end (daily ones at midnight —
//! UTC, or the policy's `[settings] timezone` — over the previous day). Volume compares the period's bytes, throughput its average
//! bits per second, percentage the change from the previous period.
//!
//! A flow record counts in the period that holds its last packet (with the sensor's active
//! timeout, long flows report every interval and spread over periods as they run).

use std::collections::BTreeMap;
use std::net::IpAddr;

use flowmesh_record::FlowRecord;

use super::calendar::Calendar;
use crate::policy::{Pool, PoolMember, Target, Threshold, TrafficRule};

/// A rule's verdict on a closed period.
#[derive(Debug, Clone, PartialEq)]
pub struct Breach {
    /// The rule's index in the policy.
    pub rule: usize,
    /// The series: the host for `host:*`, `None` for the rule's single series.
    pub series: Option<IpAddr>,
    /// The measured value in the rule's unit (bytes, bits/s, percent).
    pub value: f64,
    /// The period's start, µs.
    pub period_start: i64,
    /// Its end, µs (a local day across a DST change is 23 or 25 hours).
    pub period_end: i64,
}

struct RuleState {
    rule: TrafficRule,
    /// The rule counts every flow (`metric = "total"`): decided once, not per flow.
    total: bool,
    /// Start and end of the earliest period not judged yet, once time has begun: at the first
    /// watermark after a record, not at the first record (a sensor's flow workers hand on
    /// records of a later period before another worker's records of an earlier one; the
    /// watermark waits for all).
    open: Option<(i64, i64)>,
    /// Bytes per series of each period not judged yet, by period start: records come in any
    /// order (flows end late, batches and outboxes arrive late), each counts in its own period.
    pending: BTreeMap<i64, BTreeMap<Option<IpAddr>, u64>>,
    /// Bytes per series in the period judged last (percentage rules).
    previous: BTreeMap<Option<IpAddr>, u64>,
}

/// What one rule has counted and not judged yet, kept in the store with each batch so that a
/// restarted collector goes on where it stopped.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct RuleSnapshot {
    /// Which rule (target, metric, frequency, kind and value as written): a snapshot of an
    /// edited rule is not taken back.
    rule: String,
    open: Option<(i64, i64)>,
    pending: Vec<(i64, SeriesBytes)>,
    previous: SeriesBytes,
}

/// Bytes per series (`None`: the rule's single series; a host for `host:*`).
type SeriesBytes = Vec<(Option<IpAddr>, u64)>;

fn rule_id(r: &TrafficRule) -> String {
    format!(
        "{}|{}|{}|{}|{}",
        r.target_text,
        r.metric,
        r.frequency.name(),
        r.above,
        r.value_text
    )
}

/// Empty periods judged in a row before the rest of an empty stretch is skipped (a week of
/// 5-minute periods); a "below" rule sees the first of them.
pub const MAX_EMPTY_RUN: usize = 2016;

/// Periods ahead of the judged ones a rule keeps open at most (records dated further ahead —
/// a sensor with a wrong clock — are not counted, and counted as dropped).
pub const MAX_PENDING_PERIODS: usize = 64;

/// Series a `host:*` rule keeps per period at most: past it, new hosts are not counted (and the
/// records are counted as dropped) rather than memory growing with every remote address.
pub const MAX_SERIES: usize = 65_536;

/// Every traffic rule's running state.
pub struct TrafficRules {
    rules: Vec<RuleState>,
    pools: Vec<Pool>,
    calendar: Calendar,
    /// Host series not counted because a rule was at its bound, ever.
    dropped: u64,
    /// Records that came after their period was judged, ever (counted in the timeseries, not
    /// in a rule).
    late: u64,
    /// Stretches of empty periods skipped, ever.
    skipped: u64,
}

fn in_pool(pool: &Pool, ip: IpAddr, mac: Option<[u8; 6]>) -> bool {
    pool.members.iter().any(|m| match m {
        PoolMember::Net(c) => c.contains(ip),
        PoolMember::Mac(x) => Some(x.0) == mac,
    })
}

impl TrafficRules {
    /// Prepares the rules of a policy; periods follow `calendar`.
    pub fn new(rules: &[TrafficRule], pools: &[Pool], calendar: Calendar) -> Self {
        TrafficRules {
            calendar,
            rules: rules
                .iter()
                .map(|r| RuleState {
                    total: r.metric == "total",
                    rule: r.clone(),
                    open: None,
                    pending: BTreeMap::new(),
                    previous: BTreeMap::new(),
                })
                .collect(),
            pools: pools.to_vec(),
            dropped: 0,
            late: 0,
            skipped: 0,
        }
    }

    /// Records that came after their period was judged, ever.
    pub fn late(&self) -> u64 {
        self.late
    }

    /// Stretches of empty periods skipped rather than judged one by one, ever.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// What the rules counted and have not judged yet (JSON), to be stored with the batch.
    pub fn snapshot(&self) -> Vec<u8> {
        let rules: Vec<RuleSnapshot> = self
            .rules
            .iter()
            .map(|st| RuleSnapshot {
                rule: rule_id(&st.rule),
                open: st.open,
                pending: st
                    .pending
                    .iter()
                    .map(|(start, m)| (*start, m.iter().map(|(k, v)| (*k, *v)).collect()))
                    .collect(),
                previous: st.previous.iter().map(|(k, v)| (*k, *v)).collect(),
            })
            .collect();
        serde_json::to_vec(&rules).unwrap_or_default()
    }

    /// Takes back a [`TrafficRules::snapshot`]: each rule that is still the same gets its
    /// counts back. Returns how many rules did; an unreadable snapshot restores nothing.
    pub fn restore(&mut self, snapshot: &[u8]) -> usize {
        let Ok(rules) = serde_json::from_slice::<Vec<RuleSnapshot>>(snapshot) else {
            return 0;
        };
        let mut restored = 0;
        for st in &mut self.rules {
            let id = rule_id(&st.rule);
            let Some(snap) = rules.iter().find(|r| r.rule == id) else {
                continue;
            };
            st.open = snap.open;
            st.pending = snap
                .pending
                .iter()
                .map(|(start, m)| (*start, m.iter().copied().collect()))
                .collect();
            st.previous = snap.previous.iter().copied().collect();
            restored += 1;
        }
        restored
    }

    /// Host series not counted because a rule was at its bound, ever.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Series held now, over all rules (open and previous periods).
    pub fn series(&self) -> usize {
        self.rules
            .iter()
            .map(|r| r.pending.values().map(BTreeMap::len).sum::<usize>() + r.previous.len())
            .sum()
    }

    /// Whether any rule exists.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules.
    pub fn rule(&self, i: usize) -> &TrafficRule {
        &self.rules[i].rule
    }

    /// The traffic before `watermark` is all in (every packet before it has been added): every
    /// period that ended by then is judged, in order, empty ones included (a "below" rule must
    /// see them).
    pub fn advance(&mut self, watermark: i64, out: &mut impl FnMut(Breach)) {
        for (i, st) in self.rules.iter_mut().enumerate() {
            // Time begins at the first watermark after something was counted: at the earliest
            // period counted, or the watermark's if earlier. (Before anything is counted a
            // watermark opens nothing: an exporter's wall-clock watermark may come before
            // flows stamped earlier.)
            let (mut start, mut end) = match (st.open, st.pending.keys().next()) {
                (Some(open), _) => open,
                (None, Some(&earliest)) => {
                    let first = earliest.min(self.calendar.start(st.rule.frequency, watermark));
                    (first, self.calendar.end(st.rule.frequency, first))
                }
                (None, None) => continue,
            };
            let mut empty_run = 0;
            while watermark >= end && end > start {
                let current = st.pending.remove(&start).unwrap_or_default();
                empty_run = if current.is_empty() { empty_run + 1 } else { 0 };
                judge(i, &st.rule, &current, &st.previous, start, end, out);
                st.previous = current;
                start = end;
                end = self.calendar.end(st.rule.frequency, start);
                // A watermark or record far ahead (a wrong clock, or a forged one) must not
                // make the engine judge millions of empty periods: after a run of them, go
                // straight to the next period with data, or the watermark's.
                if empty_run >= MAX_EMPTY_RUN {
                    let target = st
                        .pending
                        .keys()
                        .next()
                        .copied()
                        .unwrap_or(i64::MAX)
                        .min(self.calendar.start(st.rule.frequency, watermark));
                    if target > start {
                        self.skipped += 1;
                        st.previous.clear();
                        start = target;
                        end = self.calendar.end(st.rule.frequency, start);
                    }
                    empty_run = 0;
                }
            }
            st.open = Some((start, end));
        }
    }

    /// Adds a flow record at its last-packet time `t` to the period that holds `t` (a record
    /// lies within one 5-minute period: the sensor splits flows at boundaries); `in_profile`
    /// says whether it belongs to a profile, asked only for the profiles rules name. Nothing is
    /// judged here: periods are judged by [`TrafficRules::advance`].
    pub fn add(&mut self, f: &FlowRecord, t: i64, in_profile: &mut dyn FnMut(&str) -> bool) {
        let bytes = f.c2s_bytes + f.s2c_bytes;
        for st in self.rules.iter_mut() {
            let r = &st.rule;
            if !st.total
                && !f.l7.eq_ignore_ascii_case(&r.metric)
                && !f.app.is_some_and(|a| a.eq_ignore_ascii_case(&r.metric))
            {
                continue;
            }
            // At most two series per flow (client and server host, for `host:*`); computed
            // without allocating, since this runs for every flow and rule.
            let single = [Some(None), None];
            let series: [Option<Option<IpAddr>>; 2] = match &r.target {
                Target::Interface(_) => single,
                Target::AnyHost => [
                    Some(Some(f.client_ip)),
                    (f.server_ip != f.client_ip).then_some(Some(f.server_ip)),
                ],
                Target::Host(ip) if f.client_ip == *ip || f.server_ip == *ip => single,
                Target::Network(c) if c.contains(f.client_ip) || c.contains(f.server_ip) => single,
                Target::Vlan(v) if f.vlan == Some(*v) => single,
                Target::Pool(name)
                    if self
                        .pools
                        .iter()
                        .find(|p| &p.name == name)
                        .is_some_and(|p| {
                            in_pool(p, f.client_ip, f.client_mac)
                                || in_pool(p, f.server_ip, f.server_mac)
                        }) =>
                {
                    single
                }
                Target::Profile(name) if in_profile(name) => single,
                Target::Exporter(ip, index)
                    if f.export.is_some_and(|e| {
                        e.exporter == *ip && index.is_none_or(|i| e.in_if == i || e.out_if == i)
                    }) =>
                {
                    single
                }
                _ => [None, None],
            };
            if series[0].is_none() {
                continue;
            }
            let start = self.calendar.start(r.frequency, t);
            if st.open.is_some_and(|(open_start, _)| start < open_start) {
                // Its period was judged already: the timeseries count it, the rule cannot.
                self.late += 1;
                continue;
            }
            if !st.pending.contains_key(&start) && st.pending.len() >= MAX_PENDING_PERIODS {
                self.dropped += 1;
                continue;
            }
            let period = st.pending.entry(start).or_default();
            for key in series.into_iter().flatten() {
                if period.len() >= MAX_SERIES && !period.contains_key(&key) {
                    self.dropped += 1;
                    continue;
                }
                *period.entry(key).or_default() += bytes;
            }
        }
    }
}

fn judge(
    i: usize,
    r: &TrafficRule,
    current: &BTreeMap<Option<IpAddr>, u64>,
    previous: &BTreeMap<Option<IpAddr>, u64>,
    start: i64,
    end: i64,
    out: &mut impl FnMut(Breach),
) {
    let secs = (end - start) as f64 / 1e6;
    // Series with no traffic this period count as zero (a "below" rule must see them).
    let mut keys: Vec<Option<IpAddr>> = current.keys().chain(previous.keys()).copied().collect();
    keys.sort();
    keys.dedup();
    if keys.is_empty() && !matches!(r.target, Target::AnyHost) {
        keys.push(None);
    }
    for k in keys {
        let cur = current.get(&k).copied().unwrap_or(0);
        let (value, limit) = match r.threshold {
            Threshold::Volume(b) => (cur as f64, b as f64),
            Threshold::Throughput(bps) => (cur as f64 * 8.0 / secs, bps as f64),
            Threshold::Percentage(p) => {
                let Some(&prev) = previous.get(&k).filter(|&&p| p > 0) else {
                    continue;
                };
                (
                    (cur as f64 - prev as f64) / prev as f64 * 100.0,
                    f64::from(p),
                )
            }
        };
        let breached = match (r.above, r.threshold) {
            (true, _) => value > limit,
            (false, Threshold::Percentage(_)) => value < -limit,
            (false, _) => value < limit,
        };
        if breached {
            out(Breach {
                rule: i,
                series: k,
                value,
                period_start: start,
                period_end: end,
            });
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn rules(text: &str) -> TrafficRules {
        let (p, _) = crate::policy::parse(text).unwrap_or_else(|r| panic!("{:#?}", r.errors));
        TrafficRules::new(&p.traffic_rules, &p.pools, Calendar::new(None))
    }

    /// A 100-byte DNS query of 192.168.1.20 at `t`.
    pub(crate) fn record(t: i64) -> FlowRecord {
        FlowRecord {
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
        }
    }

    #[test]
    fn a_watermark_far_ahead_judges_a_bounded_number_of_empty_periods() {
        let mut r = rules(
            "[[traffic_rule]]\ntarget = \"interface:eth0\"\nmetric = \"total\"\nfrequency = \"5min\"\nkind = \"volume\"\nbound = \"below\"\nvalue = \"1KB\"\n",
        );
        let t0 = 1_774_737_600_000_000;
        r.add(&record(t0), t0, &mut |_| false);
        // A record dated far ahead is counted in its own period, reached by a skip.
        let far = t0 + 400 * 86_400_000_000;
        r.add(&record(far), far, &mut |_| false);
        let mut breaches = Vec::new();
        r.advance(i64::MAX, &mut |b| breaches.push(b));
        assert!(
            breaches.len() <= 3 * MAX_EMPTY_RUN + 2,
            "{}",
            breaches.len()
        );
        assert!(r.skipped() >= 1);
        assert!(
            breaches
                .iter()
                .any(|b| b.period_start == far - far.rem_euclid(300_000_000)),
            "the far record's period is judged"
        );
        // And it goes on: a second call with the same watermark judges nothing more.
        let before = breaches.len();
        r.advance(i64::MAX, &mut |b| breaches.push(b));
        assert_eq!(breaches.len(), before);
    }

    #[test]
    fn records_of_a_later_period_first_do_not_make_an_earlier_one_late() {
        // Two flow workers: one hands on its record of the second period before the other's
        // record of the first; the watermark comes after both.
        let mut r = rules(
            "[[traffic_rule]]\ntarget = \"host:192.168.1.20\"\nmetric = \"total\"\nfrequency = \"5min\"\nkind = \"volume\"\nbound = \"above\"\nvalue = \"50B\"\n",
        );
        let t0 = 1_774_737_600_000_000;
        let mut breaches = Vec::new();
        r.advance(t0, &mut |b| breaches.push(b));
        r.add(&record(t0 + 300_000_000), t0 + 300_000_000, &mut |_| false);
        r.add(&record(t0 + 1), t0 + 1, &mut |_| false);
        r.advance(t0 + 600_000_000, &mut |b| breaches.push(b));
        let starts: Vec<_> = breaches.iter().map(|b| b.period_start).collect();
        assert_eq!(starts, [t0, t0 + 300_000_000]);
        assert_eq!(r.late(), 0);
        // Behind a watermark a record is late: its period was judged.
        r.add(&record(t0 + 2), t0 + 2, &mut |_| false);
        assert_eq!(r.late(), 1);
        // Before any watermark, the earliest record decides where judging starts.
        let mut r2 = rules(
            "[[traffic_rule]]\ntarget = \"host:192.168.1.20\"\nmetric = \"total\"\nfrequency = \"5min\"\nkind = \"volume\"\nbound = \"above\"\nvalue = \"50B\"\n",
        );
        r2.add(&record(t0 + 300_000_000), t0 + 300_000_000, &mut |_| false);
        r2.add(&record(t0), t0, &mut |_| false);
        let mut b2 = Vec::new();
        r2.advance(t0 + 600_000_000, &mut |b| b2.push(b));
        assert_eq!(b2.len(), 2);
        // An exporter's wall-clock watermark before any flow opens nothing: flows stamped
        // earlier that come next are judged at the following watermark.
        let mut r3 = rules(
            "[[traffic_rule]]\ntarget = \"host:192.168.1.20\"\nmetric = \"total\"\nfrequency = \"5min\"\nkind = \"volume\"\nbound = \"above\"\nvalue = \"50B\"\n",
        );
        let now = t0 + 86_400_000_000;
        let mut b3 = Vec::new();
        r3.advance(now, &mut |b| b3.push(b));
        r3.add(&record(t0), t0, &mut |_| false);
        r3.advance(now + 1, &mut |b| b3.push(b));
        assert_eq!(r3.late(), 0);
        assert_eq!(b3.first().map(|b| b.period_start), Some(t0));
    }

    #[test]
    fn exporter_targets_count_only_that_exporter_s_flows_and_interface() {
        let mut r = rules(
            "[[traffic_rule]]\ntarget = \"exporter:192.0.2.1\"\nmetric = \"total\"\nfrequency = \"5min\"\nkind = \"volume\"\nbound = \"above\"\nvalue = \"250B\"\n\n[[traffic_rule]]\ntarget = \"exporter:192.0.2.1:7\"\nmetric = \"total\"\nfrequency = \"5min\"\nkind = \"volume\"\nbound = \"above\"\nvalue = \"150B\"\n",
        );
        let t0 = 1_774_737_600_000_000;
        let from = |exporter: &str, in_if: u32| {
            let mut f = record(t0);
            f.export = Some(flowmesh_record::Exported {
                exporter: exporter.parse().unwrap(),
                in_if,
                out_if: 0,
                sampling: 1,
            });
            f
        };
        // 100 B each: two from the exporter (one on interface 7), one from another exporter,
        // one from packet capture.
        for f in [
            from("192.0.2.1", 7),
            from("192.0.2.1", 3),
            from("192.0.2.9", 7),
            record(t0),
        ] {
            r.add(&f, t0, &mut |_| false);
        }
        let mut breaches = Vec::new();
        r.advance(t0 + 300_000_000, &mut |b| breaches.push(b));
        let values: Vec<_> = breaches.iter().map(|b| (b.rule, b.value)).collect();
        // The exporter's 200 B are not above 250 B, nor its interface 7's 100 B above 150 B.
        assert!(values.is_empty(), "{values:?}");
        for f in [
            from("192.0.2.1", 7),
            from("192.0.2.1", 7),
            from("192.0.2.1", 7),
        ] {
            r.add(&f, t0 + 300_000_000, &mut |_| false);
        }
        r.advance(t0 + 900_000_000, &mut |b| breaches.push(b));
        let values: Vec<_> = breaches.iter().map(|b| (b.rule, b.value)).collect();
        assert_eq!(values, [(0, 300.0), (1, 300.0)]);
    }
}
