//! `[flows]`: the collector's flow store — whether every record is kept, for how long and in
//! how much space — and its upkeep: retention, compaction of closed hours, hourly Parquet.

use super::*;
use crate::store::flows::parquet::hour_path;

/// How often the upkeep runs.
const UPKEEP_EVERY: Duration = Duration::from_secs(300);
/// An hour is closed (compacted, exported) this long after it ended: batches from sensors
/// that were briefly offline still land in it first.
const SETTLE_SECS: i64 = 600;

/// `[flows]`: the flow store.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowsConfig {
    /// Keep every flow record received (true).
    pub store: bool,
    /// Days flows are kept (7); whole hours are dropped, oldest first.
    pub retention_days: u64,
    /// The most the flows may take, e.g. `"20GB"` (1024-based; `"0"`: no bound); the oldest
    /// hours go first.
    pub max_size: String,
    /// Write every closed hour as Parquet under this directory
    /// (`date=YYYY-MM-DD/hour=HH/flows.parquet`), for DuckDB, ClickHouse or Spark.
    pub parquet_dir: Option<PathBuf>,
}

impl Default for FlowsConfig {
    fn default() -> Self {
        FlowsConfig {
            store: true,
            retention_days: 7,
            max_size: "20GB".into(),
            parquet_dir: None,
        }
    }
}

impl FlowsConfig {
    /// The size bound in bytes, or why `max_size` is not a volume.
    pub fn max_bytes(&self) -> Result<u64, String> {
        crate::policy::units::volume_bytes(&self.max_size)
            .map_err(|e| format!("[flows] max_size: {e}"))
    }

    fn max_age_secs(&self) -> i64 {
        i64::try_from(self.retention_days.saturating_mul(86_400)).unwrap_or(i64::MAX / 2)
    }
}

/// One upkeep pass at `now_secs`; logs what it did.
pub fn upkeep(store: &Store, config: &FlowsConfig, now_secs: i64) {
    let max_bytes = config.max_bytes().unwrap_or(0);
    match store.prune_flows(now_secs, config.max_age_secs(), max_bytes) {
        Ok(d) if d.hours > 0 => tracing::info!(
            hours = d.hours,
            flows = d.flows,
            bytes = d.bytes,
            "flow store: oldest hours dropped (retention_days / max_size)"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "flow store: retention not applied"),
    }
    match store.compact_flows(now_secs, SETTLE_SECS) {
        Ok(n) if n > 0 => tracing::debug!(blocks = n, "flow store: closed hours compacted"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "flow store: compaction failed; retried later"),
    }
    if let Some(dir) = &config.parquet_dir {
        match store.hours_to_export(now_secs, SETTLE_SECS) {
            Ok(hours) => {
                for (hour, seq) in hours {
                    let path = hour_path(dir, hour);
                    match store.export_hour(hour, &path) {
                        Ok(flows) => {
                            if let Err(e) = store.mark_exported(hour, seq) {
                                tracing::warn!(error = %e, "flow store: export not recorded");
                            }
                            tracing::info!(path = %path.display(), flows, "flow store: hour written as Parquet");
                        }
                        Err(e) => {
                            tracing::warn!(path = %path.display(), error = %e, "flow store: Parquet export failed; retried later")
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "flow store: hours to export not read"),
        }
    }
}

/// Runs [`upkeep`] at start and every 5 minutes.
pub(super) async fn upkeep_loop(c: Arc<Collector>, config: FlowsConfig, stop: Arc<AtomicBool>) {
    let mut every = tokio::time::interval(UPKEEP_EVERY);
    while !stop.load(Ordering::Relaxed) {
        every.tick().await;
        let now_secs = now_micros() / 1_000_000;
        tokio::task::block_in_place(|| upkeep(&c.store, &config, now_secs));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::flows::FlowSet;
    use flowmesh_record::FlowRecord;

    #[test]
    fn upkeep_exports_closed_hours_once_and_applies_retention() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(&dir.path().join("s.redb")).expect("open");
        // 2026-11-30T00:00:00Z, three hours of one flow each.
        let t0 = 1_795_996_800i64;
        for h in 0..3 {
            let mut set = FlowSet::default();
            let t = (t0 + h * 3600 + 60) * 1_000_000;
            let r = FlowRecord {
                first_seen: t,
                last_seen: t,
                ..FlowRecord::default()
            };
            set.push(&r, &[], t);
            let id = format!("b/{h}");
            let commit = crate::store::Commit {
                batch_id: Some(&id),
                instance: "eu",
                alerts: &[],
                series: &crate::store::SeriesDelta::default(),
                now_micros: t,
                flows: Some(&set),
            };
            store.commit(&commit).expect("commit");
        }
        let config = FlowsConfig {
            parquet_dir: Some(dir.path().join("pq")),
            retention_days: 1,
            ..FlowsConfig::default()
        };
        // Two hours have closed (and settled) at 02:30; the third is open.
        upkeep(&store, &config, t0 + 2 * 3600 + 1800);
        let file = |h: &str| {
            dir.path()
                .join(format!("pq/date=2026-11-30/hour={h}/flows.parquet"))
        };
        assert!(file("00").exists() && file("01").exists());
        assert!(!file("02").exists());
        let before = std::fs::metadata(file("00"))
            .expect("file")
            .modified()
            .expect("mtime");
        upkeep(&store, &config, t0 + 2 * 3600 + 1800);
        let after = std::fs::metadata(file("00"))
            .expect("file")
            .modified()
            .expect("mtime");
        assert_eq!(before, after, "an exported hour is not written again");
        // A day later, the first hour is past retention.
        upkeep(&store, &config, t0 + 86_400 + 3600 + 1800);
        assert_eq!(store.flow_stats().expect("stats").flows, 2);
        assert!(
            FlowsConfig {
                max_size: "lots".into(),
                ..FlowsConfig::default()
            }
            .max_bytes()
            .is_err()
        );
    }
}
