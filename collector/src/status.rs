//! Instance status from heartbeats: `online`, `offline` (missed heartbeats), `restarted` (a new
//! boot id), `degraded` (new capture drops or an outbox backlog), `stopping` (said so itself;
//! `offline` follows once it is silent).
//!
//! Hysteresis keeps a flapping link from spamming: an instance goes offline only after
//! `offline_after` without a heartbeat (3 intervals by default) and comes back only after
//! `online_after` heartbeats in a row, each within an interval of the previous one.

use std::collections::BTreeMap;

use flowmesh_proto::v1::Status;
use serde_json::json;

use crate::alert::Alert;

/// A status change to announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The instance.
    pub instance: String,
    /// The new status.
    pub status: &'static str,
    /// The one before.
    pub previous: &'static str,
    /// When, µs.
    pub time: i64,
}

impl Change {
    /// The change as an `instance_status` alert (DESIGN.md's format).
    pub fn alert(&self) -> Alert {
        let severity = match self.status {
            "offline" => "warning",
            "degraded" | "restarted" => "notice",
            _ => "info",
        };
        Alert::new(
            "instance_status",
            severity,
            &self.instance,
            self.time,
            json!({"status": self.status, "previous": self.previous}),
        )
    }
}

/// What the tracker knows of one instance.
#[derive(Debug, Clone)]
pub struct Known {
    /// Current status.
    pub status: &'static str,
    /// Its latest heartbeat.
    pub last: Status,
    /// When it arrived (µs, receiver's clock).
    pub last_seen: i64,
    /// Heartbeats in a row while coming back.
    streak: u32,
}

/// Hysteresis settings.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Heartbeat intervals without a heartbeat before `offline`.
    pub missed: u32,
    /// Heartbeats in a row before an offline instance is `online` again.
    pub online_after: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            missed: 3,
            online_after: 2,
        }
    }
}

/// Every instance's status.
#[derive(Debug, Default)]
pub struct Tracker {
    known: BTreeMap<String, Known>,
    settings: Settings,
}

fn interval_micros(s: &Status) -> i64 {
    i64::from(s.heartbeat_ms.clamp(100, 600_000)) * 1000
}

impl Tracker {
    /// A tracker with these settings.
    pub fn new(settings: Settings) -> Self {
        Tracker {
            known: BTreeMap::new(),
            settings,
        }
    }

    /// Every instance, by name.
    pub fn known(&self) -> &BTreeMap<String, Known> {
        &self.known
    }

    /// A heartbeat received at `now` (µs).
    pub fn heartbeat(&mut self, hb: Status, now: i64) -> Option<Change> {
        let online_after = self.settings.online_after;
        let change = |k: &Known, to: &'static str| Change {
            instance: k.last.instance.clone(),
            status: to,
            previous: k.status,
            time: now,
        };
        let Some(k) = self.known.get_mut(&hb.instance) else {
            let status = if hb.status == "stopping" {
                "stopping"
            } else {
                "online"
            };
            let c = Change {
                instance: hb.instance.clone(),
                status,
                previous: "unknown",
                time: now,
            };
            self.known.insert(
                hb.instance.clone(),
                Known {
                    status,
                    last: hb,
                    last_seen: now,
                    streak: 1,
                },
            );
            return Some(c);
        };
        let gap = now - k.last_seen;
        let new_boot = !hb.boot_id.is_empty() && hb.boot_id != k.last.boot_id;
        let new_drops = hb.packets_dropped > k.last.packets_dropped && !new_boot;
        let backlog = hb.outbox_depth > 0;
        k.streak = if gap <= 2 * interval_micros(&hb) {
            k.streak + 1
        } else {
            1
        };
        let next: &'static str = if hb.status == "stopping" {
            "stopping"
        } else if new_boot {
            "restarted"
        } else if k.status == "offline" && k.streak < online_after {
            "offline"
        } else if new_drops || backlog {
            "degraded"
        } else {
            "online"
        };
        k.last = hb;
        k.last_seen = now;
        // `restarted` is an event: the instance is online (or degraded) from then on.
        let settle = if next == "restarted" { "online" } else { next };
        if next == k.status || (next == "online" && k.status == "restarted") {
            k.status = settle;
            return None;
        }
        let c = change(k, next);
        k.status = settle;
        Some(c)
    }

    /// Time has reached `now`: instances silent too long go offline.
    pub fn tick(&mut self, now: i64) -> Vec<Change> {
        let missed = i64::from(self.settings.missed);
        let mut out = Vec::new();
        for k in self.known.values_mut() {
            let silent = now - k.last_seen > missed * interval_micros(&k.last);
            // A stopped instance goes quiet as announced, and is then offline like any other.
            if silent && k.status != "offline" {
                out.push(Change {
                    instance: k.last.instance.clone(),
                    status: "offline",
                    previous: k.status,
                    time: now,
                });
                k.status = "offline";
                k.streak = 0;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    fn hb(boot: u8, dropped: u64, outbox: u64) -> Status {
        Status {
            instance: "s1".into(),
            status: "online".into(),
            boot_id: vec![boot; 8],
            packets_dropped: dropped,
            outbox_depth: outbox,
            heartbeat_ms: 1000,
            ..Status::default()
        }
    }

    fn statuses(changes: &[Option<Change>]) -> Vec<(&'static str, &'static str)> {
        changes
            .iter()
            .flatten()
            .map(|c| (c.previous, c.status))
            .collect()
    }

    #[test]
    fn online_offline_with_hysteresis_then_back() {
        let mut t = Tracker::new(Settings::default());
        let mut got = vec![t.heartbeat(hb(1, 0, 0), 0), t.heartbeat(hb(1, 0, 0), S)];
        assert!(
            t.tick(3 * S).is_empty(),
            "3 s of silence is not yet offline"
        );
        got.extend(t.tick(5 * S).into_iter().map(Some));
        assert!(t.tick(6 * S).is_empty(), "offline once");
        // One heartbeat is not enough to come back; two in a row are.
        got.push(t.heartbeat(hb(1, 0, 0), 20 * S));
        got.push(t.heartbeat(hb(1, 0, 0), 21 * S));
        assert_eq!(
            statuses(&got),
            [
                ("unknown", "online"),
                ("online", "offline"),
                ("offline", "online")
            ]
        );
    }

    #[test]
    fn a_flapping_link_does_not_spam() {
        let mut t = Tracker::new(Settings::default());
        let mut changes = vec![t.heartbeat(hb(1, 0, 0), 0)];
        // A heartbeat every 5 s (interval 1 s): offline in between, never long enough back.
        for i in 1..20 {
            changes.extend(t.tick(i * 5 * S - S).into_iter().map(Some));
            changes.push(t.heartbeat(hb(1, 0, 0), i * 5 * S));
        }
        assert_eq!(
            statuses(&changes),
            [("unknown", "online"), ("online", "offline")]
        );
    }

    #[test]
    fn restarted_degraded_and_stopping() {
        let mut t = Tracker::new(Settings::default());
        let mut got = vec![t.heartbeat(hb(1, 0, 0), 0)];
        got.push(t.heartbeat(hb(1, 5, 0), S)); // drops
        got.push(t.heartbeat(hb(1, 5, 0), 2 * S)); // no new drops
        got.push(t.heartbeat(hb(1, 5, 3), 3 * S)); // outbox backlog
        got.push(t.heartbeat(hb(1, 5, 0), 4 * S));
        let mut stop = hb(1, 5, 0);
        stop.status = "stopping".into();
        got.push(t.heartbeat(stop, 5 * S));
        let gone = t.tick(60 * S);
        assert_eq!(gone.len(), 1, "a stopped instance is offline once silent");
        got.extend(gone.into_iter().map(Some));
        got.push(t.heartbeat(hb(2, 0, 0), 70 * S)); // new boot
        got.push(t.heartbeat(hb(2, 0, 0), 71 * S));
        assert_eq!(
            statuses(&got),
            [
                ("unknown", "online"),
                ("online", "degraded"),
                ("degraded", "online"),
                ("online", "degraded"),
                ("degraded", "online"),
                ("online", "stopping"),
                ("stopping", "offline"),
                ("offline", "restarted"),
            ]
        );
        assert_eq!(t.known()["s1"].status, "online");
    }
}
