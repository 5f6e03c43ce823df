//! The shared blacklist: attacker IPs that users report to the cloud inbox, kept for a TTL
//! (refreshed by each new report) and broadcast to every enrolled user. The reporters are
//! counted, never named in what users receive.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use flowmesh_proto::v1::{BlacklistBroadcast, BlacklistEntry, BlacklistReport};

/// Most entries kept: past it a report is refused rather than an entry forgotten.
pub const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Listed {
    reason: String,
    expires: i64,
    reporters: BTreeSet<String>,
}

/// The blacklist.
#[derive(Debug)]
pub struct Blacklist {
    entries: BTreeMap<IpAddr, Listed>,
    ttl_micros: i64,
}

impl Blacklist {
    /// An empty list whose entries live `ttl_secs` after their latest report.
    pub fn new(ttl_secs: u64) -> Self {
        Blacklist {
            entries: BTreeMap::new(),
            ttl_micros: i64::try_from(ttl_secs)
                .unwrap_or(i64::MAX / 1_000_000)
                .saturating_mul(1_000_000),
        }
    }

    /// Takes a report from `user` at `now` (µs). The address must be public: a private one
    /// means nothing to other users' networks.
    pub fn report(&mut self, user: &str, r: &BlacklistReport, now: i64) -> Result<(), String> {
        let ip: IpAddr =
            r.ip.trim()
                .parse()
                .map_err(|_| format!("{:?} is not an IP address", r.ip))?;
        if !flowmesh_link::addr::is_public(ip) {
            return Err(format!(
                "{ip} is not a public address: only internet addresses are shared"
            ));
        }
        if !self.entries.contains_key(&ip) && self.entries.len() >= MAX_ENTRIES {
            return Err(format!("the blacklist is full ({MAX_ENTRIES} entries)"));
        }
        let reason: String = r.reason.chars().take(200).collect();
        let e = self.entries.entry(ip).or_insert_with(|| Listed {
            reason: reason.clone(),
            expires: 0,
            reporters: BTreeSet::new(),
        });
        if !reason.is_empty() {
            e.reason = reason;
        }
        e.expires = now.saturating_add(self.ttl_micros);
        e.reporters.insert(user.to_string());
        Ok(())
    }

    /// Drops entries past their TTL; true if any was.
    pub fn expire(&mut self, now: i64) -> bool {
        let before = self.entries.len();
        self.entries.retain(|_, e| e.expires > now);
        self.entries.len() != before
    }

    /// What every user receives.
    pub fn broadcast(&self, now: i64) -> BlacklistBroadcast {
        BlacklistBroadcast {
            entries: self
                .entries
                .iter()
                .filter(|(_, e)| e.expires > now)
                .map(|(ip, e)| BlacklistEntry {
                    ip: ip.to_string(),
                    reason: e.reason.clone(),
                    expires_us: e.expires,
                    reporters: e.reporters.len() as u32,
                })
                .collect(),
            issued_us: now,
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
        let mut b = Blacklist::new(60);
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
        let mut b = Blacklist::new(60);
        b.report("alice", &report("185.220.101.1"), 0).unwrap();
        b.report("bob", &report("2001:db8::1"), 0).unwrap_err();
        b.report("bob", &report("2a00:1450::1"), 0).unwrap();
        let saved = b.save();
        let mut again = Blacklist::new(60);
        again.restore(&saved, 1).unwrap();
        assert_eq!(again.broadcast(1), b.broadcast(1));
        let mut late = Blacklist::new(60);
        late.restore(&saved, 61_000_000).unwrap();
        assert!(late.is_empty(), "expired while the manager was down");
        assert!(late.restore(&serde_json::json!("garbage"), 0).is_err());
    }

    #[test]
    fn private_and_malformed_addresses_are_refused() {
        let mut b = Blacklist::new(60);
        for bad in ["10.0.0.1", "192.168.1.1", "::1", "fe80::1", "banana", ""] {
            assert!(b.report("alice", &report(bad), 0).is_err(), "{bad}");
        }
        assert!(b.is_empty());
    }
}
