//! Per-address limits on the console's calls: sign-ups create accounts on the broker and
//! sign-ins cost an X25519 agreement each, so neither may be flooded from one address. The
//! table is bounded: past its size it starts over (a flood of addresses forgets the others,
//! it does not grow the manager).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Addresses remembered at most.
const MAX_ADDRESSES: usize = 10_000;

/// At most `max` events per address per `window`.
pub struct Limit {
    max: u32,
    window: Duration,
    seen: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl Limit {
    /// A limit of `max` per `window` per address.
    pub fn new(max: u32, window: Duration) -> Self {
        Limit {
            max,
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one event from `ip`; `false` when it is over the limit.
    pub fn allow(&self, ip: IpAddr) -> bool {
        self.allow_at(ip, Instant::now())
    }

    fn allow_at(&self, ip: IpAddr, now: Instant) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= MAX_ADDRESSES && !seen.contains_key(&ip) {
            seen.retain(|_, (start, _)| now.duration_since(*start) < self.window);
            if seen.len() >= MAX_ADDRESSES {
                seen.clear();
            }
        }
        let (start, count) = seen.entry(ip).or_insert((now, 0));
        if now.duration_since(*start) >= self.window {
            (*start, *count) = (now, 0);
        }
        *count += 1;
        *count <= self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_over_its_limit_waits_for_the_next_window_and_others_do_not() {
        let l = Limit::new(2, Duration::from_secs(60));
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let t = Instant::now();
        assert!(l.allow_at(a, t) && l.allow_at(a, t));
        assert!(!l.allow_at(a, t + Duration::from_secs(1)));
        assert!(l.allow_at(b, t + Duration::from_secs(1)));
        assert!(l.allow_at(a, t + Duration::from_secs(61)));
    }

    #[test]
    fn a_flood_of_addresses_does_not_grow_the_table() {
        let l = Limit::new(1, Duration::from_secs(60));
        let t = Instant::now();
        for i in 0..(MAX_ADDRESSES as u32 + 10) {
            l.allow_at(IpAddr::from(i.to_be_bytes()), t);
        }
        assert!(l.seen.lock().unwrap().len() <= MAX_ADDRESSES);
    }
}
