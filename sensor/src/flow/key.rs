//! A flow's identity and its hash.

use std::hash::Hasher;
use std::net::IpAddr;

use rustc_hash::FxHasher;

use crate::decode::IpPacket;

/// A flow's identity: protocol, both endpoints in canonical order (lower first), VLAN.
///
/// Addresses are kept as integers (an IPv4 address in the low 32 bits, `v6` telling the
/// families apart) rather than as `IpAddr`s: building, hashing and comparing a key once per
/// packet are then a few word operations (copies of the 17-byte enums stalled on
/// store forwarding: 6% of a replay's time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    a_addr: u128,
    b_addr: u128,
    a_port: u16,
    b_port: u16,
    /// VLAN id, 0xffff for none.
    pub vlan: u16,
    /// IP protocol.
    pub proto: u8,
    v6: bool,
}

impl FlowKey {
    /// The key of a packet's flow, and whether the packet's source is endpoint `a`.
    /// Inlined so the key stays in registers: returned through memory, its fields were
    /// written one by one and read back as words (a store-forwarding stall per packet).
    #[inline(always)]
    pub(super) fn of(p: &IpPacket<'_>) -> (FlowKey, bool) {
        let (src, dst, v6) = match (p.src, p.dst) {
            (IpAddr::V4(x), IpAddr::V4(y)) => {
                (u128::from(u32::from(x)), u128::from(u32::from(y)), false)
            }
            (x, y) => (u128::from(v6_of(x)), u128::from(v6_of(y)), true),
        };
        // Ordered as `(IpAddr, u16)` orders within one family: by address, then port.
        let src_is_a = (src, p.src_port) <= (dst, p.dst_port);
        let ((a_addr, a_port), (b_addr, b_port)) = if src_is_a {
            ((src, p.src_port), (dst, p.dst_port))
        } else {
            ((dst, p.dst_port), (src, p.src_port))
        };
        (
            FlowKey {
                a_addr,
                b_addr,
                a_port,
                b_port,
                vlan: p.vlan.unwrap_or(0xffff),
                proto: p.proto,
                v6,
            },
            src_is_a,
        )
    }

    fn addr(&self, x: u128) -> IpAddr {
        if self.v6 {
            IpAddr::V6(x.into())
        } else {
            // An IPv4 key holds only 32-bit values.
            IpAddr::V4((x as u32).into())
        }
    }

    /// The lower endpoint.
    pub fn a(&self) -> (IpAddr, u16) {
        (self.addr(self.a_addr), self.a_port)
    }

    /// The higher endpoint.
    pub fn b(&self) -> (IpAddr, u16) {
        (self.addr(self.b_addr), self.b_port)
    }
}

/// An address as IPv6 (IPv4 mapped): one IP header never mixes families, but a key must say
/// something of any pair it is given.
fn v6_of(a: IpAddr) -> std::net::Ipv6Addr {
    match a {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// The table's hash of a key: addresses as whole words, ports, protocol and VLAN in one, five
/// multiplications in all (the derived `Hash` fed FxHash field by field: 4% of a replay's time).
pub(super) fn hash_key(k: &FlowKey) -> u64 {
    let mut h = FxHasher::default();
    h.write_u64(k.a_addr as u64);
    h.write_u64(k.b_addr as u64);
    h.write_u64(
        ((k.a_addr >> 64) as u64 ^ ((k.b_addr >> 64) as u64).rotate_left(32)) | u64::from(k.v6),
    );
    h.write_u64(
        u64::from(k.proto)
            | u64::from(k.vlan) << 8
            | u64::from(k.a_port) << 24
            | u64::from(k.b_port) << 40,
    );
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(src: &str, sp: u16, dst: &str, dp: u16) -> IpPacket<'static> {
        IpPacket::tcp_for_test(src.parse().unwrap(), sp, dst.parse().unwrap(), dp)
    }

    #[test]
    fn both_directions_have_one_key_with_the_lower_endpoint_first() {
        let (k1, s1) = FlowKey::of(&packet("10.0.0.2", 40000, "10.0.0.1", 443));
        let (k2, s2) = FlowKey::of(&packet("10.0.0.1", 443, "10.0.0.2", 40000));
        assert_eq!(k1, k2);
        assert_eq!(hash_key(&k1), hash_key(&k2));
        assert!(!s1 && s2);
        assert_eq!(k1.a(), ("10.0.0.1".parse().unwrap(), 443));
        assert_eq!(k1.b(), ("10.0.0.2".parse().unwrap(), 40000));
        // Equal addresses: the port decides.
        let (k, src_is_a) = FlowKey::of(&packet("10.0.0.1", 9, "10.0.0.1", 7));
        assert!(!src_is_a);
        assert_eq!(k.a().1, 7);
    }

    #[test]
    fn ipv6_keys_order_by_the_whole_address_and_give_it_back() {
        let (k, src_is_a) = FlowKey::of(&packet("2001:db8::2", 1, "2001:db8:0:0:1::1", 2));
        assert!(src_is_a);
        assert_eq!(k.a(), ("2001:db8::2".parse().unwrap(), 1));
        assert_eq!(k.b(), ("2001:db8:0:0:1::1".parse().unwrap(), 2));
    }

    #[test]
    fn an_ipv4_flow_and_its_ipv4_mapped_twin_are_two_flows() {
        let (v4, _) = FlowKey::of(&packet("192.0.2.1", 1, "192.0.2.2", 2));
        let (mapped, _) = FlowKey::of(&packet("::ffff:192.0.2.1", 1, "::ffff:192.0.2.2", 2));
        assert_ne!(v4, mapped);
        assert_ne!(hash_key(&v4), hash_key(&mapped));
        assert_eq!(mapped.a().0, "::ffff:192.0.2.1".parse::<IpAddr>().unwrap());
        // VLANs and protocols part flows too.
        let mut p = packet("192.0.2.1", 1, "192.0.2.2", 2);
        p.vlan = Some(10);
        assert_ne!(FlowKey::of(&p).0, v4);
        p.vlan = None;
        p.proto = 17;
        assert_ne!(FlowKey::of(&p).0, v4);
    }
}
