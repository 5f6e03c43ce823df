//! The collector's store (redb): alerts, traffic timeseries with their rollups, and the ids of
//! the batches already applied — all written in one transaction per batch, so a batch is either
//! wholly stored or not at all, and applying it again (a redelivery) changes nothing.

pub mod flows;
mod latest;
mod point_key;
mod rollup;
mod series;

use std::path::Path;

use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle,
};

pub use series::{Counters, Point, Resolution, SeriesDelta};

use crate::alert::Alert;

/// How long batch ids are kept at least, seconds: as long as the collector accepts a flow batch
/// (a sensor's backlog), so any batch it accepts is recognised if it comes again.
pub const BATCH_IDS_KEPT_SECS: i64 = 7 * 86_400;

/// Batch id → the time it was applied (µs). Lets a redelivered batch be recognised.
const APPLIED: TableDefinition<&str, i64> = TableDefinition::new("applied");
/// (time µs, sequence) → alert JSON. The sequence orders alerts of the same microsecond.
const ALERTS: TableDefinition<(i64, u64), &str> = TableDefinition::new("alerts");
/// Counters: the next alert sequence number.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Instance → what its engine's traffic rules counted and have not judged yet, as of the
/// batches applied (written in the same transaction as they are).
const ENGINE_STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("engine_state");
/// (instance, series, bucket start s) as [`point_key`] encodes it → (bytes, packets); one table
/// per resolution.
type SeriesTable = TableDefinition<'static, &'static [u8], (u64, u64)>;

fn series_table(r: Resolution) -> SeriesTable {
    TableDefinition::new(r.table_name())
}

/// 5-minute points no rollup has counted in their hour and day yet (see [`rollup`]): what
/// commits write. Keys and values as in the resolutions' tables.
const RECENT: SeriesTable = TableDefinition::new("points_5m_recent");

/// A resolution's table as earlier versions keyed it.
type LegacySeriesTable = TableDefinition<'static, (&'static str, &'static str, i64), (u64, u64)>;

/// Store errors: the file, or the database in it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Opening or creating the file.
    #[error("cannot open the store {path}: {source} (is another collector using it?)")]
    Open {
        /// The file.
        path: String,
        /// Why.
        source: redb::DatabaseError,
    },
    /// A transaction failed.
    #[error("store: {0}")]
    Db(#[from] redb::Error),
    /// An alert could not be encoded.
    #[error("store: encoding an alert: {0}")]
    Encode(#[from] serde_json::Error),
}

macro_rules! db_error {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Db(e.into())
            }
        }
    )*};
}
db_error!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// What one batch adds to the store.
#[derive(Debug)]
pub struct Commit<'a> {
    /// The batch's id (e.g. `<instance>/<sequence>`); `None` for input that is never redelivered.
    pub batch_id: Option<&'a str>,
    /// The instance the traffic came from.
    pub instance: &'a str,
    /// Alerts the batch raised.
    pub alerts: &'a [Alert],
    /// Traffic it adds to the timeseries.
    pub series: &'a SeriesDelta,
    /// When it is applied, µs (recorded with the batch id).
    pub now_micros: i64,
    /// Its flow records, for the flow store (`None`: not kept).
    pub flows: Option<&'a flows::FlowSet>,
}

/// A query for stored alerts.
#[derive(Debug, Default, Clone)]
pub struct AlertQuery {
    /// Only this type.
    pub kind: Option<String>,
    /// Only from this instance.
    pub instance: Option<String>,
    /// From this time on (µs, inclusive).
    pub from_micros: Option<i64>,
    /// Before this time (µs, exclusive).
    pub to_micros: Option<i64>,
    /// At most this many; 0 means no limit.
    pub limit: usize,
    /// With a limit, keep the newest rather than the oldest (still returned oldest first).
    pub newest: bool,
}

/// The store. One process owns the file at a time (redb locks it).
pub struct Store {
    db: Database,
    /// The newest point of each series as committed: a commit adds to it without a read.
    latest: std::sync::Mutex<latest::Latest>,
}

impl Store {
    /// Opens the store at `path`, creating it (mode 0600: alerts describe users' traffic).
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let fresh = !path.exists();
        let db = Database::create(path).map_err(|source| StoreError::Open {
            path: path.display().to_string(),
            source,
        })?;
        if fresh {
            restrict(path);
        }
        let store = Store {
            db,
            latest: Default::default(),
        };
        // Create every table, so readers never meet a missing one.
        let tx = store.db.begin_write()?;
        tx.open_table(APPLIED)?;
        tx.open_table(ALERTS)?;
        tx.open_table(META)?;
        tx.open_table(ENGINE_STATE)?;
        tx.open_table(flows::BLOCKS)?;
        tx.open_table(flows::INDEX)?;
        tx.open_table(flows::parquet::EXPORTED)?;
        for r in Resolution::ALL {
            tx.open_table(series_table(r))?;
        }
        tx.open_table(RECENT)?;
        migrate_legacy_series(&tx)?;
        tx.commit()?;
        Ok(store)
    }

    /// Applies one batch atomically. Returns `false`, changing nothing, when a batch with the
    /// same id was applied before.
    pub fn commit(&self, c: &Commit<'_>) -> Result<bool, StoreError> {
        Ok(self.commit_all(std::slice::from_ref(c))?[0])
    }

    /// Applies several batches in one transaction (one disk sync for all: the collector's
    /// group commit). Returns, per batch, whether it was applied (`false`: seen before, or
    /// earlier in this same call).
    pub fn commit_all(&self, commits: &[Commit<'_>]) -> Result<Vec<bool>, StoreError> {
        self.commit_all_with(commits, &[])
    }

    /// [`Store::commit_all`], also keeping each `(instance, engine state)` in the same
    /// transaction: a restart finds the state that goes with the batches applied.
    pub fn commit_all_with(
        &self,
        commits: &[Commit<'_>],
        states: &[(&str, &[u8])],
    ) -> Result<Vec<bool>, StoreError> {
        // Held to the commit's end: the cache must match what the tables hold when it ends.
        let mut latest = self.latest();
        let result = self.commit_all_locked(commits, states, &mut latest);
        if result.is_err() {
            // Points it added to may not have been committed.
            latest.clear();
        }
        result
    }

    /// The series cache, for a transaction that writes or deletes points. A panic while it was
    /// held leaves at worst stale sums: it is cleared then.
    fn latest(&self) -> std::sync::MutexGuard<'_, latest::Latest> {
        self.latest.lock().unwrap_or_else(|poisoned| {
            let mut latest = poisoned.into_inner();
            latest.clear();
            latest
        })
    }

    fn commit_all_locked(
        &self,
        commits: &[Commit<'_>],
        states: &[(&str, &[u8])],
        latest: &mut latest::Latest,
    ) -> Result<Vec<bool>, StoreError> {
        let tx = self.db.begin_write()?;
        let mut fresh = Vec::with_capacity(commits.len());
        let mut flow_sets = Vec::new();
        {
            let mut kept = tx.open_table(ENGINE_STATE)?;
            for (instance, state) in states {
                kept.insert(*instance, *state)?;
            }
        }
        {
            let mut applied = tx.open_table(APPLIED)?;
            let mut meta = tx.open_table(META)?;
            let mut alerts = tx.open_table(ALERTS)?;
            let mut seq = meta.get("alert_seq")?.map_or(0, |v| v.value());
            let mut recent = tx.open_table(RECENT)?;
            // Every fresh batch's series, summed first and written in the table's key order:
            // one write per point for the whole transaction, and neighbouring keys one after
            // the other (the B-tree's pages are visited once, in order). Hours and days are
            // the rollup's, at the hourly prune.
            let mut points = series::SeriesSum::default();
            for c in commits {
                if let Some(id) = c.batch_id {
                    if applied.get(id)?.is_some() {
                        fresh.push(false);
                        continue;
                    }
                    applied.insert(id, c.now_micros)?;
                }
                fresh.push(true);
                if let Some(set) = c.flows {
                    flow_sets.push((c.instance, set));
                }
                for a in c.alerts {
                    let t = crate::checks::parse_rfc3339_micros(&a.time).unwrap_or(c.now_micros);
                    alerts.insert((t, seq), serde_json::to_string(a)?.as_str())?;
                    seq += 1;
                }
                points.add(c.instance, c.series);
            }
            let mut key = Vec::new();
            points.write_in_order(|instance, name, start, delta| {
                let table = &mut recent;
                point_key::point(&mut key, instance, name, start);
                let key = key.as_slice();
                latest.select(instance, name);
                // One B-tree walk per point: the sum when the cache knows the point, else
                // the delta — which is the sum unless the point was there (a restart, a late
                // flow, a series the cache dropped), and then the sum is written over it.
                let known = latest.get(start);
                let mut sum = known.unwrap_or_default();
                sum.add(delta);
                let before = table
                    .insert(key, (sum.bytes, sum.packets))?
                    .map(|v| v.value());
                if let (None, Some((bytes, packets))) = (known, before) {
                    sum.add(Counters { bytes, packets });
                    table.insert(key, (sum.bytes, sum.packets))?;
                }
                latest.set(start, sum);
                Ok::<_, StoreError>(())
            })?;
            meta.insert("alert_seq", seq)?;
        }
        for (instance, set) in flow_sets {
            flows::write(&tx, instance, set)?;
        }
        tx.commit()?;
        Ok(fresh)
    }

    /// The engine state kept for `instance` with the batches applied, if any.
    pub fn engine_state(&self, instance: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let tx = self.db.begin_read()?;
        Ok(tx
            .open_table(ENGINE_STATE)?
            .get(instance)?
            .map(|v| v.value().to_vec()))
    }

    /// Whether a batch with this id was applied.
    pub fn is_applied(&self, batch_id: &str) -> Result<bool, StoreError> {
        let tx = self.db.begin_read()?;
        Ok(tx.open_table(APPLIED)?.get(batch_id)?.is_some())
    }

    /// Stored alerts matching `q`, oldest first, as JSON values.
    pub fn alerts(&self, q: &AlertQuery) -> Result<Vec<serde_json::Value>, StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(ALERTS)?;
        let from = (q.from_micros.unwrap_or(i64::MIN), 0u64);
        let to = (q.to_micros.unwrap_or(i64::MAX), 0u64);
        let range = table.range(from..to)?;
        let entries: Box<dyn Iterator<Item = _>> = if q.newest {
            Box::new(range.rev())
        } else {
            Box::new(range)
        };
        let mut out = Vec::new();
        for entry in entries {
            let (_, json) = entry?;
            let Ok(v) = serde_json::from_str::<serde_json::Value>(json.value()) else {
                continue;
            };
            let field = |name: &str| v.get(name).and_then(|x| x.as_str());
            if q.kind.as_deref().is_some_and(|k| field("type") != Some(k))
                || q.instance
                    .as_deref()
                    .is_some_and(|i| field("instance") != Some(i))
            {
                continue;
            }
            out.push(v);
            if q.limit > 0 && out.len() >= q.limit {
                break;
            }
        }
        if q.newest {
            out.reverse();
        }
        Ok(out)
    }

    /// Alerts stored in all.
    pub fn alert_count(&self) -> Result<u64, StoreError> {
        let tx = self.db.begin_read()?;
        Ok(tx.open_table(ALERTS)?.len()?)
    }

    /// The points of one series of `instance` at resolution `r` with start in `[from, to)`
    /// (seconds), oldest first: what the resolution's table holds plus the recent points no
    /// rollup has counted yet, read in one snapshot (each counted once).
    pub fn points(
        &self,
        instance: &str,
        series: &str,
        r: Resolution,
        from: i64,
        to: i64,
    ) -> Result<Vec<Point>, StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(series_table(r))?;
        let (mut lo, mut hi) = (Vec::new(), Vec::new());
        point_key::point(&mut lo, instance, series, from);
        point_key::point(&mut hi, instance, series, to);
        let mut out = Vec::new();
        for entry in table.range(lo.as_slice()..hi.as_slice())? {
            let (k, v) = entry?;
            // Every key between two points of a series is a point of it.
            let Some((_, _, start)) = point_key::parse(k.value()) else {
                continue;
            };
            let (bytes, packets) = v.value();
            out.push(Point {
                series: series.to_string(),
                start,
                counters: Counters { bytes, packets },
            });
        }
        let recent = tx.open_table(RECENT)?;
        rollup::add_recent(out, &recent, (instance, series, r), (from, to))
    }

    /// The names of the series stored for `instance`, sorted: those of the daily resolution,
    /// which every rolled-up series reaches, and those still only recent.
    pub fn series_names(&self, instance: &str) -> Result<Vec<String>, StoreError> {
        let tx = self.db.begin_read()?;
        let mut names = std::collections::BTreeSet::new();
        for table in [
            tx.open_table(series_table(Resolution::Day))?,
            tx.open_table(RECENT)?,
        ] {
            let mut from = Vec::new();
            point_key::instance(&mut from, instance);
            for entry in table.range(from.as_slice()..)? {
                let (k, _) = entry?;
                let Some((inst, name, _)) = point_key::parse(k.value()) else {
                    continue;
                };
                if inst != instance {
                    break;
                }
                if !names.contains(name) {
                    names.insert(name.to_string());
                }
            }
        }
        Ok(names.into_iter().collect())
    }

    /// Rolls up the recent points of the hours before the last one (see [`rollup`]), then
    /// deletes points older than each resolution's retention at `now` (seconds), and batch ids
    /// older than the finest retention (redeliveries come within minutes, not weeks). Returns
    /// how many entries were deleted.
    pub fn prune(
        &self,
        now: i64,
        retention: impl Fn(Resolution) -> i64,
    ) -> Result<u64, StoreError> {
        // Deleted points must not come back as the cache's sums: it starts again empty, and no
        // commit refills it before this one ends.
        let mut latest = self.latest();
        latest.clear();
        let tx = self.db.begin_write()?;
        let mut removed = 0;
        {
            // Every point the 5-minute retention deletes is rolled up first.
            let before = (Resolution::Hour.bucket(now) - 3_600)
                .max(now - retention(Resolution::FiveMinutes));
            let rolled = rollup::roll_up(&tx, before)?;
            tracing::debug!(rolled, "store: recent points rolled up into hours and days");
            for r in Resolution::ALL {
                let cutoff = now - retention(r);
                let mut table = tx.open_table(series_table(r))?;
                table.retain(|key, _| {
                    let keep = point_key::parse(key).is_none_or(|(_, _, start)| start >= cutoff);
                    removed += u64::from(!keep);
                    keep
                })?;
            }
            // Batch ids live at least as long as the collector accepts a batch (a replay of an
            // older one is refused as stale instead).
            let keep = retention(Resolution::FiveMinutes).max(BATCH_IDS_KEPT_SECS);
            let cutoff = (now - keep).saturating_mul(1_000_000);
            let mut applied = tx.open_table(APPLIED)?;
            applied.retain(|_, at| {
                let keep = at >= cutoff;
                removed += u64::from(!keep);
                keep
            })?;
        }
        tx.commit()?;
        Ok(removed)
    }
}

/// Moves the points of the tables earlier versions wrote (tuple keys) into the current ones,
/// summing onto any point both hold, and deletes the old tables: once per store, when it is
/// first opened by this version.
fn migrate_legacy_series(tx: &redb::WriteTransaction) -> Result<(), StoreError> {
    let legacy: Vec<String> = tx.list_tables()?.map(|t| t.name().to_string()).collect();
    let mut key = Vec::new();
    for r in Resolution::ALL {
        let name = r.legacy_table_name();
        if !legacy.iter().any(|t| t == name) {
            continue;
        }
        let mut moved = 0u64;
        {
            let old = tx.open_table(LegacySeriesTable::new(name))?;
            let mut new = tx.open_table(series_table(r))?;
            for entry in old.iter()? {
                let (k, v) = entry?;
                let (instance, series, start) = k.value();
                let (bytes, packets) = v.value();
                point_key::point(&mut key, instance, series, start);
                rollup::add_point(&mut new, &key, Counters { bytes, packets })?;
                moved += 1;
            }
        }
        tx.delete_table(LegacySeriesTable::new(name))?;
        tracing::info!(
            table = name,
            points = moved,
            "store: series moved to byte-keyed tables"
        );
    }
    Ok(())
}

fn restrict(path: &Path) {
    if let Err(e) = flowmesh_link::secret_file::restrict(path) {
        tracing::warn!(error = %e, "cannot make the store private (chmod 600)");
    }
}
