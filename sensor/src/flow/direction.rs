//! Who is the client: the TCP SYN side; otherwise the first sender, unless the first packet
//! looks like a reply (it comes from a well-known service port to an ephemeral one).

use crate::decode::proto;
use crate::wire::tcp;

/// Ports whose owner is the server when one side uses them and the other does not.
fn is_service_port(port: u16) -> bool {
    matches!(
        port,
        20..=23 | 25 | 53 | 67 | 69 | 80 | 88 | 110 | 123 | 137..=139 | 143 | 161 | 162 | 389 | 443 | 445 | 465
            | 500 | 514 | 546 | 547 | 587 | 636 | 853 | 993 | 995 | 1194 | 1433 | 1812 | 1900 | 3306 | 3389
            | 3478 | 3544 | 4500 | 5060 | 5061 | 5222 | 5228 | 5353 | 5355 | 8080 | 8443 | 51820
    )
}

/// Whether the sender of the first packet seen (src → dst) is the client.
pub fn first_sender_is_client(proto_num: u8, flags: u8, src_port: u16, dst_port: u16) -> bool {
    if proto_num == proto::TCP {
        if flags & tcp::SYN != 0 {
            return flags & tcp::ACK == 0;
        }
    } else if proto_num != proto::UDP {
        return true;
    }
    let (s, d) = (is_service_port(src_port), is_service_port(dst_port));
    if s != d {
        return d;
    }
    // Neither or both well known: the lower port is more likely the service, when one side is
    // clearly ephemeral.
    !(src_port < 1024 && dst_port >= 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syn_side_is_the_client() {
        assert!(first_sender_is_client(proto::TCP, tcp::SYN, 50000, 443));
        assert!(!first_sender_is_client(
            proto::TCP,
            tcp::SYN | tcp::ACK,
            443,
            50000
        ));
    }

    #[test]
    fn a_first_packet_that_is_a_reply_is_turned_around() {
        assert!(!first_sender_is_client(proto::UDP, 0, 53, 40000));
        assert!(first_sender_is_client(proto::UDP, 0, 40000, 53));
        assert!(!first_sender_is_client(proto::TCP, tcp::ACK, 80, 51000));
        assert!(first_sender_is_client(proto::UDP, 0, 50000, 50001));
    }
}
