//! One packet to what the flow table needs: MACs, VLAN, tunnel, the (inner) IP 5-tuple, TCP
//! flags and the transport payload. No allocation; malformed input is an error value.
//!
//! Tunnels are decapsulated as nDPI does, so flows carry the inner tuple: GRE, VXLAN, GTP-U,
//! IPv4/IPv6 in IPv4/IPv6. Teredo is left as its outer UDP flow (nDPI reports it so).

mod fragments;
mod link;
mod tunnel;
mod wifi;

use std::net::IpAddr;

pub use fragments::FragmentTable;
pub(crate) use tunnel::teredo_ipv6;

use crate::capture::LinkType;
use crate::wire::{Mac, WireError, arp, ipv4, ipv6, tcp, udp};

/// IP protocol numbers the decoder knows.
pub mod proto {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// IPv4 in IP.
    pub const IPIP: u8 = 4;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPv6 in IP.
    pub const IPV6: u8 = 41;
    /// GRE.
    pub const GRE: u8 = 47;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
}

pub use flowmesh_record::Tunnel;

/// A decoded IP packet.
#[derive(Debug, Clone, Copy)]
pub struct IpPacket<'a> {
    /// Source MAC of the (outermost) Ethernet frame.
    pub src_mac: Option<Mac>,
    /// Destination MAC.
    pub dst_mac: Option<Mac>,
    /// Innermost VLAN id.
    pub vlan: Option<u16>,
    /// The tunnel the packet came out of.
    pub tunnel: Option<Tunnel>,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IP protocol number.
    pub proto: u8,
    /// Source port (0 where the protocol has none).
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// TCP flags (0 otherwise).
    pub tcp_flags: u8,
    /// The transport payload (empty for non-first fragments' ports, see `fragment`).
    pub payload: &'a [u8],
    /// ICMP type and code, for ICMP and ICMPv6.
    pub icmp: Option<(u8, u8)>,
    /// IP TTL / hop limit.
    pub ttl: u8,
    /// A later fragment of a datagram whose first fragment was seen: its bytes count in the
    /// flow, but not as another packet (a datagram is one packet, as Zeek and Suricata count
    /// after reassembly and nDPI counts first fragments).
    pub continues_datagram: bool,
}

#[cfg(test)]
impl IpPacket<'static> {
    /// A TCP packet from `src`:`sp` to `dst`:`dp` with nothing else set, for tests.
    pub(crate) fn tcp_for_test(src: IpAddr, sp: u16, dst: IpAddr, dp: u16) -> Self {
        IpPacket {
            src_mac: None,
            dst_mac: None,
            vlan: None,
            tunnel: None,
            src,
            dst,
            proto: proto::TCP,
            src_port: sp,
            dst_port: dp,
            tcp_flags: 0,
            payload: &[],
            icmp: None,
            ttl: 64,
            continues_datagram: false,
        }
    }
}

/// What one packet decoded to.
#[derive(Debug, Clone, Copy)]
pub enum Decoded<'a> {
    /// An IP packet with its flow tuple.
    Ip(IpPacket<'a>),
    /// An ARP packet.
    Arp {
        /// Frame source MAC.
        src_mac: Mac,
        /// Frame destination MAC.
        dst_mac: Mac,
        /// Who sent it.
        sender_mac: Mac,
        /// The sender's IP.
        sender_ip: std::net::Ipv4Addr,
        /// Request (1) or reply (2).
        opcode: u16,
    },
    /// Something else (LLDP, STP, IPX, ...): not a flow.
    Other,
}

/// Why a packet could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A header was short or impossible.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// A link type this decoder does not know.
    #[error("unsupported link type {0}")]
    UnsupportedLink(u16),
    /// A later IP fragment whose first fragment was not seen.
    #[error("IP fragment without its first fragment")]
    OrphanFragment,
}

/// Where a network-layer header starts and what it is.
pub(crate) struct L2<'a> {
    pub src_mac: Option<Mac>,
    pub dst_mac: Option<Mac>,
    pub vlan: Option<u16>,
    pub ethertype: u16,
    pub payload: &'a [u8],
}

impl<'a> L2<'a> {
    /// A network-layer payload with no link-layer addresses (raw IP, tunnels, PPP).
    pub(crate) fn bare(ethertype: u16, payload: &'a [u8]) -> Self {
        L2 {
            src_mac: None,
            dst_mac: None,
            vlan: None,
            ethertype,
            payload,
        }
    }
}

/// Decodes one captured packet.
pub fn decode<'a>(
    link: LinkType,
    data: &'a [u8],
    frags: &mut FragmentTable,
    ts_micros: i64,
) -> Result<Decoded<'a>, DecodeError> {
    let l2 = link::decode(link, data)?;
    network(l2, None, frags, ts_micros, 0)
}

/// Decodes from the network layer, as found in `l2`, through any tunnels.
pub(crate) fn network<'a>(
    l2: L2<'a>,
    tunnel: Option<Tunnel>,
    frags: &mut FragmentTable,
    ts: i64,
    depth: u8,
) -> Result<Decoded<'a>, DecodeError> {
    use crate::wire::ethernet as et;
    let (src, dst, proto_num, payload, frag, ttl) = match l2.ethertype {
        et::IPV4 => {
            let p = ipv4::Packet::new_checked(l2.payload)?;
            let frag = (p.more_fragments() || p.fragment_offset() > 0).then(|| {
                (
                    u32::from(p.ident()),
                    p.fragment_offset(),
                    p.more_fragments(),
                )
            });
            (
                IpAddr::V4(p.src()),
                IpAddr::V4(p.dst()),
                p.protocol(),
                p.payload(),
                frag,
                p.ttl(),
            )
        }
        et::IPV6 => {
            let p = ipv6::Packet::new_checked(l2.payload)?;
            let frag = p.fragment.filter(|&(_, off, more)| off > 0 || more);
            (
                IpAddr::V6(p.src()),
                IpAddr::V6(p.dst()),
                p.protocol(),
                p.payload(),
                frag,
                p.hop_limit(),
            )
        }
        et::ARP => {
            let a = arp::Packet::new_checked(l2.payload)?;
            return Ok(Decoded::Arp {
                src_mac: l2.src_mac.unwrap_or(a.sender_mac()),
                dst_mac: l2.dst_mac.unwrap_or([0xff; 6]),
                sender_mac: a.sender_mac(),
                sender_ip: a.sender_ip(),
                opcode: a.opcode(),
            });
        }
        _ => return Ok(Decoded::Other),
    };
    transport(
        &l2, tunnel, src, dst, proto_num, payload, frag, ttl, frags, ts, depth,
    )
}

#[allow(clippy::too_many_arguments)]
fn transport<'a>(
    l2: &L2<'a>,
    tunnel: Option<Tunnel>,
    src: IpAddr,
    dst: IpAddr,
    proto_num: u8,
    payload: &'a [u8],
    frag: Option<(u32, usize, bool)>,
    ttl: u8,
    frags: &mut FragmentTable,
    ts: i64,
    depth: u8,
) -> Result<Decoded<'a>, DecodeError> {
    let mut pkt = IpPacket {
        src_mac: l2.src_mac,
        dst_mac: l2.dst_mac,
        vlan: l2.vlan,
        tunnel,
        src,
        dst,
        proto: proto_num,
        src_port: 0,
        dst_port: 0,
        tcp_flags: 0,
        payload: &[],
        icmp: None,
        ttl,
        continues_datagram: false,
    };
    // Later fragments carry no transport header: they take the ports of their first fragment.
    if let Some((id, offset, _more)) = frag
        && offset > 0
    {
        match frags.lookup(src, dst, proto_num, id, ts) {
            Some((sp, dp)) => {
                pkt.src_port = sp;
                pkt.dst_port = dp;
                pkt.continues_datagram = true;
                return Ok(Decoded::Ip(pkt));
            }
            None if matches!(proto_num, proto::TCP | proto::UDP) => {
                return Err(DecodeError::OrphanFragment);
            }
            None => return Ok(Decoded::Ip(pkt)),
        }
    }
    // A first fragment too short for its transport header (RFC 1858's tiny fragment, or a
    // damaged datagram): the datagram still counts, as a flow without ports (as nDPI keys it),
    // and its later fragments join that flow.
    let header = match proto_num {
        proto::TCP => 20,
        proto::UDP => 8,
        _ => 0,
    };
    if let Some((id, 0, true)) = frag
        && payload.len() < header
    {
        frags.remember(src, dst, proto_num, id, 0, 0, ts);
        return Ok(Decoded::Ip(pkt));
    }
    match proto_num {
        proto::TCP => {
            let s = tcp::Segment::new_checked(payload)?;
            pkt.src_port = s.src_port();
            pkt.dst_port = s.dst_port();
            pkt.tcp_flags = s.flags();
            pkt.payload = s.payload();
        }
        proto::UDP => {
            let d = udp::Datagram::new_checked(payload)?;
            pkt.src_port = d.src_port();
            pkt.dst_port = d.dst_port();
            pkt.payload = d.payload();
            if depth < 3
                && frag.is_none()
                && let Some(inner) = tunnel::udp(&pkt, l2, frags, ts, depth)?
            {
                return Ok(inner);
            }
        }
        proto::ICMP | proto::ICMPV6 => {
            if payload.len() >= 2 {
                pkt.icmp = Some((payload[0], payload[1]));
            }
            pkt.payload = payload;
        }
        proto::GRE | proto::IPIP | proto::IPV6 if depth < 3 && frag.is_none() => {
            if let Some(inner) = tunnel::ip(proto_num, src, payload, l2, frags, ts, depth)? {
                return Ok(inner);
            }
            pkt.payload = payload;
        }
        _ => pkt.payload = payload,
    }
    if let Some((id, 0, true)) = frag {
        frags.remember(src, dst, proto_num, id, pkt.src_port, pkt.dst_port, ts);
    }
    Ok(Decoded::Ip(pkt))
}
