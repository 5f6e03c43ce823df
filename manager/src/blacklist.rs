//! The shared blacklist: attacker IPs that users report to the cloud inbox, kept for a TTL
//! (refreshed by each new report) and broadcast to enrolled users. The reporters are counted,
//! never named in what users receive.
//!
//! No single user can poison it: an address reaches *other* users only once `min_reporters`
//! distinct users reported it, or the operator listed it (`flowmesh cloud blacklist add`); a
//! reporter's own collectors get its own reports at once. Each user has a quota of reports per
//! hour and of live entries, and a reason is cut to [`MAX_REASON`] bytes.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;

use flowmesh_proto::v1::{BlacklistBroadcast, BlacklistEntry, BlacklistReport};
use prost::Message;

/// Most entries kept: past it a report is refused rather than an entry forgotten.
pub const MAX_ENTRIES: usize = 100_000;
/// Longest reason kept, in bytes.
pub const MAX_REASON: usize = 200;
/// The name reports by the cloud operator are kept under.
pub const OPERATOR: &str = "@operator";

/// What keeps one user from flooding or poisoning the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Distinct users who must report an address before it reaches other users.
    pub min_reporters: usize,
    /// Reports one user may make per hour (refused past it).
    pub reports_per_hour: usize,
    /// Live entries one user's reports may hold.
    pub entries_per_user: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            min_reporters: 2,
            reports_per_hour: 120,
            entries_per_user: 1000,
        }
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Listed {
    reason: String,
    expires: i64,
    reporters: BTreeSet<String>,
}

impl Listed {
    fn by_operator(&self) -> bool {
        self.reporters.contains(OPERATOR)
    }
}

/// The blacklist.
#[derive(Debug)]
pub struct Blacklist {
    entries: BTreeMap<IpAddr, Listed>,
    ttl_micros: i64,
    limits: Limits,
    /// Each user's report times within the last hour.
    recent: HashMap<String, VecDeque<i64>>,
}

/// Cuts `text` to at most `max` bytes on a character boundary.
fn cut(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

const HOUR: i64 = 3_600_000_000;

/// Only internet addresses are shared: a private one means nothing to other users' networks.
fn public(ip: IpAddr) -> Result<(), String> {
    if flowmesh_link::addr::is_public(ip) {
        Ok(())
    } else {
        Err(format!(
            "{ip} is not a public address: only internet addresses are shared"
        ))
    }
}

impl Blacklist {
    /// An empty list whose entries live `ttl_secs` after their latest report.
    pub fn new(ttl_secs: u64, limits: Limits) -> Self {
        Blacklist {
            entries: BTreeMap::new(),
            ttl_micros: i64::try_from(ttl_secs)
                .unwrap_or(i64::MAX / 1_000_000)
                .saturating_mul(1_000_000),
            limits,
            recent: HashMap::new(),
        }
    }

    /// Takes a report from `user` at `now` (µs). The address must be public: a private one
    /// means nothing to other users' networks. Refused past the user's quotas.
    pub fn report(&mut self, user: &str, r: &BlacklistReport, now: i64) -> Result<(), String> {
        let ip: IpAddr =
            r.ip.trim()
                .parse()
                .map_err(|_| format!("{:?} is not an IP address", r.ip))?;
        public(ip)?;
        let times = self.recent.entry(user.to_string()).or_default();
        while times.front().is_some_and(|&t| now - t >= HOUR) {
            times.pop_front();
        }
        if times.len() >= self.limits.reports_per_hour {
            return Err(format!(
                "quota: at most {} reports per hour",
                self.limits.reports_per_hour
            ));
        }
        let known = self
            .entries
            .get(&ip)
            .is_some_and(|e| e.reporters.contains(user));
        if !known {
            let held = self
                .entries
                .values()
                .filter(|e| e.expires > now && e.reporters.contains(user))
                .count();
            if held >= self.limits.entries_per_user {
                return Err(format!(
                    "quota: at most {} listed addresses per user",
                    self.limits.entries_per_user
                ));
            }
        }
        times.push_back(now);
        self.list(user, ip, &r.reason, now)
    }

    /// Lists `ip` on the operator's word: it reaches every user at once.
    pub fn add_by_operator(&mut self, ip: IpAddr, reason: &str, now: i64) -> Result<(), String> {
        self.list(OPERATOR, ip, reason, now)
    }

    fn list(&mut self, who: &str, ip: IpAddr, reason: &str, now: i64) -> Result<(), String> {
        public(ip)?;
        if !self.entries.contains_key(&ip) && self.entries.len() >= MAX_ENTRIES {
            return Err(format!("the blacklist is full ({MAX_ENTRIES} entries)"));
        }
        let reason = cut(reason.trim(), MAX_REASON);
        let e = self.entries.entry(ip).or_insert_with(|| Listed {
            reason: String::new(),
            expires: 0,
            reporters: BTreeSet::new(),
        });
        // The first reason stands (a later reporter cannot rewrite what others read), unless
        // the operator gives one.
        if !reason.is_empty() && (e.reason.is_empty() || who == OPERATOR) {
            e.reason = reason;
        }
        e.expires = now.saturating_add(self.ttl_micros);
        e.reporters.insert(who.to_string());
        Ok(())
    }

    /// Drops entries past their TTL; true if any was.
    pub fn expire(&mut self, now: i64) -> bool {
        let before = self.entries.len();
        self.entries.retain(|_, e| e.expires > now);
        self.entries.len() != before
    }

    /// The whole list, as the operator sees it.
    pub fn broadcast(&self, now: i64) -> BlacklistBroadcast {
        self.filtered(now, |_| true)
    }

    /// What `user` receives: entries confirmed by enough users or by the operator, and the
    /// user's own reports.
    pub fn for_user(&self, user: &str, now: i64) -> BlacklistBroadcast {
        let min = self.limits.min_reporters.max(1);
        self.filtered(now, |e| {
            e.by_operator() || e.reporters.len() >= min || e.reporters.contains(user)
        })
    }

    fn filtered(&self, now: i64, keep: impl Fn(&Listed) -> bool) -> BlacklistBroadcast {
        BlacklistBroadcast {
            entries: self
                .entries
                .iter()
                .filter(|(_, e)| e.expires > now && keep(e))
                .map(|(ip, e)| BlacklistEntry {
                    ip: ip.to_string(),
                    reason: e.reason.clone(),
                    expires_us: e.expires,
                    reporters: e.reporters.len() as u32,
                })
                .collect(),
            issued_us: now,
            ..BlacklistBroadcast::default()
        }
    }

    /// The entries, to be kept across restarts (with who reported them).
    pub fn save(&self) -> serde_json::Value {
        serde_json::to_value(&self.entries).unwrap_or_default()
    }

    /// Takes back saved entries (those already expired at `now` are dropped).
    pub fn restore(&mut self, saved: &serde_json::Value, now: i64) -> Result<(), String> {
        let entries: BTreeMap<IpAddr, Listed> =
            serde_json::from_value(saved.clone()).map_err(|e| e.to_string())?;
        self.entries = entries;
        for e in self.entries.values_mut() {
            e.reason = cut(&e.reason, MAX_REASON);
        }
        self.expire(now);
        Ok(())
    }

    /// Entries now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Splits a broadcast into parts whose encoding stays under `budget` bytes; one part (with
/// `parts` 0) when it fits whole.
pub fn split(whole: BlacklistBroadcast, budget: usize) -> Vec<BlacklistBroadcast> {
    if whole.encoded_len() <= budget {
        return vec![whole];
    }
    let issued_us = whole.issued_us;
    let mut parts: Vec<BlacklistBroadcast> = Vec::new();
    let mut current = BlacklistBroadcast::default();
    let mut size = 0usize;
    for e in whole.entries {
        // An entry's share of the encoding: its own length, tag and length prefix.
        let len = e.encoded_len() + 8;
        if size + len > budget && !current.entries.is_empty() {
            parts.push(std::mem::take(&mut current));
            size = 0;
        }
        size += len;
        current.entries.push(e);
    }
    parts.push(current);
    let n = parts.len() as u32;
    for (i, p) in parts.iter_mut().enumerate() {
        p.issued_us = issued_us;
        p.part = i as u32;
        p.parts = n;
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(ip: &str) -> BlacklistReport {
        BlacklistReport {
            ip: ip.into(),
            reason: "scanner".into(),
            instance: "eu-sensor".into(),
        }
    }

    #[test]
    fn reports_are_merged_refreshed_and_expire() {
        let mut b = Blacklist::new(60, Limits::default());
        b.report("alice", &report("185.220.101.1"), 0).unwrap();
        b.report("bob", &report("185.220.101.1"), 30_000_000)
            .unwrap();
        let out = b.broadcast(31_000_000);
        assert_eq!(out.entries.len(), 1);
        assert_eq!(out.entries[0].reporters, 2);
        assert_eq!(out.entries[0].expires_us, 90_000_000, "refreshed by bob");
        assert!(!b.expire(89_000_000));
        assert!(b.expire(90_000_000));
        assert!(b.is_empty());
    }

    #[test]
    fn entries_survive_a_restart() {
        let mut b = Blacklist::new(60, Limits::default());
        b.report("alice", &report("185.220.101.1"), 0).unwrap();
        b.report("bob", &report("2001:db8::1"), 0).unwrap_err();
        b.report("bob", &report("2a00:1450::1"), 0).unwrap();
        let saved = b.save();
        let mut again = Blacklist::new(60, Limits::default());
        again.restore(&saved, 1).unwrap();
        assert_eq!(again.broadcast(1), b.broadcast(1));
        let mut late = Blacklist::new(60, Limits::default());
        late.restore(&saved, 61_000_000).unwrap();
        assert!(late.is_empty(), "expired while the manager was down");
        assert!(late.restore(&serde_json::json!("garbage"), 0).is_err());
    }

    #[test]
    fn private_and_malformed_addresses_are_refused() {
        let mut b = Blacklist::new(60, Limits::default());
        for bad in ["10.0.0.1", "192.168.1.1", "::1", "fe80::1", "banana", ""] {
            assert!(b.report("alice", &report(bad), 0).is_err(), "{bad}");
        }
        assert!(b.is_empty());
    }

    #[test]
    fn one_user_alone_reaches_only_its_own_collectors() {
        let mut b = Blacklist::new(60, Limits::default());
        b.report("mallory", &report("8.8.8.8"), 0).unwrap();
        assert_eq!(
            b.for_user("mallory", 1).entries.len(),
            1,
            "its own, at once"
        );
        assert!(
            b.for_user("bob", 1).entries.is_empty(),
            "one reporter poisons nobody"
        );
        b.report("alice", &report("8.8.8.8"), 0).unwrap();
        assert_eq!(b.for_user("bob", 1).entries.len(), 1, "two users agree");
        b.add_by_operator("1.1.1.1".parse().unwrap(), "botnet C2", 0)
            .unwrap();
        let bob: Vec<String> = b
            .for_user("bob", 1)
            .entries
            .into_iter()
            .map(|e| e.ip)
            .collect();
        assert_eq!(bob, ["1.1.1.1", "8.8.8.8"], "the operator's word is enough");
    }

    #[test]
    fn quotas_bound_what_one_user_can_do() {
        let limits = Limits {
            reports_per_hour: 3,
            entries_per_user: 2,
            ..Limits::default()
        };
        let mut b = Blacklist::new(86_400, limits);
        b.report("m", &report("8.8.8.1"), 0).unwrap();
        b.report("m", &report("8.8.8.2"), 1).unwrap();
        let full = b.report("m", &report("8.8.8.3"), 2).unwrap_err();
        assert!(full.contains("listed addresses"), "{full}");
        b.report("m", &report("8.8.8.1"), 3).unwrap();
        let rate = b.report("m", &report("8.8.8.2"), 4).unwrap_err();
        assert!(rate.contains("per hour"), "{rate}");
        // An hour later the rate allows it again.
        b.report("m", &report("8.8.8.2"), HOUR + 1).unwrap();
    }

    #[test]
    fn reasons_are_cut_and_the_first_stands() {
        let mut b = Blacklist::new(60, Limits::default());
        let mut r = report("8.8.8.8");
        r.reason = "é".repeat(300);
        b.report("a", &r, 0).unwrap();
        let got = &b.broadcast(1).entries[0].reason;
        assert!(
            got.len() <= MAX_REASON && got.chars().all(|c| c == 'é'),
            "{got}"
        );
        r.reason = "rewritten".into();
        b.report("b", &r, 0).unwrap();
        assert_ne!(b.broadcast(1).entries[0].reason, "rewritten");
    }

    #[test]
    fn a_large_list_is_split_into_parts_under_the_budget() {
        let mut b = Blacklist::new(
            60,
            Limits {
                entries_per_user: 100_000,
                reports_per_hour: 100_000,
                ..Limits::default()
            },
        );
        for i in 0..5000u32 {
            let ip = std::net::Ipv4Addr::from(0x0808_0000 + i).to_string();
            b.add_by_operator(ip.parse().unwrap(), "scanner", 0)
                .unwrap();
        }
        let whole = b.broadcast(1);
        let parts = split(whole.clone(), 16 * 1024);
        assert!(parts.len() > 5, "{} parts", parts.len());
        for (i, p) in parts.iter().enumerate() {
            assert!(
                p.encoded_len() <= 16 * 1024,
                "part {i}: {}",
                p.encoded_len()
            );
            assert_eq!(
                (p.part, p.parts, p.issued_us),
                (i as u32, parts.len() as u32, 1)
            );
        }
        let back: usize = parts.iter().map(|p| p.entries.len()).sum();
        assert_eq!(back, 5000);
        assert_eq!(
            split(whole.clone(), 1 << 30),
            vec![whole],
            "fits whole: one part"
        );
    }
}
