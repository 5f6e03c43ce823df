//! The durable consumer loop (fetch, judge, store, acknowledge) and the store's pruning.

use super::*;

/// The most batches one fetch (one group commit) takes, and their most bytes. A group's host
/// series are written once whatever its size, so while a backlog is drained larger groups are
/// faster (measured on one core, 1M flows over 62,500 hosts: 256 → 437k flows/s at 206 MB peak,
/// 512 → 558–573k at 318 MB, 1024 → 630k at 566 MB); a collector that keeps up gets smaller
/// fetches anyway. The byte bound keeps memory in check when a sensor sends large batches.
const GROUP_MESSAGES: usize = 512;
const GROUP_BYTES: usize = 32 << 20;

/// How long a delivered batch may stay unacknowledged before JetStream delivers it again.
pub(super) const ACK_WAIT: Duration = Duration::from_secs(30);
/// How long a watermark waits for an earlier batch of its sensor that has not come: a batch
/// delivered to a collector that died comes again after [`ACK_WAIT`]; one that waited twice as
/// long is taken as lost (dropped from a full outbox, or refused) and the rules go on.
pub(super) const MISSING_WAIT: Duration = Duration::from_secs(2 * ACK_WAIT.as_secs());

/// How often the store drops what is past its retention.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Keeps the store within its retention: at start, then every hour (timeseries points past
/// each resolution's retention, batch ids older than the freshness window of flow batches).
pub(super) async fn prune_loop(c: Arc<Collector>, retention: Retention, stop: Arc<AtomicBool>) {
    let mut every = tokio::time::interval(PRUNE_EVERY);
    while !stop.load(Ordering::Relaxed) {
        every.tick().await;
        let now_secs = now_micros() / 1_000_000;
        let store = &c.store;
        match tokio::task::block_in_place(|| store.prune(now_secs, |r| retention.secs(r))) {
            Ok(removed) => tracing::info!(removed, "store pruned to its retention"),
            Err(e) => tracing::warn!(error = %e, "store not pruned; trying again in an hour"),
        }
    }
}

/// The durable consumer, created or found, retrying while the cluster does not answer.
pub(super) async fn durable_consumer(
    c: &Collector,
    (durable, filters): (String, Vec<String>),
    stop: &AtomicBool,
) -> Option<consumer::PullConsumer> {
    let config = consumer::pull::Config {
        durable_name: Some(durable.clone()),
        filter_subjects: filters,
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: ACK_WAIT,
        max_ack_pending: 10_000,
        ..Default::default()
    };
    let mut said = false;
    while !stop.load(Ordering::Relaxed) {
        let found = match c.js.get_stream(streams::FLOWS).await {
            Ok(stream) => stream
                .get_or_create_consumer(&durable, config.clone())
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match found {
            Ok(consumer) => return Some(consumer),
            Err(e) if !said => {
                said = true;
                tracing::warn!(error = %e, "waiting for the FLOWS stream and its consumer");
            }
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    None
}

/// The consumer loop: fetch, handle, acknowledge. Nothing the broker or the disk does wrong
/// for a while ends it: a group that cannot be stored is retried (its messages kept in
/// progress) until it is, and only what is stored is acknowledged.
pub(super) async fn consume(
    c: Arc<Collector>,
    which: (String, Vec<String>),
    stop: Arc<AtomicBool>,
) -> Result<(), CollectorError> {
    let Some(consumer) = durable_consumer(&c, which, &stop).await else {
        return Ok(());
    };
    let mut last_log = std::time::Instant::now();
    let mut backoff = Backoff::default();
    while !stop.load(Ordering::Relaxed) {
        let mut batch = match consumer
            .fetch()
            .max_messages(GROUP_MESSAGES)
            .max_bytes(GROUP_BYTES)
            .expires(Duration::from_secs(1))
            .messages()
            .await
        {
            Ok(b) => {
                backoff.reset();
                b
            }
            Err(e) => {
                tracing::debug!(error = %e, "fetch failed; retrying");
                tokio::time::sleep(backoff.pause()).await;
                continue;
            }
        };
        // Group commit: everything this fetch brought is judged, its alerts published, then
        // stored in one transaction, and only then acknowledged.
        let mut messages = Vec::new();
        while let Some(m) = batch.next().await {
            if let Ok(m) = m {
                messages.push(m);
            }
        }
        if messages.is_empty() {
            continue;
        }
        let mut seen = std::collections::HashSet::new();
        let mut group = Vec::new();
        // Messages before `judged` went through the engine (or were rejected); the rest did
        // not and go back to JetStream untouched.
        let mut judged = 0;
        for m in &messages {
            let redelivered = m.info().is_ok_and(|i| i.delivered > 1);
            match c.prepare(&m.subject, &m.payload, redelivered, &mut seen) {
                Ok(p) => {
                    group.extend(p);
                    judged += 1;
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot judge a batch; it will be redelivered");
                    break;
                }
            }
        }
        let (done, rest) = messages.split_at(judged);
        if !c.store_group(&group, done, &stop).await {
            // Stopping before the group was stored: all of it comes back to the next start
            // (whose engine state starts afresh with it).
            for m in &messages {
                let _ = m.ack_with(AckKind::Nak(None)).await;
            }
            break;
        }
        for m in done {
            // Stored (or rejected for good): JetStream may forget it. A lost ack means a
            // redelivery, which the store recognises.
            if let Err(e) = m.ack().await {
                tracing::debug!(error = %e, "ack not sent");
            }
        }
        for m in rest {
            let _ = m.ack_with(AckKind::Nak(Some(Duration::from_secs(1)))).await;
        }
        if last_log.elapsed() > Duration::from_secs(30) {
            last_log = std::time::Instant::now();
            let b = c.bounds();
            tracing::info!(
                batches = c.counters.batches.load(Ordering::Relaxed),
                flows = c.counters.flows.load(Ordering::Relaxed),
                alerts = c.counters.alerts.load(Ordering::Relaxed),
                rejected = ?c.counters.rejections(),
                devices_tracked = b.devices_tracked,
                devices_evicted = b.devices_evicted,
                series = b.series,
                series_dropped = b.series_dropped,
                late_records = b.late_records,
                periods_skipped = b.periods_skipped,
                watermarks_waiting = b.watermarks_waiting,
                batches_given_up = b.batches_given_up,
                "progress"
            );
            if b.devices_evicted > 0 || b.series_dropped > 0 {
                tracing::warn!(
                    devices_evicted = b.devices_evicted,
                    series_dropped = b.series_dropped,
                    "bounded state full: forgetting devices or not counting host series (a flood of MACs or addresses?)"
                );
            }
        }
    }
    Ok(())
}
