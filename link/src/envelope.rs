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

/// An ephemeral key pair is used for at most this many messages...
pub const EPOCH_MAX_MESSAGES: u32 = 4096;
/// ... and for at most this long.
pub const EPOCH_MAX_AGE: Duration = Duration::from_secs(1);

/// The current ephemeral key of a sealer and the epoch key derived from it.
struct Epoch {
    public: [u8; 32],
    prk: Zeroizing<[u8; 32]>,
    born: Instant,
    uses: u32,
}

/// Seals messages from one sender to one recipient.
///
/// The static agreement (sender key × recipient key) is computed once here. The ephemeral key
/// is renewed every [`EPOCH_MAX_MESSAGES`] messages or [`EPOCH_MAX_AGE`], whichever comes
/// first, and each message's AES key is derived from the epoch key and the message's own
/// random id: one X25519 per epoch instead of per message (see ENVELOPE.md, "Epochs").
pub struct Sealer {
    sender: PublicKey,
    recipient: PublicKey,
    dh_static: Zeroizing<[u8; 32]>,
    epoch: Mutex<Option<Epoch>>,
}

impl Sealer {
    /// A sealer from `sender` to `recipient` (for one user's instances: the user's own key).
    pub fn new(sender: &Identity, recipient: PublicKey) -> Self {
        let shared = sender
            .secret()
            .diffie_hellman(&x25519_dalek::PublicKey::from(recipient.0));
        Sealer {
            sender: sender.public(),
            recipient,
            dh_static: Zeroizing::new(shared.to_bytes()),
            epoch: Mutex::new(None),
        }
    }

    /// What someone holding `holder`'s private key can make: a sealer whose messages to
    /// `holder` open as if `claimed` had sent them (the static agreement is the same number
    /// from either side: key-compromise impersonation). It exists to test that whatever must
    /// come from the cloud is also signed (`cloud_sig`); it grants nothing beyond the holder's
    /// own key.
    #[doc(hidden)]
    pub fn impersonating(holder: &Identity, claimed: PublicKey) -> Self {
        let shared = holder
            .secret()
            .diffie_hellman(&x25519_dalek::PublicKey::from(claimed.0));
        Sealer {
            sender: claimed,
            recipient: holder.public(),
            dh_static: Zeroizing::new(shared.to_bytes()),
            epoch: Mutex::new(None),
        }
    }

    /// The recipient this sealer seals to.
    pub fn recipient(&self) -> PublicKey {
        self.recipient
    }

    /// Seals `payload` for publication on `subject`.
    pub fn seal(&self, subject: &str, payload: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut out = Vec::with_capacity(OVERHEAD + payload.len());
        self.seal_into(subject, payload, &mut out)?;
        Ok(out)
    }

    /// Seals `payload` into `out` (cleared first), reusing its allocation.
    pub fn seal_into(
        &self,
        subject: &str,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), SealError> {
        let randomness = SealRandomness::draw()?;
        let (ephemeral, prk) = {
            let mut guard = self.epoch.lock().unwrap_or_else(|p| p.into_inner());
            let stale = guard
                .as_ref()
                .is_none_or(|e| e.uses >= EPOCH_MAX_MESSAGES || e.born.elapsed() >= EPOCH_MAX_AGE);
            if stale {
                let (public, prk) = self.agree(&randomness.ephemeral_secret);
                *guard = Some(Epoch {
                    public,
                    prk,
                    born: Instant::now(),
                    uses: 0,
                });
            }
            let epoch = guard.as_mut().expect("epoch was just set");
            epoch.uses += 1;
            (epoch.public, epoch.prk.clone())
        };
        self.write(
            subject,
            payload,
            &ephemeral,
            &prk,
            &randomness,
            now_micros(),
            out,
        )
    }

    /// Seals with caller-chosen randomness and time, with the ephemeral key of `randomness`.
    /// Only for test vectors: reusing randomness across messages destroys confidentiality.
    pub fn seal_with(
        &self,
        subject: &str,
        payload: &[u8],
        randomness: &SealRandomness,
        time_micros: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), SealError> {
        let (ephemeral, prk) = self.agree(&randomness.ephemeral_secret);
        self.write(
            subject,
            payload,
            &ephemeral,
            &prk,
            randomness,
            time_micros,
            out,
        )
    }

    /// The ephemeral public key of `secret` and the epoch key of its agreement.
    fn agree(&self, secret: &[u8; 32]) -> ([u8; 32], Zeroizing<[u8; 32]>) {
        let eph_secret = StaticSecret::from(*secret);
        let eph_public = x25519_dalek::PublicKey::from(&eph_secret);
        let dh_e = Zeroizing::new(
            eph_secret
                .diffie_hellman(&x25519_dalek::PublicKey::from(self.recipient.0))
                .to_bytes(),
        );
        (eph_public.to_bytes(), epoch_prk(&dh_e, &self.dh_static))
    }

    #[allow(clippy::too_many_arguments)]
    fn write(
        &self,
        subject: &str,
        payload: &[u8],
        ephemeral: &[u8; 32],
        prk: &[u8; 32],
        randomness: &SealRandomness,
        time_micros: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), SealError> {
        if subject.len() > u16::MAX as usize {
            return Err(SealError::SubjectTooLong(subject.len()));
        }
        let key = message_key(
            prk,
            ephemeral,
            &self.sender.0,
            &self.recipient.0,
            &randomness.message_id,
        );
        out.clear();
        out.reserve(OVERHEAD + payload.len());
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(SUITE);
        out.extend_from_slice(&self.sender.0);
        out.extend_from_slice(&self.recipient.0);
        out.extend_from_slice(ephemeral);
        out.extend_from_slice(&randomness.message_id);
        out.extend_from_slice(&time_micros.to_be_bytes());
        out.extend_from_slice(&randomness.nonce);
        debug_assert_eq!(out.len(), HEADER_LEN);
        out.extend_from_slice(payload);

        let cipher = Aes256Gcm::new(key.as_ref().into());
        let (header, body) = out.split_at_mut(HEADER_LEN);
        let tag = with_aad(header, subject, |aad| {
            cipher.encrypt_in_place_detached(Nonce::from_slice(&randomness.nonce), aad, body)
        })
        // aes-gcm fails only past 64 GiB of plaintext.
        .map_err(|_| SealError::Random("AES-GCM refused the payload size".into()))?;
        out.extend_from_slice(&tag);
        Ok(())
    }
}

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

/// Opens messages sealed to one recipient by a set of trusted senders, once each.
pub struct Opener {
    recipient: Identity,
    trusted: HashMap<PublicKey, Zeroizing<[u8; 32]>>,
    replay: Mutex<SenderWindows>,
    epochs: Mutex<EpochCache>,
}

/// Epoch keys of recently seen (sender, ephemeral key) pairs, so a stream of messages from one
/// epoch costs one X25519. Only entries from messages that authenticated are kept.
#[derive(Default)]
struct EpochCache {
    keys: HashMap<EpochId, Zeroizing<[u8; 32]>>,
    order: std::collections::VecDeque<EpochId>,
}

/// (sender public key, ephemeral public key).
type EpochId = ([u8; 32], [u8; 32]);

/// How many epochs an opener remembers (a few per sender it hears from).
const EPOCH_CACHE: usize = 1024;

impl EpochCache {
    fn get(&self, k: &EpochId) -> Option<Zeroizing<[u8; 32]>> {
        self.keys.get(k).cloned()
    }

    fn insert(&mut self, k: EpochId, prk: Zeroizing<[u8; 32]>) {
        if self.keys.insert(k, prk).is_none() {
            self.order.push_back(k);
            while self.order.len() > EPOCH_CACHE {
                if let Some(old) = self.order.pop_front() {
                    self.keys.remove(&old);
                }
            }
        }
    }
}

/// What opening judges besides authenticity.
#[derive(Clone, Copy)]
enum Check {
    /// Freshness and replay (the id is remembered).
    Replay(u64),
    /// Freshness only.
    Window(u64),
    /// Neither (stored state).
    Nothing,
}

/// Default replay window: ±10 minutes of clock skew and transit.
pub const DEFAULT_WINDOW_MICROS: u64 = 10 * 60 * 1_000_000;
/// Default number of message ids remembered.
pub const DEFAULT_REPLAY_CAPACITY: usize = 1 << 20;

impl Opener {
    /// An opener for `recipient` that trusts messages sealed by the recipient's own key (one
    /// user's instances talking to each other), with the default replay window.
    pub fn new(recipient: &Identity) -> Self {
        Self::with_window(recipient, DEFAULT_WINDOW_MICROS, DEFAULT_REPLAY_CAPACITY)
    }

    /// Like [`Opener::new`] with a chosen window and replay-cache capacity.
    pub fn with_window(recipient: &Identity, window_micros: u64, capacity: usize) -> Self {
        let mut opener = Opener {
            recipient: recipient.clone(),
            trusted: HashMap::new(),
            replay: Mutex::new(SenderWindows::new(window_micros, capacity)),
            epochs: Mutex::new(EpochCache::default()),
        };
        opener.trust(recipient.public());
        opener
    }

    /// Keeps the replay window in a journal at `path` (created 0600): the ids it accepted within
    /// the window before a restart are refused after it, and every id accepted from now on is
    /// written down first.
    pub fn journaled(self, path: &std::path::Path) -> Result<Self, JournalError> {
        let journal = ReplayJournal::open(path)?;
        self.replay
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .attach(journal, now_micros())?;
        Ok(self)
    }

    /// Also accepts messages sealed by `sender` (e.g. the cloud's key for broadcasts).
    pub fn trust(&mut self, sender: PublicKey) {
        let shared = self
            .recipient
            .secret()
            .diffie_hellman(&x25519_dalek::PublicKey::from(sender.0));
        self.trusted
            .insert(sender, Zeroizing::new(shared.to_bytes()));
    }

    /// Opens `data` received on `subject`, judging freshness against the local clock.
    pub fn open(&self, subject: &str, data: &[u8]) -> Result<Opened, OpenError> {
        self.open_at(subject, data, now_micros())
    }

    /// Opens `data` received on `subject` as if the local clock read `now_micros`.
    pub fn open_at(
        &self,
        subject: &str,
        data: &[u8],
        now_micros: u64,
    ) -> Result<Opened, OpenError> {
        self.open_checked(subject, data, Check::Replay(now_micros))
    }

    /// Opens a message whose payload carries its own idempotency key that the caller stores
    /// durably (a flow batch's id, applied in the same transaction as its effects): freshness
    /// is judged, but the id is not remembered, so a redelivery after a failed store opens
    /// again and meets the caller's record instead.
    pub fn open_idempotent(&self, subject: &str, data: &[u8]) -> Result<Opened, OpenError> {
        self.open_checked(subject, data, Check::Window(now_micros()))
    }

    /// Opens stored state — a key-value bucket entry, read again and again — authenticating
    /// sender, subject and content but neither freshness nor replay (the value is meant to be
    /// read more than once). Never use it for messages that trigger actions.
    pub fn open_stored(&self, subject: &str, data: &[u8]) -> Result<Opened, OpenError> {
        self.open_checked(subject, data, Check::Nothing)
    }

    fn open_checked(&self, subject: &str, data: &[u8], check: Check) -> Result<Opened, OpenError> {
        let header = peek_header(data)?;
        if header.recipient != self.recipient.public() {
            return Err(OpenError::WrongRecipient(header.recipient.short()));
        }
        let dh_static = self
            .trusted
            .get(&header.sender)
            .ok_or_else(|| OpenError::UntrustedSender(header.sender.short()))?;
        let mut eph = [0u8; 32];
        eph.copy_from_slice(&data[OFF_EPHEMERAL..OFF_EPHEMERAL + 32]);
        let cache_key = (header.sender.0, eph);
        let cached = self
            .epochs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&cache_key);
        let was_cached = cached.is_some();
        let prk = match cached {
            Some(prk) => prk,
            None => {
                let shared = self
                    .recipient
                    .secret()
                    .diffie_hellman(&x25519_dalek::PublicKey::from(eph));
                if !shared.was_contributory() {
                    return Err(OpenError::BadEphemeralKey);
                }
                epoch_prk(&Zeroizing::new(shared.to_bytes()), dh_static)
            }
        };
        let key = message_key(
            &prk,
            &eph,
            &header.sender.0,
            &header.recipient.0,
            &header.message_id,
        );
        let cipher = Aes256Gcm::new(key.as_ref().into());
        let body_end = data.len() - TAG_LEN;
        let mut payload = data[HEADER_LEN..body_end].to_vec();
        let tag = Tag::from_slice(&data[body_end..]);
        let nonce = Nonce::from_slice(&data[OFF_NONCE..OFF_NONCE + 12]);
        with_aad(data, subject, |aad| {
            cipher.decrypt_in_place_detached(nonce, aad, &mut payload, tag)
        })
        .map_err(|_| OpenError::Forged)?;
        if !was_cached {
            self.epochs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(cache_key, prk);
        }

        // Only authenticated ids enter the replay cache, so forgeries cannot evict real ones.
        let mut windows = self
            .replay
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let verdict = match check {
            Check::Replay(now) => windows
                .check(header.sender, header.message_id, header.time_micros, now)
                .map_err(|e| OpenError::Journal(e.to_string()))?,
            Check::Window(now) => in_window(header.time_micros, now, windows.window_micros()),
            Check::Nothing => Freshness::Fresh,
        };
        drop(windows);
        match verdict {
            Freshness::Fresh => Ok(Opened {
                sender: header.sender,
                message_id: header.message_id,
                time_micros: header.time_micros,
                payload,
            }),
            Freshness::Replayed => Err(OpenError::Replayed(hex::encode(header.message_id))),
            Freshness::TooOld => Err(OpenError::TooOld),
            Freshness::FromTheFuture => Err(OpenError::FromTheFuture),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::IdentityKind;

    fn user(seed: u8) -> Identity {
        Identity::from_secret_bytes(IdentityKind::User, [seed; 32])
    }

    const SUBJECT: &str = "flowmesh.flows.sensor-1";

    #[test]
    fn a_holder_of_the_recipients_key_can_claim_any_trusted_sender() {
        // Why cloud messages carry a signature: the envelope alone cannot tell them apart.
        let (bob, cloud) = (user(2), user(9));
        let mut opener = Opener::new(&bob);
        opener.trust(cloud.public());
        let forged = Sealer::impersonating(&bob, cloud.public())
            .seal(SUBJECT, b"forged")
            .unwrap();
        assert_eq!(
            opener.open(SUBJECT, &forged).unwrap().sender,
            cloud.public()
        );
    }

    #[test]
    fn round_trip_to_self() {
        let alice = user(1);
        let sealed = Sealer::new(&alice, alice.public())
            .seal(SUBJECT, b"hello flows")
            .unwrap();
        assert_eq!(sealed.len(), OVERHEAD + 11);
        let opened = Opener::new(&alice).open(SUBJECT, &sealed).unwrap();
        assert_eq!(opened.payload, b"hello flows");
        assert_eq!(opened.sender, alice.public());
    }

    #[test]
    fn stored_values_open_again_and_again_but_stay_authenticated() {
        let alice = user(1);
        let kv = "$KV.status.sensor-1";
        let sealed = Sealer::new(&alice, alice.public())
            .seal(kv, b"{\"status\":\"online\"}")
            .unwrap();
        let opener = Opener::new(&alice);
        assert!(opener.open(kv, &sealed).is_ok());
        assert!(matches!(
            opener.open(kv, &sealed),
            Err(OpenError::Replayed(_))
        ));
        for _ in 0..3 {
            assert_eq!(
                opener.open_stored(kv, &sealed).unwrap().payload,
                b"{\"status\":\"online\"}"
            );
        }
        // Still bound to its subject, its sender and its bytes.
        assert!(matches!(
            opener.open_stored("$KV.status.other", &sealed),
            Err(OpenError::Forged)
        ));
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(opener.open_stored(kv, &flipped).is_err());
        assert!(Opener::new(&user(2)).open_stored(kv, &sealed).is_err());
    }

    #[test]
    fn round_trip_to_another_key_with_trust() {
        let alice = user(1);
        let cloud = Identity::from_secret_bytes(IdentityKind::Cloud, [9; 32]);
        let sealed = Sealer::new(&alice, cloud.public())
            .seal("cloud.inbox", b"ip 1.2.3.4")
            .unwrap();
        let untrusting = Opener::new(&cloud);
        assert!(matches!(
            untrusting.open("cloud.inbox", &sealed),
            Err(OpenError::UntrustedSender(_))
        ));
        let mut opener = Opener::new(&cloud);
        opener.trust(alice.public());
        assert_eq!(
            opener.open("cloud.inbox", &sealed).unwrap().payload,
            b"ip 1.2.3.4"
        );
    }

    #[test]
    fn ciphertext_does_not_contain_the_plaintext_and_differs_each_time() {
        let alice = user(1);
        let sealer = Sealer::new(&alice, alice.public());
        let payload = b"secret-secret-secret-secret";
        let a = sealer.seal(SUBJECT, payload).unwrap();
        let b = sealer.seal(SUBJECT, payload).unwrap();
        assert_ne!(a, b);
        assert!(!a.windows(payload.len()).any(|w| w == payload));
    }

    #[test]
    fn every_single_bit_flip_fails_to_open() {
        let alice = user(1);
        let sealed = Sealer::new(&alice, alice.public())
            .seal(SUBJECT, b"a flow batch of some length")
            .unwrap();
        for bit in 0..sealed.len() * 8 {
            let mut bad = sealed.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            // A fresh opener each time: the failure must come from the flip, not the replay cache.
            let r = Opener::new(&alice).open(SUBJECT, &bad);
            assert!(r.is_err(), "flipping bit {bit} still opened");
        }
    }

    #[test]
    fn wrong_subject_fails() {
        let alice = user(1);
        let sealed = Sealer::new(&alice, alice.public())
            .seal(SUBJECT, b"x")
            .unwrap();
        let opener = Opener::new(&alice);
        assert_eq!(
            opener.open("flowmesh.flows.sensor-2", &sealed),
            Err(OpenError::Forged)
        );
        assert_eq!(opener.open("", &sealed), Err(OpenError::Forged));
        assert!(opener.open(SUBJECT, &sealed).is_ok());
    }

    #[test]
    fn another_users_message_fails() {
        let alice = user(1);
        let bob = user(2);
        // Bob seals to himself: Alice is not the recipient.
        let to_bob = Sealer::new(&bob, bob.public()).seal(SUBJECT, b"x").unwrap();
        assert!(matches!(
            Opener::new(&alice).open(SUBJECT, &to_bob),
            Err(OpenError::WrongRecipient(_))
        ));
        // Bob seals to Alice's key: Alice does not trust Bob as a sender.
        let bob_to_alice = Sealer::new(&bob, alice.public())
            .seal(SUBJECT, b"x")
            .unwrap();
        assert!(matches!(
            Opener::new(&alice).open(SUBJECT, &bob_to_alice),
            Err(OpenError::UntrustedSender(_))
        ));
        // Bob seals to Alice but writes Alice's key as the sender: authentication fails,
        // because Bob cannot compute the static agreement of Alice's key.
        let mut forged = bob_to_alice.clone();
        forged[OFF_SENDER..OFF_SENDER + 32].copy_from_slice(&alice.public().0);
        assert_eq!(
            Opener::new(&alice).open(SUBJECT, &forged),
            Err(OpenError::Forged)
        );
    }

    #[test]
    fn replayed_message_fails() {
        let alice = user(1);
        let sealed = Sealer::new(&alice, alice.public())
            .seal(SUBJECT, b"x")
            .unwrap();
        let opener = Opener::new(&alice);
        assert!(opener.open(SUBJECT, &sealed).is_ok());
        assert!(matches!(
            opener.open(SUBJECT, &sealed),
            Err(OpenError::Replayed(_))
        ));
    }

    #[test]
    fn stale_and_future_messages_fail() {
        let alice = user(1);
        let sealed = Sealer::new(&alice, alice.public())
            .seal(SUBJECT, b"x")
            .unwrap();
        let t = peek_header(&sealed).unwrap().time_micros;
        let opener = Opener::with_window(&alice, 1_000_000, 16);
        assert_eq!(
            opener.open_at(SUBJECT, &sealed, t + 2_000_000),
            Err(OpenError::TooOld)
        );
        assert_eq!(
            opener.open_at(SUBJECT, &sealed, t - 2_000_000),
            Err(OpenError::FromTheFuture)
        );
        assert!(opener.open_at(SUBJECT, &sealed, t + 500_000).is_ok());
    }

    #[test]
    fn truncated_and_random_input_fail_with_an_error() {
        let alice = user(1);
        let opener = Opener::new(&alice);
        let sealed = Sealer::new(&alice, alice.public())
            .seal(SUBJECT, b"payload")
            .unwrap();
        for len in 0..sealed.len() {
            assert!(
                opener.open(SUBJECT, &sealed[..len]).is_err(),
                "prefix of {len} bytes opened"
            );
        }
        let mut state = 0x9e3779b97f4a7c15u64;
        for len in [0usize, 1, 2, 151, 152, 153, 400, 4096] {
            let mut data = vec![0u8; len];
            for b in data.iter_mut() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *b = state as u8;
            }
            assert!(opener.open(SUBJECT, &data).is_err());
            // Random bytes behind a valid-looking header must fail too.
            if len >= OVERHEAD {
                data[..4].copy_from_slice(&[b'F', b'M', VERSION, SUITE]);
                data[OFF_SENDER..OFF_SENDER + 32].copy_from_slice(&alice.public().0);
                data[OFF_RECIPIENT..OFF_RECIPIENT + 32].copy_from_slice(&alice.public().0);
                assert!(opener.open(SUBJECT, &data).is_err());
            }
        }
    }

    #[test]
    fn low_order_ephemeral_key_is_refused() {
        let alice = user(1);
        let mut sealed = Sealer::new(&alice, alice.public())
            .seal(SUBJECT, b"x")
            .unwrap();
        sealed[OFF_EPHEMERAL..OFF_EPHEMERAL + 32].fill(0);
        assert_eq!(
            Opener::new(&alice).open(SUBJECT, &sealed),
            Err(OpenError::BadEphemeralKey)
        );
    }

    #[test]
    fn the_ephemeral_key_is_renewed_per_epoch_and_every_message_still_opens() {
        let alice = user(1);
        let sealer = Sealer::new(&alice, alice.public());
        let opener = Opener::new(&alice);
        let mut ephemerals = std::collections::HashSet::new();
        for i in 0..EPOCH_MAX_MESSAGES as usize + 2 {
            let m = sealer.seal(SUBJECT, &i.to_be_bytes()).unwrap();
            ephemerals.insert(m[OFF_EPHEMERAL..OFF_EPHEMERAL + 32].to_vec());
            assert_eq!(opener.open(SUBJECT, &m).unwrap().payload, i.to_be_bytes());
        }
        // Exactly one renewal by count (an age renewal on a slow machine may add one more).
        assert!(
            (2..=3).contains(&ephemerals.len()),
            "{} ephemeral keys",
            ephemerals.len()
        );
    }

    #[test]
    fn a_forged_message_reusing_a_genuine_epoch_fails() {
        let alice = user(1);
        let bob = user(2);
        let sealer = Sealer::new(&alice, alice.public());
        let opener = Opener::new(&alice);
        let genuine = sealer.seal(SUBJECT, b"genuine").unwrap();
        opener.open(SUBJECT, &genuine).unwrap();
        // Bob copies the genuine header (sender, ephemeral key, cached on Alice's side) and
        // encrypts under a key of his own making: the tag cannot verify.
        let mut forged = Sealer::new(&bob, alice.public())
            .seal(SUBJECT, b"forged!")
            .unwrap();
        forged[..OFF_MSG_ID].copy_from_slice(&genuine[..OFF_MSG_ID]);
        assert_eq!(opener.open(SUBJECT, &forged), Err(OpenError::Forged));
    }

    #[test]
    fn long_subjects_are_authenticated_too() {
        let alice = user(1);
        let subject = "s.".repeat(400);
        let sealed = Sealer::new(&alice, alice.public())
            .seal(&subject, b"x")
            .unwrap();
        assert!(Opener::new(&alice).open(&subject, &sealed).is_ok());
        assert_eq!(
            Opener::new(&alice).open(&subject[1..], &sealed),
            Err(OpenError::Forged)
        );
    }
}
