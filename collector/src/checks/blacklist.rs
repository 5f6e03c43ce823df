//! The cloud's shared blacklist as a check: a flow from or to a listed address raises
//! `blacklisted_host`, naming the address, which side it was on, and the cloud as the source.

use std::collections::HashMap;
use std::net::IpAddr;

use flowmesh_proto::v1::BlacklistBroadcast;
use flowmesh_record::FlowRecord;
use serde_json::json;

use crate::alert::Alert;

/// One listed address.
#[derive(Debug, Clone)]
struct Listed {
    reason: String,
    expires: i64,
    reporters: u32,
}

/// The latest blacklist received from the cloud.
#[derive(Debug, Default)]
pub struct Blacklist {
    entries: HashMap<IpAddr, Listed>,
    issued: i64,
}

impl Blacklist {
    /// Takes a broadcast in place of the current list, unless it is older than it (a delayed
    /// copy must not bring back what the cloud has since dropped). Returns whether it did.
    pub fn apply(&mut self, b: &BlacklistBroadcast) -> bool {
        if b.issued_us < self.issued {
            return false;
        }
        self.issued = b.issued_us;
        self.entries = b
            .entries
            .iter()
            .filter_map(|e| {
                Some((
                    e.ip.parse().ok()?,
                    Listed {
                        reason: e.reason.clone(),
                        expires: e.expires_us,
                        reporters: e.reporters,
                    },
                ))
            })
            .collect();
        true
    }

    /// Addresses listed and not expired at `now`.
    pub fn len_at(&self, now: i64) -> usize {
        self.entries.values().filter(|e| e.expires > now).count()
    }

    /// Judges one flow at `now` (µs): entries past their TTL no longer count.
    pub fn check(&self, f: &FlowRecord, instance: &str, now: i64, out: &mut impl FnMut(Alert)) {
        if self.entries.is_empty() {
            return;
        }
        for (side, ip) in [("client", f.client_ip), ("server", f.server_ip)] {
            if let Some(e) = self.entries.get(&ip).filter(|e| e.expires > now) {
                out(Alert::about_flow(
                    "blacklisted_host",
                    "error",
                    instance,
                    f,
                    f.last_seen,
                    json!({
                        "ip": ip.to_string(),
                        "side": side,
                        "source": "cloud",
                        "reason": e.reason,
                        "reporters": e.reporters,
                    }),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowmesh_proto::v1::BlacklistEntry;

    fn record(client: &str, server: &str) -> FlowRecord {
        FlowRecord {
            l4: "TCP",
            client_ip: client.parse().unwrap(),
            client_port: 50000,
            server_ip: server.parse().unwrap(),
            server_port: 443,
            l7: "TLS",
            c2s_packets: 1,
            c2s_bytes: 60,
            s2c_packets: 1,
            s2c_bytes: 60,
            first_seen: 1_795_334_400_000_000,
            last_seen: 1_795_334_401_000_000,
            ..FlowRecord::default()
        }
    }

    fn broadcast(issued: i64, expires: i64) -> BlacklistBroadcast {
        BlacklistBroadcast {
            entries: vec![BlacklistEntry {
                ip: "185.220.101.1".into(),
                reason: "scanner".into(),
                expires_us: expires,
                reporters: 2,
            }],
            issued_us: issued,
            ..BlacklistBroadcast::default()
        }
    }

    #[test]
    fn listed_addresses_alert_on_either_side_until_they_expire() {
        let mut b = Blacklist::default();
        assert!(b.apply(&broadcast(10, 1_000)));
        let mut alerts = Vec::new();
        b.check(&record("10.0.0.5", "185.220.101.1"), "s", 500, &mut |a| {
            alerts.push(a)
        });
        b.check(&record("185.220.101.1", "10.0.0.5"), "s", 500, &mut |a| {
            alerts.push(a)
        });
        b.check(&record("10.0.0.5", "8.8.8.8"), "s", 500, &mut |a| {
            alerts.push(a)
        });
        assert_eq!(alerts.len(), 2);
        assert_eq!(alerts[0].fields["side"], "server");
        assert_eq!(alerts[1].fields["side"], "client");
        assert_eq!(alerts[0].fields["source"], "cloud");
        alerts.clear();
        b.check(&record("10.0.0.5", "185.220.101.1"), "s", 1_000, &mut |a| {
            alerts.push(a)
        });
        assert!(alerts.is_empty(), "expired");
        // An older broadcast arriving late changes nothing.
        assert!(!b.apply(&BlacklistBroadcast {
            entries: vec![],
            issued_us: 5,
            ..BlacklistBroadcast::default()
        }));
        assert_eq!(b.len_at(0), 1);
    }
}
