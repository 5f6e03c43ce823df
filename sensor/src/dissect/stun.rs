//! STUN: message type with the two top bits clear, the length field matching, and the magic cookie (or the classic STUN port).

use super::{L7, PacketView, Verdict, u16_at, u32_at};

/// Detects stun (see the module documentation).
pub fn detect(v: &PacketView<'_>) -> Verdict {
    let p = v.payload;
    let tcp_framed =
        v.tcp() && p.len() >= 22 && u16_at(p, 0).is_some_and(|l| usize::from(l) + 2 == p.len());
    let p = if tcp_framed { &p[2..] } else { p };
    if p.len() < 20 || p[0] & 0xc0 != 0 {
        return Verdict::No;
    }
    let len = usize::from(u16_at(p, 2).unwrap_or(u16::MAX));
    let cookie = u32_at(p, 4) == Some(0x2112_a442);
    let classic_port = v.port(3478) || v.port(3479) || v.port(19302);
    if len + 20 == p.len() && len % 4 == 0 && (cookie || classic_port) {
        // Tentative: a DTLS handshake may follow on the same flow (WebRTC), which nDPI reports.
        Verdict::Tentative(L7::STUN)
    } else {
        Verdict::No
    }
}
