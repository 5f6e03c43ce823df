//! QUIC: IETF long headers (v1, v2, drafts, mvfst) and Google QUIC. Classification reads only
//! the cleartext header; reading the SNI needs the Initial packet decrypted (not yet done).

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
            return Verdict::Match(L7::QUIC, None);
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
        return Verdict::Match(L7::QUIC, None);
    }
    Verdict::No
}
