//! Spotify: LAN discovery `SpotUdp` on UDP 57621, and the client's TCP greeting on 4070.

use super::{L7, PacketView, Verdict};

/// Detects spotify (see the module documentation).
pub fn detect(v: &PacketView<'_>) -> Verdict {
    let p = v.payload;
    if (v.udp() && v.port(57621) && p.starts_with(b"SpotUdp"))
        || (v.tcp() && v.port(4070) && p.starts_with(&[0, 4, 0, 0]))
    {
        Verdict::Match(L7::Spotify, None)
    } else {
        Verdict::No
    }
}
