//! Records into batches: at most `max` records or `wait` old, closed at once by a new
//! watermark, framed as `FlowBatch`es with the instance's sequence numbers.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;

use super::Shared;
use crate::flow::FlowRecord;
use crate::publish::{Batch, codec};

/// What the capture thread hands on: records, and watermarks in order with them.
#[derive(Debug)]
pub enum Captured {
    /// Flow records, encoded as `FlowBatch` entries ([`codec::write_batch_entry`]).
    Flows(Vec<u8>),
    /// Every packet before this time (µs) is in a record handed on already.
    Watermark(i64),
}

impl Captured {
    /// One record's entry bytes.
    pub(super) fn entry(r: &FlowRecord) -> Vec<u8> {
        let mut out = Vec::with_capacity(192);
        codec::write_batch_entry(r, false, &mut out);
        out
    }
}

/// Gathers records into batches of at most `max` records or `wait` old. A new watermark
/// closes the batch at once (an empty one if need be), so the collector hears it promptly.
pub(super) async fn batch(
    mut rx: mpsc::Receiver<Captured>,
    tx: mpsc::Sender<Batch>,
    shared: Arc<Shared>,
    max: usize,
    wait: Duration,
) {
    let mut sequence = 0u64;
    // The open batch: its entries and how many they are.
    let mut entries = Vec::new();
    let mut count = 0usize;
    let mut deadline = tokio::time::Instant::now() + wait;
    let mut watermark = 0i64;
    // Closes the open batch: framed, and handed to the publisher.
    let close = |entries: &mut Vec<u8>, count: &mut usize, sequence: &mut u64, watermark: i64| {
        let mut bytes = Vec::with_capacity(entries.len() + shared.instance.len() + 64);
        codec::write_batch(
            &shared.instance,
            *sequence,
            entries,
            &shared.boot_id,
            watermark,
            &mut bytes,
        );
        shared.watermark.fetch_max(watermark, Ordering::Relaxed);
        let batch = Batch {
            message_id: format!(
                "{}/{}/{sequence}",
                shared.instance,
                hex::encode(shared.boot_id)
            ),
            bytes,
            flows: *count as u64,
        };
        entries.clear();
        *count = 0;
        *sequence += 1;
        batch
    };
    loop {
        let mut marked = false;
        let mut full = Vec::new();
        let done = tokio::select! {
            r = rx.recv() => match r {
                Some(Captured::Flows(bytes)) => {
                    let mut walked = 0;
                    for entry in codec::batch_entries(&bytes) {
                        walked += entry.len();
                        if count == 0 {
                            deadline = tokio::time::Instant::now() + wait;
                        }
                        entries.extend_from_slice(entry);
                        count += 1;
                        if count >= max {
                            full.push(close(&mut entries, &mut count, &mut sequence, watermark));
                        }
                    }
                    // The entries come from this process's writer: a rest is a bug, said loudly.
                    if walked != bytes.len() {
                        tracing::error!(dropped_bytes = bytes.len() - walked, "records that are not batch entries were dropped (a bug: please report it)");
                    }
                    false
                }
                Some(Captured::Watermark(w)) => {
                    marked = w > watermark;
                    watermark = watermark.max(w);
                    false
                }
                None => true,
            },
            _ = tokio::time::sleep_until(deadline), if count > 0 => false,
        };
        let due = marked || (count > 0 && tokio::time::Instant::now() >= deadline);
        if due || (done && count > 0) {
            full.push(close(&mut entries, &mut count, &mut sequence, watermark));
        }
        for batch in full {
            if tx.send(batch).await.is_err() {
                return;
            }
        }
        if done {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowmesh_proto::v1::FlowBatch;
    use prost::Message;

    fn record(port: u16) -> FlowRecord {
        FlowRecord {
            l4: "TCP",
            client_ip: "192.168.1.2".parse().unwrap(),
            client_port: port,
            server_ip: "192.0.2.1".parse().unwrap(),
            server_port: 443,
            l7: "TLS",
            c2s_packets: 1,
            c2s_bytes: 60,
            ..FlowRecord::default()
        }
    }

    fn entries(ports: std::ops::Range<u16>) -> Captured {
        let mut out = Vec::new();
        for p in ports {
            codec::write_batch_entry(&record(p), false, &mut out);
        }
        Captured::Flows(out)
    }

    /// The batches made of `input` (the input ends after it): (sequence, client ports, watermark).
    async fn batches(input: Vec<Captured>, max: usize) -> Vec<(u64, Vec<u32>, i64)> {
        let (tx, rx) = mpsc::channel(16);
        let (out_tx, mut out) = mpsc::channel(16);
        let shared = Arc::new(Shared {
            instance: "sensor-1".into(),
            boot_id: [7; 8],
            started: std::time::Instant::now(),
            interfaces: Vec::new(),
            capture: Arc::default(),
            published: Arc::default(),
            heartbeat_ms: 1000,
            watermark: Default::default(),
        });
        let task = tokio::spawn(batch(rx, out_tx, shared, max, Duration::from_secs(3600)));
        for c in input {
            tx.send(c).await.unwrap();
        }
        drop(tx);
        let mut got = Vec::new();
        while let Some(b) = out.recv().await {
            let m = FlowBatch::decode(&b.bytes[..]).unwrap();
            assert_eq!(
                (m.instance.as_str(), &m.boot_id[..]),
                ("sensor-1", &[7; 8][..])
            );
            assert_eq!(b.flows, m.flows.len() as u64);
            assert_eq!(
                b.message_id,
                format!("sensor-1/0707070707070707/{}", m.sequence)
            );
            let ports = m.flows.iter().map(|f| f.client_port).collect();
            got.push((m.sequence, ports, m.watermark_us));
        }
        task.await.unwrap();
        got
    }

    #[tokio::test]
    async fn chunks_of_records_fill_batches_of_at_most_max_in_order() {
        let got = batches(vec![entries(0..5), entries(5..7)], 3).await;
        assert_eq!(
            got,
            [
                (0, vec![0, 1, 2], 0),
                (1, vec![3, 4, 5], 0),
                // The input ended: what is open goes out.
                (2, vec![6], 0),
            ]
        );
    }

    #[tokio::test]
    async fn a_new_watermark_closes_the_batch_even_an_empty_one() {
        let got = batches(
            vec![
                entries(0..2),
                Captured::Watermark(10),
                // Not newer: nothing closes.
                Captured::Watermark(5),
                Captured::Watermark(20),
                entries(2..3),
            ],
            1000,
        )
        .await;
        assert_eq!(
            got,
            [(0, vec![0, 1], 10), (1, vec![], 20), (2, vec![2], 20)]
        );
    }
}
