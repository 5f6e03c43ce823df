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
                // nDPI's spelling first, as records carry it (a collector asks once a flow).
                match name {
                    $($s => Some(L7::$v),)*
                    _ => Self::ALL.iter().copied().find(|l| l.name().eq_ignore_ascii_case(name)),
                }
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
    Service_Location_Protocol => "Service_Location_Protocol", DNScrypt => "DNScrypt",
    Radius => "Radius", OICQ => "OICQ", NFS => "NFS", MsSQL_TDS => "MsSQL-TDS",
    PostgreSQL => "PostgreSQL", MongoDB => "MongoDB", MQTT => "MQTT", RTSP => "RTSP", VNC => "VNC",
    Telnet => "Telnet", Munin => "Munin", AJP => "AJP", SOCKS => "SOCKS", DNP3 => "DNP3",
    IEC60870 => "IEC60870", Modbus => "Modbus", S7Comm => "S7Comm", EthernetIP => "EthernetIP",
    BACnet => "BACnet", HART_IP => "HART-IP", IEEE_C37118 => "IEEE-C37118", COAP => "COAP",
    HSRP => "HSRP", BFD => "BFD", XDMCP => "XDMCP", NAT_PMP => "NAT-PMP", Roughtime => "Roughtime",
    TuyaLP => "TuyaLP", RakNet => "RakNet", BJNP => "BJNP", Syncthing => "Syncthing",
    Collectd => "collectd", WSD => "WSD", TeamViewer => "TeamViewer",
    ISO9506_1_MMS => "ISO9506-1-MMS", RESP => "RESP", SD_RTN => "SD-RTN", AliCloud => "AliCloud",
    AVAST => "AVAST", Controller_Area_Network => "Controller_Area_Network", KCP => "KCP",
    ZUG => "ZUG", GenshinImpact => "GenshinImpact", Viber => "Viber",
    CAPWAP => "CAPWAP", LISP => "LISP", RX => "RX", Kerberos => "Kerberos", LDAP => "LDAP",
    SMBv23 => "SMBv23", DCERPC => "DCERPC", RTCP => "RTCP", EGP => "EGP", IP_in_IP => "IP_in_IP",
    IP_PIM => "IP_PIM", PGM => "PGM", SCTP => "SCTP", SOMEIP => "SOMEIP",
    TeamSpeak => "TeamSpeak",
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_reads_back_in_any_case_and_unknown_is_no_protocol() {
        for l in L7::ALL {
            assert_eq!(L7::from_name(l.name()), Some(*l));
            assert_eq!(L7::from_name(&l.name().to_ascii_lowercase()), Some(*l));
            assert_eq!(L7::from_name(&l.name().to_ascii_uppercase()), Some(*l));
        }
        assert_eq!(L7::from_name("Unknown"), None);
        assert_eq!(L7::from_name("NotAProtocol"), None);
    }
}
