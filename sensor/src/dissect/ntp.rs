//! NTP: version 1-4 and a mode, 48 bytes or more, on port 123.

use super::{L7, PacketView, Verdict};

/// Detects ntp (see the module documentation).
pub fn detect(v: &PacketView<'_>) -> Verdict {
    let p = v.payload;
    let ver = p.first().map_or(0, |b| (b >> 3) & 7);
    if v.udp() && v.port(123) && p.len() >= 48 && (1..=4).contains(&ver) {
        Verdict::Match(L7::NTP, None)
    } else {
        Verdict::No
    }
}
