//! Instance status from heartbeats: `online`, `offline` (missed heartbeats), `restarted` (a new
//! boot id), `degraded` (new capture drops or an outbox backlog), `stopping` (said so itself;
//! `offline` follows once it is silent).
//!
//! Hysteresis keeps a weak link from paging its owner every few seconds, as Netdata's
//! reachability alerts do: an instance goes offline only after `offline_after` without a
//! heartbeat (at least 3 intervals and 30 s by default; at once when it said `stopping`), and
//! comes back only after `online_after` heartbeats in a row. An instance that still goes
//! offline and online again `flap_transitions` times within `flap_window` is reported once as
//! `flapping`; further ups and downs are kept quiet until it has held one status for
//! `flap_stable`, when that status is reported (`previous`: "flapping").

use std::collections::{BTreeMap, VecDeque};

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
    /// The version the instance said it runs (its latest heartbeat), if it said.
    pub version: String,
}

impl Change {
    /// The change as an `instance_status` alert (DESIGN.md's format).
    pub fn alert(&self) -> Alert {
        let severity = match self.status {
            "offline" => "warning",
            "degraded" | "restarted" => "notice",
            _ => "info",
        };
        let mut extra = json!({"status": self.status, "previous": self.previous});
        if !self.version.is_empty() {
            extra["version"] = self.version.clone().into();
        }
        Alert::new(
            "instance_status",
            severity,
            &self.instance,
            self.time,
            extra,
        )
    }
}

/// A heartbeat's update failure is announced if it is this recent (a collector that starts
/// meets old failures in heartbeats and should not announce them again).
const UPDATE_FAILURE_FRESH: i64 = 600_000_000;

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
    /// Times of its recent online/offline transitions (within the flapping window).
    transitions: VecDeque<i64>,
    /// Reported as flapping: online/offline changes are kept quiet.
    flapping: bool,
}

impl Known {
    fn new(status: &'static str, last: Status, now: i64) -> Self {
        Known {
            status,
            last,
            last_seen: now,
            streak: 1,
            transitions: VecDeque::new(),
            flapping: false,
        }
    }
}

/// Hysteresis settings.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Heartbeat intervals without a heartbeat before `offline`.
    pub missed: u32,
    /// And at least this long (µs) without one (not for an instance that said `stopping`).
    pub offline_after: i64,
    /// Heartbeats in a row before an offline instance is `online` again.
    pub online_after: u32,
    /// Online/offline transitions within `flap_window` that make an instance `flapping`.
    pub flap_transitions: u32,
    /// The window (µs) in which transitions are counted.
    pub flap_window: i64,
    /// How long (µs) a flapping instance must keep one status to be reported again.
    pub flap_stable: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            missed: 3,
            offline_after: 30_000_000,
            online_after: 2,
            flap_transitions: 4,
            flap_window: 600_000_000,
            flap_stable: 120_000_000,
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

    /// An `update_failed` alert, if this heartbeat reports an update failure the previous one
    /// did not (and a recent one). Call before [`Tracker::heartbeat`] takes it.
    pub fn update_failure(&self, hb: &Status, now: i64) -> Option<Alert> {
        let before = self
            .known
            .get(&hb.instance)
            .map_or(0, |k| k.last.update_error_us);
        let new = hb.update_error_us > before && now - hb.update_error_us < UPDATE_FAILURE_FRESH;
        new.then(|| {
            Alert::new(
                "update_failed",
                "error",
                &hb.instance,
                hb.update_error_us,
                json!({"version": hb.update_error_version, "error": hb.update_error, "running": hb.version}),
            )
        })
    }

    /// A heartbeat received at `now` (µs).
    pub fn heartbeat(&mut self, hb: Status, now: i64) -> Option<Change> {
        let online_after = self.settings.online_after;
        let change = |k: &Known, to: &'static str| Change {
            instance: k.last.instance.clone(),
            status: to,
            previous: k.status,
            time: now,
            version: k.last.version.clone(),
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
                version: hb.version.clone(),
            };
            self.known
                .insert(hb.instance.clone(), Known::new(status, hb, now));
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
        flap_filter(k, c, &self.settings)
    }

    /// Time has reached `now`: instances silent too long go offline, and flapping ones that
    /// have held a status long enough are reported again.
    pub fn tick(&mut self, now: i64) -> Vec<Change> {
        let s = self.settings;
        let missed = i64::from(s.missed);
        let mut out = Vec::new();
        for k in self.known.values_mut() {
            let quiet = now - k.last_seen;
            let beats = missed * interval_micros(&k.last);
            // A stopped instance goes quiet as announced: offline with no extra delay.
            let silent = if k.status == "stopping" {
                quiet > beats
            } else {
                quiet > beats.max(s.offline_after)
            };
            if silent && k.status != "offline" {
                let c = Change {
                    instance: k.last.instance.clone(),
                    status: "offline",
                    previous: k.status,
                    time: now,
                    version: k.last.version.clone(),
                };
                k.status = "offline";
                k.streak = 0;
                out.extend(flap_filter(k, c, &s));
            }
            let settled = k
                .transitions
                .back()
                .is_none_or(|&t| now - t >= s.flap_stable);
            if k.flapping && settled {
                k.flapping = false;
                k.transitions.clear();
                out.push(Change {
                    instance: k.last.instance.clone(),
                    status: k.status,
                    previous: "flapping",
                    time: now,
                    version: k.last.version.clone(),
                });
            }
        }
        out
    }
}

/// Passes a change on, or keeps it quiet while the instance flaps: online/offline transitions
/// are counted in the window, and the one that reaches `flap_transitions` becomes `flapping`.
fn flap_filter(k: &mut Known, c: Change, s: &Settings) -> Option<Change> {
    let up_down = matches!(c.status, "online" | "offline" | "degraded")
        && matches!(c.previous, "online" | "offline" | "degraded");
    let transition = c.status == "offline" || c.previous == "offline";
    if transition {
        k.transitions.push_back(c.time);
        while k
            .transitions
            .front()
            .is_some_and(|&t| c.time - t > s.flap_window)
        {
            k.transitions.pop_front();
        }
    }
    if k.flapping {
        return if up_down { None } else { Some(c) };
    }
    if transition && k.transitions.len() >= s.flap_transitions.max(1) as usize {
        k.flapping = true;
        return Some(Change {
            status: "flapping",
            ..c
        });
    }
    Some(c)
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

    /// Offline after 3 missed 1-s heartbeats, no extra delay.
    fn quick() -> Settings {
        Settings {
            offline_after: 0,
            ..Settings::default()
        }
    }

    #[test]
    fn online_offline_with_hysteresis_then_back() {
        let mut t = Tracker::new(quick());
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
        let mut t = Tracker::new(quick());
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
    fn offline_waits_for_the_delay_unless_the_instance_said_it_stops() {
        let mut t = Tracker::new(Settings::default());
        t.heartbeat(hb(1, 0, 0), 0);
        assert!(
            t.tick(29 * S).is_empty(),
            "29 s of silence is not offline yet"
        );
        assert_eq!(t.tick(31 * S)[0].status, "offline");
        let mut stop = hb(2, 0, 0);
        stop.status = "stopping".into();
        t.heartbeat(hb(2, 0, 0), 40 * S);
        t.heartbeat(stop, 41 * S);
        assert_eq!(t.tick(45 * S)[0].status, "offline", "it said it stops");
    }

    #[test]
    fn an_instance_that_keeps_going_down_and_up_is_flapping_once_then_stable_once() {
        let settings = Settings {
            offline_after: 0,
            online_after: 1,
            flap_transitions: 4,
            flap_window: 60 * S,
            flap_stable: 20 * S,
            ..Settings::default()
        };
        let mut t = Tracker::new(settings);
        let mut got = vec![t.heartbeat(hb(1, 0, 0), 0)];
        // Frozen 12 s, running 5 s (heartbeats every second), six times.
        let mut now = 0;
        for _ in 0..6 {
            for _ in 0..12 {
                now += S;
                got.extend(t.tick(now).into_iter().map(Some));
            }
            for _ in 0..5 {
                now += S;
                got.push(t.heartbeat(hb(1, 0, 0), now));
                got.extend(t.tick(now).into_iter().map(Some));
            }
        }
        // Then stable: heartbeats every second for 30 s.
        for _ in 0..30 {
            now += S;
            got.push(t.heartbeat(hb(1, 0, 0), now));
            got.extend(t.tick(now).into_iter().map(Some));
        }
        assert_eq!(
            statuses(&got),
            [
                ("unknown", "online"),
                ("online", "offline"),
                ("offline", "online"),
                ("online", "offline"),
                ("offline", "flapping"),
                ("flapping", "online"),
            ]
        );
    }

    #[test]
    fn restarted_degraded_and_stopping() {
        let mut t = Tracker::new(quick());
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
