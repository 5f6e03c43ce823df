//! QUIC: IETF long headers (v1, v2, drafts, mvfst) and Google QUIC. Classification reads the
//! cleartext header; the SNI comes from the client's Initial, decrypted ([`super::quic_initial`]).

use super::quic_initial::{Initial, read_client_hello};
use super::{L7, PacketView, Verdict, u32_at};

fn known_version(v: u32) -> bool {
    // 0: version negotiation; 0x?a?a?a?a: versions reserved to exercise negotiation.
    v == 0
        || v & 0x0f0f_0f0f == 0x0a0a_0a0a
        || v == 0x0000_0001
        || v == 0x6b33_43cf
        || (v & 0xffff_ff00) == 0xff00_0000
        || (v & 0xffff_fff0) == 0xface_b000
        || (v & 0xff00_0000) == 0x5100_0000 // Q0xx
        || (v & 0xff00_0000) == 0x5400_0000 // T0xx
}

/// Detects QUIC by its header.
pub fn detect(v: &PacketView<'_>) -> Verdict {
    let p = v.payload;
    if !v.udp() || p.len() < 20 {
        return Verdict::No;
    }
    // IETF long header: form and fixed bits, then the version.
    if p[0] & 0xc0 == 0xc0
        && let Some(ver) = u32_at(p, 1)
        && known_version(ver)
    {
        // Client Initials are padded to at least 1200 bytes; servers answer on 443 mostly.
        if (v.from_client && p.len() >= 1200) || v.port(443) || v.port(784) || v.port(853) {
            if !v.from_client {
                return Verdict::Match(L7::QUIC, None);
            }
            return match read_client_hello(p) {
                Initial::Hello(hello) => Verdict::Hello(L7::QUIC, hello),
                Initial::Incomplete => Verdict::Partial(L7::QUIC),
                Initial::Unreadable => Verdict::Match(L7::QUIC, None),
            };
        }
    }
    // Google QUIC public header with the version flag: 8-byte connection id, then "Q0xx".
    if p[0] & 0x01 != 0
        && p[0] & 0x08 != 0
        && p.len() > 13
        && p[9] == b'Q'
        && p[10] == b'0'
        && p[11].is_ascii_digit()
        && p[12].is_ascii_digit()
    {
        let sni = if v.from_client {
            gquic_chlo_sni(p)
        } else {
            None
        };
        return Verdict::Match(L7::QUIC, sni);
    }
    Verdict::No
}

/// The SNI tag of a Google QUIC client hello, sent in clear: "CHLO", a tag count, then
/// (tag, end offset) pairs and the values they delimit.
fn gquic_chlo_sni(p: &[u8]) -> Option<String> {
    let start = p.windows(4).take(128).position(|w| w == b"CHLO")?;
    let at = start + 4;
    let count = usize::from(u16::from_le_bytes([*p.get(at)?, *p.get(at + 1)?]));
    let entries = at + 4;
    let values = entries + 8 * count;
    let mut prev = 0usize;
    for i in 0..count.min(64) {
        let e = entries + 8 * i;
        let tag = p.get(e..e + 4)?;
        let end = u32::from_le_bytes(p.get(e + 4..e + 8)?.try_into().ok()?) as usize;
        if end < prev {
            return None;
        }
        if tag == b"SNI\0" {
            let v = p.get(values + prev..values + end)?;
            return std::str::from_utf8(v).ok().map(str::to_ascii_lowercase);
        }
        prev = end;
    }
    None
}
