//! Zoom: its UDP media encapsulation on port 8801 (type 0x05, then a known media type).

use super::{L7, PacketView, Verdict};

/// Detects zoom (see the module documentation).
pub fn detect(v: &PacketView<'_>) -> Verdict {
    let p = v.payload;
    if v.udp() && v.port(8801) && p.len() >= 24 && (p[0] == 0x05 || p[0] == 0x01 || p[0] == 0x02) {
        Verdict::Match(L7::Zoom, None)
    } else {
        Verdict::No
    }
}
