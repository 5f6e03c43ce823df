//! Byte streams carried as NATS messages, encrypted and authenticated end to end: the framing
//! remote assistance (issue 16) carries each tunnelled TCP connection in.
//!
//! Both ends share a session secret (≥ 256 bits from the OS RNG, in the assistance key). Each
//! connection starts with a fresh X25519 exchange; its keys come from HKDF-SHA256 over the
//! agreement, salted with the secret and bound to the connection id and both public keys, one
//! AES-256-GCM key per direction. Without the secret, a party that sees or replaces the
//! ephemeral keys (the broker) derives nothing useful. Every frame carries its sequence number,
//! checked to be exactly the next: a frame replayed, reordered, dropped or moved to another
//! connection or direction fails; the end of a stream is an authenticated `Fin`, so a stream
//! cut short is told apart from one that ended.
//!
//! Frame: `kind (1) ‖ seq (8, big-endian) ‖ AES-256-GCM(payload) ‖ tag (16)`, nonce = `seq`
//! (padded to 12 bytes; each key is used in one direction only), AAD = `"flowmesh/tunnel/v1"
//! ‖ connection id ‖ kind ‖ seq`.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;
use x25519_dalek::{EphemeralSecret, PublicKey as XPublic};
use zeroize::Zeroizing;

const LABEL: &[u8] = b"flowmesh/tunnel/v1";
/// Bytes before a frame's ciphertext.
pub const HEADER: usize = 9;
/// A frame's overhead: header and tag.
pub const OVERHEAD: usize = HEADER + 16;

/// Why a frame or a handshake was refused. Any of them ends the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TunnelError {
    /// Shorter than a header and tag, or an unknown kind.
    #[error("malformed frame")]
    Malformed,
    /// Not the next sequence number: replayed, reordered, or one went missing.
    #[error("frame {got} where {want} was next: replayed, reordered or lost")]
    OutOfOrder {
        /// The frame's number.
        got: u64,
        /// The number expected.
        want: u64,
    },
    /// It does not decrypt under this connection's key for this direction: altered, from
    /// another connection or direction, or sealed with another session's secret.
    #[error("frame does not authenticate (wrong key, altered, or from elsewhere)")]
    Forged,
    /// A frame after the stream's `Fin`.
    #[error("frame after the end of the stream")]
    AfterEnd,
    /// The peer's public key is a low-order point.
    #[error("bad ephemeral key")]
    BadKey,
}

/// What a frame says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bytes of the stream.
    Data = 1,
    /// The sender's side of the stream ended (like a TCP FIN).
    Fin = 2,
    /// Flow control: the receiver has consumed this much (8 bytes, big-endian, a running
    /// total of frame costs, see [`cost`]); the sender may have a window more in flight.
    Credit = 3,
    /// The whole connection is over, both ways (like a TCP RST): the session ended or the
    /// other end refused something.
    Reset = 4,
}

impl Kind {
    fn of(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::Data),
            2 => Some(Kind::Fin),
            3 => Some(Kind::Credit),
            4 => Some(Kind::Reset),
            _ => None,
        }
    }
}

/// What a data frame of `len` bytes costs against the flow-control window: its bytes and a
/// fixed share per frame, so a flood of tiny frames is bounded as well as a few large ones.
pub fn cost(len: usize) -> u64 {
    len as u64 + 1024
}

/// Which end of a connection this is: the one that opened it (the support engineer's) or the
/// one that accepted it (the instance).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Opened the connection.
    Initiator,
    /// Accepted it.
    Responder,
}

/// One end's half of the handshake: its ephemeral key, used once.
pub struct Handshake {
    secret: EphemeralSecret,
    public: [u8; 32],
}

impl Default for Handshake {
    fn default() -> Self {
        Self::new()
    }
}

impl Handshake {
    /// A fresh ephemeral key pair from the OS RNG.
    pub fn new() -> Self {
        let secret = EphemeralSecret::random_from_rng(rand_core::OsRng);
        let public = XPublic::from(&secret).to_bytes();
        Handshake { secret, public }
    }

    /// The public key to send to the other end.
    pub fn public(&self) -> [u8; 32] {
        self.public
    }

    /// Both directions' keys of connection `conn`, given the session secret and the peer's
    /// public key. `role` says which end this is (it picks the sending key).
    pub fn finish(
        self,
        session_secret: &[u8; 32],
        conn: &[u8; 16],
        role: Role,
        peer: [u8; 32],
    ) -> Result<(Sender, Receiver), TunnelError> {
        let shared = self.secret.diffie_hellman(&XPublic::from(peer));
        if !shared.was_contributory() {
            return Err(TunnelError::BadKey);
        }
        let (init_pub, resp_pub) = match role {
            Role::Initiator => (self.public, peer),
            Role::Responder => (peer, self.public),
        };
        let mut info = Vec::with_capacity(LABEL.len() + 16 + 64);
        info.extend_from_slice(LABEL);
        info.extend_from_slice(conn);
        info.extend_from_slice(&init_pub);
        info.extend_from_slice(&resp_pub);
        let mut okm = Zeroizing::new([0u8; 64]);
        Hkdf::<Sha256>::new(Some(session_secret), shared.as_bytes())
            .expand(&info, okm.as_mut())
            .map_err(|_| TunnelError::BadKey)?;
        let key = |k: &[u8]| Aes256Gcm::new_from_slice(k).map_err(|_| TunnelError::BadKey);
        let (to_resp, to_init) = (key(&okm[..32])?, key(&okm[32..])?);
        let (send, recv) = match role {
            Role::Initiator => (to_resp, to_init),
            Role::Responder => (to_init, to_resp),
        };
        Ok((
            Sender {
                key: send,
                conn: *conn,
                seq: 0,
            },
            Receiver {
                key: recv,
                conn: *conn,
                next: 0,
                ended: false,
                reset: false,
            },
        ))
    }
}

fn nonce(seq: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&seq.to_be_bytes());
    n
}

fn aad(conn: &[u8; 16], kind: u8, seq: u64) -> [u8; 18 + 16 + 1 + 8] {
    let mut a = [0u8; 18 + 16 + 1 + 8];
    a[..18].copy_from_slice(LABEL);
    a[18..34].copy_from_slice(conn);
    a[34] = kind;
    a[35..].copy_from_slice(&seq.to_be_bytes());
    a
}

/// Seals this end's frames, numbered from 0.
pub struct Sender {
    key: Aes256Gcm,
    conn: [u8; 16],
    seq: u64,
}

impl Sender {
    /// The next frame carrying `data` as `kind`.
    pub fn seal(&mut self, kind: Kind, data: &[u8]) -> Vec<u8> {
        let seq = self.seq;
        self.seq += 1;
        let k = kind as u8;
        let sealed = self
            .key
            .encrypt(
                Nonce::from_slice(&nonce(seq)),
                Payload {
                    msg: data,
                    aad: &aad(&self.conn, k, seq),
                },
            )
            // AES-GCM refuses only inputs beyond 64 GiB; frames are bounded far below.
            .unwrap_or_default();
        let mut frame = Vec::with_capacity(HEADER + sealed.len());
        frame.push(k);
        frame.extend_from_slice(&seq.to_be_bytes());
        frame.extend_from_slice(&sealed);
        frame
    }
}

/// Opens the peer's frames, strictly in order.
pub struct Receiver {
    key: Aes256Gcm,
    conn: [u8; 16],
    next: u64,
    ended: bool,
    reset: bool,
}

impl Receiver {
    /// The next frame's kind and payload; any error ends the connection.
    pub fn open(&mut self, frame: &[u8]) -> Result<(Kind, Vec<u8>), TunnelError> {
        if self.reset {
            return Err(TunnelError::AfterEnd);
        }
        if frame.len() < OVERHEAD {
            return Err(TunnelError::Malformed);
        }
        let kind = Kind::of(frame[0]).ok_or(TunnelError::Malformed)?;
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&frame[1..HEADER]);
        let seq = u64::from_be_bytes(seq);
        if seq != self.next {
            return Err(TunnelError::OutOfOrder {
                got: seq,
                want: self.next,
            });
        }
        let data = self
            .key
            .decrypt(
                Nonce::from_slice(&nonce(seq)),
                Payload {
                    msg: &frame[HEADER..],
                    aad: &aad(&self.conn, frame[0], seq),
                },
            )
            .map_err(|_| TunnelError::Forged)?;
        // After its Fin the peer still sends credit for what it receives, and may reset.
        if self.ended && matches!(kind, Kind::Data | Kind::Fin) {
            return Err(TunnelError::AfterEnd);
        }
        self.next += 1;
        self.ended |= matches!(kind, Kind::Fin | Kind::Reset);
        self.reset |= kind == Kind::Reset;
        Ok((kind, data))
    }

    /// Whether the peer ended its side with an authenticated `Fin` or `Reset` (otherwise a
    /// stream that stops was cut).
    pub fn ended(&self) -> bool {
        self.ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(secret_i: [u8; 32], secret_r: [u8; 32]) -> ((Sender, Receiver), (Sender, Receiver)) {
        let conn = [7u8; 16];
        let (i, r) = (Handshake::new(), Handshake::new());
        let (ip, rp) = (i.public(), r.public());
        (
            i.finish(&secret_i, &conn, Role::Initiator, rp).unwrap(),
            r.finish(&secret_r, &conn, Role::Responder, ip).unwrap(),
        )
    }

    #[test]
    fn a_stream_goes_both_ways_and_ends_with_an_authenticated_fin() {
        let ((mut is, mut ir), (mut rs, mut rr)) = pair([1; 32], [1; 32]);
        let f = is.seal(Kind::Data, b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(
            rr.open(&f).unwrap(),
            (Kind::Data, b"GET / HTTP/1.1\r\n\r\n".to_vec())
        );
        let back = rs.seal(Kind::Data, b"HTTP/1.1 200 OK");
        assert_eq!(ir.open(&back).unwrap().1, b"HTTP/1.1 200 OK");
        assert!(!rr.ended());
        rr.open(&is.seal(Kind::Fin, b"")).unwrap();
        assert!(rr.ended());
        assert_eq!(
            rr.open(&is.seal(Kind::Data, b"x")),
            Err(TunnelError::AfterEnd)
        );
    }

    #[test]
    fn after_its_fin_a_peer_may_still_credit_and_reset_and_nothing_after_a_reset() {
        let ((mut is, _), (_, mut rr)) = pair([5; 32], [5; 32]);
        rr.open(&is.seal(Kind::Fin, b"")).unwrap();
        let credit = 4096u64.to_be_bytes();
        assert_eq!(
            rr.open(&is.seal(Kind::Credit, &credit)).unwrap(),
            (Kind::Credit, credit.to_vec())
        );
        assert_eq!(
            rr.open(&is.seal(Kind::Fin, b"")),
            Err(TunnelError::AfterEnd)
        );
        let ((mut is, _), (_, mut rr)) = pair([6; 32], [6; 32]);
        assert_eq!(rr.open(&is.seal(Kind::Reset, b"")).unwrap().0, Kind::Reset);
        assert!(rr.ended());
        assert_eq!(
            rr.open(&is.seal(Kind::Credit, &credit)),
            Err(TunnelError::AfterEnd)
        );
    }

    #[test]
    fn another_sessions_secret_derives_keys_that_open_nothing() {
        let ((mut is, _), (_, mut rr)) = pair([1; 32], [2; 32]);
        assert_eq!(
            rr.open(&is.seal(Kind::Data, b"hi")),
            Err(TunnelError::Forged)
        );
    }

    #[test]
    fn replayed_reordered_dropped_altered_and_reflected_frames_are_refused() {
        let ((mut is, mut ir), (mut rs, mut rr)) = pair([3; 32], [3; 32]);
        let f0 = is.seal(Kind::Data, b"zero");
        let f1 = is.seal(Kind::Data, b"one");
        let f2 = is.seal(Kind::Data, b"two");
        // Reordered (or the first dropped): refused.
        assert_eq!(
            rr.open(&f1),
            Err(TunnelError::OutOfOrder { got: 1, want: 0 })
        );
        assert_eq!(rr.open(&f0).unwrap().1, b"zero");
        // Replayed.
        assert_eq!(
            rr.open(&f0),
            Err(TunnelError::OutOfOrder { got: 0, want: 1 })
        );
        // Altered: a flipped bit, a changed kind, a renumbered frame.
        let mut bad = f1.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(rr.open(&bad), Err(TunnelError::Forged));
        let mut as_fin = f1.clone();
        as_fin[0] = Kind::Fin as u8;
        assert_eq!(rr.open(&as_fin), Err(TunnelError::Forged));
        assert_eq!(rr.open(&f1).unwrap().1, b"one");
        let mut renumbered = f2.clone();
        renumbered[1..9].copy_from_slice(&3u64.to_be_bytes());
        assert!(rr.open(&renumbered).is_err());
        assert_eq!(rr.open(&f2).unwrap().1, b"two");
        // A frame sent back to its own sender (the other direction's key) does not open.
        let mine = rs.seal(Kind::Data, b"to the initiator");
        let mut reflected_receiver = rr;
        assert!(reflected_receiver.open(&mine).is_err());
        assert_eq!(ir.open(&mine).unwrap().1, b"to the initiator");
        // Truncated and unknown kinds.
        assert_eq!(ir.open(&[1, 0, 0]), Err(TunnelError::Malformed));
    }

    #[test]
    fn a_frame_from_another_connection_does_not_open() {
        let secret = [4u8; 32];
        let (i, r) = (Handshake::new(), Handshake::new());
        let (ip, rp) = (i.public(), r.public());
        let (mut is, _) = i.finish(&secret, &[1; 16], Role::Initiator, rp).unwrap();
        let (_, mut rr) = r.finish(&secret, &[2; 16], Role::Responder, ip).unwrap();
        assert_eq!(
            rr.open(&is.seal(Kind::Data, b"x")),
            Err(TunnelError::Forged)
        );
    }

    #[test]
    fn a_low_order_peer_key_is_refused() {
        let h = Handshake::new();
        assert!(matches!(
            h.finish(&[0; 32], &[0; 16], Role::Responder, [0; 32]),
            Err(TunnelError::BadKey)
        ));
    }
}
