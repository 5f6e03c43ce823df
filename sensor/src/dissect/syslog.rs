//! Syslog: `<PRI>` on UDP 514.

use super::{L7, PacketView, Verdict};

/// Detects syslog (see the module documentation).
pub fn detect(v: &PacketView<'_>) -> Verdict {
    let p = v.payload;
    if !v.udp() || !v.port(514) || p.first() != Some(&b'<') {
        return Verdict::No;
    }
    let digits = p[1..].iter().take_while(|c| c.is_ascii_digit()).count();
    if (1..=3).contains(&digits) && p.get(1 + digits) == Some(&b'>') {
        Verdict::Match(L7::Syslog, None)
    } else {
        Verdict::No
    }
}
