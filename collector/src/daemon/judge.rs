//! Judging one batch of flows: each flow is read into one reused record (no allocation per
//! flow), counted in its series, tagged with its traffic profiles, kept for the flow store, and
//! judged by the policy engine and the cloud's shared blacklist. Past what the batch's own maps
//! and columns take as they grow, only alerts allocate (`tests/allocations.rs` holds it to that).

use flowmesh_record::{FlowRecord, codec};

use crate::alert::Alert;
use crate::checks::Engine;
use crate::checks::blacklist::Blacklist;
use crate::store::SeriesDelta;
use crate::store::flows::FlowSet;

/// What one batch came to.
#[derive(Debug, Default)]
pub struct Judged {
    /// The alerts of its flows, and of the periods its watermark closed.
    pub alerts: Vec<Alert>,
    /// What its flows add to the timeseries.
    pub series: SeriesDelta,
    /// Its records for the flow store (when flows are kept).
    pub records: Option<FlowSet>,
    /// Flow entries skipped: malformed, or with impossible fields.
    pub bad: u64,
}

/// Judges `batch` (whose boot id is `boot`, in hex) with `engine` and `blacklist` at wall time
/// `now` (µs); `keep_flows` keeps its records for the flow store.
pub fn judge_batch(
    batch: &codec::BatchView<'_>,
    boot: &str,
    engine: &mut Engine,
    blacklist: &Blacklist,
    keep_flows: bool,
    now: i64,
) -> Judged {
    let mut judged = Judged {
        records: keep_flows.then(FlowSet::default),
        ..Judged::default()
    };
    let Judged {
        alerts,
        series,
        records,
        bad,
    } = &mut judged;
    let mut profiles: Vec<&'static str> = Vec::new();
    let (mut reader, mut r) = (codec::FlowReader::new(), FlowRecord::default());
    for f in batch.flows() {
        if reader.read(f, &mut r).is_err() {
            *bad += 1;
            continue;
        }
        series.add_flow(&r, r.last_seen);
        profiles.clear();
        engine.each_profile(&r, &mut |p| profiles.push(p));
        for p in &profiles {
            series.add_profile(p, &r, r.last_seen);
        }
        if let Some(set) = records.as_mut() {
            set.push(&r, &profiles, now);
        }
        engine.flow_tagged(&r, &profiles, &mut |a| alerts.push(a));
        if !r.skip_flow_checks {
            blacklist.check(&r, batch.instance, now, &mut |a| alerts.push(a));
        }
    }
    // Every packet before the batch's watermark is in: periods ending by then are judged now
    // (once the sensor's earlier batches are in too), and their alerts stored with this batch.
    // Every batch takes its place in the order, watermark or not (0: none yet).
    let mark = (batch.watermark_us > 0).then_some(batch.watermark_us);
    engine.batch_watermark((boot, batch.sequence), mark, now, &mut |a| alerts.push(a));
    judged
}
