//! Application protocol detection, one module per protocol (after Suricata's `rust/src/<proto>`).
//!
//! Each module looks at one packet's payload with the flow's direction and ports and answers
//! [`Verdict::Match`] (or [`Verdict::Hello`] with a handshake's names), [`Verdict::Partial`] /
//! [`Verdict::NeedMore`] (e.g. a TLS ClientHello split over segments, a QUIC one over Initial
//! packets) or [`Verdict::No`]. A flow is inspected until a match or [`MAX_PAYLOAD_PACKETS`] packets with
//! payload; only those first packets cost anything.

mod bgp;
mod bittorrent;
mod dhcp;
mod dns;
mod dnscrypt;
mod dropbox;
mod ftp;
mod http;
mod ipsec;
mod l7;
mod mail;
mod mysql;
mod netbios;
mod nfs;
mod ntp;
mod oicq;
mod openvpn;
mod quic;
mod quic_initial;
mod radius;
mod rdp;
mod rtp;
mod signatures;
mod sip;
mod slp;
mod snmp;
mod spotify;
mod ssh;
mod stun;
mod syslog;
mod telegram;
mod teredo;
mod tftp;
mod tls;
mod whatsapp;
mod wireguard;
mod zoom;

use std::net::IpAddr;

pub use dhcp::option as dhcp_option;
pub use flowmesh_record::{app_for_name, app_named, is_app, is_known_protocol};
pub use ftp::{DataChannel, data_channel};
pub use http::header as http_header;
pub use l7::L7;
pub use quic_initial::{Initial, read_client_hello, seal_client_initial};
pub use tls::Hello;

/// Payload-carrying packets inspected per flow before giving up.
pub const MAX_PAYLOAD_PACKETS: u8 = 16;

/// What a dissector sees of one packet.
#[derive(Debug, Clone, Copy)]
pub struct PacketView<'a> {
    /// IP protocol.
    pub proto: u8,
    /// Sent by the client.
    pub from_client: bool,
    /// The client's port.
    pub client_port: u16,
    /// The server's port.
    pub server_port: u16,
    /// Transport payload.
    pub payload: &'a [u8],
    /// TCP flags.
    pub tcp_flags: u8,
    /// ICMP type and code.
    pub icmp: Option<(u8, u8)>,
    /// The server's address.
    pub server_ip: IpAddr,
    /// The client's address.
    pub client_ip: IpAddr,
    /// Packets client→server so far, this one included when from the client.
    pub c2s_packets: u64,
    /// Packets server→client so far.
    pub s2c_packets: u64,
    /// What the flow was tentatively classified as so far.
    pub current: L7,
}

impl PacketView<'_> {
    /// TCP?
    pub fn tcp(&self) -> bool {
        self.proto == crate::decode::proto::TCP
    }
    /// UDP?
    pub fn udp(&self) -> bool {
        self.proto == crate::decode::proto::UDP
    }
    /// Either port equals `p`.
    pub fn port(&self, p: u16) -> bool {
        self.client_port == p || self.server_port == p
    }
}

/// A dissector's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// This is the protocol; with the server name when the packet carries one.
    Match(L7, Option<String>),
    /// This is the protocol, and this is what its handshake (TLS or QUIC ClientHello) names.
    Hello(L7, Hello),
    /// Probably this protocol, but the deciding bytes are in a later client packet: keep this
    /// one and inspect it joined with the next.
    NeedMore,
    /// As [`Verdict::NeedMore`], but only this packet's first `n` bytes matter to the next
    /// inspection, so only they are kept: a flood of first packets that merely look like the
    /// protocol holds a few bytes per flow, not a payload each.
    NeedMoreOf(usize),
    /// Certainly this protocol, but its names are in a later client packet: classify now, keep
    /// this one and inspect it joined with the next.
    Partial(L7),
    /// This protocol unless a later packet says more (SMTP until STARTTLS makes it SMTPS).
    Tentative(L7),
    /// Not this protocol.
    No,
}

/// Detection state and result of one flow.
#[derive(Debug, Default)]
pub struct Dpi {
    l7: L7,
    /// Server name and ALPN list in one allocation, `"{sni}\0{alpn}"` (either part may be
    /// empty): most flows have neither, and a flow with both pays for one allocation.
    names: Option<Box<str>>,
    app: Option<&'static str>,
    done: bool,
    inspected: u8,
    /// Bytes of a client message split over TCP segments (TLS ClientHello), bounded. Boxed so
    /// the common case (nothing pending) costs 8 bytes per flow instead of 24.
    #[allow(clippy::box_collection)]
    pending: Option<Box<Vec<u8>>>,
}

impl Dpi {
    /// Whether detection has finished.
    pub fn is_done(&self) -> bool {
        self.done
    }
    /// nDPI's name of the master protocol.
    pub fn l7_name(&self) -> &'static str {
        self.l7.name()
    }
    /// The master protocol.
    pub fn l7(&self) -> L7 {
        self.l7
    }
    /// SNI, HTTP Host or DNS query name.
    pub fn server_name(&self) -> Option<&str> {
        self.name_part(0)
    }
    /// The ALPN protocol ids the client offered, comma-separated.
    pub fn alpn(&self) -> Option<&str> {
        self.name_part(1)
    }
    fn name_part(&self, i: usize) -> Option<&str> {
        let part = self.names.as_deref()?.split('\0').nth(i)?;
        (!part.is_empty()).then_some(part)
    }
    /// The application, from the server name.
    pub fn app(&self) -> Option<&'static str> {
        self.app
    }

    /// Classifies the flow without inspecting it: its parent connection announced it.
    pub(crate) fn classify(&mut self, l7: L7) {
        self.set(l7, Hello::default());
    }

    fn set(&mut self, l7: L7, names: Hello) {
        self.l7 = l7;
        let (sni, alpn) = (
            names.sni.as_deref().unwrap_or(""),
            names.alpn.as_deref().unwrap_or(""),
        );
        if let Some((joined, sni_len)) = join_names(sni, alpn) {
            if sni_len > 0 {
                self.app = app_for_name(&joined[..sni_len]);
            }
            self.names = Some(joined);
        }
        self.done = true;
        self.pending = None;
    }
}

/// A flow's names as `Dpi::names` keeps them, `name\0alpn`, in one allocation of the exact
/// size (once per flow), with the name's length; `None` when there is neither. NUL separates
/// the parts, so NULs in the name are dropped (a name holding one is malformed anyway).
fn join_names(sni: &str, alpn: &str) -> Option<(Box<str>, usize)> {
    if alpn.is_empty() && sni.bytes().all(|b| b == 0) {
        return None;
    }
    let mut joined = String::with_capacity(sni.len() + 1 + alpn.len());
    sni.split('\0').for_each(|part| joined.push_str(part));
    let sni_len = joined.len();
    joined.push('\0');
    joined.push_str(alpn);
    Some((joined.into_boxed_str(), sni_len))
}

/// Largest client message reassembled across TCP segments.
const MAX_PENDING: usize = 16 * 1024;

/// The dissectors, most specific first; each is cheap to reject.
const DISSECTORS: &[fn(&PacketView<'_>) -> Verdict] = &[
    // Before DNS: a resolver's certificate query is a well-formed DNS query.
    dnscrypt::detect,
    dns::detect,
    tls::detect,
    http::detect,
    quic::detect,
    ssh::detect,
    dhcp::detect,
    mail::detect,
    bgp::detect,
    dropbox::detect,
    ipsec::detect,
    mysql::detect,
    netbios::detect,
    nfs::detect,
    ntp::detect,
    oicq::detect,
    // Before OpenVPN and TFTP, whose first bytes a STUN message can share.
    stun::detect,
    openvpn::detect,
    radius::detect,
    rdp::detect,
    sip::detect,
    slp::detect,
    snmp::detect,
    spotify::detect,
    signatures::detect,
    syslog::detect,
    telegram::detect,
    teredo::detect,
    tftp::detect,
    whatsapp::detect,
    wireguard::detect,
    zoom::detect,
    // After every protocol a first datagram names: RTP needs a second one to be sure.
    rtp::detect,
    // Last: its uTP heuristic is the loosest.
    bittorrent::detect,
];

/// Inspects one packet of a flow.
pub fn inspect(dpi: &mut Dpi, v: &PacketView<'_>) {
    if let Some(l7) = l7::by_ip_protocol(v.proto) {
        dpi.set(l7, Hello::default());
        return;
    }
    if v.payload.is_empty() {
        return;
    }
    dpi.inspected += 1;
    // A client message split over segments: inspect the reassembled bytes.
    let mut joined = None;
    if v.from_client
        && let Some(buf) = dpi.pending.as_mut()
    {
        buf.extend_from_slice(
            &v.payload[..v.payload.len().min(MAX_PENDING.saturating_sub(buf.len()))],
        );
        joined = Some(std::mem::take(&mut **buf));
    }
    let view = match &joined {
        Some(bytes) => PacketView {
            payload: bytes,
            current: dpi.l7,
            ..*v
        },
        None => PacketView {
            current: dpi.l7,
            ..*v
        },
    };
    // How much of this payload a dissector asked to keep for the next client packet.
    let mut keep = 0usize;
    for d in DISSECTORS {
        let (l7, names) = match d(&view) {
            Verdict::Match(l7, sni) => (l7, Hello { sni, alpn: None }),
            Verdict::Hello(l7, hello) => (l7, hello),
            Verdict::NeedMore => {
                keep = usize::MAX;
                continue;
            }
            Verdict::NeedMoreOf(n) => {
                keep = keep.max(n);
                continue;
            }
            Verdict::Partial(l7) => {
                if l7::can_become(dpi.l7, l7) {
                    dpi.l7 = l7;
                    keep = usize::MAX;
                    break;
                }
                continue;
            }
            Verdict::Tentative(l7) if l7::can_become(dpi.l7, l7) => {
                dpi.l7 = l7;
                break;
            }
            Verdict::Tentative(_) | Verdict::No => continue,
        };
        // The same class again only counts when it completes what a partial match waited for.
        let completes = l7 == dpi.l7 && (joined.is_some() || !names.is_empty());
        if l7::can_become(dpi.l7, l7) || completes {
            dpi.set(l7, names);
            return;
        }
    }
    if keep > 0 && v.from_client && view.payload.len() < MAX_PENDING {
        let kept = &view.payload[..view.payload.len().min(keep)];
        dpi.pending = Some(Box::new(kept.to_vec()));
    } else if joined.is_some() {
        dpi.pending = None;
    }
    if dpi.inspected >= MAX_PAYLOAD_PACKETS {
        dpi.done = true;
        dpi.pending = None;
    }
}

/// Reads a big-endian u16 at `at`, if present.
pub(crate) fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Reads a big-endian u32 at `at`, if present.
pub(crate) fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn view(proto: u8, payload: &[u8], client_port: u16, server_port: u16) -> PacketView<'_> {
        PacketView {
            proto,
            from_client: true,
            client_port,
            server_port,
            payload,
            tcp_flags: 0x18,
            icmp: None,
            server_ip: IpAddr::from([192, 0, 2, 1]),
            client_ip: IpAddr::from([192, 0, 2, 2]),
            c2s_packets: 1,
            s2c_packets: 0,
            current: L7::Unknown,
        }
    }

    /// A client's UDP datagram.
    pub(crate) fn udp(payload: &[u8], client_port: u16, server_port: u16) -> PacketView<'_> {
        view(crate::decode::proto::UDP, payload, client_port, server_port)
    }

    /// A client's TCP segment.
    pub(crate) fn tcp(payload: &[u8], client_port: u16, server_port: u16) -> PacketView<'_> {
        view(crate::decode::proto::TCP, payload, client_port, server_port)
    }
}
