//! OpenVPN: a hard-reset control packet opening the session (UDP, or TCP with its 2-byte
//! length): the opcode and key id 0, the sender's session id, then — right after it, or after
//! a tls-auth/tls-crypt HMAC and replay id — an empty acknowledgement list and message id 0.
//! On port 1194 the opcode alone will do.

use super::{L7, PacketView, Verdict, u16_at};

/// Where the acknowledgement count may sit: no HMAC, or after an HMAC of 16, 20, 32 or 64
/// bytes plus the 8-byte packet id and time.
const ACK_AT: [usize; 5] = [9, 9 + 16 + 8, 9 + 20 + 8, 9 + 32 + 8, 9 + 64 + 8];

/// Detects OpenVPN (see the module documentation).
pub fn detect(v: &PacketView<'_>) -> Verdict {
    let p = v.payload;
    let p = if v.tcp() {
        match u16_at(p, 0) {
            Some(l) if usize::from(l) + 2 <= p.len() && l >= 14 => &p[2..2 + usize::from(l)],
            _ => return Verdict::No,
        }
    } else if v.udp() {
        p
    } else {
        return Verdict::No;
    };
    // P_CONTROL_HARD_RESET_CLIENT_V1/V2/V3 (1, 7, 10) and _SERVER_V1/V2 (2, 8), key id 0.
    let opcode = p.first().map_or(0, |b| b >> 3);
    let key_id = p.first().map_or(1, |b| b & 7);
    if !matches!(opcode, 1 | 2 | 7 | 8 | 10) || key_id != 0 || p.len() < 14 {
        return Verdict::No;
    }
    // A client's first reset acknowledges nothing and is message 0 (a server's reset
    // acknowledges the client's: one id, then the peer's session id, then message 0); the
    // packet ends there, or carries the early-negotiation TLV (type 1) of OpenVPN 2.5+.
    let first_message = |at: usize| {
        let end = match p.get(at) {
            Some(0) => at + 5,
            Some(1) => at + 17,
            _ => return false,
        };
        p.get(end - 4..end) == Some(&[0, 0, 0, 0][..])
            && p.get(end..)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(&[0, 1]))
    };
    if v.port(1194) || ACK_AT.iter().any(|&at| first_message(at)) {
        Verdict::Match(L7::OpenVPN, None)
    } else {
        Verdict::No
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::tests::udp;

    #[test]
    fn a_client_reset_with_or_without_tls_auth_matches_an_rpc_call_does_not() {
        let mut plain = vec![7 << 3];
        plain.extend_from_slice(&[0x11; 8]);
        plain.extend_from_slice(&[0, 0, 0, 0, 0]);
        assert_eq!(
            detect(&udp(&plain, 40000, 5000)),
            Verdict::Match(L7::OpenVPN, None)
        );
        let mut auth = vec![7 << 3];
        auth.extend_from_slice(&[0x11; 8]);
        auth.extend_from_slice(&[0x22; 20 + 8]);
        auth.extend_from_slice(&[0, 0, 0, 0, 0]);
        assert_eq!(
            detect(&udp(&auth, 40000, 5000)),
            Verdict::Match(L7::OpenVPN, None)
        );
        // An ONC RPC call whose XID happens to start with 0x38.
        let mut rpc = vec![0x38, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1, 0x86, 0xa3];
        rpc.extend_from_slice(&[0, 0, 0, 3, 0, 0, 0, 1]);
        assert_eq!(detect(&udp(&rpc, 800, 2049)), Verdict::No);
    }
}
