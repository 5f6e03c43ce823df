//! Publishing flow batches: protobuf, sealed as soon as they are made, to the user's JetStream
//! stream with a message id JetStream de-duplicates on; batches the broker does not acknowledge
//! go to the disk outbox — sealed, so the file reveals no traffic — and are replayed, in order,
//! once it does. A batch that waited longer than [`RESEAL_AFTER`] is sealed again before it
//! goes, so the collector's freshness window never refuses a sensor's backlog.

pub use flowmesh_record::codec;
pub mod outbox;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use flowmesh_link::async_nats::HeaderMap;
use flowmesh_link::async_nats::jetstream;
use flowmesh_link::async_nats::jetstream::context::PublishAckFuture;
use flowmesh_link::{Identity, Opener, Sealer};

pub use outbox::{Depth, Outbox, OutboxError, Pending};

/// How long JetStream has to acknowledge a batch before it goes to the outbox.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// Batches in flight (published, not yet acknowledged) at once.
const WINDOW: usize = 256;
/// An outbox batch sealed longer ago than this is opened and sealed again when it is replayed
/// (the collector accepts flow batches up to 7 days old).
pub const RESEAL_AFTER: Duration = Duration::from_secs(86_400);

/// Counters for the heartbeat and the closing log line.
#[derive(Debug, Default)]
pub struct PublishCounters {
    /// Batches acknowledged by JetStream.
    pub batches: AtomicU64,
    /// Flow records in them.
    pub flows: AtomicU64,
    /// Publish attempts that failed (each batch then waits in the outbox).
    pub failures: AtomicU64,
}

/// One batch ready to go: its message id, its protobuf and how many flows it holds.
#[derive(Debug, Clone)]
pub struct Batch {
    /// `<instance>/<boot>/<sequence>`.
    pub message_id: String,
    /// The encoded `FlowBatch`: plaintext when made, sealed once [`Publisher::send`] took it.
    pub bytes: Vec<u8>,
    /// Flow records inside.
    pub flows: u64,
}

/// Publishes batches to one subject of the user's stream.
pub struct Publisher {
    js: jetstream::Context,
    /// `None` only in the bench-only plaintext mode.
    sealer: Option<Arc<Sealer>>,
    /// Opens the sensor's own outbox batches when they must be sealed again.
    opener: Option<Opener>,
    subject: String,
    outbox: Outbox,
    counters: Arc<PublishCounters>,
    /// Whether the missing stream was reported (once).
    said_no_stream: std::sync::atomic::AtomicBool,
}

impl Publisher {
    /// A publisher of `subject` through `js`, sealing with `sealer` (to the user's own key,
    /// `identity`, which also opens old outbox batches to seal them again). Plaintext batches
    /// an older version left in the outbox are sealed now.
    pub fn new(
        js: jetstream::Context,
        sealer: Option<Arc<Sealer>>,
        identity: &Identity,
        subject: String,
        outbox: Outbox,
        counters: Arc<PublishCounters>,
    ) -> Result<Self, OutboxError> {
        let p = Publisher {
            js,
            opener: sealer.as_ref().map(|_| Opener::new(identity)),
            sealer,
            subject,
            outbox,
            counters,
            said_no_stream: Default::default(),
        };
        let legacy = p.outbox.take_legacy()?;
        if !legacy.is_empty() {
            let batches: Vec<Batch> = legacy
                .into_iter()
                .map(|(message_id, bytes)| Batch {
                    message_id,
                    flows: flows_in(&bytes),
                    bytes,
                })
                .collect();
            tracing::info!(
                batches = batches.len(),
                "outbox of an older version: sealed"
            );
            p.spool(p.seal_all(batches).iter())?;
        }
        Ok(p)
    }

    /// Whether a broker node is connected now (nothing is tried, and nothing waits for an ack
    /// timeout, while none is).
    pub fn connected(&self) -> bool {
        self.js.client().connection_state()
            == flowmesh_link::async_nats::connection::State::Connected
    }

    /// The outbox's depth.
    pub fn depth(&self) -> Depth {
        self.outbox.depth().unwrap_or_default()
    }

    /// Seals new batches (in the bench-only plaintext mode, leaves them). A batch that cannot
    /// be sealed (the OS random generator failed) is dropped and logged.
    fn seal_all(&self, batches: Vec<Batch>) -> Vec<Batch> {
        let Some(sealer) = &self.sealer else {
            return batches;
        };
        batches
            .into_iter()
            .filter_map(|mut b| match sealer.seal(&self.subject, &b.bytes) {
                Ok(sealed) => {
                    b.bytes = sealed;
                    Some(b)
                }
                Err(e) => {
                    tracing::error!(error = %e, batch = %b.message_id, "cannot seal a batch; dropped");
                    None
                }
            })
            .collect()
    }

    /// An outbox batch as it goes out now: sealed again if it was sealed long ago.
    fn refreshed(&self, p: &Pending) -> Vec<u8> {
        let (Some(sealer), Some(opener)) = (&self.sealer, &self.opener) else {
            return p.batch.clone();
        };
        let sealed_at = flowmesh_link::envelope::peek_header(&p.batch).map_or(0, |h| h.time_micros);
        let age = flowmesh_link::envelope::now_micros().saturating_sub(sealed_at);
        if age < RESEAL_AFTER.as_micros() as u64 {
            return p.batch.clone();
        }
        match opener
            .open_stored(&self.subject, &p.batch)
            .map_err(|e| e.to_string())
            .and_then(|o| {
                sealer
                    .seal(&self.subject, &o.payload)
                    .map_err(|e| e.to_string())
            }) {
            Ok(fresh) => fresh,
            Err(e) => {
                tracing::warn!(error = %e, batch = %p.message_id, "an old outbox batch could not be sealed again; sent as it is");
                p.batch.clone()
            }
        }
    }

    async fn start(&self, b: &Batch) -> Option<PublishAckFuture> {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", b.message_id.as_str());
        self.js
            .publish_with_headers(self.subject.clone(), headers, b.bytes.clone().into())
            .await
            .ok()
    }

    /// Publishes `batches` pipelined; returns the indexes JetStream did not acknowledge.
    async fn publish(&self, batches: &[Batch]) -> Vec<usize> {
        let mut failed = Vec::new();
        let mut in_flight = std::collections::VecDeque::new();
        for (i, b) in batches.iter().enumerate() {
            if in_flight.len() >= WINDOW
                && let Some((j, fut, due)) = in_flight.pop_front()
            {
                self.settle(&mut failed, batches, j, fut, due).await;
            }
            // Each ack is due ACK_TIMEOUT after its publish, not after the previous ack: while
            // the broker is away a whole window fails in one timeout, not one per batch.
            let due = tokio::time::Instant::now() + ACK_TIMEOUT;
            match tokio::time::timeout_at(due, self.start(b)).await {
                Ok(Some(fut)) => in_flight.push_back((i, fut, due)),
                _ => failed.push(i),
            }
        }
        while let Some((j, fut, due)) = in_flight.pop_front() {
            self.settle(&mut failed, batches, j, fut, due).await;
        }
        failed.sort_unstable();
        failed
    }

    async fn settle(
        &self,
        failed: &mut Vec<usize>,
        batches: &[Batch],
        i: usize,
        fut: PublishAckFuture,
        due: tokio::time::Instant,
    ) {
        let result = tokio::time::timeout_at(due, fut).await;
        if let Ok(Err(e)) = &result
            && e.kind() == jetstream::context::PublishErrorKind::StreamNotFound
            && !self.said_no_stream.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                "no FLOWS stream in this account yet: the user's collector creates it when it \
                 starts (sensors may not); batches wait in the outbox until then"
            );
        }
        if matches!(result, Ok(Ok(_))) {
            self.counters.batches.fetch_add(1, Ordering::Relaxed);
            self.counters
                .flows
                .fetch_add(batches[i].flows, Ordering::Relaxed);
        } else {
            self.counters.failures.fetch_add(1, Ordering::Relaxed);
            failed.push(i);
        }
    }

    /// Sends new batches: straight to JetStream while the outbox is empty, otherwise behind
    /// what waits there (order is kept). What is not acknowledged goes to the outbox.
    pub async fn send(&self, batches: Vec<Batch>) -> Result<(), OutboxError> {
        if batches.is_empty() {
            return Ok(());
        }
        let batches = self.seal_all(batches);
        if !self.connected() {
            self.spool(batches.iter())?;
            return Ok(());
        }
        if self.outbox.depth()?.batches > 0 {
            self.spool(batches.iter())?;
            self.drain().await?;
            return Ok(());
        }
        let failed = self.publish(&batches).await;
        if !failed.is_empty() {
            tracing::warn!(
                batches = failed.len(),
                "the broker did not acknowledge; batches wait in the outbox"
            );
            self.spool(failed.iter().map(|&i| &batches[i]))?;
        }
        Ok(())
    }

    fn spool<'a>(&self, batches: impl Iterator<Item = &'a Batch>) -> Result<(), OutboxError> {
        let items: Vec<(&str, u64, &[u8])> = batches
            .map(|b| (b.message_id.as_str(), b.flows, b.bytes.as_slice()))
            .collect();
        self.outbox.push(&items)
    }

    /// Replays the outbox, oldest first, until it is empty or the broker stops acknowledging.
    /// Returns whether it is empty.
    pub async fn drain(&self) -> Result<bool, OutboxError> {
        loop {
            if !self.connected() {
                return Ok(self.outbox.depth()?.batches == 0);
            }
            let pending = self.outbox.peek(WINDOW)?;
            if pending.is_empty() {
                return Ok(true);
            }
            let batches: Vec<Batch> = pending
                .iter()
                .map(|p| Batch {
                    message_id: p.message_id.clone(),
                    bytes: self.refreshed(p),
                    flows: p.flows,
                })
                .collect();
            let failed = self.publish(&batches).await;
            let done: Vec<u64> = pending
                .iter()
                .enumerate()
                .filter(|(i, _)| failed.binary_search(i).is_err())
                .map(|(_, p)| p.position)
                .collect();
            self.outbox.remove(&done)?;
            if !failed.is_empty() {
                return Ok(false);
            }
            tracing::info!(replayed = done.len(), "outbox batches published");
        }
    }
}

/// How many flows an encoded batch holds (for the counters; 0 if it does not decode).
fn flows_in(bytes: &[u8]) -> u64 {
    codec::read_batch(bytes).map_or(0, |b| b.flow_count as u64)
}
