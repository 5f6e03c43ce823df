//! Remote assistance: a support engineer's TCP connections carried over NATS, encrypted end
//! to end ([`crate::tunnel`]), into one fixed loopback service of one instance, for one
//! session that expires.
//!
//! - [`key`]: the assistance key handed to the support engineer.
//! - [`pipe`]: one tunnelled connection, both ways, with flow control.
//! - [`serve`]: the instance's side: accepts connections of a session, into its service.
//! - [`support`]: the support engineer's side: a local port whose connections go through.
//!
//! Subjects, all inside the user's NATS account: `flowmesh.assist.<session>.<conn>.i` carries
//! frames to the instance, `….<conn>.s` to the support side. A connection opens with
//! `O ‖ initiator's ephemeral key`, answered `A ‖ responder's key`; then only tunnel frames.
//! The instance opens its service only once the first frame authenticates — that proves the
//! opener holds the session secret. Nothing in the protocol names a destination.

pub mod key;
pub mod pipe;
pub mod serve;
pub mod support;

pub use key::{AssistKey, KeyError};

use hkdf::Hkdf;
use sha2::Sha256;

/// The longest a session may last: 24 hours, as ntopng's remote assistance.
pub const MAX_TTL_SECS: i64 = 24 * 3600;
/// Data per frame (NATS' default max payload is 1 MiB; smaller frames keep latency low).
pub const FRAME: usize = 48 * 1024;
/// Flow-control window: frame costs ([`crate::tunnel::cost`]) a sender may have unacknowledged.
pub const WINDOW: u64 = 2 * 1024 * 1024;
/// Connections one session may have open at once.
pub const MAX_CONNECTIONS: usize = 64;
/// First byte of a connection's opening message.
pub const OPEN: u8 = b'O';
/// First byte of its answer.
pub const ACCEPT: u8 = b'A';

/// The subject frames to the instance travel on.
pub fn to_instance(session: &str, conn: &str) -> String {
    format!("flowmesh.assist.{session}.{conn}.i")
}

/// The subject frames to the support side travel on.
pub fn to_support(session: &str, conn: &str) -> String {
    format!("flowmesh.assist.{session}.{conn}.s")
}

/// The connection id of a subject of `session` (the token before the direction).
pub fn conn_of<'a>(subject: &'a str, session: &str) -> Option<&'a str> {
    let rest = subject.strip_prefix("flowmesh.assist.")?;
    let rest = rest.strip_prefix(session)?.strip_prefix('.')?;
    let (conn, _) = rest.split_once('.')?;
    check_session_id(conn).ok().map(|()| conn)
}

/// A fresh random id (a session's or a connection's): 32 hex digits.
pub fn new_id() -> String {
    let mut id = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut id);
    hex::encode(id)
}

/// Session and connection ids are 32 lowercase hex digits.
pub fn check_session_id(id: &str) -> Result<(), String> {
    if id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(format!("{id:?} is not a session id (32 hex digits)"))
    }
}

/// The API token of an admin session, derived from its secret: the support side computes it
/// from the key, the instance accepts it only while the session lasts and only with admin
/// access. Never the instance's own token.
pub fn admin_token(secret: &[u8; 32], session: &str) -> String {
    let mut out = [0u8; 32];
    // 32 bytes are far below HKDF-SHA256's limit; the expand cannot fail.
    let _ = Hkdf::<Sha256>::new(Some(session.as_bytes()), secret)
        .expand(b"flowmesh/assist/v1 admin token", &mut out);
    hex::encode(out)
}

/// The wall clock, Unix seconds.
pub fn now_secs() -> i64 {
    (crate::envelope::now_micros() / 1_000_000) as i64
}

/// A 256-bit secret from its 64 hex digits (wiped when dropped).
pub fn secret_from_hex(hex_digits: &str) -> Option<zeroize::Zeroizing<[u8; 32]>> {
    let mut out = zeroize::Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(hex_digits, out.as_mut()).ok()?;
    Some(out)
}

/// A connection id's 16 bytes (it reached here checked by [`conn_of`] or made by [`new_id`]).
fn conn_bytes(conn: &str) -> Result<[u8; 16], String> {
    let mut id = [0u8; 16];
    hex::decode_to_slice(conn, &mut id).map_err(|e| format!("connection id: {e}"))?;
    Ok(id)
}

/// A connection's opening ([`OPEN`]) or its answer ([`ACCEPT`]): the tag and this end's
/// ephemeral public key.
fn handshake_message(tag: u8, public: [u8; 32]) -> bytes::Bytes {
    let mut m = Vec::with_capacity(33);
    m.push(tag);
    m.extend_from_slice(&public);
    m.into()
}

/// The peer's public key in an opening or answer tagged `tag`, if the message is one.
fn handshake_peer(tag: u8, m: &[u8]) -> Option<[u8; 32]> {
    (m.len() == 33 && m[0] == tag).then(|| {
        let mut peer = [0u8; 32];
        peer.copy_from_slice(&m[1..]);
        peer
    })
}

/// A timer that fires when a session ending at `expires` (Unix seconds) has ended.
fn expiry(expires: i64) -> tokio::time::Sleep {
    let left = (expires - now_secs()).max(0) as u64;
    tokio::time::sleep(std::time::Duration::from_secs(left))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_name_the_session_and_connection_and_nothing_else_parses() {
        let (s, c) = (new_id(), new_id());
        assert_eq!(conn_of(&to_instance(&s, &c), &s), Some(c.as_str()));
        assert_eq!(conn_of(&to_support(&s, &c), &s), Some(c.as_str()));
        assert_eq!(conn_of(&to_instance(&s, &c), &new_id()), None);
        assert_eq!(conn_of(&format!("flowmesh.assist.{s}.x.i"), &s), None);
        assert!(check_session_id(&"A".repeat(32)).is_err());
    }

    #[test]
    fn the_admin_token_depends_on_secret_and_session() {
        let s = new_id();
        let t = admin_token(&[1; 32], &s);
        assert_eq!(t, admin_token(&[1; 32], &s));
        assert_ne!(t, admin_token(&[2; 32], &s));
        assert_ne!(t, admin_token(&[1; 32], &new_id()));
        assert_eq!(t.len(), 64);
    }
}
