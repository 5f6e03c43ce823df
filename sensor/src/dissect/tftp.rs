//! TFTP: a read or write request (file name, mode) on port 69.

use super::{L7, PacketView, Verdict};

/// Detects tftp (see the module documentation).
pub fn detect(v: &PacketView<'_>) -> Verdict {
    let p = v.payload;
    if !v.udp() || p.len() < 4 || p[0] != 0 {
        return Verdict::No;
    }
    // The transfer itself runs between two ephemeral ports: its first DATA (block 1, ≤ 512
    // bytes) or the ACK of the request (block 0) or of block 1, opening the flow.
    let block = u16::from_be_bytes([p[2], p[3]]);
    let opening = v.s2c_packets + v.c2s_packets <= 2;
    if opening
        && ((p[1] == 3 && p.len() <= 516 && block == 1)
            || (p[1] == 4 && p.len() == 4 && block <= 1))
    {
        return Verdict::Match(L7::TFTP, None);
    }
    if !v.port(69) || !(1..=2).contains(&p[1]) {
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
