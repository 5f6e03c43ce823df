//! IP protocols by the names nDPI gives them.

/// IP protocol numbers and the names nDPI gives them.
const L4_NAMES: &[(u8, &str)] = &[
    (1, "ICMP"),
    (2, "IGMP"),
    (6, "TCP"),
    (17, "UDP"),
    (47, "GRE"),
    (50, "ESP"),
    (51, "AH"),
    (58, "ICMPV6"),
    (89, "OSPF"),
    (103, "PIM"),
    (112, "VRRP"),
    (132, "SCTP"),
];

/// The name nDPI gives an IP protocol.
pub fn l4_name(proto: u8) -> &'static str {
    L4_NAMES
        .iter()
        .find(|(n, _)| *n == proto)
        .map_or("Unknown", |(_, name)| name)
}

/// The IP protocol number of an `l4` name (as flow records spell it).
pub fn l4_number(name: &str) -> Option<u8> {
    L4_NAMES.iter().find(|(_, n)| *n == name).map(|(p, _)| *p)
}
