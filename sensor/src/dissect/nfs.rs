//! NFS and its helpers (mount, the portmapper): an ONC RPC call (RFC 5531) to their program
//! numbers — message type CALL, RPC version 2, program 100003 (NFS), 100005 (mount) or 100000
//! (portmap), a program version up to 4. Over TCP the call follows a record marker.

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
}
