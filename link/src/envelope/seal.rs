//! Sealing: a sender's epochs of ephemeral keys and the one-message keys derived from them.

use super::*;

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
