//! IPSec key exchange: IKE on UDP 500 / 4500 (after the non-ESP marker).

use super::{L7, PacketView, Verdict, u32_at};

/// Detects ipsec (see the module documentation).
pub fn detect(v: &PacketView<'_>) -> Verdict {
    let p = v.payload;
    if !v.udp() || !(v.port(500) || v.port(4500)) {
        return Verdict::No;
    }
    let ike = if v.port(4500) && p.starts_with(&[0, 0, 0, 0]) {
        &p[4..]
    } else {
        p
    };
    // IKE header: 8+8 SPIs, next payload, version (major 1 or 2), exchange type.
    if ike.len() >= 28
        && matches!(ike[17] >> 4, 1 | 2)
        && u32_at(ike, 24).is_some_and(|l| l as usize == ike.len())
    {
        Verdict::Match(L7::IPSec, None)
    } else if v.port(4500) && p.len() >= 8 && !p.starts_with(&[0, 0, 0, 0]) {
        // ESP in UDP.
        Verdict::Match(L7::IPSec, None)
    } else {
        Verdict::No
    }
}
