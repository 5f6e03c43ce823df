//! TFTP: a read or write request (file name, mode) on port 69.

use super::{L7, PacketView, Verdict};

/// Detects tftp (see the module documentation).
pub fn detect(v: &PacketView<'_>) -> Verdict {
    let p = v.payload;
    if !v.udp() || !v.port(69) || p.len() < 4 || p[0] != 0 || !(1..=2).contains(&p[1]) {
        return Verdict::No;
    }
    let rest = &p[2..];
    let modes: [&[u8]; 3] = [b"octet", b"netascii", b"mail"];
    let mut parts = rest.split(|&b| b == 0);
    let (Some(name), Some(mode)) = (parts.next(), parts.next()) else {
        return Verdict::No;
    };
    if !name.is_empty() && modes.iter().any(|m| mode.eq_ignore_ascii_case(m)) {
        Verdict::Match(L7::TFTP, None)
    } else {
        Verdict::No
    }
}
