//! TLS (and DTLS): the ClientHello's SNI, reassembled when it spans TCP segments. TLS on the
//! mail ports, or after STARTTLS, is SMTPS / IMAPS / POP3S as nDPI names it.

use super::{L7, PacketView, Verdict, u16_at};

/// What a ClientHello tells about the connection it opens.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The server name indication, lower-cased.
    pub sni: Option<String>,
    /// The offered ALPN protocol ids, in the client's order, joined by `,` (ids that are not
    /// printable ASCII, or contain a comma, are left out: they cannot be told apart in a list).
    pub alpn: Option<String>,
}

impl Hello {
    /// Whether the hello named anything at all.
    pub fn is_empty(&self) -> bool {
        self.sni.is_none() && self.alpn.is_none()
    }
}

const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;

/// Walks a ClientHello body (after the 4-byte handshake header) to its SNI and ALPN extensions.
/// Returns `None` when the extensions cannot be reached.
pub(crate) fn client_hello(hello: &[u8]) -> Option<Hello> {
    hello_extensions(hello, false)
}

/// [`client_hello`] for TLS and DTLS, whose ClientHello has a cookie after the session id.
fn hello_extensions(hello: &[u8], dtls: bool) -> Option<Hello> {
    let mut at = 2 + 32;
    let sid = usize::from(*hello.get(at)?);
    at += 1 + sid;
    if dtls {
        at += 1 + usize::from(*hello.get(at)?);
    }
    let suites = usize::from(u16_at(hello, at)?);
    at += 2 + suites;
    let comp = usize::from(*hello.get(at)?);
    at += 1 + comp;
    let ext_len = usize::from(u16_at(hello, at)?);
    at += 2;
    let end = (at + ext_len).min(hello.len());
    let mut out = Hello::default();
    while at + 4 <= end {
        let kind = u16_at(hello, at)?;
        let len = usize::from(u16_at(hello, at + 2)?);
        let Some(body) = hello.get(at + 4..at + 4 + len) else {
            break;
        };
        match kind {
            EXT_SERVER_NAME => out.sni = server_name(body),
            EXT_ALPN => out.alpn = alpn_list(body),
            _ => {}
        }
        at += 4 + len;
    }
    Some(out)
}

/// The host name of a server_name extension: list length, then (type 0, length, name).
fn server_name(body: &[u8]) -> Option<String> {
    let name_len = usize::from(u16_at(body, 3)?);
    let name = body.get(5..5 + name_len)?;
    std::str::from_utf8(name).ok().map(str::to_ascii_lowercase)
}

/// The protocol ids of an ALPN extension: list length, then (length, id) pairs.
fn alpn_list(body: &[u8]) -> Option<String> {
    let list_len = usize::from(u16_at(body, 0)?);
    let list = body.get(2..(2 + list_len).min(body.len()))?;
    // At most the list's bytes (each length byte becomes a comma or nothing): one allocation.
    let mut out = String::with_capacity(list.len());
    let mut at = 0;
    while let Some(&n) = list.get(at) {
        let Some(id) = list.get(at + 1..at + 1 + usize::from(n)) else {
            break;
        };
        if !id.is_empty() && id.iter().all(|b| b.is_ascii_graphic() && *b != b',') {
            if !out.is_empty() {
                out.push(',');
            }
            // Checked printable ASCII just above.
            out.extend(id.iter().map(|&b| char::from(b)));
        }
        at += 1 + usize::from(n);
    }
    (!out.is_empty()).then_some(out)
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
        if p.len() < 13 || p[0] != 0x16 || p[1] != 0xfe || p[2] < 0xfc {
            return Verdict::No;
        }
        // A whole (unfragmented) ClientHello: 12-byte handshake header, fragment offset 0.
        let hello = match p.get(13..25) {
            Some(h) if v.from_client && h[0] == 1 && h[6..9] == [0, 0, 0] => p
                .get(25..)
                .and_then(|body| hello_extensions(body, true))
                .unwrap_or_default(),
            _ => Hello::default(),
        };
        return Verdict::Hello(L7::DTLS, hello);
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
            let hello = match hs_len {
                Some(n) if body.len() >= n.min(16 * 1024) => &body[..n.min(body.len())],
                // Certainly TLS; the names come with the rest of the ClientHello.
                _ if p.len() < 5 + record_len || hs_len.is_none() => {
                    return Verdict::Partial(named_for_port(v));
                }
                _ => body,
            };
            Verdict::Hello(named_for_port(v), client_hello(hello).unwrap_or_default())
        }
        // A ServerHello (or anything else in a handshake record) seen first: TLS, no name.
        2 if !v.from_client => Verdict::Match(named_for_port(v), None),
        _ => Verdict::No,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth;

    #[test]
    fn recognises_a_stream_after_its_handshake() {
        let mut p = vec![0x17, 3, 3, 0, 4, 1, 2, 3, 4, 0x15, 3, 3, 0, 2, 9, 9];
        assert!(record_stream(&p));
        p[10] = 7;
        assert!(!record_stream(&p));
        assert!(!record_stream(b"GET / HTTP/1.1\r\n"));
    }

    #[test]
    fn reads_sni_and_alpn() {
        let rec = synth::client_hello_with("Www.Example.ORG", &["h2", "http/1.1"]);
        let hello = client_hello(&rec[9..]).unwrap();
        assert_eq!(hello.sni.as_deref(), Some("www.example.org"));
        assert_eq!(hello.alpn.as_deref(), Some("h2,http/1.1"));
        for cut in 0..rec.len() {
            let _ = client_hello(&rec[9.min(cut)..cut]);
        }
    }

    #[test]
    fn reads_a_dtls_client_hello() {
        // The TLS hello's body with an empty cookie after the session id, in DTLS framing.
        let tls = synth::client_hello_with("", &["webrtc", "c-webrtc"]);
        let mut body = tls[9..9 + 35].to_vec();
        body.push(0);
        body.extend_from_slice(&tls[9 + 35..]);
        let n = body.len();
        let mut p = vec![0x16, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0];
        p.extend_from_slice(&((n + 12) as u16).to_be_bytes());
        p.extend_from_slice(&[
            1,
            0,
            (n >> 8) as u8,
            n as u8,
            0,
            0,
            0,
            0,
            0,
            0,
            (n >> 8) as u8,
            n as u8,
        ]);
        p.extend_from_slice(&body);
        let ip = "192.0.2.1".parse().unwrap();
        let v = PacketView {
            proto: crate::decode::proto::UDP,
            from_client: true,
            client_port: 50000,
            server_port: 8801,
            payload: &p,
            tcp_flags: 0,
            icmp: None,
            server_ip: ip,
            client_ip: ip,
            c2s_packets: 1,
            s2c_packets: 0,
            current: L7::Unknown,
        };
        let Verdict::Hello(L7::DTLS, hello) = detect(&v) else {
            panic!("not DTLS");
        };
        assert_eq!(hello.alpn.as_deref(), Some("webrtc,c-webrtc"));
    }

    #[test]
    fn alpn_ids_that_cannot_be_listed_are_left_out() {
        // list: "h3", "a,b" (comma), "\x01" (not printable), "" (empty), truncated "http/1.1"
        let body = [
            0, 17, 2, b'h', b'3', 3, b'a', b',', b'b', 1, 1, 0, 8, b'h', b't', b't', b'p',
        ];
        assert_eq!(alpn_list(&body).as_deref(), Some("h3"));
        assert_eq!(alpn_list(&[0, 2, 1, 0xff]), None);
        assert_eq!(alpn_list(&[0]), None);
    }
}
