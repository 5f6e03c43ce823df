//! Address classes, shared by the sensor's device table, the collector's host policy and series,
//! and the manager's blacklist.

use std::net::IpAddr;

/// Whether an address is routable on the internet (not private, loopback, link-local, shared,
/// multicast, documentation or unspecified).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            !(a.is_private()
                || a.is_loopback()
                || a.is_link_local()
                || a.is_multicast()
                || a.is_broadcast()
                || a.is_unspecified()
                || a.is_documentation()
                || (o[0] == 100 && (64..128).contains(&o[1])))
        }
        IpAddr::V6(a) => {
            let s0 = a.segments()[0];
            !(a.is_loopback()
                || a.is_multicast()
                || a.is_unspecified()
                || (s0 & 0xffc0) == 0xfe80
                || (s0 & 0xfe00) == 0xfc00
                // 2001:db8::/32, documentation, like IPv4's TEST-NETs.
                || (s0 == 0x2001 && a.segments()[1] == 0x0db8))
        }
    }
}

/// Private, link-local, unique-local and shared (CGNAT) addresses.
pub fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            a.is_private() || a.is_link_local() || (o[0] == 100 && (64..128).contains(&o[1]))
        }
        IpAddr::V6(a) => {
            let s0 = a.segments()[0];
            (s0 & 0xffc0) == 0xfe80 || (s0 & 0xfe00) == 0xfc00
        }
    }
}

/// Broadcast, multicast and all-zero MACs are not devices.
pub fn is_unicast(mac: &[u8; 6]) -> bool {
    mac[0] & 0x01 == 0 && mac != &[0; 6]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_or_not() {
        for (ip, public) in [
            ("8.8.8.8", true),
            ("185.220.101.1", true),
            ("10.1.2.3", false),
            ("100.64.0.1", false),
            ("203.0.113.5", false),
            ("224.0.0.251", false),
            ("2001:4860::8888", true),
            ("fe80::1", false),
            ("fd00::1", false),
            ("2001:db8::1", false),
            ("::1", false),
        ] {
            assert_eq!(is_public(ip.parse().unwrap()), public, "{ip}");
        }
    }
}
