//! The tunnels a flow can be found in, by the names flow records give them.

/// The tunnel a flow was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tunnel {
    /// Generic Routing Encapsulation.
    Gre,
    /// VXLAN (UDP 4789).
    Vxlan,
    /// GTP-U (UDP 2152).
    Gtp,
    /// IPv6 in IPv4 (6in4).
    SixInFour,
    /// IPv4 in IPv4.
    FourInFour,
    /// IP in IPv6.
    IpInSix,
    /// Teredo (IPv6 in UDP, RFC 4380).
    Teredo,
    /// Geneve (UDP 6081, RFC 8926).
    Geneve,
    /// AYIYA (anything in anything, UDP 5072).
    Ayiya,
    /// CAPWAP data channel (UDP 5247, RFC 5415).
    Capwap,
}

impl Tunnel {
    /// Every tunnel.
    pub const ALL: [Tunnel; 10] = [
        Tunnel::Gre,
        Tunnel::Vxlan,
        Tunnel::Gtp,
        Tunnel::SixInFour,
        Tunnel::FourInFour,
        Tunnel::IpInSix,
        Tunnel::Teredo,
        Tunnel::Geneve,
        Tunnel::Ayiya,
        Tunnel::Capwap,
    ];

    /// The tunnel of a flow-record name.
    pub fn from_name(name: &str) -> Option<Tunnel> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The name used in flow records.
    pub fn name(self) -> &'static str {
        match self {
            Tunnel::Gre => "GRE",
            Tunnel::Vxlan => "VXLAN",
            Tunnel::Gtp => "GTP",
            Tunnel::SixInFour => "6in4",
            Tunnel::FourInFour => "4in4",
            Tunnel::IpInSix => "IPinIPv6",
            Tunnel::Teredo => "Teredo",
            Tunnel::Geneve => "Geneve",
            Tunnel::Ayiya => "AYIYA",
            Tunnel::Capwap => "CAPWAP",
        }
    }
}
