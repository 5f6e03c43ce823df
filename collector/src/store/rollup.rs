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
/// adds it to its hour and day. Returns how many points moved. Streams: a backlog of days
/// replayed between two prunes is moved without holding it in memory.
pub(super) fn roll_up(tx: &WriteTransaction, before: i64) -> Result<u64, StoreError> {
    let mut recent = tx.open_table(super::RECENT)?;
    let mut tables = [
        tx.open_table(series_table(Resolution::ALL[0]))?,
        tx.open_table(series_table(Resolution::ALL[1]))?,
        tx.open_table(series_table(Resolution::ALL[2]))?,
    ];
    // Per resolution, the bucket being summed: recent points come in key order (instance,
    // name, start), so a coarser bucket's points are neighbours, added up before one write.
    let mut pending: [(Vec<u8>, Counters); 3] = Default::default();
    let mut key = Vec::new();
    let mut moved = 0;
    for entry in recent.iter()? {
        let (k, v) = entry?;
        let Some((instance, name, start)) = point_key::parse(k.value()) else {
            continue;
        };
        if start >= before {
            continue;
        }
        moved += 1;
        let (bytes, packets) = v.value();
        for (r, res) in Resolution::ALL.iter().enumerate() {
            point_key::point(&mut key, instance, name, res.bucket(start));
            if pending[r].0 != key {
                add_point(&mut tables[r], &pending[r].0, pending[r].1)?;
                pending[r] = (key.clone(), Counters::default());
            }
            pending[r].1.add(Counters { bytes, packets });
        }
    }
    for (table, (key, counters)) in tables.iter_mut().zip(&pending) {
        add_point(table, key, *counters)?;
    }
    if moved > 0 {
        recent.retain(|k, _| point_key::parse(k).is_none_or(|(_, _, start)| start >= before))?;
    }
    Ok(moved)
}

/// Adds `counters` to the point at `key` of a points table (nothing when `key` is empty: no
/// point yet).
pub(super) fn add_point(
    table: &mut redb::Table<'_, &'static [u8], (u64, u64)>,
    key: &[u8],
    counters: Counters,
) -> Result<(), StoreError> {
    if key.is_empty() {
        return Ok(());
    }
    let mut sum = counters;
    if let Some(there) = table.get(key)? {
        let (bytes, packets) = there.value();
        sum.add(Counters { bytes, packets });
    }
    table.insert(key, (sum.bytes, sum.packets))?;
    Ok(())
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
