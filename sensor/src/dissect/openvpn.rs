//! OpenVPN: a hard-reset control packet opening the session (UDP, or TCP with its 2-byte length).

use super::{L7, PacketView, Verdict, u16_at};

/// Detects openvpn (see the module documentation).
pub fn detect(v: &PacketView<'_>) -> Verdict {
    let p = v.payload;
    let p = if v.tcp() {
        match u16_at(p, 0) {
            Some(l) if usize::from(l) + 2 <= p.len() && l >= 14 => &p[2..2 + usize::from(l)],
            _ => return Verdict::No,
        }
    } else if v.udp() {
        p
    } else {
        return Verdict::No;
    };
    // P_CONTROL_HARD_RESET_CLIENT_V1/V2/V3 (1, 7, 10) and _SERVER_V1/V2 (2, 8), key id 0.
    let opcode = p.first().map_or(0, |b| b >> 3);
    let key_id = p.first().map_or(1, |b| b & 7);
    if matches!(opcode, 1 | 2 | 7 | 8 | 10)
        && key_id == 0
        && p.len() >= 14
        && (v.port(1194) || (v.c2s_packets <= 2 && p.len() < 300))
    {
        Verdict::Match(L7::OpenVPN, None)
    } else {
        Verdict::No
    }
}
