//! SNMP: a BER sequence holding version 1, 2c or 3 on ports 161/162.

use super::{L7, PacketView, Verdict};

/// Detects snmp (see the module documentation).
pub fn detect(v: &PacketView<'_>) -> Verdict {
    let p = v.payload;
    if !v.udp() || !(v.port(161) || v.port(162)) || p.len() < 8 || p[0] != 0x30 {
        return Verdict::No;
    }
    // Skip the sequence length (short or long form) to the version INTEGER.
    let at = if p[1] & 0x80 == 0 {
        2
    } else {
        2 + usize::from(p[1] & 0x7f)
    };
    match p.get(at..at + 3) {
        Some([0x02, 0x01, 0 | 1 | 3]) => Verdict::Match(L7::SNMP, None),
        _ => Verdict::No,
    }
}
