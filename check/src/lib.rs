//! `flowmesh check`: the sensor and the collector's engine in one process over a capture, in
//! packet time. Its own crate, so that the collector does not depend on the sensor.

#![forbid(unsafe_code)]

use std::io::Read;

use flowmesh_collector::alert::Alert;
use flowmesh_collector::checks::Engine;
use flowmesh_collector::policy::Policy;
use flowmesh_sensor::capture::{CaptureError, CaptureReader};
use flowmesh_sensor::flow::{PERIOD_MICROS, TableConfig};
use flowmesh_sensor::offline::{self, RunStats};

/// Runs the policy's checks over a capture opened by `open` (called twice when the device-apps
/// check needs the devices' detected types: a first pass learns them). Alerts go to `emit`; on
/// a damaged capture the alerts so far are emitted before the error is returned.
pub fn check<R: Read>(
    open: impl Fn() -> Result<CaptureReader<R>, CaptureError>,
    policy: &Policy,
    instance: &str,
    emit: &mut impl FnMut(Alert),
) -> Result<RunStats, (RunStats, CaptureError)> {
    check_observed(open, policy, instance, emit, &mut |_, _, _| {})
}

/// [`check`], also handing every flow record, its last-packet time (µs) and the traffic
/// profiles it belongs to to `observe` (the timeseries and the flow store, with `flowmesh check
/// --store`).
pub fn check_observed<R: Read>(
    open: impl Fn() -> Result<CaptureReader<R>, CaptureError>,
    policy: &Policy,
    instance: &str,
    emit: &mut impl FnMut(Alert),
    observe: &mut impl FnMut(&flowmesh_record::FlowRecord, i64, &[&'static str]),
) -> Result<RunStats, (RunStats, CaptureError)> {
    let mut engine = Engine::new(policy, instance);
    if engine.wants_device_types() {
        let reader = open().map_err(|e| (RunStats::default(), e))?;
        // A damaged capture still yields the devices seen before the damage; the error itself
        // is reported by the second pass.
        if let Ok((devices, _)) = offline::devices_in_reader(reader) {
            engine = engine.with_detected_types(devices.typed());
        }
    }
    let reader = open().map_err(|e| (RunStats::default(), e))?;
    let mut last = i64::MIN;
    let mut profiles: Vec<&'static str> = Vec::new();
    // ARP and flow records both feed the engine, which both closures need: share it.
    let engine = std::cell::RefCell::new(engine);
    let emit = std::cell::RefCell::new(emit);
    // Flows are split at 5-minute boundaries, and periods judged at the watermark the flow
    // table reports: the same alerts whatever order the records come out in.
    let table = TableConfig {
        period_micros: PERIOD_MICROS,
        ..TableConfig::default()
    };
    let result = offline::run_reader_observed(
        reader,
        table,
        &mut |a| {
            engine
                .borrow_mut()
                .arp(a.mac, a.ip, a.ts, &mut *emit.borrow_mut())
        },
        &mut |w| engine.borrow_mut().watermark(w, &mut *emit.borrow_mut()),
        &mut |record| {
            last = last.max(record.last_seen);
            profiles.clear();
            engine
                .borrow()
                .each_profile(&record, &mut |p| profiles.push(p));
            observe(&record, record.last_seen, &profiles);
            engine
                .borrow_mut()
                .flow_tagged(&record, &profiles, &mut *emit.borrow_mut());
        },
    );
    let (mut engine, emit) = (engine.into_inner(), emit.into_inner());
    engine.finish(last, emit);
    result
}
