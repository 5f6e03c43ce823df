//! Cloud signatures: what the cloud sends (blacklist broadcasts, inbox answers) carries an
//! Ed25519 signature by the cloud's signing key, inside the envelope.
//!
//! Why: the envelope authenticates its sender by Diffie-Hellman, and the static agreement
//! sender × recipient is the same number from either side. Whoever holds a *user's* private key
//! can therefore seal a message to that user that opens as if the cloud had sent it
//! (key-compromise impersonation). A signature can only be made with the cloud's own key.
//!
//! The signing key is derived from the cloud identity's secret (HKDF-SHA256), so the identity
//! file stays one secret; its public half is published beside the X25519 key, in the TXT record
//! `cloud._signkey.<domain>` (64 hex characters), and may be pinned.
//!
//! Signed bytes: `"flowmesh/cloud-signature/v1\0"`, the subject's length (u16, big-endian),
//! the subject, then the body.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::identity::Identity;

const CONTEXT: &[u8] = b"flowmesh/cloud-signature/v1\0";
const DERIVE_INFO: &[u8] = b"flowmesh/cloud-signing-key/v1";

/// The cloud's public signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigningPublicKey(pub [u8; 32]);

impl SigningPublicKey {
    /// 64 lowercase hex characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// From 64 hex characters (a TXT record or a pin).
    pub fn from_hex(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bytes = hex::decode(text).map_err(|e| format!("not hex: {e}"))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| format!("{} bytes, 32 expected", b.len()))?;
        VerifyingKey::from_bytes(&key).map_err(|_| "not an Ed25519 public key".to_string())?;
        Ok(SigningPublicKey(key))
    }
}

/// Why a signed message is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    /// Not 64 bytes.
    #[error("the cloud signature is missing or malformed")]
    Malformed,
    /// It does not verify with the cloud's signing key.
    #[error("the cloud signature does not verify: not sent by the cloud")]
    Invalid,
}

fn signing_key(cloud: &Identity) -> SigningKey {
    let secret = Zeroizing::new(cloud.secret().to_bytes());
    let hk = Hkdf::<Sha256>::new(None, secret.as_ref());
    let mut seed = Zeroizing::new([0u8; 32]);
    hk.expand(DERIVE_INFO, seed.as_mut())
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    SigningKey::from_bytes(&seed)
}

fn signed_bytes(subject: &str, body: &[u8]) -> Vec<u8> {
    let len = u16::try_from(subject.len()).unwrap_or(u16::MAX);
    let mut m = Vec::with_capacity(CONTEXT.len() + 2 + subject.len() + body.len());
    m.extend_from_slice(CONTEXT);
    m.extend_from_slice(&len.to_be_bytes());
    m.extend_from_slice(&subject.as_bytes()[..usize::from(len)]);
    m.extend_from_slice(body);
    m
}

/// The public signing key of a cloud identity (what `keygen --cloud` tells to publish).
pub fn public_key(cloud: &Identity) -> SigningPublicKey {
    SigningPublicKey(signing_key(cloud).verifying_key().to_bytes())
}

/// Signs `body` for `subject` with the cloud's signing key.
pub fn sign(cloud: &Identity, subject: &str, body: &[u8]) -> [u8; 64] {
    signing_key(cloud)
        .sign(&signed_bytes(subject, body))
        .to_bytes()
}

/// Checks a signature made by [`sign`].
pub fn verify(
    key: &SigningPublicKey,
    subject: &str,
    body: &[u8],
    signature: &[u8],
) -> Result<(), SignatureError> {
    let sig: [u8; 64] = signature
        .try_into()
        .map_err(|_| SignatureError::Malformed)?;
    let vk = VerifyingKey::from_bytes(&key.0).map_err(|_| SignatureError::Invalid)?;
    vk.verify(&signed_bytes(subject, body), &Signature::from_bytes(&sig))
        .map_err(|_| SignatureError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::IdentityKind;

    #[test]
    fn a_signature_verifies_only_for_its_key_subject_and_body() {
        let cloud = Identity::from_secret_bytes(IdentityKind::Cloud, [3; 32]);
        let other = Identity::from_secret_bytes(IdentityKind::Cloud, [4; 32]);
        let key = public_key(&cloud);
        assert_eq!(key, public_key(&cloud), "derived, so stable");
        let sig = sign(&cloud, "flowmesh.cloud.broadcast.bob", b"list");
        assert_eq!(
            verify(&key, "flowmesh.cloud.broadcast.bob", b"list", &sig),
            Ok(())
        );
        for (k, subject, body) in [
            (
                public_key(&other),
                "flowmesh.cloud.broadcast.bob",
                &b"list"[..],
            ),
            (key, "flowmesh.cloud.broadcast.eve", b"list"),
            (key, "flowmesh.cloud.broadcast.bob", b"lisT"),
        ] {
            assert_eq!(
                verify(&k, subject, body, &sig),
                Err(SignatureError::Invalid)
            );
        }
        assert_eq!(
            verify(&key, "s", b"", &sig[..10]),
            Err(SignatureError::Malformed)
        );
        assert_eq!(SigningPublicKey::from_hex(&key.to_hex()), Ok(key));
        assert!(SigningPublicKey::from_hex("00").is_err());
    }
}
