//! ARP over Ethernet/IPv4.

use std::net::Ipv4Addr;

use super::{Mac, WireError, be16, mac_at, need};

/// A view of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a>(&'a [u8]);

impl<'a> Packet<'a> {
    /// Checks length and that it is Ethernet/IPv4 ARP.
    pub fn new_checked(b: &'a [u8]) -> Result<Self, WireError> {
        need(b, 28, "arp")?;
        if be16(b, 0) != 1 || be16(b, 2) != 0x0800 || b[4] != 6 || b[5] != 4 {
            return Err(WireError::Malformed {
                layer: "arp",
                reason: "not Ethernet/IPv4",
            });
        }
        Ok(Packet(b))
    }
    /// 1 request, 2 reply.
    pub fn opcode(&self) -> u16 {
        be16(self.0, 6)
    }
    /// Sender hardware address.
    pub fn sender_mac(&self) -> Mac {
        mac_at(self.0, 8)
    }
    /// Sender protocol address.
    pub fn sender_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.0[14], self.0[15], self.0[16], self.0[17])
    }
    /// Target protocol address.
    pub fn target_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.0[24], self.0[25], self.0[26], self.0[27])
    }
}
