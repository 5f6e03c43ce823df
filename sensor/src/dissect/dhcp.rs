//! DHCP (BOOTP with the magic cookie; host name from option 12) and DHCPv6.

use super::{L7, PacketView, Verdict};

const COOKIE: [u8; 4] = [0x63, 0x82, 0x53, 0x63];

/// The value of DHCP option `code`, if present.
pub fn option(msg: &[u8], code: u8) -> Option<&[u8]> {
    let mut at = 240;
    while at < msg.len() {
        let c = msg[at];
        if c == 255 {
            return None;
        }
        if c == 0 {
            at += 1;
            continue;
        }
        let len = usize::from(*msg.get(at + 1)?);
        let value = msg.get(at + 2..at + 2 + len)?;
        if c == code {
            return Some(value);
        }
        at += 2 + len;
    }
    None
}

/// Detects DHCP and DHCPv6.
pub fn detect(v: &PacketView<'_>) -> Verdict {
    if !v.udp() {
        return Verdict::No;
    }
    let p = v.payload;
    if (v.port(67) || v.port(68))
        && p.len() >= 240
        && (p[0] == 1 || p[0] == 2)
        && p[236..240] == COOKIE
    {
        let host = option(p, 12)
            .and_then(|h| std::str::from_utf8(h).ok())
            .map(|h| h.trim_end_matches('\0').to_string());
        return Verdict::Match(L7::DHCP, host);
    }
    if (v.port(546) || v.port(547)) && p.len() >= 4 && (1..=13).contains(&p[0]) {
        return Verdict::Match(L7::DHCPV6, None);
    }
    Verdict::No
}
