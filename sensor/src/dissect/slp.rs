//! Service Location Protocol (RFC 2608 v2, RFC 2165 v1): the version, a known function, a
//! length field equal to the message's and a language tag — on any port (SLP's is 427).

use super::{L7, PacketView, Verdict, u16_at};

/// Detects SLP (see the module documentation).
pub fn detect(v: &PacketView<'_>) -> Verdict {
    let p = v.payload;
    if !(v.udp() || v.tcp()) || p.len() < 12 {
        return Verdict::No;
    }
    let ok = match p[0] {
        2 => v2(p, v.udp()),
        1 => v1(p, v.udp()),
        _ => false,
    };
    if ok {
        Verdict::Match(L7::Service_Location_Protocol, None)
    } else {
        Verdict::No
    }
}

/// Over UDP a datagram is one message; over TCP the first segment starts one (it may be longer
/// than the segment).
fn length_fits(len: usize, have: usize, udp: bool) -> bool {
    if udp {
        len == have
    } else {
        len >= have.min(len) && len >= 12
    }
}

fn v2(p: &[u8], udp: bool) -> bool {
    // Version, function (1..=11), length (3 bytes), flags (O, F, R, then 13 reserved zero
    // bits), next extension offset (3), XID (2), language tag length (2), language tag.
    if p.len() < 16 || !(1..=11).contains(&p[1]) {
        return false;
    }
    let len = usize::from(p[2]) << 16 | usize::from(p[3]) << 8 | usize::from(p[4]);
    let flags = u16_at(p, 5).unwrap_or(u16::MAX);
    let ext = usize::from(p[7]) << 16 | usize::from(p[8]) << 8 | usize::from(p[9]);
    let Some(tag_len) = u16_at(p, 12).map(usize::from) else {
        return false;
    };
    length_fits(len, p.len(), udp)
        && flags & 0x1fff == 0
        && (ext == 0 || ext < len)
        && (1..=64).contains(&tag_len)
        && p.get(14..14 + tag_len).is_some_and(language_tag)
}

fn v1(p: &[u8], udp: bool) -> bool {
    // Version, function (1..=10), length (2), flags (low 3 bits zero), dialect (0), language
    // code (2 letters), character encoding (IANA MIBenum: 3 ASCII, 4 Latin-1, 106 UTF-8,
    // 1000 UCS-2, 1015 UTF-16), XID.
    if !(1..=10).contains(&p[1]) || p[4] & 0x07 != 0 || p[5] != 0 {
        return false;
    }
    let len = usize::from(u16_at(p, 2).unwrap_or(0));
    let encoding = u16_at(p, 8).unwrap_or(0);
    length_fits(len, p.len(), udp)
        && p[6..8].iter().all(u8::is_ascii_alphabetic)
        && matches!(encoding, 3 | 4 | 106 | 1000 | 1015)
}

/// An RFC 1766 language tag: letters, digits and hyphens, starting with a letter.
fn language_tag(t: &[u8]) -> bool {
    t.first().is_some_and(u8::is_ascii_alphabetic)
        && t.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An SLPv2 service request for `service:printer` in language `en`.
    pub(crate) fn request() -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&0u16.to_be_bytes()); // previous responders
        body.extend_from_slice(&15u16.to_be_bytes());
        body.extend_from_slice(b"service:printer");
        body.extend_from_slice(&7u16.to_be_bytes());
        body.extend_from_slice(b"default");
        body.extend_from_slice(&[0, 0, 0, 0]); // predicate, SPI
        let len = 16 + body.len();
        let mut p = vec![
            2,
            1,
            0,
            (len >> 8) as u8,
            len as u8,
            0x20,
            0,
            0,
            0,
            0,
            0x12,
            0x34,
            0,
            2,
        ];
        p.extend_from_slice(b"en");
        p.extend_from_slice(&body);
        p
    }

    #[test]
    fn a_v2_request_matches_and_a_wrong_length_or_function_does_not() {
        fn v(p: &[u8]) -> PacketView<'_> {
            crate::dissect::tests::udp(p, 49152, 427)
        }
        assert_eq!(
            detect(&v(&request())),
            Verdict::Match(L7::Service_Location_Protocol, None)
        );
        let mut longer = request();
        longer.push(0);
        assert_eq!(detect(&v(&longer)), Verdict::No);
        let mut bad = request();
        bad[1] = 12;
        assert_eq!(detect(&v(&bad)), Verdict::No);
        let mut reserved = request();
        reserved[6] = 1;
        assert_eq!(detect(&v(&reserved)), Verdict::No);
    }
}
