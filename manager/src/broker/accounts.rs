//! The cluster's accounts as the operator keeps them, one small file each, so that enrolling
//! the thousandth user touches two files, not a list of a thousand:
//!
//! ```text
//! OUT/accounts/<name>.json     public record: account key, signing key, user id, instances
//!                              (public user keys, roles, expiry), revocations
//! OUT/accounts/<name>.jwt      the account JWT last signed (what the nodes' resolvers hold)
//! OUT/secrets/accounts/<name>.nk  the account's signing seed (0600)
//! ```
//!
//! `SYS` (the system account) and `CLOUD` (the manager's inbox, broadcasts and releases) are
//! accounts like users' but without instance roles or imports; `SYS` has no JetStream.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use flowmesh_link::subject::{cloud, validate_token};
use nkeys::KeyPair;
use serde::{Deserialize, Serialize};

use super::jwt::{self, AccountClaims};
use super::roles::Role;
use super::{BrokerError, invalid};

/// The system account's name.
pub const SYSTEM: &str = "SYS";
/// The cloud account's name.
pub const CLOUD: &str = "CLOUD";

/// One instance's credentials, public half.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InstanceRecord {
    /// The public nkey its user JWT is issued to.
    pub key: String,
    /// What it may do.
    pub role: Role,
    /// When its JWT was issued (s).
    pub issued: i64,
    /// When its JWT expires (s), if ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<i64>,
}

/// One account.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccountRecord {
    /// `SYS`, `CLOUD` or the user's name.
    pub name: String,
    /// The account's public key (its identity in every JWT).
    pub account: String,
    /// The public key that signs its users (the seed is in `secrets/accounts/<name>.nk`).
    pub signing_key: String,
    /// The user's X25519 public key (hex), for cloud users: what its envelopes are sealed with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Its instances, by name.
    #[serde(default)]
    pub instances: BTreeMap<String, InstanceRecord>,
    /// Revoked user keys → revoked for JWTs issued at or before this time (s).
    #[serde(default)]
    pub revoked: BTreeMap<String, i64>,
}

/// Whether `name` may be a user's account name.
pub fn check_user_name(name: &str) -> Result<(), BrokerError> {
    if validate_token(name).is_err() || name == SYSTEM || name == CLOUD {
        return Err(invalid(format!(
            "user name {name:?} must be letters, digits, '-' or '_' (and not {SYSTEM} or {CLOUD})"
        )));
    }
    Ok(())
}

fn record_path(out: &Path, name: &str) -> PathBuf {
    out.join("accounts").join(format!("{name}.json"))
}

fn seed_path(out: &Path, name: &str) -> PathBuf {
    out.join("secrets/accounts").join(format!("{name}.nk"))
}

impl AccountRecord {
    /// A new account named `name`: fresh account and signing keys; the signing seed is written
    /// to `secrets/` (the account's own seed is not kept: only the operator signs accounts).
    pub fn create(out: &Path, name: &str, user_id: Option<String>) -> Result<Self, BrokerError> {
        let account = KeyPair::new_account();
        let signing = KeyPair::new_account();
        let seed = signing
            .seed()
            .map_err(|e| BrokerError::Nkey(e.to_string()))?;
        let body = format!("# signing seed of account {name}: PRIVATE (mode 0600)\n{seed}\n");
        flowmesh_link::secret_file::write(&seed_path(out, name), body.as_bytes(), true)?;
        Ok(AccountRecord {
            name: name.to_string(),
            account: account.public_key(),
            signing_key: signing.public_key(),
            user_id,
            instances: BTreeMap::new(),
            revoked: BTreeMap::new(),
        })
    }

    /// The record of account `name`, or `None` if there is none.
    pub fn find(out: &Path, name: &str) -> Result<Option<Self>, BrokerError> {
        let path = record_path(out, name);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(BrokerError::Io { path, source }),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| invalid(format!("{}: {e}", path.display())))
    }

    /// The record of account `name`; its absence is an error that says what to do.
    pub fn load(out: &Path, name: &str) -> Result<Self, BrokerError> {
        Self::find(out, name)?.ok_or_else(|| {
            invalid(format!(
                "no account {name} in {} (no {}): enroll the user first, or is this a directory \
                 written by `flowmesh broker init`?",
                out.display(),
                record_path(out, name).display()
            ))
        })
    }

    /// Every user account's record (not `SYS` or `CLOUD`), by name.
    pub fn all_users(out: &Path) -> Result<Vec<Self>, BrokerError> {
        let dir = out.join("accounts");
        let entries = std::fs::read_dir(&dir).map_err(|source| BrokerError::Io {
            path: dir.clone(),
            source,
        })?;
        let mut users = Vec::new();
        for e in entries.flatten() {
            let file = e.file_name().to_string_lossy().into_owned();
            let Some(name) = file.strip_suffix(".json") else {
                continue;
            };
            if name == SYSTEM || name == CLOUD {
                continue;
            }
            if let Some(r) = Self::find(out, name)? {
                users.push(r);
            }
        }
        users.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(users)
    }

    /// Writes the record and the account JWT (atomically: a reader sees the old or the new).
    pub fn save(&self, out: &Path, account_jwt: &str) -> Result<(), BrokerError> {
        let json = serde_json::to_string_pretty(self).map_err(|e| invalid(e.to_string()))?;
        super::write_atomic(&record_path(out, &self.name), json.as_bytes())?;
        super::write_atomic(
            &out.join("accounts").join(format!("{}.jwt", self.name)),
            account_jwt.as_bytes(),
        )
    }

    /// The account JWT last written for account `name`.
    pub fn jwt(out: &Path, name: &str) -> Result<String, BrokerError> {
        let path = out.join("accounts").join(format!("{name}.jwt"));
        std::fs::read_to_string(&path)
            .map(|s| s.trim().to_string())
            .map_err(|source| BrokerError::Io { path, source })
    }

    /// The key that signs this account's users.
    pub fn signer(&self, out: &Path) -> Result<KeyPair, BrokerError> {
        read_seed(&seed_path(out, &self.name))
    }

    /// What the account JWT says: JetStream and the imports of the cloud's inbox and broadcast
    /// for users, the exports for `CLOUD`, its signing key and revocations for all.
    pub fn claims(&self, cloud_account: &str) -> AccountClaims {
        let mut c = AccountClaims {
            signing_keys: vec![self.signing_key.clone()],
            revocations: self.revoked.iter().map(|(k, t)| (k.clone(), *t)).collect(),
            ..AccountClaims::default()
        };
        match self.name.as_str() {
            SYSTEM => {}
            CLOUD => {
                // The inbox is a service each user reaches only on its own subject; broadcasts
                // are streams each user receives only on its own subject. Releases are kept in
                // CLOUD's JetStream and reach users only through the release service.
                c.jetstream = true;
                c.exports = vec![
                    jwt::service_export("inbox", &format!("{}.*", cloud::INBOX)),
                    jwt::stream_export("broadcast", &format!("{}.*", cloud::BROADCAST)),
                    jwt::service_export("release", &format!("{}.*", cloud::RELEASE)),
                ];
            }
            user => {
                c.jetstream = true;
                c.imports = vec![
                    jwt::service_import(
                        "cloud-inbox",
                        cloud_account,
                        &cloud::inbox_of(user),
                        cloud::INBOX,
                    ),
                    jwt::stream_import(
                        "cloud-broadcast",
                        cloud_account,
                        &cloud::broadcast_to(user),
                    ),
                    jwt::service_import(
                        "cloud-release",
                        cloud_account,
                        &cloud::release_of(user),
                        cloud::RELEASE,
                    ),
                ];
            }
        }
        c
    }
}

/// Reads an nkey seed file (the first line starting with `S`).
pub fn read_seed(path: &Path) -> Result<KeyPair, BrokerError> {
    let text = flowmesh_link::secret_file::read(path)?;
    let seed = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with('S'))
        .ok_or_else(|| invalid(format!("{}: no nkey seed in it", path.display())))?;
    KeyPair::from_seed(seed).map_err(|e| BrokerError::Nkey(format!("{}: {e}", path.display())))
}
