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
