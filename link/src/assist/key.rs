//! The assistance key: everything a support engineer needs to reach one instance for one
//! session, in one line of text to hand over (`fmassist1_` and base64url of a JSON object).
//!
//! It holds the session secret (tunnel keys come from it), the session's broker credentials
//! (a NATS user JWT that may only use this session's subjects and expires with it, and its
//! nkey seed), the cluster's URLs and CA certificate. Whoever holds the key can use the session
//! until it ends; nothing in it opens anything else of the user's.

use std::path::Path;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::connect::BrokerConfig;
use crate::secret_file;

/// The text every key starts with (the version is in it).
pub const PREFIX: &str = "fmassist1_";

/// Why a key is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// Not a flowmesh assistance key, or one of another version.
    #[error("not a flowmesh assistance key (they start with {PREFIX})")]
    NotAKey,
    /// Damaged in transit: not base64url, not JSON, or a field is wrong.
    #[error("the assistance key is damaged ({0}): copy it again, whole")]
    Damaged(String),
    /// The session it opens has ended.
    #[error("the assistance session ended at {0} (UTC): ask for a new key")]
    Expired(String),
}

/// An assistance key, read. `Debug` shows the instance, session and expiry, never the secret
/// or the credentials.
#[derive(Clone, Serialize, Deserialize)]
pub struct AssistKey {
    /// The instance the session reaches.
    pub instance: String,
    /// The session id (32 hex digits; a subject token).
    pub session: String,
    /// The session secret, 64 hex digits (256 bits from the OS RNG).
    #[serde(with = "zeroizing")]
    secret: Zeroizing<String>,
    /// When the session ends, Unix seconds.
    pub expires: i64,
    /// Whether tunnelled requests act as the instance's admin.
    pub admin: bool,
    /// The cluster's seed URLs.
    pub urls: Vec<String>,
    /// Seed URLs by region (the nearest is tried first).
    #[serde(default)]
    pub regions: std::collections::BTreeMap<String, Vec<String>>,
    /// The cluster CA certificate (PEM).
    ca: String,
    /// The session's user JWT.
    jwt: String,
    /// Its nkey seed.
    #[serde(with = "zeroizing")]
    seed: Zeroizing<String>,
}

/// Secrets in the key's JSON: wiped from memory when dropped.
mod zeroizing {
    use serde::{Deserialize, Deserializer, Serializer};
    use zeroize::Zeroizing;

    pub fn serialize<S: Serializer>(v: &Zeroizing<String>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Zeroizing<String>, D::Error> {
        String::deserialize(d).map(Zeroizing::new)
    }
}

impl std::fmt::Debug for AssistKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssistKey")
            .field("instance", &self.instance)
            .field("session", &self.session)
            .field("expires", &self.expires)
            .field("admin", &self.admin)
            .finish_non_exhaustive()
    }
}

/// What an instance puts in a key.
pub struct KeyParts<'a> {
    /// The instance.
    pub instance: &'a str,
    /// The session id.
    pub session: &'a str,
    /// The session secret.
    pub secret: &'a [u8; 32],
    /// When it ends, Unix seconds.
    pub expires: i64,
    /// Admin access.
    pub admin: bool,
    /// The instance's own broker settings (URLs, regions, CA file).
    pub broker: &'a BrokerConfig,
    /// The session's user JWT and its seed.
    pub jwt: &'a str,
    /// The seed.
    pub seed: &'a str,
}

impl AssistKey {
    /// A key from its parts; reads the CA file the broker settings name.
    pub fn new(p: KeyParts<'_>) -> Result<Self, String> {
        let ca = std::fs::read_to_string(&p.broker.ca_file)
            .map_err(|e| format!("{}: {e}", p.broker.ca_file.display()))?;
        Ok(AssistKey {
            instance: p.instance.to_string(),
            session: p.session.to_string(),
            secret: Zeroizing::new(hex::encode(p.secret)),
            expires: p.expires,
            admin: p.admin,
            urls: p.broker.urls.clone(),
            regions: p.broker.regions.clone(),
            ca,
            jwt: p.jwt.to_string(),
            seed: Zeroizing::new(p.seed.to_string()),
        })
    }

    /// The key as text to hand over.
    pub fn encode(&self) -> Zeroizing<String> {
        let json = Zeroizing::new(serde_json::to_vec(self).unwrap_or_default());
        Zeroizing::new(format!(
            "{PREFIX}{}",
            data_encoding::BASE64URL_NOPAD.encode(&json)
        ))
    }

    /// Reads a key (surrounding white space and line breaks, as mail clients add them, are
    /// ignored). An expired one is refused; `now` is Unix seconds.
    pub fn parse(text: &str, now: i64) -> Result<Self, KeyError> {
        let text: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let body = text.strip_prefix(PREFIX).ok_or(KeyError::NotAKey)?;
        let json = Zeroizing::new(
            data_encoding::BASE64URL_NOPAD
                .decode(body.as_bytes())
                .map_err(|e| KeyError::Damaged(e.to_string()))?,
        );
        let key: AssistKey =
            serde_json::from_slice(&json).map_err(|e| KeyError::Damaged(e.to_string()))?;
        key.secret()?;
        crate::subject::validate_token(&key.instance)
            .map_err(|e| KeyError::Damaged(e.to_string()))?;
        super::check_session_id(&key.session).map_err(KeyError::Damaged)?;
        if key.expires <= now {
            return Err(KeyError::Expired(crate::time::rfc3339_secs(key.expires)));
        }
        Ok(key)
    }

    /// The session secret.
    pub fn secret(&self) -> Result<Zeroizing<[u8; 32]>, KeyError> {
        super::secret_from_hex(&self.secret)
            .ok_or_else(|| KeyError::Damaged("the secret is not 64 hex digits".into()))
    }

    /// Broker settings for the session's credentials: the CA certificate and the credentials
    /// are written into `dir` (0600; give it a private directory that goes away after use).
    pub fn broker_config(&self, dir: &Path) -> Result<BrokerConfig, String> {
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, &self.ca).map_err(|e| format!("{}: {e}", ca_file.display()))?;
        let creds_file = dir.join("session.creds");
        let creds = Zeroizing::new(format!(
            "-----BEGIN NATS USER JWT-----\n{}\n------END NATS USER JWT------\n\n\
             -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
            self.jwt,
            self.seed.as_str()
        ));
        secret_file::write(&creds_file, creds.as_bytes(), true).map_err(|e| e.to_string())?;
        Ok(BrokerConfig {
            urls: self.urls.clone(),
            ca_file,
            creds_file,
            connect_timeout_secs: 10,
            regions: self.regions.clone(),
            region: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(expires: i64) -> AssistKey {
        AssistKey {
            instance: "eu-collector".into(),
            session: "0123456789abcdef0123456789abcdef".into(),
            secret: Zeroizing::new("ab".repeat(32)),
            expires,
            admin: true,
            urls: vec!["tls://127.0.0.1:4222".into()],
            regions: Default::default(),
            ca: "-----BEGIN CERTIFICATE-----\n...".into(),
            jwt: "eyJ0eXAi.x.y".into(),
            seed: Zeroizing::new("SUAB".into()),
        }
    }

    #[test]
    fn a_key_survives_the_text_and_the_line_breaks_mail_adds() {
        let text = key(2_000).encode();
        let wrapped: String = text
            .as_bytes()
            .chunks(60)
            .map(|c| format!("{}\n", String::from_utf8_lossy(c)))
            .collect();
        let back = AssistKey::parse(&format!("  {wrapped}  "), 1_000).unwrap();
        assert_eq!(back.session, "0123456789abcdef0123456789abcdef");
        assert_eq!(*back.secret().unwrap(), [0xab; 32]);
        assert!(back.admin);
        let shown = format!("{back:?}");
        assert!(!shown.contains("abab") && !shown.contains("SUAB") && !shown.contains("eyJ"));
    }

    #[test]
    fn damaged_foreign_and_expired_keys_are_refused_with_a_reason() {
        let text = key(2_000).encode();
        assert_eq!(AssistKey::parse("hello", 0).unwrap_err(), KeyError::NotAKey);
        let cut = &text[..text.len() - 7];
        assert!(matches!(
            AssistKey::parse(cut, 0),
            Err(KeyError::Damaged(_))
        ));
        assert!(matches!(
            AssistKey::parse(&text, 2_000),
            Err(KeyError::Expired(_))
        ));
        let mut bad = key(2_000);
        bad.session = "../x".into();
        assert!(matches!(
            AssistKey::parse(&bad.encode(), 0),
            Err(KeyError::Damaged(_))
        ));
    }
}
