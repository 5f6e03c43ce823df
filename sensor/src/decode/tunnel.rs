//! Tunnels: GRE (with ERSPAN I, II and III; also over UDP), VXLAN, Geneve, GTP-U, Teredo,
//! AYIYA, CAPWAP data, and IP in IP.

use std::net::IpAddr;

use super::{DecodeError, Decoded, FragmentTable, IpPacket, L2, Tunnel, link, network, proto};
use crate::wire::ethernet as et;
use crate::wire::{be16, need};

const VXLAN_PORT: u16 = 4789;
const GTP_U_PORT: u16 = 2152;
const GENEVE_PORT: u16 = 6081;
const GRE_IN_UDP_PORT: u16 = 4754;
const AYIYA_PORT: u16 = 5072;
const CAPWAP_DATA_PORT: u16 = 5247;

/// Inner network layer with the outer frame's MACs and VLAN kept where the inner has none.
fn inner<'a>(
    mut l2: L2<'a>,
    outer: &L2<'a>,
    tunnel: Tunnel,
    frags: &mut FragmentTable,
    ts: i64,
    depth: u8,
) -> Result<Option<Decoded<'a>>, DecodeError> {
    l2.src_mac = l2.src_mac.or(outer.src_mac);
    l2.dst_mac = l2.dst_mac.or(outer.dst_mac);
    l2.vlan = l2.vlan.or(outer.vlan);
    network(l2, Some(tunnel), frags, ts, depth + 1).map(Some)
}

fn ip_by_version(b: &[u8]) -> Option<u16> {
    match b.first()? >> 4 {
        4 => Some(et::IPV4),
        6 => Some(et::IPV6),
        _ => None,
    }
}

/// UDP-borne tunnels, recognised by port and header.
pub(super) fn udp<'a>(
    pkt: &IpPacket<'a>,
    outer: &L2<'a>,
    frags: &mut FragmentTable,
    ts: i64,
    depth: u8,
) -> Result<Option<Decoded<'a>>, DecodeError> {
    let p = pkt.payload;
    if pkt.dst_port == VXLAN_PORT && p.len() >= 8 + 14 && p[0] & 0x08 != 0 {
        let l2 = link::ethernet(&p[8..])?;
        return inner(l2, outer, Tunnel::Vxlan, frags, ts, depth);
    }
    if (pkt.dst_port == GTP_U_PORT || pkt.src_port == GTP_U_PORT)
        && p.len() >= 8
        && p[0] >> 5 == 1
        && p[0] & 0x10 != 0
        && p[1] == 0xff
    {
        let mut at = 8;
        if p[0] & 0x07 != 0 {
            need(p, 12, "gtp")?;
            let mut next_ext = p[11];
            at = 12;
            // Extension headers: length in 4-byte units, last byte names the next one.
            for _ in 0..8 {
                if next_ext == 0 {
                    break;
                }
                need(p, at + 1, "gtp extension")?;
                let len = usize::from(p[at]) * 4;
                if len == 0 {
                    return Ok(None);
                }
                need(p, at + len, "gtp extension")?;
                next_ext = p[at + len - 1];
                at += len;
            }
        }
        let body = &p[at..];
        if let Some(ethertype) = ip_by_version(body) {
            return inner(
                L2::bare(ethertype, body),
                outer,
                Tunnel::Gtp,
                frags,
                ts,
                depth,
            );
        }
    }
    if pkt.dst_port == GENEVE_PORT && p.len() >= 8 && p[0] >> 6 == 0 {
        // Version 0, options (length in 4-byte words), then the protocol type.
        let at = 8 + usize::from(p[0] & 0x3f) * 4;
        need(p, at, "geneve")?;
        let body = &p[at..];
        let l2 = match be16(p, 2) {
            0x6558 => link::ethernet(body)?,
            t @ (et::IPV4 | et::IPV6) => L2::bare(t, body),
            _ => return Ok(None),
        };
        return inner(l2, outer, Tunnel::Geneve, frags, ts, depth);
    }
    if pkt.dst_port == GRE_IN_UDP_PORT {
        return gre(p, outer, frags, ts, depth);
    }
    if (pkt.dst_port == AYIYA_PORT || pkt.src_port == AYIYA_PORT) && p.len() >= 8 {
        // Identity length and type, signature length and hash, authentication and opcode
        // (1: forward), next header, epoch; then the identity and the signature.
        let (id_len, sig_len) = (1usize << (p[0] >> 4), usize::from(p[1] >> 4) * 4);
        let at = 8 + id_len + sig_len;
        need(p, at, "ayiya")?;
        let ethertype = match (p[2] & 0x0f, p[3]) {
            (1, 41) => et::IPV6,
            (1, 4) => et::IPV4,
            _ => return Ok(None),
        };
        return inner(
            L2::bare(ethertype, &p[at..]),
            outer,
            Tunnel::Ayiya,
            frags,
            ts,
            depth,
        );
    }
    if pkt.dst_port == CAPWAP_DATA_PORT || pkt.src_port == CAPWAP_DATA_PORT {
        return capwap_data(p, outer, frags, ts, depth);
    }
    if let Some(body) = teredo_data(p) {
        return inner(
            L2::bare(et::IPV6, body),
            outer,
            Tunnel::Teredo,
            frags,
            ts,
            depth,
        );
    }
    Ok(None)
}

/// IP-protocol tunnels: GRE, IPv4 in IP, IPv6 in IP.
pub(super) fn ip<'a>(
    proto_num: u8,
    outer_src: IpAddr,
    payload: &'a [u8],
    outer: &L2<'a>,
    frags: &mut FragmentTable,
    ts: i64,
    depth: u8,
) -> Result<Option<Decoded<'a>>, DecodeError> {
    let over_v6 = outer_src.is_ipv6();
    match proto_num {
        proto::IPIP => {
            let t = if over_v6 {
                Tunnel::IpInSix
            } else {
                Tunnel::FourInFour
            };
            inner(L2::bare(et::IPV4, payload), outer, t, frags, ts, depth)
        }
        proto::IPV6 => {
            let t = if over_v6 {
                Tunnel::IpInSix
            } else {
                Tunnel::SixInFour
            };
            inner(L2::bare(et::IPV6, payload), outer, t, frags, ts, depth)
        }
        proto::GRE => gre(payload, outer, frags, ts, depth),
        _ => Ok(None),
    }
}

fn gre<'a>(
    p: &'a [u8],
    outer: &L2<'a>,
    frags: &mut FragmentTable,
    ts: i64,
    depth: u8,
) -> Result<Option<Decoded<'a>>, DecodeError> {
    need(p, 4, "gre")?;
    let flags = be16(p, 0);
    if flags & 0x0007 == 1 {
        // Version 1, PPTP's enhanced GRE: key (always), then sequence and acknowledgment
        // numbers when flagged; the payload, if any, is a PPP frame.
        if be16(p, 2) != 0x880b {
            return Ok(None);
        }
        let mut at = 8;
        if flags & 0x1000 != 0 {
            at += 4;
        }
        if flags & 0x0080 != 0 {
            at += 4;
        }
        need(p, at, "gre v1")?;
        if at == p.len() {
            return Ok(None);
        }
        let l2 = link::ppp(&p[at..])?;
        if l2.ethertype == 0 {
            return Ok(None);
        }
        return inner(l2, outer, Tunnel::Gre, frags, ts, depth);
    }
    if flags & 0x0007 != 0 {
        return Ok(None);
    }
    let mut at = 4;
    for bit in [0x8000u16, 0x2000, 0x1000] {
        if flags & bit != 0 {
            at += 4;
        }
    }
    need(p, at, "gre")?;
    let body = &p[at..];
    match be16(p, 2) {
        et::IPV4 | et::IPV6 => inner(
            L2::bare(be16(p, 2), body),
            outer,
            Tunnel::Gre,
            frags,
            ts,
            depth,
        ),
        // Transparent Ethernet bridging.
        0x6558 => inner(link::ethernet(body)?, outer, Tunnel::Gre, frags, ts, depth),
        // ERSPAN type I: no sequence number and no ERSPAN header, the frame right away.
        0x88be if flags & 0x1000 == 0 => {
            inner(link::ethernet(body)?, outer, Tunnel::Gre, frags, ts, depth)
        }
        // ERSPAN type II (8-byte header) and type III (12, plus 8 with the O flag).
        0x88be => {
            need(body, 8, "erspan")?;
            inner(
                link::ethernet(&body[8..])?,
                outer,
                Tunnel::Gre,
                frags,
                ts,
                depth,
            )
        }
        0x22eb => {
            need(body, 12, "erspan")?;
            let skip = if body[11] & 0x01 != 0 { 20 } else { 12 };
            need(body, skip, "erspan")?;
            inner(
                link::ethernet(&body[skip..])?,
                outer,
                Tunnel::Gre,
                frags,
                ts,
                depth,
            )
        }
        _ => Ok(None),
    }
}

/// A CAPWAP data packet (RFC 5415): preamble 0 (clear), the header of HLEN words, then the
/// station's frame — 802.11 when the T bit says native frames of the 802.11 binding, else
/// 802.3. Keep-alives (K bit) and DTLS-protected packets carry nothing to decode.
fn capwap_data<'a>(
    p: &'a [u8],
    outer: &L2<'a>,
    frags: &mut FragmentTable,
    ts: i64,
    depth: u8,
) -> Result<Option<Decoded<'a>>, DecodeError> {
    need(p, 8, "capwap")?;
    if p[0] != 0 {
        return Ok(None);
    }
    let w = be16(p, 1);
    let (hlen, wbid, native) = (usize::from(w >> 11) * 4, (w >> 1) & 0x1f, w & 1 != 0);
    let keepalive = p[3] & 0x08 != 0;
    if hlen < 8 || keepalive {
        return Ok(None);
    }
    need(p, hlen, "capwap")?;
    let body = &p[hlen..];
    if body.is_empty() {
        return Ok(None);
    }
    let l2 = if native && wbid == 1 {
        super::wifi::capwap_frame(body)?
    } else {
        link::ethernet(body)?
    };
    // Management and control frames, and encrypted ones, carry no flow of their own: they
    // stay in the tunnel's outer flow (as nDPI counts them).
    if !matches!(l2.ethertype, et::IPV4 | et::IPV6 | et::ARP) {
        return Ok(None);
    }
    inner(l2, outer, Tunnel::Capwap, frags, ts, depth)
}

/// The IPv6 packet a Teredo datagram carries, past the optional authentication and origin
/// indications (RFC 4380 §5.1.1), or `None` when the payload is not one.
pub(crate) fn teredo_ipv6(mut p: &[u8]) -> Option<&[u8]> {
    if p.len() >= 4 && p[0] == 0 && p[1] == 1 {
        // Authentication indicator: id and auth lengths, 8-byte nonce, 1-byte confirmation.
        let skip = 4 + usize::from(p[2]) + usize::from(p[3]) + 9;
        p = p.get(skip..)?;
    }
    if p.len() >= 8 && p[0] == 0 && p[1] == 0 {
        // Origin indication.
        p = &p[8..];
    }
    (p.len() >= 40 && p[0] >> 4 == 6 && usize::from(be16(p, 4)) + 40 == p.len()).then_some(p)
}

/// The inner IPv6 packet of a Teredo data packet, or `None`.
///
/// Teredo has no port of its own for data (relays and peers use any port), so it is
/// recognised as Zeek and Wireshark do: an IPv6 header whose payload length fills the
/// datagram, with a Teredo address (2001::/32) on one side. Qualification (router
/// solicitation/advertisement) and bubbles (no next header) are the tunnel's own signalling:
/// they stay the outer UDP flow, which the Teredo dissector names, as nDPI does.
pub(crate) fn teredo_data(p: &[u8]) -> Option<&[u8]> {
    let p = teredo_ipv6(p)?;
    let teredo = |a: &[u8]| a[..4] == [0x20, 0x01, 0x00, 0x00];
    if !teredo(&p[8..24]) && !teredo(&p[24..40]) {
        return None;
    }
    const NO_NEXT_HEADER: u8 = 59;
    const ICMPV6: u8 = 58;
    let signalling = match p[6] {
        NO_NEXT_HEADER => true,
        ICMPV6 => matches!(p.get(40), Some(133 | 134)),
        _ => false,
    };
    (!signalling).then_some(p)
}
