//! The replay window: a message is accepted once, and only while its timestamp is recent.
//!
//! Memory is bounded: the guard remembers at most `capacity` message ids. When it must forget
//! one, it raises a floor so that anything as old as the forgotten id is refused rather than
//! accepted a second time (refusing too much is safe, accepting twice is not).

use std::collections::{HashSet, VecDeque};

/// A verdict on a message's freshness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Seen for the first time and within the window: accepted and remembered.
    Fresh,
    /// The same message id was accepted before.
    Replayed,
    /// Older than the window (or than what the guard still remembers).
    TooOld,
    /// Further in the future than the allowed clock skew.
    FromTheFuture,
}

/// Remembers the message ids accepted within the last `window_micros`.
#[derive(Debug)]
pub struct ReplayGuard {
    window_micros: u64,
    capacity: usize,
    seen: HashSet<[u8; 16]>,
    order: VecDeque<(u64, [u8; 16])>,
    floor_micros: u64,
}

impl ReplayGuard {
    /// A guard accepting timestamps within ±`window_micros` of now, remembering at most
    /// `capacity` ids.
    pub fn new(window_micros: u64, capacity: usize) -> Self {
        ReplayGuard {
            window_micros,
            capacity: capacity.max(1),
            seen: HashSet::new(),
            order: VecDeque::new(),
            floor_micros: 0,
        }
    }

    /// Judges (and, when fresh, records) a message id with its sender's timestamp.
    pub fn check(&mut self, id: [u8; 16], time_micros: u64, now_micros: u64) -> Freshness {
        if time_micros > now_micros.saturating_add(self.window_micros) {
            return Freshness::FromTheFuture;
        }
        let oldest = now_micros
            .saturating_sub(self.window_micros)
            .max(self.floor_micros);
        self.expire(now_micros.saturating_sub(self.window_micros));
        if time_micros < oldest {
            return Freshness::TooOld;
        }
        if self.seen.contains(&id) {
            return Freshness::Replayed;
        }
        while self.order.len() >= self.capacity {
            if let Some((t, old)) = self.order.pop_front() {
                self.seen.remove(&old);
                self.floor_micros = self.floor_micros.max(t.saturating_add(1));
            }
        }
        // Keep `order` sorted by time so expiry pops from the front; messages mostly arrive in
        // order, so the insertion point is almost always the back.
        let pos = self.order.partition_point(|(t, _)| *t <= time_micros);
        self.order.insert(pos, (time_micros, id));
        self.seen.insert(id);
        Freshness::Fresh
    }

    fn expire(&mut self, before_micros: u64) {
        while let Some(&(t, id)) = self.order.front() {
            if t >= before_micros {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&id);
        }
    }

    /// How many ids are remembered now.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000;

    #[test]
    fn accepts_once_then_refuses_the_replay() {
        let mut g = ReplayGuard::new(60 * S, 100);
        assert_eq!(g.check([1; 16], 100 * S, 100 * S), Freshness::Fresh);
        assert_eq!(g.check([1; 16], 100 * S, 101 * S), Freshness::Replayed);
        assert_eq!(g.check([2; 16], 100 * S, 101 * S), Freshness::Fresh);
    }

    #[test]
    fn refuses_outside_the_window() {
        let mut g = ReplayGuard::new(60 * S, 100);
        assert_eq!(g.check([1; 16], 39 * S, 100 * S), Freshness::TooOld);
        assert_eq!(g.check([2; 16], 161 * S, 100 * S), Freshness::FromTheFuture);
        assert_eq!(g.check([3; 16], 41 * S, 100 * S), Freshness::Fresh);
    }

    #[test]
    fn forgets_expired_ids_but_still_refuses_them_as_too_old() {
        let mut g = ReplayGuard::new(10 * S, 100);
        assert_eq!(g.check([1; 16], 100 * S, 100 * S), Freshness::Fresh);
        assert_eq!(g.check([2; 16], 200 * S, 200 * S), Freshness::Fresh);
        assert_eq!(g.len(), 1);
        assert_eq!(g.check([1; 16], 100 * S, 200 * S), Freshness::TooOld);
    }

    #[test]
    fn a_full_guard_raises_its_floor_instead_of_forgetting_silently() {
        let mut g = ReplayGuard::new(1000 * S, 2);
        assert_eq!(g.check([1; 16], 10 * S, 20 * S), Freshness::Fresh);
        assert_eq!(g.check([2; 16], 11 * S, 20 * S), Freshness::Fresh);
        assert_eq!(g.check([3; 16], 12 * S, 20 * S), Freshness::Fresh);
        assert_eq!(g.len(), 2);
        // id 1 was forgotten to make room: it must not be accepted again.
        assert_eq!(g.check([1; 16], 10 * S, 20 * S), Freshness::TooOld);
        assert_eq!(g.check([2; 16], 11 * S, 20 * S), Freshness::Replayed);
    }
}
