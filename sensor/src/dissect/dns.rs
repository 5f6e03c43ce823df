//! DNS and its relatives with the same message format: MDNS (5353), LLMNR (5355), NetBIOS name
//! service (137). The server name is the first question's name.

use super::{L7, PacketView, Verdict, u16_at};

/// Reads the first question's name (labels joined by dots), rejecting compression loops and
/// overlong names.
pub(crate) fn first_qname(msg: &[u8]) -> Option<String> {
    let mut at = 12;
    // One allocation: a name is never longer than 253 bytes nor than what follows the header.
    let mut name = String::with_capacity(msg.len().saturating_sub(at).min(253));
    for _ in 0..128 {
        let len = usize::from(*msg.get(at)?);
        if len == 0 {
            return Some(name);
        }
        if len & 0xc0 != 0 || name.len() + len > 253 {
            return None;
        }
        let label = msg.get(at + 1..at + 1 + len)?;
        if !name.is_empty() {
            name.push('.');
        }
        for &c in label {
            name.push(if c.is_ascii_graphic() {
                c.to_ascii_lowercase() as char
            } else {
                '?'
            });
        }
        at += 1 + len;
    }
    None
}

/// A plausible DNS header: counts small, opcode standard-ish, something to carry.
fn plausible(msg: &[u8]) -> bool {
    let (Some(flags), Some(qd), Some(an), Some(ns), Some(ar)) = (
        u16_at(msg, 2),
        u16_at(msg, 4),
        u16_at(msg, 6),
        u16_at(msg, 8),
        u16_at(msg, 10),
    ) else {
        return false;
    };
    // NetBIOS name service uses opcodes up to 8 (release, WACK, refresh).
    let opcode = (flags >> 11) & 0x0f;
    let is_response = flags & 0x8000 != 0;
    opcode <= 8
        && qd <= 32
        && an <= 256
        && ns <= 64
        && ar <= 64
        && (qd > 0 || (is_response && an + ns + ar > 0) || opcode == 5)
}

/// Detects DNS-format messages by port and header.
pub fn detect(v: &PacketView<'_>) -> Verdict {
    let p = v.payload;
    let (l7, msg) = if v.udp() {
        let l7 = if v.port(5353) {
            L7::MDNS
        } else if v.port(5355) {
            L7::LLMNR
        } else if v.port(137) {
            L7::NetBIOS
        } else if v.port(53) {
            L7::DNS
        } else {
            return Verdict::No;
        };
        (l7, p)
    } else if v.tcp() && v.port(53) {
        // DNS over TCP: a 2-byte length, then the message.
        (L7::DNS, p.get(2..).unwrap_or(&[]))
    } else {
        return Verdict::No;
    };
    if msg.len() < 12 || !plausible(msg) {
        return Verdict::No;
    }
    let name = match l7 {
        // NetBIOS names are encoded in half-bytes; the raw label is meaningless to users.
        L7::NetBIOS => None,
        _ => first_qname(msg).filter(|n| !n.is_empty()),
    };
    Verdict::Match(l7, name)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn query(name: &str) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            m.push(label.len() as u8);
            m.extend_from_slice(label.as_bytes());
        }
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
        m
    }

    #[test]
    fn reads_the_query_name() {
        assert_eq!(
            first_qname(&query("www.Example.org")).as_deref(),
            Some("www.example.org")
        );
    }

    #[test]
    fn rejects_loops_and_garbage() {
        let mut m = query("a");
        m[12] = 0xc0;
        m[13] = 12;
        assert_eq!(first_qname(&m), None);
        assert!(!plausible(&[0xff; 12]));
        assert_eq!(first_qname(&[0u8; 5]), None);
    }
}
