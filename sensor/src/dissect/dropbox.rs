//! Dropbox LAN sync discovery: JSON with `host_int` on UDP 17500.

use super::{L7, PacketView, Verdict};

/// Detects dropbox (see the module documentation).
pub fn detect(v: &PacketView<'_>) -> Verdict {
    let p = v.payload;
    if v.udp() && v.port(17500) && p.starts_with(b"{") && p.windows(8).any(|w| w == b"host_int") {
        Verdict::Match(L7::Dropbox, None)
    } else {
        Verdict::No
    }
}
