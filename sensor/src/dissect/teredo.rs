//! Teredo: IPv6 in UDP 3544 (optionally behind authentication / origin headers); left undecapsulated, as nDPI reports it.

use super::{L7, PacketView, Verdict};

/// Detects teredo (see the module documentation).
pub fn detect(v: &PacketView<'_>) -> Verdict {
    let mut p = v.payload;
    if !v.udp() || !v.port(3544) {
        return Verdict::No;
    }
    if p.len() >= 4 && p[0] == 0 && p[1] == 1 {
        let skip = 4 + usize::from(p[2]) + usize::from(p[3]) + 9;
        p = p.get(skip..).unwrap_or(&[]);
    }
    if p.len() >= 8 && p[0] == 0 && p[1] == 0 {
        p = &p[8..];
    }
    if p.len() >= 40 && p[0] >> 4 == 6 {
        Verdict::Match(L7::Teredo, None)
    } else {
        Verdict::No
    }
}
