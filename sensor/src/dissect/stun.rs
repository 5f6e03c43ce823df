//! STUN (RFC 5389, and RFC 3489's classic form, TURN's methods): a message type with the two
//! top bits clear and a length field equal to the message's (a multiple of 4); then either the
//! magic cookie, or attributes that fill the message exactly (classic STUN has no cookie), or
//! the STUN ports for an attribute-less classic request.

use super::{L7, PacketView, Verdict, u16_at, u32_at};

/// Detects STUN (see the module documentation).
pub fn detect(v: &PacketView<'_>) -> Verdict {
    let p = v.payload;
    let tcp_framed =
        v.tcp() && p.len() >= 22 && u16_at(p, 0).is_some_and(|l| usize::from(l) + 2 == p.len());
    let p = if tcp_framed { &p[2..] } else { p };
    if p.len() < 20 || p[0] & 0xc0 != 0 {
        return Verdict::No;
    }
    let len = usize::from(u16_at(p, 2).unwrap_or(u16::MAX));
    if len + 20 != p.len() || len % 4 != 0 {
        return Verdict::No;
    }
    let cookie = u32_at(p, 4) == Some(0x2112_a442);
    let classic_port = v.port(3478) || v.port(3479) || v.port(19302);
    let evidence = cookie || (len > 0 && attributes_fill(&p[20..])) || classic_port;
    if evidence {
        // Tentative: a DTLS handshake may follow on the same flow (WebRTC), which nDPI reports.
        Verdict::Tentative(L7::STUN)
    } else {
        Verdict::No
    }
}

/// Attributes (type, length, value padded to 4 bytes) filling `a` exactly, each of a type in
/// the registered ranges (comprehension-required 0x0001..=0x0030, optional 0x8000..=0x8030,
/// and the ones vendors use above 0xc000).
fn attributes_fill(mut a: &[u8]) -> bool {
    while !a.is_empty() {
        let (Some(t), Some(l)) = (u16_at(a, 0), u16_at(a, 2)) else {
            return false;
        };
        let padded = (usize::from(l) + 3) & !3;
        let known = matches!(t, 0x0001..=0x0030 | 0x8000..=0x8030 | 0xc000..=0xc0ff);
        if !known || 4 + padded > a.len() {
            return false;
        }
        a = &a[4 + padded..];
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::tests::udp;

    /// A classic (RFC 3489) binding request with CHANGE-REQUEST, no cookie.
    fn classic() -> Vec<u8> {
        let mut p = vec![0x00, 0x01, 0x00, 0x08];
        p.extend_from_slice(&[0x5a; 16]);
        p.extend_from_slice(&[0x00, 0x03, 0x00, 0x04, 0, 0, 0, 0]);
        p
    }

    #[test]
    fn classic_stun_matches_on_any_port_by_its_attributes() {
        assert_eq!(
            detect(&udp(&classic(), 40000, 50000)),
            Verdict::Tentative(L7::STUN)
        );
        let mut junk = classic();
        junk[20] = 0x70; // an unregistered attribute type
        assert_eq!(detect(&udp(&junk, 40000, 50000)), Verdict::No);
        // A TFTP read request is no STUN message: its "length" is the file name.
        let rrq = b"\x00\x01file.bin\x00octet\x00";
        assert_eq!(detect(&udp(rrq, 40000, 69)), Verdict::No);
    }
}
