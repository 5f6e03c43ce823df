//! DNSCrypt: a resolver's certificate query (`2.dnscrypt-cert.<provider>`, a DNS TXT query,
//! which names the protocol version), or a resolver's answer to an encrypted query, which
//! starts with the resolver magic `r6fnvWj8` (queries start with 8 bytes of the resolver's
//! key: nothing to recognise).

use super::{L7, PacketView, Verdict};

/// The label `2` then `dnscrypt-cert`, as a DNS name carries them after the 12-byte header.
const CERT_QUERY: &[u8] = b"\x012\x0ddnscrypt-cert";
/// The first bytes of every encrypted answer of a resolver.
const RESOLVER_MAGIC: &[u8] = b"r6fnvWj8";

/// Detects DNSCrypt (see the module documentation).
pub fn detect(v: &PacketView<'_>) -> Verdict {
    let p = v.payload;
    // Over TCP a 2-byte length comes first, as DNS over TCP.
    let msg = if v.tcp() {
        p.get(2..).unwrap_or(&[])
    } else {
        p
    };
    let cert_query = v.from_client
        && msg.len() > 12 + CERT_QUERY.len()
        && msg[2] & 0x80 == 0
        && msg[12..12 + CERT_QUERY.len()].eq_ignore_ascii_case(CERT_QUERY);
    let answer = !v.from_client && msg.len() >= 64 && msg.starts_with(RESOLVER_MAGIC);
    if cert_query || answer {
        Verdict::Match(L7::DNScrypt, None)
    } else {
        Verdict::No
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::tests::udp;

    #[test]
    fn the_certificate_query_and_an_encrypted_answer_match() {
        let q = crate::dissect::dns::tests::query("2.dnscrypt-cert.example.com");
        assert_eq!(
            detect(&udp(&q, 40000, 443)),
            Verdict::Match(L7::DNScrypt, None)
        );
        let mut a = RESOLVER_MAGIC.to_vec();
        a.resize(200, 7);
        let mut back = udp(&a, 40000, 443);
        back.from_client = false;
        assert_eq!(detect(&back), Verdict::Match(L7::DNScrypt, None));
        // Not from the resolver, or a plain DNS query: no.
        assert_eq!(detect(&udp(&a, 40000, 443)), Verdict::No);
        let plain = crate::dissect::dns::tests::query("www.example.com");
        assert_eq!(detect(&udp(&plain, 40000, 53)), Verdict::No);
    }
}
