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

use std::collections::HashMap;

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
}

/// The device check's state.
pub struct DeviceCheck {
    idle_micros: i64,
    learning_micros: i64,
    authorized: HashMap<Mac, (Option<String>, bool)>,
    learned: std::collections::HashSet<Mac>,
    seen: HashMap<Mac, Seen>,
    /// The present MACs by last activity, oldest first: who goes idle next, and who is
    /// forgotten first when the bound is reached.
    by_last: std::collections::BTreeSet<(i64, Mac)>,
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
            by_last: Default::default(),
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

    /// Forgets the least recently seen eighth of the unauthorized MACs.
    fn evict(&mut self) {
        let k = (self.max_tracked / 8).max(1);
        let victims: Vec<(i64, Mac)> = self
            .by_last
            .iter()
            .filter(|(_, m)| !self.authorized.contains_key(m))
            .take(k)
            .copied()
            .collect();
        for (last, mac) in victims {
            self.by_last.remove(&(last, mac));
            self.seen.remove(&mac);
            self.learned.remove(&mac);
            self.evicted += 1;
        }
    }

    /// Time has reached `now`: authorized devices silent for the idle timeout disconnect, and
    /// unknown ones that went silent are forgotten (a return is a new appearance either way).
    pub fn advance(&mut self, now: i64, out: &mut impl FnMut(DeviceEvent)) {
        while let Some(&(last, mac)) = self.by_last.first() {
            if now - last < self.idle_micros {
                break;
            }
            self.by_last.pop_first();
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
        });
        let appeared = !entry.present;
        if !appeared {
            self.by_last.remove(&(entry.last, mac));
        }
        entry.present = true;
        entry.last = entry.last.max(last);
        entry.ip = Some(ip);
        self.by_last.insert((entry.last, mac));
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
}
