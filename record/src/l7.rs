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
