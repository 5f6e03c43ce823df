//! NetBIOS datagram service (UDP 138) and session service (TCP 139).

use super::{L7, PacketView, Verdict};

/// Detects netbios (see the module documentation).
pub fn detect(v: &PacketView<'_>) -> Verdict {
    let p = v.payload;
    if v.udp() && v.port(138) && p.len() >= 14 && (0x10..=0x16).contains(&p[0]) {
        return Verdict::Match(L7::NetBIOS, None);
    }
    if v.tcp()
        && v.port(139)
        && p.len() >= 4
        && matches!(p[0], 0x00 | 0x81 | 0x82 | 0x83 | 0x84 | 0x85)
    {
        return Verdict::Match(L7::NetBIOS, None);
    }
    Verdict::No
}
