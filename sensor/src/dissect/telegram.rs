//! Telegram: MTProto's abridged (0xef) or intermediate (0xeeeeeeee) transport towards Telegram's networks, and its UDP calls there.

use super::{L7, PacketView, Verdict};

/// Detects telegram (see the module documentation).
pub fn detect(v: &PacketView<'_>) -> Verdict {
    let p = v.payload;
    let ours = match v.server_ip {
        std::net::IpAddr::V4(a) => {
            let o = a.octets();
            (o[0] == 91 && o[1] == 108)
                || (o[0] == 149 && o[1] == 154)
                || (o[0] == 95 && o[1] == 161 && o[2] >= 64)
        }
        std::net::IpAddr::V6(a) => {
            a.segments()[0] == 0x2001 && (a.segments()[1] == 0x0b28 || a.segments()[1] == 0x067c)
        }
    };
    if !ours {
        return Verdict::No;
    }
    if v.tcp()
        && v.from_client
        && (p.first() == Some(&0xef) || p.starts_with(&[0xee, 0xee, 0xee, 0xee]))
    {
        return Verdict::Match(L7::Telegram, None);
    }
    if v.udp() && (500..600).contains(&v.server_port) && p.len() >= 24 {
        return Verdict::Match(L7::Telegram, None);
    }
    Verdict::No
}
