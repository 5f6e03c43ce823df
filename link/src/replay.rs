//! The replay window: a message is accepted once, and only while its timestamp is recent.
//!
//! Memory is bounded: the guard remembers at most `capacity` message ids. When it must forget
//! one, it raises a floor so that anything as old as the forgotten id is refused rather than
//! accepted a second time (refusing too much is safe, accepting twice is not).
//!
//! [`SenderWindows`] keeps one guard per sender key, so a sender that floods its window raises
//! only its own floor; with a [`ReplayJournal`] every accepted id is written down before the
//! message is used, and a restarted process refuses what it accepted before.

use std::collections::{HashMap, HashSet, VecDeque};

use crate::identity::PublicKey;
pub use crate::replay_journal::{JournalError, ReplayJournal};

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

/// Freshness alone, no memory: whether a timestamp lies within ±`window_micros` of now.
pub fn in_window(time_micros: u64, now_micros: u64, window_micros: u64) -> Freshness {
    if time_micros > now_micros.saturating_add(window_micros) {
        Freshness::FromTheFuture
    } else if time_micros < now_micros.saturating_sub(window_micros) {
        Freshness::TooOld
    } else {
        Freshness::Fresh
    }
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
        if in_window(time_micros, now_micros, self.window_micros) == Freshness::FromTheFuture {
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

/// One [`ReplayGuard`] per sender, optionally backed by a journal on disk.
#[derive(Debug)]
pub struct SenderWindows {
    window_micros: u64,
    capacity: usize,
    guards: HashMap<PublicKey, ReplayGuard>,
    journal: Option<ReplayJournal>,
}

impl SenderWindows {
    /// Windows of ±`window_micros`, each remembering at most `capacity` ids of its sender.
    pub fn new(window_micros: u64, capacity: usize) -> Self {
        SenderWindows {
            window_micros,
            capacity,
            guards: HashMap::new(),
            journal: None,
        }
    }

    /// The window's length.
    pub fn window_micros(&self) -> u64 {
        self.window_micros
    }

    /// Takes back what `journal` remembers of the window ending `now_micros`, and writes every
    /// id accepted from now on into it.
    pub fn attach(&mut self, journal: ReplayJournal, now_micros: u64) -> Result<(), JournalError> {
        let since = now_micros.saturating_sub(self.window_micros);
        for (sender, id, time) in journal.recall(since)? {
            self.guard(sender).check(id, time, now_micros);
        }
        self.journal = Some(journal);
        Ok(())
    }

    fn guard(&mut self, sender: PublicKey) -> &mut ReplayGuard {
        let (w, c) = (self.window_micros, self.capacity);
        self.guards
            .entry(sender)
            .or_insert_with(|| ReplayGuard::new(w, c))
    }

    /// Judges a message of `sender`; a fresh one is remembered (and journaled: if the journal
    /// cannot be written, the message is refused with that error, never accepted unrecorded).
    pub fn check(
        &mut self,
        sender: PublicKey,
        id: [u8; 16],
        time_micros: u64,
        now_micros: u64,
    ) -> Result<Freshness, JournalError> {
        let verdict = self.guard(sender).check(id, time_micros, now_micros);
        if verdict == Freshness::Fresh
            && let Some(j) = &self.journal
        {
            j.remember(
                sender,
                id,
                time_micros,
                now_micros.saturating_sub(self.window_micros),
            )?;
        }
        Ok(verdict)
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

    #[test]
    fn one_senders_flood_does_not_raise_anothers_floor() {
        let (a, b) = (PublicKey([1; 32]), PublicKey([2; 32]));
        let mut w = SenderWindows::new(1000 * S, 2);
        assert_eq!(
            w.check(b, [9; 16], 10 * S, 20 * S).unwrap(),
            Freshness::Fresh
        );
        for i in 0..10u8 {
            w.check(a, [i; 16], 11 * S + u64::from(i), 20 * S).unwrap();
        }
        // b's message sealed before a's flood still opens; a's own oldest ids are refused.
        assert_eq!(
            w.check(b, [8; 16], 10 * S, 20 * S).unwrap(),
            Freshness::Fresh
        );
        assert_eq!(
            w.check(a, [0; 16], 11 * S, 20 * S).unwrap(),
            Freshness::TooOld
        );
    }

    #[test]
    fn a_journaled_window_refuses_after_a_restart_what_it_accepted_before() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replay.redb");
        let a = PublicKey([1; 32]);
        {
            let mut w = SenderWindows::new(600 * S, 100);
            w.attach(ReplayJournal::open(&path).unwrap(), 100 * S)
                .unwrap();
            assert_eq!(
                w.check(a, [1; 16], 100 * S, 100 * S).unwrap(),
                Freshness::Fresh
            );
        }
        let mut w = SenderWindows::new(600 * S, 100);
        w.attach(ReplayJournal::open(&path).unwrap(), 101 * S)
            .unwrap();
        assert_eq!(
            w.check(a, [1; 16], 100 * S, 101 * S).unwrap(),
            Freshness::Replayed
        );
        assert_eq!(
            w.check(a, [2; 16], 100 * S, 101 * S).unwrap(),
            Freshness::Fresh
        );
        drop(w);
        // Past the window the journal forgets, and the guard refuses it as too old.
        let mut w = SenderWindows::new(600 * S, 100);
        w.attach(ReplayJournal::open(&path).unwrap(), 800 * S)
            .unwrap();
        assert_eq!(
            w.check(a, [1; 16], 100 * S, 800 * S).unwrap(),
            Freshness::TooOld
        );
    }
}
