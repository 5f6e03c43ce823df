//! Opening: trusted senders, the epoch-key cache, freshness and replay.

use super::*;

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
