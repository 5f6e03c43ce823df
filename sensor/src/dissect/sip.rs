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
    if p.starts_with(b"SIP/2.0 ") {
        return Verdict::Match(L7::SIP, None);
    }
    // The method first: only then is the request line looked for (not on every payload).
    if !METHODS.iter().any(|m| p.starts_with(m)) {
        return Verdict::No;
    }
    let head = &p[..p.len().min(512)];
    let line_end = head.iter().position(|&b| b == b'\r').unwrap_or(head.len());
    if p[..line_end].ends_with(b"SIP/2.0") {
        Verdict::Match(L7::SIP, None)
    } else {
        Verdict::No
    }
}
