//! OICQ (Tencent QQ's classic UDP protocol): a datagram framed by STX (0x02) and ETX (0x03)
//! around a 2-byte client version, a 2-byte command and a sequence number, to or from QQ's
//! port 8000.

use super::{L7, PacketView, Verdict, u16_at};

/// Detects OICQ (see the module documentation).
pub fn detect(v: &PacketView<'_>) -> Verdict {
    let p = v.payload;
    if !v.udp() || !v.port(8000) || p.len() < 12 || p[0] != 0x02 || p[p.len() - 1] != 0x03 {
        return Verdict::No;
    }
    // Commands are small numbers (login 0x0022, keep-alive 0x0002, messages 0x00cd, ...).
    let command = u16_at(p, 3).unwrap_or(u16::MAX);
    if command != 0 && command < 0x0400 {
        Verdict::Match(L7::OICQ, None)
    } else {
        Verdict::No
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::tests::udp;

    #[test]
    fn a_framed_keepalive_matches_and_an_unframed_datagram_does_not() {
        let mut p = vec![
            0x02, 0x3c, 0x4b, 0x00, 0x02, 0x00, 0x01, 1, 2, 3, 4, 5, 6, 0x03,
        ];
        assert_eq!(detect(&udp(&p, 4000, 8000)), Verdict::Match(L7::OICQ, None));
        p.pop();
        assert_eq!(detect(&udp(&p, 4000, 8000)), Verdict::No);
    }
}
