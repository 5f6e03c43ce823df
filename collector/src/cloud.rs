//! An instance's side of the cloud: reporting attacker IPs to the cloud inbox (sealed to the
//! cloud's key, found in DNS) and following the shared blacklist the cloud broadcasts (sealed
//! to the user's key, accepted only with the cloud as sender *and* the cloud's Ed25519
//! signature: the envelope alone cannot tell the cloud from someone holding the user's key).

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use flowmesh_link::async_nats::Client;
use flowmesh_link::cloud_key::{self, CloudKeyConfig};
use flowmesh_link::cloud_sig::{self, SigningPublicKey};
use flowmesh_link::subject::cloud;
use flowmesh_link::{Identity, Opener, PublicKey, Sealer};
use flowmesh_proto::v1::{
    BlacklistBroadcast, BlacklistReport, CloudRequest, CloudSigned, InboxReply, cloud_request,
};
use futures::StreamExt;
use prost::Message;
use serde::Deserialize;

use crate::checks::blacklist::Blacklist;

/// `[cloud]` in an instance's config: where the cloud's key comes from, and what to report.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct CloudConfig {
    /// The domain whose `cloud._pubkey.<domain>` TXT record holds the cloud's key.
    pub domain: Option<String>,
    /// A name server to ask (`ip:port`) instead of the system's resolvers.
    pub name_server: Option<SocketAddr>,
    /// The expected key (64 hex): must match DNS, or is used alone without a domain.
    pub pinned: Option<String>,
    /// The expected signing key (64 hex, `cloud._signkey.<domain>`), likewise.
    pub pinned_signing: Option<String>,
    /// Seconds to wait for DNS.
    pub timeout_secs: Option<u64>,
    /// Alert types whose flow's public address the collector reports to the cloud.
    #[serde(default)]
    pub report_alerts: Vec<String>,
}

impl CloudConfig {
    /// The key lookup part.
    pub fn key_config(&self) -> CloudKeyConfig {
        CloudKeyConfig {
            domain: self.domain.clone(),
            name_server: self.name_server,
            pinned: self.pinned.clone(),
            pinned_signing: self.pinned_signing.clone(),
            timeout_secs: self.timeout_secs,
        }
    }

    /// Finds the cloud's keys (DNS, checked against the pins).
    pub async fn keys(&self) -> Result<CloudKeys, String> {
        let cfg = self.key_config();
        let key = cloud_key::resolve(&cfg).await.map_err(|e| e.to_string())?;
        let signing = cloud_key::resolve_signing(&cfg)
            .await
            .map_err(|e| format!("the cloud's signing key: {e}"))?;
        Ok(CloudKeys { key, signing })
    }
}

/// The cloud's two public keys: the one it is sealed to and seals with, and the one it signs
/// with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloudKeys {
    /// X25519, for the envelope.
    pub key: PublicKey,
    /// Ed25519, for its signatures.
    pub signing: SigningPublicKey,
}

/// Opens what the cloud sent on `subject`: sealed by the cloud's key and signed by its signing
/// key. The body, or why it is refused.
pub fn open_from_cloud(
    opener: &Opener,
    keys: &CloudKeys,
    subject: &str,
    data: &[u8],
) -> Result<Vec<u8>, String> {
    let opened = opener.open(subject, data).map_err(|e| e.to_string())?;
    if opened.sender != keys.key {
        return Err(format!(
            "not sealed by the cloud (sender {})",
            opened.sender.short()
        ));
    }
    let signed =
        CloudSigned::decode(opened.payload.as_slice()).map_err(|_| "not a signed message")?;
    cloud_sig::verify(&keys.signing, subject, &signed.body, &signed.signature)
        .map_err(|e| e.to_string())?;
    Ok(signed.body)
}

/// Reports an attacker address to the cloud inbox (see [`ask`]).
pub async fn report_ip(
    client: &Client,
    identity: &Identity,
    keys: &CloudKeys,
    report: &BlacklistReport,
) -> Result<InboxReply, String> {
    let request = CloudRequest {
        kind: Some(cloud_request::Kind::Report(report.clone())),
    };
    ask(client, identity, keys, &request).await
}

/// Sends `request` to the cloud inbox, sealed to the cloud's key by the user `identity`
/// belongs to; the manager's answer, verified as coming from the cloud.
pub async fn ask(
    client: &Client,
    identity: &Identity,
    keys: &CloudKeys,
    request: &CloudRequest,
) -> Result<InboxReply, String> {
    let sealed = Sealer::new(identity, keys.key)
        .seal(cloud::INBOX, &request.encode_to_vec())
        .map_err(|e| e.to_string())?;
    let answer = tokio::time::timeout(
        Duration::from_secs(10),
        client.request(cloud::INBOX, sealed.into()),
    )
    .await
    .map_err(|_| "the cloud inbox did not answer in 10 s".to_string())?
    .map_err(|e| format!("the cloud inbox: {e} (is the manager running?)"))?;
    let mut opener = Opener::new(identity);
    opener.trust(keys.key);
    let body = open_from_cloud(&opener, keys, cloud::INBOX_REPLY, &answer.payload)
        .map_err(|e| format!("the inbox's answer is refused: {e}"))?;
    InboxReply::decode(body.as_slice()).map_err(|e| e.to_string())
}

/// What following the broadcasts counted.
#[derive(Debug, Default)]
pub struct BroadcastCounters {
    /// Broadcasts applied.
    pub applied: std::sync::atomic::AtomicU64,
    /// Broadcasts refused (not from the cloud, unreadable, stale).
    pub refused: std::sync::atomic::AtomicU64,
}

/// Applies every broadcast that opens, comes from the cloud's key and carries the cloud's
/// signature to `list`, until the subscription ends. Anything else — sealed by another key, the
/// user's own included, or unsigned — is refused and counted. `opener` trusts the cloud's key
/// and should keep its replay window in a journal (a broadcast is applied once, across
/// restarts too). A list sent in parts is applied when every part of one issue has come.
pub async fn follow_broadcasts(
    client: Client,
    opener: Arc<Opener>,
    keys: CloudKeys,
    list: Arc<RwLock<Blacklist>>,
    counters: Arc<BroadcastCounters>,
) -> Result<(), String> {
    use std::sync::atomic::Ordering::Relaxed;
    let mut sub = client
        .subscribe(format!("{}.*", cloud::BROADCAST))
        .await
        .map_err(|e| e.to_string())?;
    client.flush().await.map_err(|e| e.to_string())?;
    let mut parts = Parts::default();
    while let Some(m) = sub.next().await {
        let body = match open_from_cloud(&opener, &keys, &m.subject, &m.payload) {
            Ok(b) => b,
            Err(e) => {
                counters.refused.fetch_add(1, Relaxed);
                tracing::warn!(error = %e, "a blacklist broadcast refused");
                continue;
            }
        };
        let Ok(b) = BlacklistBroadcast::decode(body.as_slice()) else {
            counters.refused.fetch_add(1, Relaxed);
            continue;
        };
        let Some(whole) = parts.add(b) else {
            continue;
        };
        let applied = list
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .apply(&whole);
        if applied {
            counters.applied.fetch_add(1, Relaxed);
            tracing::info!(
                entries = whole.entries.len(),
                issued_us = whole.issued_us,
                "blacklist from the cloud"
            );
        } else {
            counters.refused.fetch_add(1, Relaxed);
        }
    }
    Ok(())
}

/// Gathers the parts of one issue of a broadcast.
#[derive(Debug, Default)]
pub struct Parts {
    issued: i64,
    expected: u32,
    got: std::collections::BTreeMap<u32, BlacklistBroadcast>,
}

/// More parts than any list the manager sends needs (a bound against a hostile count).
const MAX_PARTS: u32 = 4096;

impl Parts {
    /// Adds a part; the whole list once every part of its issue is here.
    pub fn add(&mut self, b: BlacklistBroadcast) -> Option<BlacklistBroadcast> {
        if b.parts <= 1 {
            return Some(b);
        }
        if b.parts > MAX_PARTS || b.part >= b.parts || b.issued_us < self.issued {
            return None;
        }
        if b.issued_us != self.issued || b.parts != self.expected {
            self.issued = b.issued_us;
            self.expected = b.parts;
            self.got.clear();
        }
        self.got.insert(b.part, b);
        if self.got.len() < self.expected as usize {
            return None;
        }
        let mut whole = BlacklistBroadcast {
            issued_us: self.issued,
            ..BlacklistBroadcast::default()
        };
        for (_, p) in std::mem::take(&mut self.got) {
            whole.entries.extend(p.entries);
        }
        Some(whole)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowmesh_proto::v1::BlacklistEntry;

    fn part(issued: i64, part: u32, parts: u32, ip: &str) -> BlacklistBroadcast {
        BlacklistBroadcast {
            entries: vec![BlacklistEntry {
                ip: ip.into(),
                ..BlacklistEntry::default()
            }],
            issued_us: issued,
            part,
            parts,
        }
    }

    #[test]
    fn parts_of_one_issue_make_the_whole_list_and_a_newer_issue_starts_over() {
        let mut p = Parts::default();
        assert!(p.add(part(1, 0, 2, "1.1.1.1")).is_none());
        // A newer issue replaces the half-gathered one.
        assert!(p.add(part(2, 1, 2, "2.2.2.2")).is_none());
        assert!(
            p.add(part(1, 1, 2, "1.1.1.2")).is_none(),
            "older issue ignored"
        );
        let whole = p.add(part(2, 0, 2, "2.2.2.1")).unwrap();
        let ips: Vec<&str> = whole.entries.iter().map(|e| e.ip.as_str()).collect();
        assert_eq!(ips, ["2.2.2.1", "2.2.2.2"]);
        assert_eq!(p.add(part(3, 0, 1, "3.3.3.3")).unwrap().entries.len(), 1);
        assert!(
            p.add(part(4, 5, 2, "4.4.4.4")).is_none(),
            "part out of range"
        );
    }
}
