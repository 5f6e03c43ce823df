//! Master protocols, spelled as nDPI spells them.

macro_rules! l7_names {
    ($($v:ident => $s:literal),* $(,)?) => {
        /// A master protocol.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        #[allow(non_camel_case_types, missing_docs)]
        pub enum L7 {
            #[default]
            Unknown,
            $($v),*
        }
        impl L7 {
            /// Every master protocol but Unknown.
            pub const ALL: &'static [L7] = &[$(L7::$v),*];
            /// The protocol of an nDPI name, case-insensitively.
            pub fn from_name(name: &str) -> Option<L7> {
                Self::ALL.iter().copied().find(|l| l.name().eq_ignore_ascii_case(name))
            }
            /// nDPI's name.
            pub fn name(self) -> &'static str {
                match self {
                    L7::Unknown => "Unknown",
                    $(L7::$v => $s),*
                }
            }
        }
    };
}

l7_names! {
    DNS => "DNS", HTTP => "HTTP", HTTP_Connect => "HTTP_Connect", HTTP2 => "HTTP2", TLS => "TLS",
    DTLS => "DTLS", QUIC => "QUIC", SSH => "SSH", NTP => "NTP", DHCP => "DHCP", DHCPV6 => "DHCPV6",
    MDNS => "MDNS", SSDP => "SSDP", LLMNR => "LLMNR", NetBIOS => "NetBIOS", SNMP => "SNMP",
    Syslog => "Syslog", STUN => "STUN", SIP => "SIP", BitTorrent => "BitTorrent", SMTP => "SMTP",
    SMTPS => "SMTPS", POP3 => "POP3", POP3S => "POP3S", IMAP => "IMAP", IMAPS => "IMAPS",
    FTP_CONTROL => "FTP_CONTROL", FTP_DATA => "FTP_DATA", TFTP => "TFTP", ICMP => "ICMP",
    ICMPV6 => "ICMPV6", IGMP => "IGMP", WireGuard => "WireGuard", OpenVPN => "OpenVPN",
    MySQL => "MySQL", RDP => "RDP", WhatsApp => "WhatsApp", Dropbox => "Dropbox",
    Spotify => "Spotify", Telegram => "Telegram", Zoom => "Zoom", Teredo => "Teredo",
    IPSec => "IPSec", BGP => "BGP", RTP => "RTP", GRE => "GRE", OSPF => "OSPF", VRRP => "VRRP",
}

/// Whether a flow tentatively classified as `tentative` may become `next` (SMTP after STARTTLS
/// is SMTPS; STUN that goes on to a DTLS handshake is DTLS). Anything else keeps the tentative
/// class, so one odd packet cannot re-classify a flow.
pub fn can_become(tentative: L7, next: L7) -> bool {
    matches!(
        (tentative, next),
        (L7::Unknown, _)
            | (L7::STUN, L7::DTLS)
            | (L7::SMTP, L7::SMTPS)
            | (L7::POP3, L7::POP3S)
            | (L7::IMAP, L7::IMAPS)
    )
}

/// Protocols known by their IP protocol number alone.
pub fn by_ip_protocol(proto: u8) -> Option<L7> {
    Some(match proto {
        1 => L7::ICMP,
        2 => L7::IGMP,
        47 => L7::GRE,
        50 | 51 => L7::IPSec,
        58 => L7::ICMPV6,
        89 => L7::OSPF,
        112 => L7::VRRP,
        _ => return None,
    })
}
