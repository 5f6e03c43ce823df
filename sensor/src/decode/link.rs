//! Link layers: Ethernet (VLAN, QinQ, MPLS, PPPoE, VN-Tag, 802.1ah), Linux cooked v1/v2, BSD
//! loopback, raw IP, PPP, Cisco HDLC, PPI and 802.11 (`wifi`), down to an EtherType and its
//! payload.

use super::{DecodeError, L2};
use crate::capture::LinkType;
use crate::wire::ethernet::{self as et, Frame};
use crate::wire::{WireError, be16, mac_at, need};

/// Decodes the link layer of `link` type.
pub(crate) fn decode(link: LinkType, data: &[u8]) -> Result<L2<'_>, DecodeError> {
    match link {
        LinkType::ETHERNET => ethernet(data),
        LinkType::LINUX_SLL => {
            need(data, 16, "linux sll")?;
            let mac = (be16(data, 4) == 6).then(|| mac_at(data, 6));
            ethertype_chain(mac, None, be16(data, 14), &data[16..])
        }
        LinkType::LINUX_SLL2 => {
            need(data, 20, "linux sll2")?;
            let mac = (data[11] == 6).then(|| mac_at(data, 12));
            ethertype_chain(mac, None, be16(data, 0), &data[20..])
        }
        LinkType::NULL | LinkType::LOOP => {
            need(data, 4, "loopback")?;
            let le = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
            let be = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
            // The family is in the writer's byte order (NULL) or network order (LOOP); the
            // smaller reading is the right one. 2: AF_INET; 10, 24, 28, 30: AF_INET6 variants.
            let family = le.min(be);
            let ethertype = match family {
                2 => et::IPV4,
                10 | 24 | 28 | 30 => et::IPV6,
                _ => return Ok(other()),
            };
            Ok(L2::bare(ethertype, &data[4..]))
        }
        LinkType::RAW
        | LinkType::RAW_OLD
        | LinkType::RAW_OLD2
        | LinkType::IPV4
        | LinkType::IPV6 => raw_ip(data),
        LinkType::PPP | LinkType::PPP_HDLC => ppp(data),
        LinkType::IEEE802_11 => super::wifi::frame(data, false),
        LinkType::IEEE802_11_RADIOTAP => super::wifi::radiotap(data),
        LinkType::PPI => ppi(data),
        LinkType::C_HDLC => {
            need(data, 4, "cisco hdlc")?;
            ethertype_chain(None, None, be16(data, 2), &data[4..])
        }
        other => Err(DecodeError::UnsupportedLink(other.0)),
    }
}

/// PPI: version 0, flags, a little-endian header length and the link type of the frame after
/// it (never PPI again, so a crafted header cannot recurse).
fn ppi(data: &[u8]) -> Result<L2<'_>, DecodeError> {
    need(data, 8, "ppi")?;
    let len = usize::from(u16::from_le_bytes([data[2], data[3]]));
    let inner = u32::from_le_bytes([data[4], data[5], data[6], data[7]]);
    let malformed = |reason| WireError::Malformed {
        layer: "ppi",
        reason,
    };
    if data[0] != 0 || len < 8 || len > data.len() {
        return Err(malformed("header version or length").into());
    }
    match u16::try_from(inner).map(LinkType) {
        Ok(LinkType::PPI) => Err(malformed("PPI inside PPI").into()),
        Ok(inner) => decode(inner, &data[len..]),
        Err(_) => Err(malformed("link type out of range").into()),
    }
}

pub(super) fn other() -> L2<'static> {
    L2 {
        src_mac: None,
        dst_mac: None,
        vlan: None,
        ethertype: 0,
        payload: &[],
    }
}

fn raw_ip(data: &[u8]) -> Result<L2<'_>, DecodeError> {
    need(data, 1, "raw ip")?;
    Ok(match data[0] >> 4 {
        4 => L2::bare(et::IPV4, data),
        6 => L2::bare(et::IPV6, data),
        _ => other(),
    })
}

/// A PPP frame (optionally with HDLC address and control bytes) to IPv4 or IPv6.
pub(crate) fn ppp(data: &[u8]) -> Result<L2<'_>, DecodeError> {
    let mut d = data;
    if d.len() >= 2 && d[0] == 0xff && d[1] == 0x03 {
        d = &d[2..];
    }
    need(d, 2, "ppp")?;
    // A protocol field may be compressed to one odd byte.
    let (proto, rest) = if d[0] & 1 == 1 {
        (u16::from(d[0]), &d[1..])
    } else {
        (be16(d, 0), &d[2..])
    };
    Ok(match proto {
        0x0021 => L2::bare(et::IPV4, rest),
        0x0057 => L2::bare(et::IPV6, rest),
        _ => other(),
    })
}

/// An Ethernet II frame through its VLAN tags, MPLS labels and PPPoE header.
pub(crate) fn ethernet(data: &[u8]) -> Result<L2<'_>, DecodeError> {
    let f = Frame::new_checked(data)?;
    ethertype_chain(Some(f.src()), Some(f.dst()), f.ethertype(), f.payload())
}

pub(super) fn ethertype_chain(
    mut src_mac: Option<[u8; 6]>,
    mut dst_mac: Option<[u8; 6]>,
    mut ethertype: u16,
    mut payload: &[u8],
) -> Result<L2<'_>, DecodeError> {
    let mut vlan = None;
    // Bounded: at most 8 stacked tags or labels.
    for _ in 0..8 {
        match ethertype {
            et::VLAN | et::QINQ | et::QINQ_OLD => {
                need(payload, 4, "vlan")?;
                vlan = Some(be16(payload, 0) & 0x0fff);
                ethertype = be16(payload, 2);
                payload = &payload[4..];
            }
            et::MPLS | et::MPLS_MC => {
                let mut p = payload;
                loop {
                    need(p, 4, "mpls")?;
                    let bottom = p[2] & 1 == 1;
                    p = &p[4..];
                    if bottom {
                        break;
                    }
                }
                need(p, 1, "mpls payload")?;
                ethertype = match p[0] >> 4 {
                    4 => et::IPV4,
                    6 => et::IPV6,
                    _ => 0,
                };
                payload = p;
            }
            et::VN_TAG => {
                need(payload, 6, "vn-tag")?;
                ethertype = be16(payload, 4);
                payload = &payload[6..];
            }
            et::PBB => {
                // I-TAG (4), then the customer frame's addresses and EtherType: the flow is
                // the customer's.
                need(payload, 18, "802.1ah")?;
                dst_mac = Some(mac_at(payload, 4));
                src_mac = Some(mac_at(payload, 10));
                ethertype = be16(payload, 16);
                payload = &payload[18..];
            }
            et::PPPOE_SESSION => {
                need(payload, 8, "pppoe")?;
                ethertype = match be16(payload, 6) {
                    0x0021 => et::IPV4,
                    0x0057 => et::IPV6,
                    _ => 0,
                };
                payload = &payload[8..];
            }
            _ => {
                return Ok(L2 {
                    src_mac,
                    dst_mac,
                    vlan,
                    ethertype,
                    payload,
                });
            }
        }
    }
    Err(WireError::Malformed {
        layer: "ethernet",
        reason: "too many stacked tags",
    }
    .into())
}
