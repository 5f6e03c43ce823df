//! BGP: the 16-byte all-ones marker on TCP 179.

use super::{L7, PacketView, Verdict};

/// Detects bgp (see the module documentation).
pub fn detect(v: &PacketView<'_>) -> Verdict {
    let p = v.payload;
    if v.tcp() && v.port(179) && p.len() >= 19 && p[..16].iter().all(|&b| b == 0xff) {
        Verdict::Match(L7::BGP, None)
    } else {
        Verdict::No
    }
}
