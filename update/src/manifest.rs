//! Release manifests and their signatures.
//!
//! A release is a binary and a manifest: version, platform, size, SHA-256, notes. The manifest
//! is signed with Ed25519 by the release key, which the cloud operator keeps offline from the
//! manager (`flowmesh release keygen`); instances pin its public half (`[update]
//! release_key`). The manager and the broker only carry releases: whoever runs them cannot make
//! an instance install anything the release key did not sign.
//!
//! Signed bytes: `"flowmesh/release/v1\0"` then the manifest's JSON text, exactly as stored.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

const CONTEXT: &[u8] = b"flowmesh/release/v1\0";

/// What a release is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Its version (semantic versioning), as the binary's stamp says.
    pub version: String,
    /// What it runs on: `<arch>-<os>` as Rust names them, e.g. `x86_64-linux`.
    pub platform: String,
    /// Bytes in the binary.
    pub size: u64,
    /// SHA-256 of the binary, lowercase hex.
    pub sha256: String,
    /// What changed (shown, not interpreted).
    #[serde(default)]
    pub notes: String,
    /// When it was published, seconds since the epoch.
    pub published: i64,
}

impl Manifest {
    /// The object name of its binary in the release bucket.
    pub fn object(&self) -> String {
        object_name(&self.version, &self.platform)
    }
}

/// The object name of the binary of `version` for `platform`.
pub fn object_name(version: &str, platform: &str) -> String {
    format!("{version}/{platform}")
}

/// The object name of the signed manifest beside a binary.
pub fn manifest_object(version: &str, platform: &str) -> String {
    format!("{}.manifest", object_name(version, platform))
}

/// The platform this build runs on.
pub fn platform() -> String {
    format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS)
}

/// A manifest as published: its JSON text and the signature over it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedManifest {
    /// The manifest's JSON, exactly as signed.
    pub manifest: String,
    /// Ed25519 signature, lowercase hex.
    pub signature: String,
}

/// Why a release is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReleaseError {
    /// The signature does not verify with the pinned key.
    #[error("the release's signature does not verify with the pinned release key")]
    BadSignature,
    /// The manifest is not readable.
    #[error("the release manifest is malformed: {0}")]
    Malformed(String),
    /// A key that is not 32 bytes of hex.
    #[error("release key: {0}")]
    BadKey(String),
}

impl SignedManifest {
    /// Signs `m` with `key`.
    pub fn sign(m: &Manifest, key: &ReleaseKey) -> SignedManifest {
        let manifest = serde_json::to_string(m).unwrap_or_default();
        let signature = key.0.sign(&signed_bytes(&manifest)).to_bytes();
        SignedManifest {
            manifest,
            signature: hex::encode(signature),
        }
    }

    /// The manifest, if its signature verifies with `key`.
    pub fn verify(&self, key: &ReleasePublicKey) -> Result<Manifest, ReleaseError> {
        let sig = hex::decode(&self.signature)
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
            .map(|b| Signature::from_bytes(&b))
            .ok_or(ReleaseError::BadSignature)?;
        let vk =
            VerifyingKey::from_bytes(&key.0).map_err(|e| ReleaseError::BadKey(e.to_string()))?;
        vk.verify(&signed_bytes(&self.manifest), &sig)
            .map_err(|_| ReleaseError::BadSignature)?;
        serde_json::from_str(&self.manifest).map_err(|e| ReleaseError::Malformed(e.to_string()))
    }

    /// The manifest without checking its signature: for listing only, never for installing.
    pub fn unverified(&self) -> Result<Manifest, ReleaseError> {
        serde_json::from_str(&self.manifest).map_err(|e| ReleaseError::Malformed(e.to_string()))
    }
}

fn signed_bytes(manifest: &str) -> Vec<u8> {
    let mut out = CONTEXT.to_vec();
    out.extend_from_slice(manifest.as_bytes());
    out
}

/// The release signing key (private). Not `Debug`: it is never printed.
pub struct ReleaseKey(SigningKey);

impl ReleaseKey {
    /// A new random key.
    pub fn generate() -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, seed.as_mut());
        ReleaseKey(SigningKey::from_bytes(&seed))
    }

    /// The file form: a comment and the 32-byte seed in hex.
    pub fn to_file(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "# flowmesh release signing key: PRIVATE (mode 0600); public key {}\n{}\n",
            self.public().to_hex(),
            hex::encode(self.0.to_bytes())
        ))
    }

    /// From the file form.
    pub fn from_file(text: &str) -> Result<Self, ReleaseError> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .ok_or_else(|| ReleaseError::BadKey("no key in the file".into()))?;
        let bytes = Zeroizing::new(
            hex::decode(line).map_err(|e| ReleaseError::BadKey(format!("not hex: {e}")))?,
        );
        let seed: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| ReleaseError::BadKey("not 32 bytes".into()))?;
        Ok(ReleaseKey(SigningKey::from_bytes(&seed)))
    }

    /// Its public half.
    pub fn public(&self) -> ReleasePublicKey {
        ReleasePublicKey(self.0.verifying_key().to_bytes())
    }
}

/// The release key's public half, as instances pin it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReleasePublicKey(pub [u8; 32]);

impl ReleasePublicKey {
    /// 64 lowercase hex characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// From 64 hex characters.
    pub fn from_hex(text: &str) -> Result<Self, ReleaseError> {
        let bytes =
            hex::decode(text.trim()).map_err(|e| ReleaseError::BadKey(format!("not hex: {e}")))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| ReleaseError::BadKey("must be 64 hex characters".into()))?;
        VerifyingKey::from_bytes(&key).map_err(|e| ReleaseError::BadKey(e.to_string()))?;
        Ok(ReleasePublicKey(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            version: "1.2.0".into(),
            platform: platform(),
            size: 3,
            sha256: "ab".repeat(32),
            notes: String::new(),
            published: 1,
        }
    }

    #[test]
    fn a_signed_manifest_verifies_only_with_its_key_and_unchanged() {
        let key = ReleaseKey::generate();
        let signed = SignedManifest::sign(&manifest(), &key);
        assert_eq!(signed.verify(&key.public()).unwrap(), manifest());
        let other = ReleaseKey::generate();
        assert_eq!(
            signed.verify(&other.public()),
            Err(ReleaseError::BadSignature)
        );
        let mut changed = signed.clone();
        changed.manifest = changed.manifest.replace("1.2.0", "9.2.0");
        assert_eq!(
            changed.verify(&key.public()),
            Err(ReleaseError::BadSignature)
        );
        let again = ReleaseKey::from_file(&key.to_file()).unwrap();
        assert_eq!(again.public(), key.public());
        assert_eq!(
            ReleasePublicKey::from_hex(&key.public().to_hex()).unwrap(),
            key.public()
        );
        assert!(ReleasePublicKey::from_hex("abcd").is_err());
    }
}
