//! Rolling recent 5-minute points up into the hourly and daily tables, in the background of
//! the hourly prune instead of at every commit.
//!
//! A commit writes a batch's points into one table, `points_5m_recent`: the points no rollup has
//! counted yet. Writing every point at three resolutions at each commit was a third of the
//! collector's CPU in the ingest bench (session 17: 2.23 s with series writes, 1.50 s without),
//! and a busy bucket is rewritten many times before it closes. The rollup moves each recent
//! point older than the previous hour into `points_5m` and adds it to its hour and day, in one
//! transaction; a query at any resolution adds what is still recent, so a
//! point counts exactly once whether it was rolled up or not ([`add_recent`]).
//!
//! Rolling back to a version that does not know the recent table loses nothing: it writes
//! every resolution itself and does not see the points still recent (its charts lack at most
//! the last hour or two until the update comes back, and then they are counted once).

use std::collections::BTreeMap;

use redb::{ReadableTable, WriteTransaction};

use super::series::{Counters, Point, Resolution};
use super::{StoreError, point_key, series_table};

/// Moves every recent point with a start before `before` (seconds) into the 5-minute table and
/// adds it to its hour and day. Returns how many points moved.
pub(super) fn roll_up(tx: &WriteTransaction, before: i64) -> Result<u64, StoreError> {
    let mut recent = tx.open_table(super::RECENT)?;
    // Recent points are few (the last hour or two, and late flows): gathered whole, in key
    // order — instance, name, start — so each table below is written in its own key order.
    let mut moving: Vec<(Vec<u8>, Counters)> = Vec::new();
    for entry in recent.iter()? {
        let (key, value) = entry?;
        let key = key.value();
        if point_key::parse(key).is_some_and(|(_, _, start)| start < before) {
            let (bytes, packets) = value.value();
            moving.push((key.to_vec(), Counters { bytes, packets }));
        }
    }
    if moving.is_empty() {
        return Ok(0);
    }
    let mut key = Vec::new();
    for r in Resolution::ALL {
        let mut table = tx.open_table(series_table(r))?;
        let mut rows = moving
            .iter()
            .filter_map(|(k, c)| {
                let (instance, name, start) = point_key::parse(k)?;
                Some(((instance, name, r.bucket(start)), *c))
            })
            .peekable();
        while let Some((at, mut sum)) = rows.next() {
            // Neighbours in key order share a bucket at coarser resolutions: summed first.
            while let Some((_, c)) = rows.next_if(|(k, _)| *k == at) {
                sum.add(c);
            }
            let (instance, name, start) = at;
            point_key::point(&mut key, instance, name, start);
            if let Some(there) = table.get(key.as_slice())? {
                let (bytes, packets) = there.value();
                sum.add(Counters { bytes, packets });
            }
            table.insert(key.as_slice(), (sum.bytes, sum.packets))?;
        }
    }
    for (k, _) in &moving {
        recent.remove(k.as_slice())?;
    }
    Ok(moving.len() as u64)
}

/// `points` (a query's answer from the table of resolution `r`, oldest first) with the recent
/// points of the series in `[from, to)` added, summed per bucket of `r`.
pub(super) fn add_recent(
    points: Vec<Point>,
    recent: &impl ReadableTable<&'static [u8], (u64, u64)>,
    (instance, series, r): (&str, &str, Resolution),
    (from, to): (i64, i64),
) -> Result<Vec<Point>, StoreError> {
    let (mut lo, mut hi) = (Vec::new(), Vec::new());
    point_key::point(&mut lo, instance, series, from);
    point_key::point(&mut hi, instance, series, to);
    let mut sums: BTreeMap<i64, Counters> = BTreeMap::new();
    for entry in recent.range(lo.as_slice()..hi.as_slice())? {
        let (k, v) = entry?;
        let Some((_, _, start)) = point_key::parse(k.value()) else {
            continue;
        };
        // A 5-minute point from `from` on may fall in a coarser bucket that starts before
        // `from`: not asked for.
        let bucket = r.bucket(start);
        if bucket < from {
            continue;
        }
        let (bytes, packets) = v.value();
        sums.entry(bucket)
            .or_default()
            .add(Counters { bytes, packets });
    }
    if sums.is_empty() {
        return Ok(points);
    }
    for p in points {
        sums.entry(p.start).or_default().add(p.counters);
    }
    Ok(sums
        .into_iter()
        .map(|(start, counters)| Point {
            series: series.to_string(),
            start,
            counters,
        })
        .collect())
}
