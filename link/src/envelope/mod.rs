//! The sealed envelope (byte layout and rationale in `link/ENVELOPE.md`).
//!
//! Every message is sealed before it leaves the process. The construction follows HPKE's
//! authenticated mode (RFC 9180 `AuthEncap`): a fresh ephemeral X25519 key agreed with the
//! recipient's key, mixed with the sender's static key agreed with the recipient's key, so the
//! recipient learns who sent it; HKDF-SHA256 turns both into a one-message AES-256-GCM key. The
//! whole header and the NATS subject are associated data: a message moved to another subject,
//! altered, or sent by a key the recipient does not trust fails to open. A replay window
//! ([`crate::replay`]) refuses a message id seen before.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use hkdf::Hkdf;
use rand_core::{OsRng, RngCore};
use sha2::Sha256;
use x25519_dalek::StaticSecret;
use zeroize::Zeroizing;

use crate::identity::{Identity, PublicKey};
use crate::replay::{Freshness, JournalError, ReplayJournal, SenderWindows, in_window};

/// First two bytes of every envelope: "FM".
pub const MAGIC: [u8; 2] = *b"FM";
/// The layout version described in ENVELOPE.md.
pub const VERSION: u8 = 1;
/// Suite 1: X25519, HKDF-SHA256, AES-256-GCM.
pub const SUITE: u8 = 1;
/// Bytes before the ciphertext.
pub const HEADER_LEN: usize = 136;
/// Bytes of the GCM tag after the ciphertext.
pub const TAG_LEN: usize = 16;
/// Total bytes an envelope adds to its payload.
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;

const OFF_SENDER: usize = 4;
const OFF_RECIPIENT: usize = 36;
const OFF_EPHEMERAL: usize = 68;
const OFF_MSG_ID: usize = 100;
const OFF_TIME: usize = 116;
const OFF_NONCE: usize = 124;

const HKDF_SALT: &[u8] = b"flowmesh/envelope/v1";
/// Subjects longer than this get a heap buffer for the associated data; NATS subjects are short.
const AAD_STACK: usize = 512;

/// The current time as microseconds since the Unix epoch.
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Why a message could not be sealed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The operating system's random number generator failed.
    #[error("the system random number generator failed: {0}")]
    Random(String),
    /// The subject is longer than 65535 bytes.
    #[error("subject is {0} bytes; at most 65535")]
    SubjectTooLong(usize),
}

/// Why a message failed to open. Every variant is a refusal; none is a crash.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpenError {
    /// Shorter than header and tag.
    #[error("envelope truncated: {0} bytes, at least {OVERHEAD} needed")]
    Truncated(usize),
    /// Does not start with "FM".
    #[error("not a flowmesh envelope (bad magic)")]
    BadMagic,
    /// A layout version this build does not know.
    #[error("unsupported envelope version {0}")]
    UnsupportedVersion(u8),
    /// A cipher suite this build does not know.
    #[error("unsupported cipher suite {0}")]
    UnsupportedSuite(u8),
    /// Sealed to another key (another user, or the cloud).
    #[error("sealed to another recipient ({0})")]
    WrongRecipient(String),
    /// The sender's key is not one this opener trusts.
    #[error("sender {0} is not trusted here")]
    UntrustedSender(String),
    /// A low-order ephemeral key: the agreement would not be secret.
    #[error("invalid ephemeral key")]
    BadEphemeralKey,
    /// Authentication failed: altered bytes, another subject, or a forged sender.
    #[error("authentication failed: altered, moved to another subject, or forged")]
    Forged,
    /// Older than the replay window.
    #[error("message too old for the replay window")]
    TooOld,
    /// Dated further in the future than the allowed clock skew.
    #[error("message dated in the future beyond the allowed clock skew")]
    FromTheFuture,
    /// This message id was accepted before.
    #[error("replayed message id {0}")]
    Replayed(String),
    /// The replay journal could not record the message, so it is not accepted.
    #[error("not accepted: {0}")]
    Journal(String),
}

/// The per-message randomness; [`Sealer::seal`] draws it from the OS, test vectors fix it.
#[derive(Clone)]
pub struct SealRandomness {
    /// The ephemeral X25519 private key.
    pub ephemeral_secret: [u8; 32],
    /// The message id.
    pub message_id: [u8; 16],
    /// The AES-GCM nonce.
    pub nonce: [u8; 12],
}

impl SealRandomness {
    fn draw() -> Result<Self, SealError> {
        let mut buf = Zeroizing::new([0u8; 60]);
        OsRng
            .try_fill_bytes(buf.as_mut())
            .map_err(|e| SealError::Random(e.to_string()))?;
        let mut r = SealRandomness {
            ephemeral_secret: [0; 32],
            message_id: [0; 16],
            nonce: [0; 12],
        };
        r.ephemeral_secret.copy_from_slice(&buf[..32]);
        r.message_id.copy_from_slice(&buf[32..48]);
        r.nonce.copy_from_slice(&buf[48..60]);
        Ok(r)
    }
}

impl Drop for SealRandomness {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.ephemeral_secret);
    }
}

/// The pseudo-random key of one ephemeral epoch: HKDF-Extract over both agreements.
fn epoch_prk(dh_ephemeral: &[u8; 32], dh_static: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let mut ikm = Zeroizing::new([0u8; 64]);
    ikm[..32].copy_from_slice(dh_ephemeral);
    ikm[32..].copy_from_slice(dh_static);
    let (prk, _) = Hkdf::<Sha256>::extract(Some(HKDF_SALT), ikm.as_ref());
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(&prk);
    out
}

/// The one-message key: HKDF-Expand of the epoch's key over the three public keys and the
/// message id, so every message has its own key even when the ephemeral key is shared.
fn message_key(
    prk: &[u8; 32],
    ephemeral: &[u8],
    sender: &[u8],
    recipient: &[u8],
    message_id: &[u8],
) -> Zeroizing<[u8; 32]> {
    // A 32-byte PRK is a valid SHA-256 PRK and 32 bytes of output is far below HKDF's limit.
    let hk = Hkdf::<Sha256>::from_prk(prk).expect("PRK length is the hash length");
    let mut info = [0u8; 112];
    info[..32].copy_from_slice(ephemeral);
    info[32..64].copy_from_slice(sender);
    info[64..96].copy_from_slice(recipient);
    info[96..].copy_from_slice(message_id);
    let mut key = Zeroizing::new([0u8; 32]);
    hk.expand(&info, key.as_mut())
        .expect("HKDF output length is valid");
    key
}

/// Runs `f` with the associated data `header || u16-BE subject length || subject`.
fn with_aad<R>(header: &[u8], subject: &str, f: impl FnOnce(&[u8]) -> R) -> R {
    let len = HEADER_LEN + 2 + subject.len();
    let fill = |buf: &mut [u8]| {
        buf[..HEADER_LEN].copy_from_slice(&header[..HEADER_LEN]);
        buf[HEADER_LEN..HEADER_LEN + 2].copy_from_slice(&(subject.len() as u16).to_be_bytes());
        buf[HEADER_LEN + 2..].copy_from_slice(subject.as_bytes());
    };
    if len <= AAD_STACK {
        let mut buf = [0u8; AAD_STACK];
        fill(&mut buf[..len]);
        f(&buf[..len])
    } else {
        let mut buf = vec![0u8; len];
        fill(&mut buf);
        f(&buf)
    }
}

mod open;
mod seal;
#[cfg(test)]
mod tests;

pub use open::*;
pub use seal::*;

/// An opened message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// Who sealed it (verified).
    pub sender: PublicKey,
    /// Its unique id (also the JetStream de-duplication id).
    pub message_id: [u8; 16],
    /// The sender's clock when sealing, in microseconds since the epoch.
    pub time_micros: u64,
    /// The plaintext.
    pub payload: Vec<u8>,
}

/// The parsed, still unauthenticated, header of an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Claimed sender.
    pub sender: PublicKey,
    /// Intended recipient.
    pub recipient: PublicKey,
    /// Claimed message id.
    pub message_id: [u8; 16],
    /// Claimed time.
    pub time_micros: u64,
}

/// Reads the header without opening: for routing and counting, never for trust.
pub fn peek_header(data: &[u8]) -> Result<Header, OpenError> {
    if data.len() < OVERHEAD {
        return Err(OpenError::Truncated(data.len()));
    }
    if data[..2] != MAGIC {
        return Err(OpenError::BadMagic);
    }
    if data[2] != VERSION {
        return Err(OpenError::UnsupportedVersion(data[2]));
    }
    if data[3] != SUITE {
        return Err(OpenError::UnsupportedSuite(data[3]));
    }
    let key = |off: usize| {
        let mut k = [0u8; 32];
        k.copy_from_slice(&data[off..off + 32]);
        PublicKey(k)
    };
    let mut message_id = [0u8; 16];
    message_id.copy_from_slice(&data[OFF_MSG_ID..OFF_MSG_ID + 16]);
    let mut time = [0u8; 8];
    time.copy_from_slice(&data[OFF_TIME..OFF_TIME + 8]);
    Ok(Header {
        sender: key(OFF_SENDER),
        recipient: key(OFF_RECIPIENT),
        message_id,
        time_micros: u64::from_be_bytes(time),
    })
}
