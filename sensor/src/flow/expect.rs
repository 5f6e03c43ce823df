//! Expected connections: endpoints a control channel announced (FTP's data channels), so the
//! flow that opens to one of them is classified by its parent, as conntrack helpers and Zeek's
//! expected connections do.

use std::net::IpAddr;

use std::collections::HashMap;

use crate::dissect::{DataChannel, L7};

/// How long an announcement waits for its connection.
const TTL_MICROS: i64 = 120_000_000;
/// At most this many pending announcements (a hostile control channel cannot grow it).
const CAPACITY: usize = 4096;

/// Pending announcements: listener endpoint → (protocol of the new flow, expiry).
#[derive(Default)]
pub struct Expectations {
    pending: HashMap<(IpAddr, u16), (L7, i64)>,
    /// Announcements dropped because the table was full of live ones.
    pub dropped: u64,
}

impl Expectations {
    /// Records an announced data channel at packet time `now`.
    pub fn announce(&mut self, d: DataChannel, l7: L7, now: i64) {
        if self.pending.len() + 2 > CAPACITY {
            self.pending.retain(|_, (_, expires)| *expires > now);
            if self.pending.len() + 2 > CAPACITY {
                self.dropped += 1;
                return;
            }
        }
        let expires = now.saturating_add(TTL_MICROS);
        self.pending.insert((d.announced, d.port), (l7, expires));
        self.pending.insert((d.seen, d.port), (l7, expires));
    }

    /// The protocol of a new flow between `a` and `b` (either may be the listener), consuming
    /// the announcement.
    pub fn claim(&mut self, a: (IpAddr, u16), b: (IpAddr, u16), now: i64) -> Option<L7> {
        if self.pending.is_empty() {
            return None;
        }
        for end in [b, a] {
            if let Some((l7, expires)) = self.pending.remove(&end)
                && expires >= now
            {
                return Some(l7);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(s: &str, port: u16) -> (IpAddr, u16) {
        (s.parse().unwrap(), port)
    }

    #[test]
    fn an_announced_endpoint_is_claimed_once_and_expires() {
        let mut e = Expectations::default();
        let d = DataChannel {
            announced: "10.0.0.5".parse().unwrap(),
            seen: "90.130.70.73".parse().unwrap(),
            port: 25685,
        };
        e.announce(d, L7::FTP_DATA, 0);
        let client = ep("192.168.1.212", 50695);
        assert_eq!(
            e.claim(client, ep("90.130.70.73", 25685), 1),
            Some(L7::FTP_DATA)
        );
        assert_eq!(e.claim(client, ep("90.130.70.73", 25685), 2), None, "used");
        assert_eq!(
            e.claim(client, ep("10.0.0.5", 25685), 3),
            Some(L7::FTP_DATA),
            "NAT"
        );
        e.announce(d, L7::FTP_DATA, 0);
        assert_eq!(
            e.claim(client, ep("90.130.70.73", 25685), TTL_MICROS + 1),
            None
        );
    }

    #[test]
    fn the_table_is_bounded() {
        let mut e = Expectations::default();
        for port in 1..=u16::MAX {
            let d = DataChannel {
                announced: "10.0.0.5".parse().unwrap(),
                seen: "10.0.0.6".parse().unwrap(),
                port,
            };
            e.announce(d, L7::FTP_DATA, 0);
        }
        assert!(e.pending.len() <= CAPACITY);
        assert!(e.dropped > 0);
    }
}
