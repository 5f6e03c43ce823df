//! Master protocols: which class may follow which, and those known by IP protocol alone.

pub use flowmesh_record::L7;

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
        4 => L7::IP_in_IP,
        8 => L7::EGP,
        47 => L7::GRE,
        50 | 51 => L7::IPSec,
        58 => L7::ICMPV6,
        89 => L7::OSPF,
        103 => L7::IP_PIM,
        112 => L7::VRRP,
        113 => L7::PGM,
        132 => L7::SCTP,
        _ => return None,
    })
}
