//! Device/MAC tracking: an unknown MAC alerts once per appearance; an authorized MAC with
//! `alert_on_disconnect` alerts when it has been silent for `idle_timeout`. Broadcast and
//! multicast MACs are ignored; MACs first seen during `learning_period` become authorized.
//!
//! Time is event time (the flows' times), so a replay gives the same alerts: a disconnect is
//! noticed when later traffic shows time has passed, never by the wall clock.

use std::collections::HashMap;

use flowmesh_sensor::devices::is_unicast;

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
    started: Option<i64>,
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
            started: None,
        }
    }

    /// Time has reached `now`: authorized devices silent for the idle timeout disconnect.
    pub fn advance(&mut self, now: i64, out: &mut impl FnMut(DeviceEvent)) {
        let mut gone: Vec<(i64, Mac, Option<std::net::IpAddr>)> = Vec::new();
        for (mac, s) in self.seen.iter_mut() {
            if s.present && now - s.last >= self.idle_micros {
                s.present = false;
                gone.push((s.last + self.idle_micros, *mac, s.ip));
            }
        }
        gone.sort();
        for (time, mac, ip) in gone {
            if let Some((name, true)) = self.authorized.get(&mac) {
                out(DeviceEvent::Disconnected {
                    mac,
                    ip,
                    name: name.clone(),
                    time,
                });
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
        let entry = self.seen.entry(mac).or_insert(Seen {
            last,
            present: false,
            ip: None,
        });
        let appeared = !entry.present;
        entry.present = true;
        entry.last = entry.last.max(last);
        entry.ip = Some(ip);
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
