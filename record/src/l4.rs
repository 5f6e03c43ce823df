//! IP protocols by the names nDPI gives them.

/// IP protocol numbers and the names nDPI gives them (`ndpi_get_ip_proto_name`); any other
/// protocol is spelled as its number, as nDPI spells it.
const L4_NAMES: &[(u8, &str)] = &[
    (1, "ICMP"),
    (2, "IGMP"),
    (4, "IPIP"),
    (6, "TCP"),
    (8, "EGP"),
    (17, "UDP"),
    (47, "GRE"),
    (50, "ESP"),
    (51, "AH"),
    (58, "ICMPV6"),
    (89, "OSPF"),
    (103, "PIM"),
    (112, "VRRP"),
    (113, "PGM"),
    (132, "SCTP"),
];

/// Every protocol number in decimal (digits, length), so a name is always a `&'static str`.
static DECIMAL: [([u8; 3], u8); 256] = {
    let mut table = [([0u8; 3], 0u8); 256];
    let mut n = 0;
    while n < 256 {
        let (h, t, o) = ((n / 100) as u8, (n / 10 % 10) as u8, (n % 10) as u8);
        table[n] = if n >= 100 {
            ([b'0' + h, b'0' + t, b'0' + o], 3)
        } else if n >= 10 {
            ([b'0' + t, b'0' + o, 0], 2)
        } else {
            ([b'0' + o, 0, 0], 1)
        };
        n += 1;
    }
    table
};

/// The name nDPI gives an IP protocol: its name where it has one, else its number ("254"), so
/// a record never loses which protocol it was.
pub fn l4_name(proto: u8) -> &'static str {
    if let Some((_, name)) = L4_NAMES.iter().find(|(n, _)| *n == proto) {
        return name;
    }
    let (digits, len) = &DECIMAL[usize::from(proto)];
    std::str::from_utf8(&digits[..usize::from(*len)]).unwrap_or("Unknown")
}

/// The IP protocol number of an `l4` name (as flow records spell it: a name or a number).
pub fn l4_number(name: &str) -> Option<u8> {
    L4_NAMES
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(p, _)| *p)
        .or_else(|| name.parse().ok().filter(|p| l4_name(*p) == name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_protocol_has_one_name_that_reads_back() {
        for p in 0..=255u8 {
            let name = l4_name(p);
            assert_eq!(l4_number(name), Some(p), "{name}");
        }
        assert_eq!(
            (l4_name(6), l4_name(113), l4_name(0), l4_name(254)),
            ("TCP", "PGM", "0", "254")
        );
        // A number that has a name is spelled by its name only; other spellings are not names.
        for not in ["6", "007", "256", "Unknown", "tcp", ""] {
            assert_eq!(l4_number(not), None, "{not}");
        }
    }
}
