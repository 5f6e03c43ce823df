//! WireGuard: message type 1-4, three reserved zero bytes, and the type's fixed length.

use super::{L7, PacketView, Verdict};

/// Detects wireguard (see the module documentation).
pub fn detect(v: &PacketView<'_>) -> Verdict {
    let p = v.payload;
    if !v.udp() || p.len() < 32 || p[1..4] != [0, 0, 0] {
        return Verdict::No;
    }
    let ok = match p[0] {
        1 => p.len() == 148,
        2 => p.len() == 92,
        3 => p.len() == 64,
        4 => p.len() >= 32 && p.len().is_multiple_of(16),
        _ => false,
    };
    if ok {
        Verdict::Match(L7::WireGuard, None)
    } else {
        Verdict::No
    }
}
