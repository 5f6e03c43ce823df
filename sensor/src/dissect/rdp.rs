//! RDP: TPKT + X.224 connection request or confirm — on port 3389, or elsewhere when it
//! carries RDP's own parts (the `mstshash` cookie, or the negotiation request, response or
//! failure that ends it). Other protocols over ISO transport (S7comm, MMS) use the same
//! framing.

use super::{L7, PacketView, Verdict, u16_at};

/// Detects rdp (see the module documentation).
pub fn detect(v: &PacketView<'_>) -> Verdict {
    let p = v.payload;
    let tpkt_cotp = v.tcp()
        && p.len() >= 11
        && p[0] == 3
        && p[1] == 0
        && u16_at(p, 2).is_some_and(|l| usize::from(l) == p.len())
        && (p[5] == 0xe0 || p[5] == 0xd0);
    if !tpkt_cotp {
        return Verdict::No;
    }
    let cookie = p.windows(17).any(|w| w == b"Cookie: mstshash=");
    // RDP_NEG_REQ (1), RDP_NEG_RSP (2) or RDP_NEG_FAILURE (3): 8 bytes, length 8, at the end.
    let negotiation = p.len() >= 19 && {
        let n = &p[p.len() - 8..];
        matches!(n[0], 1..=3) && n[2] == 8 && n[3] == 0
    };
    if v.port(3389) || cookie || negotiation {
        Verdict::Match(L7::RDP, None)
    } else {
        Verdict::No
    }
}
