//! Teredo signalling: qualification and bubbles to a Teredo server (UDP 3544). Data packets
//! are decapsulated earlier, in `decode::tunnel`, and never reach this dissector.

use super::{L7, PacketView, Verdict};
use crate::decode::teredo_ipv6;

/// Detects Teredo signalling (see the module documentation).
pub fn detect(v: &PacketView<'_>) -> Verdict {
    if v.udp() && v.port(3544) && teredo_ipv6(v.payload).is_some() {
        Verdict::Match(L7::Teredo, None)
    } else {
        Verdict::No
    }
}
