//! The newest flows of a search, kept in a bounded heap: a search over millions of flows holds
//! only as many as it will answer with.

use std::collections::{BinaryHeap, HashMap};

use super::query::StoredFlow;

/// The newest `limit` flows met so far (all of them without a limit).
pub(super) struct Newest {
    limit: usize,
    heap: BinaryHeap<std::cmp::Reverse<(i64, u64)>>,
    flows: HashMap<u64, StoredFlow>,
    next: u64,
}

impl Newest {
    pub(super) fn new(limit: usize) -> Self {
        Newest {
            limit,
            heap: BinaryHeap::new(),
            flows: HashMap::new(),
            next: 0,
        }
    }

    /// Whether a flow whose last packet is at `t` would be kept.
    pub(super) fn wants(&self, t: i64) -> bool {
        self.limit == 0
            || self.heap.len() < self.limit
            || self.heap.peek().is_some_and(|m| t > m.0.0)
    }

    /// The time below which nothing is kept any more (with a full limit).
    pub(super) fn floor(&self) -> Option<i64> {
        (self.limit > 0 && self.heap.len() >= self.limit)
            .then(|| self.heap.peek().map(|m| m.0.0))?
    }

    pub(super) fn push(&mut self, f: StoredFlow) {
        let t = f.record.last_seen;
        if !self.wants(t) {
            return;
        }
        self.heap.push(std::cmp::Reverse((t, self.next)));
        self.flows.insert(self.next, f);
        self.next += 1;
        if self.limit > 0
            && self.heap.len() > self.limit
            && let Some(std::cmp::Reverse((_, id))) = self.heap.pop()
        {
            self.flows.remove(&id);
        }
    }

    /// The flows kept, newest first.
    pub(super) fn into_sorted(mut self) -> Vec<StoredFlow> {
        let mut out: Vec<(i64, u64)> = self.heap.drain().map(|r| r.0).collect();
        out.sort_unstable_by(|a, b| b.cmp(a));
        out.into_iter()
            .filter_map(|(_, id)| self.flows.remove(&id))
            .collect()
    }
}
