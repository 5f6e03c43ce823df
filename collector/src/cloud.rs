//! An instance's side of the cloud: reporting attacker IPs to the cloud inbox (sealed to the
//! cloud's key, found in DNS) and following the shared blacklist the cloud broadcasts (sealed
//! to the user's key, accepted only with the cloud as sender).

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use flowmesh_link::async_nats::Client;
use flowmesh_link::cloud_key::{self, CloudKeyConfig};
use flowmesh_link::subject::cloud;
use flowmesh_link::{Identity, Opener, PublicKey, Sealer};
use flowmesh_proto::v1::{BlacklistBroadcast, BlacklistReport, InboxReply};
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
            timeout_secs: self.timeout_secs,
        }
    }

    /// Finds the cloud's key (DNS, checked against the pin).
    pub async fn key(&self) -> Result<PublicKey, String> {
        cloud_key::resolve(&self.key_config())
            .await
            .map_err(|e| e.to_string())
    }
}

/// Reports `ip` to the cloud inbox as `instance` of the user `identity` belongs to; the
/// manager's answer, verified as coming from the cloud.
pub async fn report_ip(
    client: &Client,
    identity: &Identity,
    cloud_key: PublicKey,
    report: &BlacklistReport,
) -> Result<InboxReply, String> {
    let sealed = Sealer::new(identity, cloud_key)
        .seal(cloud::INBOX, &report.encode_to_vec())
        .map_err(|e| e.to_string())?;
    let answer = tokio::time::timeout(
        Duration::from_secs(10),
        client.request(cloud::INBOX, sealed.into()),
    )
    .await
    .map_err(|_| "the cloud inbox did not answer in 10 s".to_string())?
    .map_err(|e| format!("the cloud inbox: {e} (is the manager running?)"))?;
    let mut opener = Opener::new(identity);
    opener.trust(cloud_key);
    let opened = opener
        .open(cloud::INBOX_REPLY, &answer.payload)
        .map_err(|e| format!("the inbox's answer does not open: {e}"))?;
    if opened.sender != cloud_key {
        return Err("the inbox's answer is not from the cloud".into());
    }
    InboxReply::decode(opened.payload.as_slice()).map_err(|e| e.to_string())
}

/// What following the broadcasts counted.
#[derive(Debug, Default)]
pub struct BroadcastCounters {
    /// Broadcasts applied.
    pub applied: std::sync::atomic::AtomicU64,
    /// Broadcasts refused (not from the cloud, unreadable, stale).
    pub refused: std::sync::atomic::AtomicU64,
}

/// Applies every broadcast that opens and comes from `cloud_key` to `list`, until the
/// subscription ends. Anything else — sealed by another key, the user's own included — is
/// refused and counted.
pub async fn follow_broadcasts(
    client: Client,
    identity: Identity,
    cloud_key: PublicKey,
    list: Arc<RwLock<Blacklist>>,
    counters: Arc<BroadcastCounters>,
) -> Result<(), String> {
    use std::sync::atomic::Ordering::Relaxed;
    let mut sub = client
        .subscribe(format!("{}.*", cloud::BROADCAST))
        .await
        .map_err(|e| e.to_string())?;
    client.flush().await.map_err(|e| e.to_string())?;
    let mut opener = Opener::new(&identity);
    opener.trust(cloud_key);
    while let Some(m) = sub.next().await {
        let opened = match opener.open(&m.subject, &m.payload) {
            Ok(o) if o.sender == cloud_key => o,
            Ok(o) => {
                counters.refused.fetch_add(1, Relaxed);
                tracing::warn!(sender = %o.sender, "a blacklist broadcast not sealed by the cloud: refused");
                continue;
            }
            Err(e) => {
                counters.refused.fetch_add(1, Relaxed);
                tracing::warn!(error = %e, "a blacklist broadcast that does not open: refused");
                continue;
            }
        };
        let Ok(b) = BlacklistBroadcast::decode(opened.payload.as_slice()) else {
            counters.refused.fetch_add(1, Relaxed);
            continue;
        };
        let applied = list.write().unwrap_or_else(|p| p.into_inner()).apply(&b);
        if applied {
            counters.applied.fetch_add(1, Relaxed);
            tracing::debug!(entries = b.entries.len(), "blacklist from the cloud");
        } else {
            counters.refused.fetch_add(1, Relaxed);
        }
    }
    Ok(())
}
