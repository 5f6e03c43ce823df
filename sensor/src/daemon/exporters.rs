//! The sensor's NetFlow/IPFIX input: a thread on the UDP socket exporters send to, its records
//! into the same channel as the capture's (encoded where they are made), its counters logged.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use tokio::sync::mpsc;

use super::{Captured, SensorError, now_micros};
use crate::netflow::{Receiver, Settings, listen};

/// The running input.
pub(super) struct Exporters {
    thread: JoinHandle<()>,
    done: Arc<AtomicBool>,
}

/// Listens on `addr` until `stop` (or [`stop_with`]); with `lateness_secs`, also sends
/// watermarks that trail the clock by it (when no packet capture says how far time has gone).
pub(super) fn spawn(
    addr: &str,
    stop: Arc<AtomicBool>,
    tx: mpsc::Sender<Captured>,
    lateness_secs: Option<u64>,
) -> Result<Exporters, SensorError> {
    let socket = listen::bind(addr).map_err(|e| {
        SensorError::Other(format!(
            "[capture] netflow = {addr:?}: cannot listen: {e} (a port below 1024 needs root)"
        ))
    })?;
    tracing::info!(address = %socket.local_addr().map(|a| a.to_string()).unwrap_or_default(), "receiving NetFlow/IPFIX");
    let done = Arc::new(AtomicBool::new(false));
    let quit = done.clone();
    let thread = std::thread::spawn(move || {
        let mut receiver = Receiver::new(Settings::default());
        let mut emit = |r| {
            let _ = tx.blocking_send(Captured::Flows(Captured::entry(&r)));
        };
        let mut last: std::collections::HashMap<
            std::net::IpAddr,
            crate::netflow::ExporterCounters,
        > = Default::default();
        let lateness = lateness_secs.map(|s| s as i64 * 1_000_000);
        // Either flag ends it: ours at the end of a replay, the daemon's at its stop.
        let stopped = || stop.load(Ordering::Relaxed) || quit.load(Ordering::Relaxed);
        let result = listen::run(&socket, &mut receiver, stopped, &mut emit, |r| {
            if let Some(l) = lateness {
                let _ = tx.blocking_send(Captured::Watermark(now_micros() - l));
            }
            for (exporter, c) in r.counters() {
                let before = last.get(exporter).copied().unwrap_or_default();
                if c.malformed > before.malformed || c.missing_template > before.missing_template {
                    tracing::warn!(%exporter, malformed = c.malformed, missing_template = c.missing_template, records = c.records, "exporter sends what cannot be read");
                } else if before.datagrams == 0 && c.datagrams > 0 {
                    tracing::info!(%exporter, "a new exporter");
                }
                last.insert(*exporter, *c);
            }
        });
        if let Err(e) = result {
            tracing::error!(error = %e, "the NetFlow/IPFIX socket failed; exported flows are no longer received");
        }
        for (exporter, c) in receiver.counters() {
            tracing::info!(%exporter, datagrams = c.datagrams, records = c.records, malformed = c.malformed, missing_template = c.missing_template, "exporter totals");
        }
    });
    Ok(Exporters { thread, done })
}

/// Stops the input (held records go out first) and waits for it.
pub(super) fn stop_with(e: Exporters) {
    e.done.store(true, Ordering::Relaxed);
    wait(e);
}

/// Waits for the input to end (at the daemon's stop).
pub(super) fn wait(e: Exporters) {
    let _ = e.thread.join();
}
