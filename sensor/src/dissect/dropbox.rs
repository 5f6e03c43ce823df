//! Dropbox LAN sync: discovery JSON with `host_int`, and `Bus17Cmd` messages, on UDP 17500.

use super::{L7, PacketView, Verdict};

/// Detects dropbox (see the module documentation).
pub fn detect(v: &PacketView<'_>) -> Verdict {
    // The port first: the payload scan is for the few packets on it.
    if v.udp()
        && v.port(17500)
        && v.payload
            .windows(8)
            .any(|w| w == b"host_int" || w == b"Bus17Cmd")
    {
        Verdict::Match(L7::Dropbox, None)
    } else {
        Verdict::No
    }
}
