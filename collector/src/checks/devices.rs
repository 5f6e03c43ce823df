//! Device/MAC tracking: an unknown MAC alerts once per appearance; an authorized MAC with
//! `alert_on_disconnect` alerts when it has been silent for `idle_timeout`. Broadcast and
//! multicast MACs are ignored; MACs first seen during `learning_period` become authorized.
//!
//! Time is event time (the flows' times), so a replay gives the same alerts: a disconnect is
//! noticed when later traffic shows time has passed, never by the wall clock.
//!
//! Memory is bounded against a flood of random MACs: at most [`MAX_TRACKED`] unauthorized MACs
//! are remembered; past it the least recently seen eighth is forgotten (counted as evicted — a
//! forgotten MAC that comes back is a new appearance), and unknown MACs that went silent are
//! forgotten when time passes their idle timeout.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use flowmesh_link::addr::is_unicast;

use crate::policy::{DevicePolicy, Mac};

/// What the device check saw happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceEvent {
    /// An unknown MAC appeared (again, after being gone).
    Unexpected {
        /// The MAC.
        mac: Mac,
        /// Its address, when known.
        ip: Option<std::net::IpAddr>,
        /// When, µs.
        time: i64,
    },
    /// An authorized MAC was silent for the idle timeout.
    Disconnected {
        /// The MAC.
        mac: Mac,
        /// Its last known address.
        ip: Option<std::net::IpAddr>,
        /// Its configured name.
        name: Option<String>,
        /// When the silence reached the timeout, µs.
        time: i64,
    },
}

/// Unauthorized MACs remembered at most (authorized ones are always kept).
pub const MAX_TRACKED: usize = 65_536;

struct Seen {
    last: i64,
    present: bool,
    ip: Option<std::net::IpAddr>,
    /// The time its entry in [`DeviceCheck::due`] carries (while present).
    queued: i64,
}

/// The device check's state.
pub struct DeviceCheck {
    idle_micros: i64,
    learning_micros: i64,
    authorized: HashMap<Mac, (Option<String>, bool)>,
    learned: std::collections::HashSet<Mac>,
    seen: HashMap<Mac, Seen>,
    /// One entry per present MAC, oldest first: who goes idle next, and who is forgotten first
    /// when the bound is reached. An entry keeps the activity time it was queued with; a MAC
    /// seen since is queued again with its newer time only when its entry comes up, so
    /// traffic from known devices touches nothing here (a B-tree of exact times, moved on
    /// every flow, allocated and freed nodes for most flows).
    due: BinaryHeap<Reverse<(i64, Mac)>>,
    started: Option<i64>,
    max_tracked: usize,
    /// MACs forgotten to stay within the bound, ever.
    evicted: u64,
}

impl DeviceCheck {
    /// From the `[devices]` policy.
    pub fn new(p: &DevicePolicy) -> Self {
        DeviceCheck {
            idle_micros: i64::try_from(p.idle_timeout_secs).unwrap_or(i64::MAX / 2_000_000)
                * 1_000_000,
            learning_micros: i64::try_from(p.learning_period_secs).unwrap_or(i64::MAX / 2_000_000)
                * 1_000_000,
            authorized: p
                .authorized
                .iter()
                .map(|a| (a.mac, (a.name.clone(), a.alert_on_disconnect)))
                .collect(),
            learned: Default::default(),
            seen: HashMap::new(),
            due: BinaryHeap::new(),
            started: None,
            max_tracked: MAX_TRACKED,
            evicted: 0,
        }
    }

    /// The same check with another bound (tests).
    pub fn with_bound(mut self, max_tracked: usize) -> Self {
        self.max_tracked = max_tracked.max(8);
        self
    }

    /// MACs remembered now.
    pub fn tracked(&self) -> usize {
        self.seen.len()
    }

    /// MACs forgotten to stay within the bound, ever.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Devices seen and not authorized (nor learned), most recently active first, at most
    /// `limit`: what the console offers to authorize. `(MAC, last IP, last seen µs)`.
    pub fn unauthorized(&self, limit: usize) -> Vec<(Mac, Option<std::net::IpAddr>, i64)> {
        let mut out: Vec<_> = self
            .seen
            .iter()
            .filter(|(m, _)| !self.authorized.contains_key(m) && !self.learned.contains(m))
            .map(|(m, s)| (*m, s.ip, s.last))
            .collect();
        out.sort_by_key(|(_, _, last)| std::cmp::Reverse(*last));
        out.truncate(limit);
        out
    }

    /// The present MAC seen least recently, taken from [`DeviceCheck::due`], if any: entries
    /// of MACs seen since are queued again with their newer time first, so MACs come out in
    /// the order of their last activity. `until`: only a MAC last seen before it.
    fn next_due(&mut self, until: Option<i64>) -> Option<(i64, Mac)> {
        while let Some(&Reverse((queued, mac))) = self.due.peek() {
            if until.is_some_and(|t| queued >= t) {
                return None;
            }
            self.due.pop();
            let Some(s) = self.seen.get_mut(&mac) else {
                continue;
            };
            if !s.present || s.queued != queued {
                continue;
            }
            if s.last != queued {
                s.queued = s.last;
                self.due.push(Reverse((s.last, mac)));
                continue;
            }
            return Some((queued, mac));
        }
        None
    }

    /// Forgets the least recently seen eighth of the unauthorized MACs.
    fn evict(&mut self) {
        let k = (self.max_tracked / 8).max(1);
        let mut kept = Vec::new();
        let mut forgotten = 0;
        while forgotten < k {
            let Some((last, mac)) = self.next_due(None) else {
                break;
            };
            if self.authorized.contains_key(&mac) {
                kept.push(Reverse((last, mac)));
                continue;
            }
            self.seen.remove(&mac);
            self.learned.remove(&mac);
            self.evicted += 1;
            forgotten += 1;
        }
        self.due.extend(kept);
    }

    /// Time has reached `now`: authorized devices silent for the idle timeout disconnect, and
    /// unknown ones that went silent are forgotten (a return is a new appearance either way).
    pub fn advance(&mut self, now: i64, out: &mut impl FnMut(DeviceEvent)) {
        while let Some((last, mac)) = self.next_due(Some(now.saturating_sub(self.idle_micros) + 1))
        {
            let ip = self.seen.get(&mac).and_then(|s| s.ip);
            match self.authorized.get(&mac) {
                Some((name, alert)) => {
                    if let Some(s) = self.seen.get_mut(&mac) {
                        s.present = false;
                    }
                    if *alert {
                        out(DeviceEvent::Disconnected {
                            mac,
                            ip,
                            name: name.clone(),
                            time: last + self.idle_micros,
                        });
                    }
                }
                None => {
                    self.seen.remove(&mac);
                }
            }
        }
    }

    /// `mac` was active from `first` to `last` (µs).
    pub fn observe(
        &mut self,
        mac: [u8; 6],
        ip: std::net::IpAddr,
        first: i64,
        last: i64,
        out: &mut impl FnMut(DeviceEvent),
    ) {
        if !is_unicast(&mac) {
            return;
        }
        let mac = Mac(mac);
        let start = *self.started.get_or_insert(first);
        if self.seen.len() >= self.max_tracked && !self.seen.contains_key(&mac) {
            self.evict();
        }
        let entry = self.seen.entry(mac).or_insert(Seen {
            last,
            present: false,
            ip: None,
            queued: last,
        });
        let appeared = !entry.present;
        entry.present = true;
        entry.last = entry.last.max(last);
        entry.ip = Some(ip);
        if appeared {
            entry.queued = entry.last;
            self.due.push(Reverse((entry.last, mac)));
        }
        if appeared && !self.authorized.contains_key(&mac) && !self.learned.contains(&mac) {
            if first - start < self.learning_micros {
                self.learned.insert(mac);
            } else {
                out(DeviceEvent::Unexpected {
                    mac,
                    ip: Some(ip),
                    time: first,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> DevicePolicy {
        DevicePolicy {
            idle_timeout_secs: 300,
            learning_period_secs: 0,
            authorized: Vec::new(),
        }
    }

    #[test]
    fn a_flood_of_random_macs_stays_within_the_bound_and_is_counted() {
        let mut d = DeviceCheck::new(&policy()).with_bound(1000);
        let mut alerts = 0u64;
        let ip = "10.0.0.1".parse().unwrap();
        for i in 0..100_000u64 {
            let b = (i * 2654435761).to_be_bytes();
            // Locally administered unicast: a random MAC.
            let mac = [0x02, b[3], b[4], b[5], b[6], b[7]];
            d.observe(mac, ip, i as i64, i as i64, &mut |_| alerts += 1);
            assert!(d.tracked() <= 1000);
        }
        assert_eq!(alerts, 100_000, "each appearance alerts once");
        assert!(d.evicted() >= 99_000, "{}", d.evicted());
    }

    const S: i64 = 1_000_000;

    fn mac(n: u8) -> [u8; 6] {
        [0x02, 0, 0, 0, 0, n]
    }

    #[test]
    fn disconnects_come_in_the_order_of_last_activity_however_often_a_device_was_seen() {
        let authorized = (1..=3)
            .map(|n| crate::policy::AuthorizedDevice {
                mac: Mac(mac(n)),
                name: Some(format!("d{n}")),
                alert_on_disconnect: true,
            })
            .collect();
        let mut d = DeviceCheck::new(&DevicePolicy {
            authorized,
            ..policy()
        });
        let ip = "10.0.0.1".parse().unwrap();
        let mut events = Vec::new();
        // 1 at 0 s and again at 20 s (its queued time is stale), 2 at 10 s, 3 at 5 s.
        for (n, t) in [(1, 0), (2, 10), (3, 5), (1, 20)] {
            d.observe(mac(n), ip, t * S, t * S, &mut |e| events.push(e));
        }
        assert!(events.is_empty());
        d.advance(309 * S, &mut |e| events.push(e));
        let gone = |events: &[DeviceEvent]| -> Vec<(u8, i64)> {
            events
                .iter()
                .map(|e| match e {
                    DeviceEvent::Disconnected { mac, time, .. } => (mac.0[5], time / S),
                    other => panic!("{other:?}"),
                })
                .collect()
        };
        assert_eq!(
            gone(&events),
            [(3, 305)],
            "only 3 was silent for 300 s by 309 s"
        );
        d.advance(1_000 * S, &mut |e| events.push(e));
        assert_eq!(gone(&events), [(3, 305), (2, 310), (1, 320)]);
        // Seen again: present again, and gone again after its own silence.
        events.clear();
        d.observe(mac(2), ip, 1_100 * S, 1_100 * S, &mut |e| events.push(e));
        d.advance(1_399 * S, &mut |e| events.push(e));
        assert!(events.is_empty());
        d.advance(1_400 * S, &mut |e| events.push(e));
        assert_eq!(gone(&events), [(2, 1_400)]);
    }

    #[test]
    fn the_bound_forgets_the_least_recently_seen_not_the_first_seen() {
        let mut d = DeviceCheck::new(&policy()).with_bound(8);
        let ip = "10.0.0.1".parse().unwrap();
        let mut appeared = Vec::new();
        let mut see = |d: &mut DeviceCheck, n: u8, t: i64| {
            d.observe(mac(n), ip, t, t, &mut |e| {
                if let DeviceEvent::Unexpected { mac, .. } = e {
                    appeared.push(mac.0[5]);
                }
            })
        };
        for n in 1..=8 {
            see(&mut d, n, i64::from(n));
        }
        // 1 is seen again: 2 is now the least recently seen, and a ninth MAC forgets it.
        see(&mut d, 1, 9);
        see(&mut d, 9, 10);
        assert_eq!(d.tracked(), 8);
        assert_eq!(d.evicted(), 1);
        see(&mut d, 1, 11);
        see(&mut d, 2, 12);
        assert_eq!(
            appeared,
            [1, 2, 3, 4, 5, 6, 7, 8, 9, 2],
            "2 was forgotten, 1 was not"
        );
    }
}
