//! What the store last committed for the newest bucket of each series, so adding a batch's
//! traffic to a point need not look the point up in the B-tree first.
//!
//! A collector adds to the same points batch after batch (a host's current 5-minute bucket,
//! in the recent table): with the sum known, a point costs one B-tree walk (the insert) instead of two (a
//! read, then the insert). Commits of one batch of 1,000 flows over 1,000 hosts took 3.0 ms
//! instead of 4.0–4.2 (series only, this VM, when commits still wrote three resolutions). The store is the only writer of its file (redb
//! locks it), so what it committed is what the table holds — as long as the cache is cleared
//! when a transaction that wrote to it fails, and when points are deleted.

use super::series::Counters;

/// At most this many series are remembered (about 140 bytes each: the ingest bench's 190k
/// series added 26 MB of RSS); past it the cache starts again empty, which costs B-tree reads,
/// never a wrong sum. Bounds memory against a flood of new series (spoofed local addresses).
const MAX_SERIES: usize = 1 << 18;

/// Instance and series name → the newest bucket written and its counters.
#[derive(Debug, Default)]
pub(super) struct Latest {
    points: foldhash::HashMap<Box<[u8]>, (i64, Counters)>,
    /// The key being looked up, built here so a lookup allocates nothing.
    key: Vec<u8>,
}

impl Latest {
    /// Makes `(instance, name)` the key of the next [`Latest::get`] and [`Latest::set`], as the
    /// table's keys begin.
    pub(super) fn select(&mut self, instance: &str, name: &str) {
        self.key.clear();
        super::point_key::series(&mut self.key, instance, name);
    }

    /// What the selected series holds at bucket `start`, if it is the bucket last written.
    pub(super) fn get(&self, start: i64) -> Option<Counters> {
        match self.points.get(self.key.as_slice()) {
            Some(&(s, c)) if s == start => Some(c),
            _ => None,
        }
    }

    /// Records that the selected series now holds `counters` at bucket `start`. A series'
    /// older bucket is forgotten (late flows for it read the B-tree).
    pub(super) fn set(&mut self, start: i64, counters: Counters) {
        if let Some(point) = self.points.get_mut(self.key.as_slice()) {
            // Only a newer bucket replaces the one kept: late flows must not evict the current.
            if start >= point.0 {
                *point = (start, counters);
            }
            return;
        }
        if self.points.len() >= MAX_SERIES {
            self.points.clear();
        }
        self.points
            .insert(self.key.clone().into_boxed_slice(), (start, counters));
    }

    /// Forgets everything (a failed transaction, deleted points).
    pub(super) fn clear(&mut self) {
        self.points.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(bytes: u64) -> Counters {
        Counters { bytes, packets: 1 }
    }

    #[test]
    fn a_series_remembers_its_newest_bucket_only() {
        let mut latest = Latest::default();
        latest.select("s1", "total");
        assert_eq!(latest.get(300), None);
        latest.set(300, c(10));
        assert_eq!(latest.get(300), Some(c(10)));
        // Another series or instance is another key.
        latest.select("s2", "total");
        assert_eq!(latest.get(300), None);
        latest.select("s1", "l7:DNS");
        assert_eq!(latest.get(300), None);
        // A late point for an older bucket is not kept over the newer one.
        latest.select("s1", "total");
        latest.set(0, c(5));
        assert_eq!(latest.get(0), None);
        assert_eq!(latest.get(300), Some(c(10)));
        latest.set(600, c(7));
        assert_eq!(latest.get(300), None);
        assert_eq!(latest.get(600), Some(c(7)));
        latest.clear();
        assert_eq!(latest.get(600), None);
    }

    #[test]
    fn instance_and_name_do_not_run_together() {
        let mut latest = Latest::default();
        latest.select("ab", "c");
        latest.set(0, c(1));
        latest.select("a", "bc");
        assert_eq!(latest.get(0), None);
    }
}
