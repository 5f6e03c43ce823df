//! The cloud's public key, found in the DNS TXT record `cloud._pubkey.<domain>`, and its
//! signing key ([`crate::cloud_sig`]) in `cloud._signkey.<domain>`.
//!
//! DNS without DNSSEC can be spoofed, so a key can also be pinned in config: when both are
//! present they must agree, and the pin alone is enough when DNS is not wanted.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::Resolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use serde::{Deserialize, Serialize};

use crate::cloud_sig::SigningPublicKey;
use crate::identity::PublicKey;

/// How to find the cloud key; the `[cloud]` table of an instance's config.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CloudKeyConfig {
    /// The domain whose `cloud._pubkey.<domain>` TXT record holds the key.
    pub domain: Option<String>,
    /// A name server to ask (`ip:port`) instead of the system's resolvers.
    pub name_server: Option<SocketAddr>,
    /// The expected key (64 hex characters): must match DNS, or is used alone without a domain.
    pub pinned: Option<String>,
    /// The expected signing key (64 hex characters), likewise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_signing: Option<String>,
    /// Seconds to wait for DNS.
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

/// Why the cloud key could not be established.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CloudKeyError {
    /// Neither a domain nor a pinned key is configured.
    #[error("no cloud key source: set [cloud] domain = \"example.org\" or pinned = \"<64 hex>\"")]
    NotConfigured,
    /// The pinned value itself is not a key.
    #[error("[cloud] pinned is not a key: {0}")]
    BadPin(String),
    /// The name has no TXT record.
    #[error("no TXT record at {0}: publish the value printed by `flowmesh keygen --cloud` there")]
    NoRecord(String),
    /// The TXT record is not 64 hexadecimal characters.
    #[error(
        "TXT record at {name} is malformed ({reason}): expected 64 hexadecimal characters, got {value:?}"
    )]
    Malformed {
        /// The name looked up.
        name: String,
        /// What was found.
        value: String,
        /// Why it is not a key.
        reason: String,
    },
    /// DNS and the pinned key disagree.
    #[error(
        "cloud key mismatch: DNS at {name} says {dns}, config pins {pinned}; refusing both (a spoofed record, or a stale pin)"
    )]
    PinMismatch {
        /// The name looked up.
        name: String,
        /// The key in DNS.
        dns: String,
        /// The pinned key.
        pinned: String,
    },
    /// The name server did not answer in time.
    #[error("DNS lookup of {name} timed out after {secs}s (name server {server})")]
    Timeout {
        /// The name looked up.
        name: String,
        /// The timeout.
        secs: u64,
        /// The server asked.
        server: String,
    },
    /// Any other resolver failure.
    #[error("DNS lookup of {name} failed: {reason}")]
    Resolver {
        /// The name looked up.
        name: String,
        /// The resolver's message.
        reason: String,
    },
}

/// The DNS name that holds the cloud key of `domain`.
pub fn record_name(domain: &str) -> String {
    format!("cloud._pubkey.{}.", domain.trim_end_matches('.'))
}

/// The DNS name that holds the cloud's signing key of `domain`.
pub fn signing_record_name(domain: &str) -> String {
    format!("cloud._signkey.{}.", domain.trim_end_matches('.'))
}

fn build_resolver(
    cfg: &CloudKeyConfig,
    timeout: Duration,
) -> Result<Resolver<TokioRuntimeProvider>, String> {
    let mut opts = ResolverOpts::default();
    opts.timeout = timeout;
    opts.attempts = 1;
    opts.cache_size = 0;
    let builder = match cfg.name_server {
        Some(addr) => {
            let mut udp = ConnectionConfig::udp();
            udp.port = addr.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = addr.port();
            let ns = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
            Resolver::builder_with_config(
                ResolverConfig::from_name_servers(vec![ns]),
                TokioRuntimeProvider::default(),
            )
        }
        None => Resolver::builder_tokio().map_err(|e| e.to_string())?,
    };
    builder
        .with_options(opts)
        .build()
        .map_err(|e| e.to_string())
}

/// Extracts the key from TXT values; several records must all carry the same key.
#[cfg(test)]
fn parse_txt(name: &str, values: &[String]) -> Result<PublicKey, CloudKeyError> {
    parse_txt_with(name, values, |v| {
        PublicKey::from_hex(v).map_err(|e| e.to_string())
    })
}

fn parse_txt_with<K: PartialEq + Copy>(
    name: &str,
    values: &[String],
    parse: impl Fn(&str) -> Result<K, String>,
) -> Result<K, CloudKeyError> {
    let malformed = |value: &str, reason: String| CloudKeyError::Malformed {
        name: name.to_string(),
        value: value.chars().take(100).collect(),
        reason,
    };
    let mut found: Option<K> = None;
    for value in values {
        let key = parse(value).map_err(|e| malformed(value, e))?;
        if found.is_some_and(|k| k != key) {
            return Err(malformed(
                value,
                "several TXT records with different keys".into(),
            ));
        }
        found = Some(key);
    }
    found.ok_or_else(|| CloudKeyError::NoRecord(name.to_string()))
}

/// Finds the cloud's public key as `cfg` says: DNS, checked against the pin if any.
pub async fn resolve(cfg: &CloudKeyConfig) -> Result<PublicKey, CloudKeyError> {
    let parse = |t: &str| PublicKey::from_hex(t).map_err(|e| e.to_string());
    let key = resolve_one(cfg, cfg.pinned.as_deref(), record_name, parse).await?;
    tracing::info!(key = %key.short(), pinned = cfg.pinned.is_some(), "cloud key found");
    Ok(key)
}

/// Finds the cloud's signing key as `cfg` says: `cloud._signkey.<domain>`, checked against
/// `pinned_signing` if any (or the pin alone).
pub async fn resolve_signing(cfg: &CloudKeyConfig) -> Result<SigningPublicKey, CloudKeyError> {
    let pin = cfg.pinned_signing.as_deref();
    let key = resolve_one(cfg, pin, signing_record_name, SigningPublicKey::from_hex).await?;
    tracing::info!(pinned = pin.is_some(), "cloud signing key found");
    Ok(key)
}

/// One key: from DNS at `name_of(domain)`, which must agree with `pin`; or `pin` alone.
async fn resolve_one<K: PartialEq + Copy + Hex>(
    cfg: &CloudKeyConfig,
    pin: Option<&str>,
    name_of: fn(&str) -> String,
    parse: impl Fn(&str) -> Result<K, String>,
) -> Result<K, CloudKeyError> {
    let pinned = pin
        .map(|p| parse(p).map_err(CloudKeyError::BadPin))
        .transpose()?;
    let Some(domain) = cfg.domain.as_deref() else {
        return pinned.ok_or(CloudKeyError::NotConfigured);
    };
    let name = name_of(domain);
    let key = parse_txt_with(&name, &txt_values(cfg, &name).await?, parse)?;
    match pinned {
        Some(pin) if pin != key => Err(CloudKeyError::PinMismatch {
            name,
            dns: key.hex(),
            pinned: pin.hex(),
        }),
        _ => Ok(key),
    }
}

/// Keys shown in errors as hex.
trait Hex {
    fn hex(&self) -> String;
}

impl Hex for PublicKey {
    fn hex(&self) -> String {
        self.to_hex()
    }
}

impl Hex for SigningPublicKey {
    fn hex(&self) -> String {
        self.to_hex()
    }
}

/// The TXT values at `name`, each one's strings joined.
async fn txt_values(cfg: &CloudKeyConfig, name: &str) -> Result<Vec<String>, CloudKeyError> {
    let timeout = Duration::from_secs(cfg.timeout_secs.unwrap_or(5).max(1));
    let server = cfg
        .name_server
        .map(|a| a.to_string())
        .unwrap_or_else(|| "system resolvers".into());
    let resolver = build_resolver(cfg, timeout).map_err(|reason| CloudKeyError::Resolver {
        name: name.to_string(),
        reason,
    })?;
    // The resolver's own timeout covers one attempt; this one bounds the whole lookup.
    let lookup =
        tokio::time::timeout(timeout + Duration::from_secs(1), resolver.txt_lookup(name)).await;
    let timed_out = || CloudKeyError::Timeout {
        name: name.to_string(),
        secs: timeout.as_secs(),
        server: server.clone(),
    };
    let answer = match lookup {
        Err(_) => return Err(timed_out()),
        Ok(Err(e)) => return Err(classify(name, e, timed_out)),
        Ok(Ok(answer)) => answer,
    };
    Ok(answer
        .answers()
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(txt) => Some(
                txt.txt_data
                    .iter()
                    .map(|part| String::from_utf8_lossy(part).into_owned())
                    .collect::<String>(),
            ),
            _ => None,
        })
        .collect())
}

fn classify(name: &str, e: NetError, timed_out: impl FnOnce() -> CloudKeyError) -> CloudKeyError {
    if e.is_no_records_found() || e.is_nx_domain() {
        CloudKeyError::NoRecord(name.to_string())
    } else if matches!(e, NetError::Timeout) || e.to_string().contains("timed out") {
        timed_out()
    } else {
        CloudKeyError::Resolver {
            name: name.to_string(),
            reason: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txt_values_must_be_one_key() {
        let k = "ab".repeat(32);
        let n = "cloud._pubkey.example.org.";
        assert_eq!(parse_txt(n, std::slice::from_ref(&k)).unwrap().to_hex(), k);
        assert_eq!(parse_txt(n, &[k.clone(), k.clone()]).unwrap().to_hex(), k);
        assert!(matches!(
            parse_txt(n, &["nope".into()]),
            Err(CloudKeyError::Malformed { .. })
        ));
        assert!(matches!(
            parse_txt(n, &[k, "cd".repeat(32)]),
            Err(CloudKeyError::Malformed { .. })
        ));
        assert_eq!(parse_txt(n, &[]), Err(CloudKeyError::NoRecord(n.into())));
    }

    #[test]
    fn record_name_is_fully_qualified() {
        assert_eq!(record_name("ntop.org"), "cloud._pubkey.ntop.org.");
        assert_eq!(record_name("ntop.org."), "cloud._pubkey.ntop.org.");
    }
}
