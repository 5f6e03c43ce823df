//! NATS decentralized-auth JWTs (version 2, as nats-server and the `nats` CLI read them):
//! operator, account and user claims, signed with nkeys, and the `.creds` file a client logs
//! in with. A node trusts the operator, holds accounts in its `full` resolver (pushed live),
//! and needs no user in its config.
//!
//! Format: `base64url(header) "." base64url(claims) "." base64url(ed25519 signature of the
//! first two parts)`, unpadded; the header is `{"typ":"JWT","alg":"ed25519-nkey"}`; the claims'
//! `jti` is the unpadded base32 of the SHA-512/256 of the claims with an empty `jti`.

use nkeys::KeyPair;
use serde_json::{Value, json};
use sha2::Digest;

/// Why a JWT could not be made.
#[derive(Debug, thiserror::Error)]
#[error("JWT: {0}")]
pub struct JwtError(String);

fn b64(bytes: &[u8]) -> String {
    data_encoding::BASE64URL_NOPAD.encode(bytes)
}

/// Signs `nats` claims about `subject` (a public nkey) with `issuer`.
pub fn encode(
    issuer: &KeyPair,
    subject: &str,
    name: &str,
    issued_at: i64,
    expires: Option<i64>,
    nats: Value,
) -> Result<String, JwtError> {
    let mut claims = json!({
        "jti": "",
        "iat": issued_at,
        "iss": issuer.public_key(),
        "name": name,
        "sub": subject,
        "nats": nats,
    });
    if let Some(exp) = expires {
        claims["exp"] = json!(exp);
    }
    let unsigned = serde_json::to_vec(&claims).map_err(|e| JwtError(e.to_string()))?;
    let digest = sha2::Sha512_256::digest(&unsigned);
    claims["jti"] = json!(data_encoding::BASE32_NOPAD.encode(&digest));
    let header = b64(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let body = b64(&serde_json::to_vec(&claims).map_err(|e| JwtError(e.to_string()))?);
    let signing_input = format!("{header}.{body}");
    let signature = issuer
        .sign(signing_input.as_bytes())
        .map_err(|e| JwtError(e.to_string()))?;
    Ok(format!("{signing_input}.{}", b64(&signature)))
}

/// The claims of a JWT, unverified (for reading back what was written).
pub fn claims(jwt: &str) -> Result<Value, JwtError> {
    flowmesh_link::connect::unverified_claims(jwt).ok_or_else(|| JwtError("not a JWT".into()))
}

/// No limit, as NATS writes it.
const UNLIMITED: i64 = -1;

/// An operator JWT, self-signed, naming the system account.
pub fn operator(
    op: &KeyPair,
    name: &str,
    system_account: &str,
    now: i64,
) -> Result<String, JwtError> {
    encode(
        op,
        &op.public_key(),
        name,
        now,
        None,
        json!({"type": "operator", "version": 2, "system_account": system_account}),
    )
}

/// What an account JWT says beyond its key: JetStream on or off, its signing keys, exports,
/// imports and revoked users.
#[derive(Debug, Clone, Default)]
pub struct AccountClaims {
    /// JetStream with no limits (users' accounts, CLOUD); off for the system account.
    pub jetstream: bool,
    /// Public keys that may sign this account's users.
    pub signing_keys: Vec<String>,
    /// `exports` entries, as NATS writes them.
    pub exports: Vec<Value>,
    /// `imports` entries, as NATS writes them.
    pub imports: Vec<Value>,
    /// User public key → revoked for JWTs issued at or before this time (s).
    pub revocations: Vec<(String, i64)>,
}

/// An account JWT signed by the operator.
pub fn account(
    op: &KeyPair,
    account_key: &str,
    name: &str,
    c: &AccountClaims,
    now: i64,
) -> Result<String, JwtError> {
    let js = if c.jetstream { UNLIMITED } else { 0 };
    let revocations: serde_json::Map<String, Value> = c
        .revocations
        .iter()
        .map(|(k, t)| (k.clone(), json!(t)))
        .collect();
    let mut nats = json!({
        "type": "account",
        "version": 2,
        "limits": {
            "subs": UNLIMITED, "data": UNLIMITED, "payload": UNLIMITED, "imports": UNLIMITED,
            "exports": UNLIMITED, "wildcards": true, "conn": UNLIMITED, "leaf": UNLIMITED,
            "mem_storage": js, "disk_storage": js, "streams": js, "consumer": js,
            "max_ack_pending": UNLIMITED, "mem_max_stream_bytes": UNLIMITED,
            "disk_max_stream_bytes": UNLIMITED, "max_bytes_required": false,
        },
        "default_permissions": {"pub": {}, "sub": {}},
        "signing_keys": c.signing_keys,
    });
    if !c.exports.is_empty() {
        nats["exports"] = json!(c.exports);
    }
    if !c.imports.is_empty() {
        nats["imports"] = json!(c.imports);
    }
    if !revocations.is_empty() {
        nats["revocations"] = Value::Object(revocations);
    }
    encode(op, account_key, name, now, None, nats)
}

/// Subjects a user may publish and subscribe to (empty lists: no limit of that kind).
#[derive(Debug, Clone, Default)]
pub struct Permissions {
    /// Publish allow-list.
    pub publish: Vec<String>,
    /// Subscribe allow-list.
    pub subscribe: Vec<String>,
    /// Reply to requests it received (one response each), as services do.
    pub allow_responses: bool,
}

/// What a user JWT says about its holder.
#[derive(Debug, Clone, Default)]
pub struct UserClaims {
    /// Its name (the instance), reported by the broker as `name_tag`.
    pub name: String,
    /// What it may publish and subscribe to.
    pub permissions: Permissions,
    /// Tags the broker reports in connection events (`role:sensor`).
    pub tags: Vec<String>,
    /// Expiry, seconds since the epoch: the broker refuses it after, and closes its connections.
    pub expires: Option<i64>,
}

/// A user JWT signed by `signer` (the account key or one of its signing keys) for the account
/// `account_key`.
pub fn user(
    signer: &KeyPair,
    account_key: &str,
    user_key: &str,
    c: &UserClaims,
    now: i64,
) -> Result<String, JwtError> {
    let list = |l: &[String]| {
        if l.is_empty() {
            json!({})
        } else {
            json!({"allow": l})
        }
    };
    let mut nats = json!({
        "type": "user",
        "version": 2,
        "pub": list(&c.permissions.publish),
        "sub": list(&c.permissions.subscribe),
        "subs": UNLIMITED,
        "data": UNLIMITED,
        "payload": UNLIMITED,
    });
    if c.permissions.allow_responses {
        nats["resp"] = json!({"max": 1, "ttl": 0});
    }
    if !c.tags.is_empty() {
        nats["tags"] = json!(c.tags);
    }
    if signer.public_key() != account_key {
        nats["issuer_account"] = json!(account_key);
    }
    encode(signer, user_key, &c.name, now, c.expires, nats)
}

/// An export of a service (requests in, one answer each) on `subject`.
pub fn service_export(name: &str, subject: &str) -> Value {
    json!({"name": name, "subject": subject, "type": "service", "response_type": "Singleton"})
}

/// An export of a stream (messages out) on `subject`.
pub fn stream_export(name: &str, subject: &str) -> Value {
    json!({"name": name, "subject": subject, "type": "stream"})
}

/// An import of `account`'s service on `subject`, published to locally as `local`.
pub fn service_import(name: &str, account: &str, subject: &str, local: &str) -> Value {
    json!({"name": name, "account": account, "subject": subject, "local_subject": local, "type": "service"})
}

/// An import of `account`'s stream on `subject`, received under the same subject.
pub fn stream_import(name: &str, account: &str, subject: &str) -> Value {
    json!({"name": name, "account": account, "subject": subject, "type": "stream"})
}

/// A `.creds` file: the user JWT and its nkey seed, as `nats` tools write it.
pub fn creds(jwt: &str, seed: &str) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\
         NKEYs are sensitive and should be treated as secrets.\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n\
         *************************************************************\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jwt_says_who_signed_what_and_its_signature_verifies() {
        let op = KeyPair::new_operator();
        let acct = KeyPair::new_account();
        let jwt = account(
            &op,
            &acct.public_key(),
            "alice",
            &AccountClaims::default(),
            1,
        )
        .unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let c = claims(&jwt).unwrap();
        assert_eq!(c["iss"], op.public_key());
        assert_eq!(c["sub"], acct.public_key());
        assert_eq!(c["nats"]["type"], "account");
        assert_eq!(c["jti"].as_str().unwrap().len(), 52, "base32 of 32 bytes");
        let sig = data_encoding::BASE64URL_NOPAD
            .decode(parts[2].as_bytes())
            .unwrap();
        op.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
            .unwrap();
        let signer = KeyPair::new_account();
        let u = KeyPair::new_user();
        let claims_of_s1 = UserClaims {
            name: "s1".into(),
            permissions: Permissions {
                publish: vec!["flowmesh.flows.s1".into()],
                ..Permissions::default()
            },
            tags: vec!["role:sensor".into()],
            expires: Some(9),
        };
        let uj = user(
            &signer,
            &acct.public_key(),
            &u.public_key(),
            &claims_of_s1,
            1,
        )
        .unwrap();
        let c = claims(&uj).unwrap();
        assert_eq!(c["nats"]["issuer_account"], acct.public_key());
        assert_eq!(c["nats"]["pub"]["allow"][0], "flowmesh.flows.s1");
        assert_eq!(c["exp"], 9);
        assert_eq!(c["name"], "s1");
        assert_eq!(c["nats"]["tags"][0], "role:sensor");
        assert!(creds(&uj, &u.seed().unwrap()).contains("BEGIN USER NKEY SEED"));
    }
}
