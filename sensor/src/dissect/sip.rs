//! SIP: a request line ending in SIP/2.0 or a SIP/2.0 status line.

use super::{L7, PacketView, Verdict};

/// Detects sip (see the module documentation).
pub fn detect(v: &PacketView<'_>) -> Verdict {
    let p = v.payload;
    const METHODS: &[&[u8]] = &[
        b"INVITE ",
        b"REGISTER ",
        b"OPTIONS ",
        b"ACK ",
        b"BYE ",
        b"CANCEL ",
        b"NOTIFY ",
        b"SUBSCRIBE ",
        b"MESSAGE ",
        b"INFO ",
        b"PRACK ",
        b"UPDATE ",
        b"REFER ",
        b"PUBLISH ",
    ];
    let line_end = p
        .iter()
        .position(|&b| b == b'\r')
        .unwrap_or(p.len())
        .min(512);
    let line = &p[..line_end];
    if p.starts_with(b"SIP/2.0 ")
        || (METHODS.iter().any(|m| p.starts_with(m)) && line.ends_with(b"SIP/2.0"))
    {
        Verdict::Match(L7::SIP, None)
    } else {
        Verdict::No
    }
}
