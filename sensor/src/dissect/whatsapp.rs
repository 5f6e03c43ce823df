//! WhatsApp: the chat handshake, `WA` plus version bytes (or `ED\\0\\1` for the Noise edge routing header).

use super::{L7, PacketView, Verdict};

/// Detects whatsapp (see the module documentation).
pub fn detect(v: &PacketView<'_>) -> Verdict {
    let p = v.payload;
    if v.tcp()
        && v.from_client
        && p.len() >= 4
        && ((p[0] == b'W' && p[1] == b'A' && p[2] <= 6) || (p[..4] == [b'E', b'D', 0, 1]))
    {
        Verdict::Match(L7::WhatsApp, None)
    } else {
        Verdict::No
    }
}
