//! RADIUS (RFC 2865/2866, CoA RFC 5176): a known code, a length field equal to the datagram's,
//! and attributes that fill it exactly.

use super::{L7, PacketView, Verdict, u16_at};

/// Detects RADIUS (see the module documentation).
pub fn detect(v: &PacketView<'_>) -> Verdict {
    let p = v.payload;
    if !v.udp() || p.len() < 20 || p.len() > 4096 {
        return Verdict::No;
    }
    // Access-Request/Accept/Reject, Accounting-Request/Response, Access-Challenge,
    // Status-Server/Client, Disconnect and CoA Request/ACK/NAK.
    let code_ok = matches!(p[0], 1..=5 | 11..=13 | 40..=45);
    if !code_ok || u16_at(p, 2).map(usize::from) != Some(p.len()) || !attributes_fill(&p[20..]) {
        return Verdict::No;
    }
    Verdict::Match(L7::Radius, None)
}

/// Type-length-value attributes, each at least 2 bytes, ending exactly at the end.
fn attributes_fill(mut a: &[u8]) -> bool {
    while !a.is_empty() {
        match a.get(1).map(|&l| usize::from(l)) {
            Some(l) if l >= 2 && l <= a.len() && a[0] != 0 => a = &a[l..],
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::tests::udp;

    fn access_request() -> Vec<u8> {
        let mut p = vec![1, 7, 0, 0];
        p.extend_from_slice(&[0x11; 16]);
        p.extend_from_slice(&[1, 7, b'a', b'l', b'i', b'c', b'e']); // User-Name
        p.extend_from_slice(&[4, 6, 10, 0, 0, 1]); // NAS-IP-Address
        let len = p.len() as u16;
        p[2..4].copy_from_slice(&len.to_be_bytes());
        p
    }

    #[test]
    fn a_request_matches_and_broken_attributes_do_not() {
        assert_eq!(
            detect(&udp(&access_request(), 50000, 1812)),
            Verdict::Match(L7::Radius, None)
        );
        let mut bad = access_request();
        bad[21] = 40; // User-Name longer than what is left
        assert_eq!(detect(&udp(&bad, 50000, 1812)), Verdict::No);
        let mut code = access_request();
        code[0] = 9;
        assert_eq!(detect(&udp(&code, 50000, 1812)), Verdict::No);
    }
}
