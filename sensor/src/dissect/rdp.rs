//! RDP: TPKT + X.224 connection request or confirm.

use super::{L7, PacketView, Verdict, u16_at};

/// Detects rdp (see the module documentation).
pub fn detect(v: &PacketView<'_>) -> Verdict {
    let p = v.payload;
    if v.tcp()
        && p.len() >= 11
        && p[0] == 3
        && p[1] == 0
        && u16_at(p, 2).is_some_and(|l| usize::from(l) == p.len())
        && (p[5] == 0xe0 || p[5] == 0xd0)
    {
        Verdict::Match(L7::RDP, None)
    } else {
        Verdict::No
    }
}
