//! NFS and its helpers (mount, the portmapper): an ONC RPC call (RFC 5531) to their program
//! numbers — message type CALL, RPC version 2, program 100003 (NFS), 100005 (mount) or 100000
//! (portmap), a program version up to 4. Over TCP the call follows a record marker. A reply
//! names no program, so one met without its call (the capture began later) counts only from
//! NFS's own port 2049: message type REPLY, accepted with a defined verifier and status, or
//! denied for a defined reason.

use super::{L7, PacketView, Verdict, u32_at};

/// Detects NFS (see the module documentation).
pub fn detect(v: &PacketView<'_>) -> Verdict {
    let p = v.payload;
    let call = if v.tcp() {
        // Record marking: the last-fragment bit and a fragment length covering this segment.
        match u32_at(p, 0) {
            Some(m) if m & 0x8000_0000 != 0 && (m & 0x7fff_ffff) as usize + 4 >= p.len() => &p[4..],
            _ => return Verdict::No,
        }
    } else if v.udp() {
        p
    } else {
        return Verdict::No;
    };
    // Which side sent it says little: a reply seen first may make its sender the "client".
    if v.port(2049) && is_reply(call) {
        return Verdict::Match(L7::NFS, None);
    }
    if !v.from_client || call.len() < 40 {
        return Verdict::No;
    }
    let word = |i: usize| u32_at(call, 4 * i).unwrap_or(u32::MAX);
    let program = word(3);
    if word(1) == 0
        && word(2) == 2
        && matches!(program, 100_000 | 100_003 | 100_005)
        && word(4) <= 4
    {
        Verdict::Match(L7::NFS, None)
    } else {
        Verdict::No
    }
}

/// An ONC RPC reply: REPLY, then accepted (a verifier of a known flavor and at most 400 bytes,
/// then an accept status 0–5) or denied (an RPC version mismatch or an authentication error).
fn is_reply(r: &[u8]) -> bool {
    let word = |i: usize| u32_at(r, 4 * i);
    if word(1) != Some(1) {
        return false;
    }
    match word(2) {
        Some(0) => {
            let (flavor, len) = (word(3).unwrap_or(u32::MAX), word(4).unwrap_or(u32::MAX));
            // The status follows the verifier's body, padded to 4 bytes (bounded first).
            flavor <= 6
                && len <= 400
                && u32_at(r, 20 + len.div_ceil(4) as usize * 4).is_some_and(|s| s <= 5)
        }
        Some(1) => matches!(word(3), Some(0 | 1)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::tests::{tcp, udp};

    fn call(program: u32) -> Vec<u8> {
        let mut c = Vec::new();
        for w in [0x1234_5678u32, 0, 2, program, 3, 1, 0, 0, 0, 0] {
            c.extend_from_slice(&w.to_be_bytes());
        }
        c
    }

    #[test]
    fn calls_to_nfs_mount_and_portmap_match_others_do_not() {
        assert_eq!(
            detect(&udp(&call(100_003), 800, 2049)),
            Verdict::Match(L7::NFS, None)
        );
        let mut framed = (0x8000_0000u32 | 40).to_be_bytes().to_vec();
        framed.extend_from_slice(&call(100_005));
        assert_eq!(
            detect(&tcp(&framed, 800, 2049)),
            Verdict::Match(L7::NFS, None)
        );
        // Another RPC program (NIS), and an unframed call over TCP.
        assert_eq!(detect(&udp(&call(100_004), 800, 2049)), Verdict::No);
        assert_eq!(detect(&tcp(&call(100_003), 800, 2049)), Verdict::No);
    }

    #[test]
    fn a_reply_without_its_call_counts_from_port_2049_only() {
        // xid, REPLY, accepted, verifier AUTH_NONE of 0 bytes, SUCCESS, then results.
        let mut reply = Vec::new();
        for w in [0x1234_5678u32, 1, 0, 0, 0, 0, 7, 7] {
            reply.extend_from_slice(&w.to_be_bytes());
        }
        let mut v = udp(&reply, 1023, 2049);
        v.from_client = false;
        assert_eq!(detect(&v), Verdict::Match(L7::NFS, None));
        let mut elsewhere = udp(&reply, 1023, 1048);
        elsewhere.from_client = false;
        assert_eq!(detect(&elsewhere), Verdict::No);
        reply[7] = 0; // message type CALL: not a reply
        let mut call = udp(&reply, 1023, 2049);
        call.from_client = false;
        assert_eq!(detect(&call), Verdict::No);
    }
}
