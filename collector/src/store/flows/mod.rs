//! The flow store: every flow record the collector receives, kept in the store's redb file
//! beside the alerts and series and written in the same transaction as its batch (a redelivered
//! batch adds nothing twice).
//!
//! Flows are partitioned by the hour of their last packet. Each batch adds one block per hour it
//! touches ([`block`]: columnar, each column zstd-compressed alone), and an index entry per block
//! (instance, flow count, time span, size) lets a search skip blocks without reading them.
//! Retention drops whole hours, oldest first, by age and by total size; what it drops is
//! counted. Closed hours are compacted: their small blocks merged into large ones, which
//! compress better.

mod block;
mod column;
mod newest;
pub mod parquet;
mod query;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use flowmesh_record::FlowRecord;
use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

pub use block::{BlockBuilder, MAX_FLOWS};
pub use column::Damaged;
pub use query::{FlowQuery, StoredFlow, TopEntry, TopKind};

use super::{META, StoreError};

/// (hour start s, block sequence) → block bytes.
pub(super) const BLOCKS: TableDefinition<(i64, u64), &[u8]> = TableDefinition::new("flow_blocks");
/// (hour start s, block sequence) → (instance, flows, earliest first packet µs, latest last
/// packet µs, bytes, compacted).
pub(super) const INDEX: TableDefinition<(i64, u64), IndexEntry> =
    TableDefinition::new("flow_index");
type IndexEntry = (&'static str, u64, i64, i64, u64, bool);

/// zstd level for a batch's blocks (written while the batch waits) and for compacted ones.
const LEVEL_LIVE: i32 = 1;
const LEVEL_COMPACT: i32 = 9;
/// Flows ahead of the collector's clock by more than this go to the current hour's partition
/// (a sensor with a wrong clock must not park flows beyond every retention).
const FUTURE_SLACK_SECS: i64 = 3600;

fn hour_of(micros: i64) -> i64 {
    let s = micros.div_euclid(1_000_000);
    s - s.rem_euclid(3600)
}

/// One batch's flows, as blocks per hour, ready to store with it.
#[derive(Default)]
pub struct FlowSet {
    hours: Vec<(i64, BlockBuilder)>,
    level: Option<i32>,
}

impl std::fmt::Debug for FlowSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FlowSet({} flows)", self.len())
    }
}

impl FlowSet {
    /// Adds a record and the profiles it matched; `now_micros` bounds how far ahead it may be.
    pub fn push(&mut self, r: &FlowRecord, profiles: &[&str], now_micros: i64) {
        let limit = hour_of(now_micros) + FUTURE_SLACK_SECS;
        self.push_at(hour_of(r.last_seen).min(limit), r, profiles);
    }

    /// Flows added.
    pub fn len(&self) -> usize {
        self.hours.iter().map(|(_, b)| b.len()).sum()
    }

    /// Whether no flow was added.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn meta_add(tx: &WriteTransaction, key: &str, delta: i64) -> Result<(), StoreError> {
    let mut meta = tx.open_table(META)?;
    let v = meta.get(key)?.map_or(0, |v| v.value());
    meta.insert(key, v.saturating_add_signed(delta))?;
    Ok(())
}

/// Every flow of a stored block (`instance`: the one its index entry names). A damaged block is
/// an error, never a panic.
pub fn decode_block(instance: &str, bytes: &[u8]) -> Result<Vec<StoredFlow>, Damaged> {
    let mut rows = query::Rows::new(block::Block::parse(bytes)?);
    (0..rows.len()).map(|r| rows.flow(instance, r)).collect()
}

/// Writes a batch's blocks within the batch's transaction.
pub(super) fn write(
    tx: &WriteTransaction,
    instance: &str,
    set: &FlowSet,
) -> Result<(), StoreError> {
    if set.is_empty() {
        return Ok(());
    }
    let level = set.level.unwrap_or(LEVEL_LIVE);
    let (mut flows, mut bytes) = (0i64, 0i64);
    {
        let mut meta = tx.open_table(META)?;
        let mut seq = meta.get("flow_block_seq")?.map_or(0, |v| v.value());
        let mut blocks = tx.open_table(BLOCKS)?;
        let mut index = tx.open_table(INDEX)?;
        for (hour, b) in &set.hours {
            if b.is_empty() {
                continue;
            }
            let data = b.finish(level);
            let (first, last) = b.span();
            blocks.insert((*hour, seq), data.as_slice())?;
            index.insert(
                (*hour, seq),
                (
                    instance,
                    b.len() as u64,
                    first,
                    last,
                    data.len() as u64,
                    set.level.is_some(),
                ),
            )?;
            seq += 1;
            flows += b.len() as i64;
            bytes += data.len() as i64;
        }
        meta.insert("flow_block_seq", seq)?;
    }
    meta_add(tx, "flow_count", flows)?;
    meta_add(tx, "flow_bytes", bytes)?;
    Ok(())
}

/// What the flow store holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct FlowStats {
    /// Flows stored.
    pub flows: u64,
    /// Bytes their blocks take (the file is somewhat larger: redb's pages and free space).
    pub bytes: u64,
    /// Blocks.
    pub blocks: u64,
    /// The oldest hour kept (start, s), if any.
    pub oldest_hour: Option<i64>,
    /// The newest hour kept.
    pub newest_hour: Option<i64>,
}

/// What one retention pass dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dropped {
    /// Hours (partitions) removed.
    pub hours: u64,
    /// Flows they held.
    pub flows: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// The most keys a top-N holds while it counts (a top of hosts over a week of a large network
/// must not take the collector's memory).
const MAX_TOP_KEYS: usize = 1 << 20;

fn rank(e: &TopEntry, by_flows: bool) -> u64 {
    if by_flows { e.flows } else { e.bytes }
}

/// Which index entries a query reads: those of `instance` whose span meets the query's times.
fn wanted(q: &FlowQuery, entry: Meta<'_>) -> bool {
    let (instance, _, first, last, _, _) = entry;
    q.instance.as_deref().is_none_or(|i| i == instance)
        && q.from_us.is_none_or(|f| last >= f)
        && q.to_us.is_none_or(|t| first < t)
}

/// Whether a block lies wholly within the query's times (no time column to read).
fn whole(q: &FlowQuery, first: i64, last: i64) -> bool {
    q.from_us.is_none_or(|f| first >= f) && q.to_us.is_none_or(|t| last < t)
}

/// A block's index entry: instance, flows, earliest first packet, latest last packet (µs),
/// bytes, compacted.
type Meta<'g> = (&'g str, u64, i64, i64, u64, bool);

/// What [`Store::scan_flows`] shows its visitor.
enum Seen<'v, 'a> {
    /// A block's hour and index entry, before the block is read.
    Entry(i64, Meta<'v>),
    /// Its rows matching the query (`keep`), after it was read.
    Rows(Meta<'v>, &'v mut query::Rows<'a>, &'v [bool]),
}

/// What the visitor wants next.
enum Step {
    /// Read this block (after `Seen::Entry`), or go on (after `Seen::Rows`).
    Go,
    /// Leave this block unread.
    Skip,
    /// Stop the scan.
    Stop,
}

impl super::Store {
    /// Visits the blocks `q` may touch (its instance and times, by their index entries), in
    /// index order or newest first; each one's matching rows. A damaged block is skipped with a
    /// warning.
    fn scan_flows(
        &self,
        q: &FlowQuery,
        newest_first: bool,
        mut visit: impl FnMut(Seen<'_, '_>) -> Result<Step, Damaged>,
    ) -> Result<(), StoreError> {
        let tx = self.db.begin_read()?;
        let index = tx.open_table(INDEX)?;
        let blocks = tx.open_table(BLOCKS)?;
        let range = index.range((q.from_us.map_or(i64::MIN, hour_of), 0)..)?;
        let entries: Box<dyn Iterator<Item = _>> = if newest_first {
            Box::new(range.rev())
        } else {
            Box::new(range)
        };
        for entry in entries {
            let (k, v) = entry?;
            let (hour, seq) = k.value();
            let meta = v.value();
            if !wanted(q, meta) {
                continue;
            }
            match visit(Seen::Entry(hour, meta)) {
                Ok(Step::Go) => {}
                Ok(Step::Skip) | Err(_) => continue,
                Ok(Step::Stop) => break,
            }
            let Some(bytes) = blocks.get((hour, seq))? else {
                continue;
            };
            let result = block::Block::parse(bytes.value()).and_then(|b| {
                let mut rows = query::Rows::new(b);
                match rows.select(q, whole(q, meta.2, meta.3))? {
                    Some(keep) => visit(Seen::Rows(meta, &mut rows, &keep)),
                    None => Ok(Step::Go),
                }
            });
            match result {
                Ok(Step::Stop) => break,
                Ok(_) => {}
                Err(e) => tracing::warn!(hour, seq, error = %e, "a stored flow block was skipped"),
            }
        }
        Ok(())
    }

    /// Flows matching `q`, newest (by last packet) first.
    pub fn search_flows(&self, q: &FlowQuery) -> Result<Vec<StoredFlow>, StoreError> {
        let mut newest = newest::Newest::new(q.limit);
        self.scan_flows(q, true, |seen| {
            Ok(match seen {
                // Hours newest first; a flow's hour is its last packet's, so once the limit is
                // full and an hour ends before the oldest flow kept, older hours add nothing.
                Seen::Entry(hour, meta) => match newest.floor() {
                    Some(f) if hour + 3600 <= f / 1_000_000 => Step::Stop,
                    Some(f) if meta.3 < f => Step::Skip,
                    _ => Step::Go,
                },
                Seen::Rows(meta, rows, keep) => {
                    for (row, _) in keep.iter().enumerate().filter(|(_, k)| **k) {
                        if newest.wants(rows.last_seen(row)?) {
                            newest.push(rows.flow(meta.0, row)?);
                        }
                    }
                    Step::Go
                }
            })
        })?;
        Ok(newest.into_sorted())
    }

    /// The top `limit` keys of `kind` among flows matching `q` (its own limit is ignored), by
    /// bytes or by flows.
    pub fn top_flows(
        &self,
        q: &FlowQuery,
        kind: TopKind,
        by_flows: bool,
        limit: usize,
    ) -> Result<Vec<TopEntry>, StoreError> {
        let mut sums: HashMap<String, TopEntry> = HashMap::new();
        let mut approximate = false;
        self.scan_flows(q, false, |seen| {
            let Seen::Rows(_, rows, keep) = seen else {
                return Ok(Step::Go);
            };
            rows.count(kind, keep, &mut sums)?;
            if sums.len() > MAX_TOP_KEYS {
                // Bounded: the smallest half goes (a key dropped and met again restarts from
                // zero, so the tail of a huge ranking is approximate; its head is not).
                approximate = true;
                let mut all: Vec<TopEntry> = std::mem::take(&mut sums).into_values().collect();
                all.sort_unstable_by_key(|e| std::cmp::Reverse(rank(e, by_flows)));
                all.truncate(MAX_TOP_KEYS / 2);
                sums = all.into_iter().map(|e| (e.key.clone(), e)).collect();
            }
            Ok(Step::Go)
        })?;
        if approximate {
            tracing::info!(kind = ?kind, "top-N over more than {MAX_TOP_KEYS} keys: the smallest were dropped on the way");
        }
        let mut out: Vec<TopEntry> = sums.into_values().collect();
        out.sort_unstable_by(|a, b| {
            rank(b, by_flows)
                .cmp(&rank(a, by_flows))
                .then_with(|| a.key.cmp(&b.key))
        });
        if limit > 0 {
            out.truncate(limit);
        }
        Ok(out)
    }

    /// What the flow store holds.
    pub fn flow_stats(&self) -> Result<FlowStats, StoreError> {
        let tx = self.db.begin_read()?;
        let meta = tx.open_table(META)?;
        let index = tx.open_table(INDEX)?;
        let get =
            |k: &str| -> Result<u64, StoreError> { Ok(meta.get(k)?.map_or(0, |v| v.value())) };
        Ok(FlowStats {
            flows: get("flow_count")?,
            bytes: get("flow_bytes")?,
            blocks: redb::ReadableTableMetadata::len(&index)?,
            oldest_hour: index.first()?.map(|(k, _)| k.value().0),
            newest_hour: index.last()?.map(|(k, _)| k.value().0),
        })
    }

    /// Drops whole hours, oldest first: those that ended more than `max_age_secs` before
    /// `now_secs`, then more while the blocks take over `max_bytes` (0: no size bound).
    pub fn prune_flows(
        &self,
        now_secs: i64,
        max_age_secs: i64,
        max_bytes: u64,
    ) -> Result<Dropped, StoreError> {
        let tx = self.db.begin_write()?;
        let mut dropped = Dropped::default();
        {
            let mut total = tx
                .open_table(META)?
                .get("flow_bytes")?
                .map_or(0, |v| v.value());
            let mut index = tx.open_table(INDEX)?;
            let mut blocks = tx.open_table(BLOCKS)?;
            let cutoff = now_secs.saturating_sub(max_age_secs);
            loop {
                let Some(first) = index.iter()?.next() else {
                    break;
                };
                let hour = first?.0.value().0;
                let too_old = hour + 3600 <= cutoff;
                let too_big = max_bytes > 0 && total > max_bytes;
                if !too_old && !too_big {
                    break;
                }
                let mut gone = Vec::new();
                for e in index.range((hour, 0)..=(hour, u64::MAX))? {
                    let (k, v) = e?;
                    let (_, n, _, _, b, _) = v.value();
                    gone.push((k.value(), n, b));
                }
                for (k, n, b) in gone {
                    index.remove(k)?;
                    blocks.remove(k)?;
                    dropped.flows += n;
                    dropped.bytes += b;
                    total = total.saturating_sub(b);
                }
                dropped.hours += 1;
            }
        }
        meta_add(&tx, "flow_count", -(dropped.flows as i64))?;
        meta_add(&tx, "flow_bytes", -(dropped.bytes as i64))?;
        tx.commit()?;
        Ok(dropped)
    }

    /// Merges the blocks of each hour that ended before `now_secs` minus `settle_secs` into
    /// large blocks per instance, compressed harder. Returns the blocks merged away.
    pub fn compact_flows(&self, now_secs: i64, settle_secs: i64) -> Result<u64, StoreError> {
        let open_hours: Vec<i64> = {
            let tx = self.db.begin_read()?;
            let index = tx.open_table(INDEX)?;
            let mut hours = Vec::new();
            for e in index.iter()? {
                let (k, v) = e?;
                let hour = k.value().0;
                if hour + 3600 + settle_secs > now_secs {
                    break;
                }
                if !v.value().5 && hours.last() != Some(&hour) {
                    hours.push(hour);
                }
            }
            hours
        };
        let mut merged = 0;
        for hour in open_hours {
            merged += self.compact_hour(hour)?;
        }
        Ok(merged)
    }

    fn compact_hour(&self, hour: i64) -> Result<u64, StoreError> {
        let tx = self.db.begin_write()?;
        let mut merged = 0;
        let mut sets: Vec<(String, FlowSet)> = Vec::new();
        {
            let mut index = tx.open_table(INDEX)?;
            let mut blocks = tx.open_table(BLOCKS)?;
            let mut entries = Vec::new();
            for e in index.range((hour, 0)..=(hour, u64::MAX))? {
                let (k, v) = e?;
                let (instance, n, _, _, b, _) = v.value();
                entries.push((k.value(), instance.to_string(), n, b));
            }
            {
                for (k, instance, n, b) in entries {
                    let Some(bytes) = blocks.get(k)?.map(|v| v.value().to_vec()) else {
                        continue;
                    };
                    let flows = match decode_block(&instance, &bytes) {
                        Ok(f) => f,
                        Err(e) => {
                            // Kept as it is: never lose data to a compaction.
                            tracing::warn!(hour, block = k.1, error = %e, "a damaged flow block was left uncompacted");
                            continue;
                        }
                    };
                    index.remove(k)?;
                    blocks.remove(k)?;
                    meta_add_tables(&tx, n, b)?;
                    let at = match sets.iter().position(|(i, _)| *i == instance) {
                        Some(at) => at,
                        None => {
                            sets.push((
                                instance.clone(),
                                FlowSet {
                                    hours: Vec::new(),
                                    level: Some(LEVEL_COMPACT),
                                },
                            ));
                            sets.len() - 1
                        }
                    };
                    let set = &mut sets[at].1;
                    for f in &flows {
                        let names: Vec<&str> = f.profiles.iter().map(String::as_str).collect();
                        // Keep the partition as it was, whatever the clock says now.
                        set.push_at(hour, &f.record, &names);
                    }
                    merged += 1;
                }
            }
        }
        for (instance, set) in &sets {
            write(&tx, instance, set)?;
        }
        tx.commit()?;
        Ok(merged)
    }
}

fn meta_add_tables(tx: &WriteTransaction, flows: u64, bytes: u64) -> Result<(), StoreError> {
    meta_add(tx, "flow_count", -(flows as i64))?;
    meta_add(tx, "flow_bytes", -(bytes as i64))
}

impl FlowSet {
    fn push_at(&mut self, hour: i64, r: &FlowRecord, profiles: &[&str]) {
        match self
            .hours
            .iter_mut()
            .find(|(h, b)| *h == hour && b.len() < MAX_FLOWS)
        {
            Some((_, b)) => b.push(r, profiles),
            None => {
                let mut b = BlockBuilder::default();
                b.push(r, profiles);
                self.hours.push((hour, b));
            }
        }
    }
}
