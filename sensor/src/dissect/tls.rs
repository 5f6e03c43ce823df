//! TLS (and DTLS): the ClientHello's SNI, reassembled when it spans TCP segments. TLS on the
//! mail ports, or after STARTTLS, is SMTPS / IMAPS / POP3S as nDPI names it.

use super::{L7, PacketView, Verdict, u16_at};

/// Walks a ClientHello body (after the 4-byte handshake header) to its SNI.
pub(crate) fn client_hello_sni(hello: &[u8]) -> Option<String> {
    let mut at = 2 + 32;
    let sid = usize::from(*hello.get(at)?);
    at += 1 + sid;
    let suites = usize::from(u16_at(hello, at)?);
    at += 2 + suites;
    let comp = usize::from(*hello.get(at)?);
    at += 1 + comp;
    let ext_len = usize::from(u16_at(hello, at)?);
    at += 2;
    let end = (at + ext_len).min(hello.len());
    while at + 4 <= end {
        let kind = u16_at(hello, at)?;
        let len = usize::from(u16_at(hello, at + 2)?);
        let body = hello.get(at + 4..at + 4 + len)?;
        if kind == 0 {
            // server_name list: total length, then (type 0, length, name).
            let name_len = usize::from(u16_at(body, 3)?);
            let name = body.get(5..5 + name_len)?;
            return std::str::from_utf8(name).ok().map(str::to_ascii_lowercase);
        }
        at += 4 + len;
    }
    None
}

fn named_for_port(v: &PacketView<'_>) -> L7 {
    match (v.current, v.server_port) {
        (L7::SMTP, _) | (_, 465) => L7::SMTPS,
        (L7::IMAP, _) | (_, 993) => L7::IMAPS,
        (L7::POP3, _) | (_, 995) => L7::POP3S,
        _ => L7::TLS,
    }
}

/// Whether `p` is a run of well-formed TLS records from its first byte: valid content types and
/// versions, each length in bounds, the last one ending at or past the end of the payload.
/// This recognises a TLS stream picked up after its handshake.
fn record_stream(p: &[u8]) -> bool {
    let mut at = 0;
    let mut complete = 0;
    while at + 5 <= p.len() {
        let (t, major, minor) = (p[at], p[at + 1], p[at + 2]);
        let len = usize::from(u16_at(p, at + 3).unwrap_or(u16::MAX));
        if !(0x14..=0x17).contains(&t) || major != 3 || minor > 4 || len == 0 || len > 18 * 1024 {
            return false;
        }
        at += 5 + len;
        if at <= p.len() {
            complete += 1;
        }
    }
    at >= p.len() && (complete > 0 || p.len() >= 512) && p[0] == 0x17
}

/// Detects TLS handshakes (and DTLS over UDP).
pub fn detect(v: &PacketView<'_>) -> Verdict {
    let p = v.payload;
    if v.udp() {
        // DTLS: handshake record, version 0xfeff / 0xfefd / 0xfefc.
        return if p.len() >= 13 && p[0] == 0x16 && p[1] == 0xfe && p[2] >= 0xfc {
            Verdict::Match(L7::DTLS, None)
        } else {
            Verdict::No
        };
    }
    if !v.tcp() || p.len() < 6 {
        return Verdict::No;
    }
    if p[0] == 0x17 && record_stream(p) {
        return Verdict::Match(named_for_port(v), None);
    }
    if p[0] != 0x16 || p[1] != 0x03 || p[2] > 0x04 {
        return Verdict::No;
    }
    let record_len = usize::from(u16_at(p, 3).unwrap_or(0));
    match p[5] {
        1 => {
            let hs_len = p
                .get(6..9)
                .map(|b| usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]));
            let body = &p[9.min(p.len())..];
            match hs_len {
                Some(n) if body.len() >= n.min(16 * 1024) => Verdict::Match(
                    named_for_port(v),
                    client_hello_sni(&body[..n.min(body.len())]),
                ),
                _ if p.len() < 5 + record_len || hs_len.is_none() => Verdict::NeedMore,
                _ => Verdict::Match(named_for_port(v), client_hello_sni(body)),
            }
        }
        // A ServerHello (or anything else in a handshake record) seen first: TLS, no name.
        2 if !v.from_client => Verdict::Match(named_for_port(v), None),
        _ => Verdict::No,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::client_hello;

    #[test]
    fn recognises_a_stream_after_its_handshake() {
        let mut p = vec![0x17, 3, 3, 0, 4, 1, 2, 3, 4, 0x15, 3, 3, 0, 2, 9, 9];
        assert!(record_stream(&p));
        p[10] = 7;
        assert!(!record_stream(&p));
        assert!(!record_stream(b"GET / HTTP/1.1\r\n"));
    }

    #[test]
    fn reads_sni() {
        let rec = client_hello("Www.Example.ORG");
        assert_eq!(
            client_hello_sni(&rec[9..]).as_deref(),
            Some("www.example.org")
        );
        for cut in 0..rec.len() {
            let _ = client_hello_sni(&rec[9.min(cut)..cut]);
        }
    }
}
