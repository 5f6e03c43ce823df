//! Ethernet II frames.

use super::{Mac, WireError, be16, mac_at, need};

/// EtherType of IPv4.
pub const IPV4: u16 = 0x0800;
/// EtherType of ARP.
pub const ARP: u16 = 0x0806;
/// EtherType of an 802.1Q VLAN tag.
pub const VLAN: u16 = 0x8100;
/// EtherType of an 802.1ad (QinQ) service tag.
pub const QINQ: u16 = 0x88a8;
/// Older QinQ tag value still seen in captures.
pub const QINQ_OLD: u16 = 0x9100;
/// EtherType of IPv6.
pub const IPV6: u16 = 0x86dd;
/// MPLS unicast.
pub const MPLS: u16 = 0x8847;
/// MPLS multicast.
pub const MPLS_MC: u16 = 0x8848;
/// PPPoE session stage.
pub const PPPOE_SESSION: u16 = 0x8864;
/// Cisco VN-Tag (a 4-byte tag, then the EtherType).
pub const VN_TAG: u16 = 0x8926;
/// IEEE 802.1ah provider backbone bridging: an I-TAG, then the customer's frame.
pub const PBB: u16 = 0x88e7;

/// A view of an Ethernet II frame.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a>(&'a [u8]);

impl<'a> Frame<'a> {
    /// Checks the 14-byte header is present.
    pub fn new_checked(b: &'a [u8]) -> Result<Self, WireError> {
        need(b, 14, "ethernet")?;
        Ok(Frame(b))
    }
    /// Destination MAC.
    pub fn dst(&self) -> Mac {
        mac_at(self.0, 0)
    }
    /// Source MAC.
    pub fn src(&self) -> Mac {
        mac_at(self.0, 6)
    }
    /// EtherType (or 802.3 length when ≤ 1500).
    pub fn ethertype(&self) -> u16 {
        be16(self.0, 12)
    }
    /// Bytes after the header.
    pub fn payload(&self) -> &'a [u8] {
        &self.0[14..]
    }
}
