//! The pipeline on several cores: one thread reads and decodes (fragments are reassembled and
//! tunnels opened there, so what is hashed is the inner packet), and N flow workers, each with
//! its own flow table, take the packets of their flows. A packet goes to the worker of a
//! symmetric hash of its addresses, IP protocol and VLAN: both directions of a flow, and every
//! fragment of it, land on the same worker. Ports are left out of the hash on purpose: a
//! packet whose ports cannot be read (a fragment that was not reassembled) still finds its flow.
//!
//! Each worker's table sees only its flows, and a flow's record depends only on its own
//! packets (idle timeouts are checked when a flow's next packet comes), so the records are the
//! single-threaded ones, in another order. Packets travel in batches with their payloads in one
//! buffer per batch, and buffers go back to the reader to be reused: no allocation per packet.

use std::hash::{Hash, Hasher};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use crate::capture::{CaptureError, Next};
use crate::decode::{self, Decoded, FragmentTable, IpPacket};
use crate::flow::{FlowRecord, FlowTable, TableConfig};
use crate::offline::{PacketSource, RunStats};

/// Packets per batch sent to a worker.
const BATCH: usize = 512;
/// Batches in flight per worker (bounds memory; the reader waits when a worker lags).
const IN_FLIGHT: usize = 4;

enum Item {
    Packet {
        ip: IpPacket<'static>,
        payload: Range<usize>,
        wire_len: u32,
        ts: i64,
    },
    /// The capture clock reached this time where one table's clock would act.
    Tick(i64),
}

#[derive(Default)]
struct Batch {
    buf: Vec<u8>,
    items: Vec<Item>,
}

impl Batch {
    fn push(&mut self, ip: &IpPacket<'_>, wire_len: u32, ts: i64) {
        let start = self.buf.len();
        self.buf.extend_from_slice(ip.payload);
        self.items.push(Item::Packet {
            ip: IpPacket {
                payload: &[],
                ..*ip
            },
            payload: start..self.buf.len(),
            wire_len,
            ts,
        });
    }
}

/// What a worker sends back: records, or its table's counters when it is done.
enum Out {
    Records(Vec<FlowRecord>),
    Done { evictions: u64, updates: u64 },
}

/// The worker a packet belongs to: the same for both directions of its flow.
pub fn worker_of(ip: &IpPacket<'_>, workers: usize) -> usize {
    let (a, b) = if ip.src <= ip.dst {
        (ip.src, ip.dst)
    } else {
        (ip.dst, ip.src)
    };
    let mut h = rustc_hash::FxHasher::default();
    (a, b, ip.proto, ip.vlan).hash(&mut h);
    (h.finish() % workers as u64) as usize
}

fn worker(
    config: TableConfig,
    input: Receiver<Batch>,
    recycle: SyncSender<Batch>,
    output: SyncSender<Out>,
) {
    let mut table = FlowTable::new(config).with_external_clock();
    let mut records = Vec::new();
    while let Ok(mut batch) = input.recv() {
        for item in &batch.items {
            match item {
                Item::Packet {
                    ip,
                    payload,
                    wire_len,
                    ts,
                } => {
                    let ip = IpPacket {
                        payload: &batch.buf[payload.clone()],
                        ..*ip
                    };
                    table.add(&ip, *wire_len, *ts, &mut |r| records.push(r));
                }
                Item::Tick(ts) => {
                    table.tick(*ts, &mut |r| records.push(r));
                }
            }
        }
        if !records.is_empty()
            && output
                .send(Out::Records(std::mem::take(&mut records)))
                .is_err()
        {
            return;
        }
        batch.buf.clear();
        batch.items.clear();
        let _ = recycle.try_send(batch);
    }
    table.drain(&mut |r| records.push(r));
    let _ = output.send(Out::Records(records));
    let _ = output.send(Out::Done {
        evictions: table.stats.evictions,
        updates: table.stats.updates,
    });
}

/// Sends `batch` to a worker; while its queue is full, what the workers emitted is taken
/// (`on_out`), so a worker waiting to hand over records never waits on the reader.
fn send_to(
    input: &SyncSender<Batch>,
    batch: Batch,
    out: &Receiver<Out>,
    on_out: &mut dyn FnMut(Out),
) {
    let mut pending = batch;
    loop {
        match input.try_send(pending) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => return,
            Err(TrySendError::Full(b)) => {
                pending = b;
                if let Ok(o) = out.recv_timeout(Duration::from_millis(1)) {
                    on_out(o);
                }
            }
        }
    }
}

/// [`crate::offline::run`] for `flowmesh flows` on `threads` flow workers (no device table, no
/// ARP, no watermarks). Records reach `emit` on the calling thread, as the workers emit them.
pub fn run<S: PacketSource + ?Sized>(
    source: &mut S,
    stop: &AtomicBool,
    config: TableConfig,
    threads: usize,
    emit: &mut impl FnMut(FlowRecord),
) -> Result<RunStats, (RunStats, CaptureError)> {
    let threads = threads.max(1);
    let mut stats = RunStats::default();
    let mut frags = FragmentTable::default();
    let (out_tx, out_rx) = sync_channel::<Out>(threads * IN_FLIGHT * 2);
    let (recycle_tx, recycle_rx) = sync_channel::<Batch>(threads * IN_FLIGHT);
    let (mut flows, mut evictions, mut updates, mut done) = (0u64, 0u64, 0u64, 0usize);
    let mut on_out = |o: Out| match o {
        Out::Records(rs) => {
            for r in rs {
                flows += 1;
                emit(r);
            }
        }
        Out::Done {
            evictions: e,
            updates: u,
        } => {
            evictions += e;
            updates += u;
            done += 1;
        }
    };
    let result = std::thread::scope(|scope| {
        let mut inputs = Vec::with_capacity(threads);
        for _ in 0..threads {
            let (tx, rx) = sync_channel::<Batch>(IN_FLIGHT);
            let (recycle, output) = (recycle_tx.clone(), out_tx.clone());
            scope.spawn(move || worker(config, rx, recycle, output));
            inputs.push(tx);
        }
        drop(out_tx);
        let mut batches: Vec<Batch> = (0..threads).map(|_| Batch::default()).collect();
        // The clock of one table, run empty: where it would act, every worker is ticked.
        let mut clock = FlowTable::new(config);
        let result = loop {
            // Records emitted so far, without waiting.
            while let Ok(o) = out_rx.try_recv() {
                on_out(o);
            }
            let stopping = stop.load(Ordering::Relaxed);
            let packet = match source.next_packet() {
                Ok(Some(Next::Packet(p))) => p,
                Ok(Some(Next::Idle(_))) if stopping => break Ok(()),
                Ok(Some(Next::Idle(_))) => continue,
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            };
            stats.packets += 1;
            stats.bytes += u64::from(packet.wire_len);
            let decoded = decode::decode(packet.link, packet.data, &mut frags, packet.ts_micros);
            if matches!(decoded, Ok(Decoded::Ip(_))) && clock.tick(packet.ts_micros, &mut |_| {}) {
                for b in &mut batches {
                    b.items.push(Item::Tick(packet.ts_micros));
                }
            }
            match decoded {
                Ok(Decoded::Ip(ip)) => {
                    let w = worker_of(&ip, threads);
                    batches[w].push(&ip, packet.wire_len, packet.ts_micros);
                    if batches[w].items.len() >= BATCH {
                        let fresh = recycle_rx.try_recv().unwrap_or_default();
                        let full = std::mem::replace(&mut batches[w], fresh);
                        send_to(&inputs[w], full, &out_rx, &mut on_out);
                    }
                }
                Ok(Decoded::Arp { .. }) | Ok(Decoded::Other) => stats.non_ip += 1,
                Err(e) => {
                    stats.undecodable += 1;
                    tracing::debug!(packet = stats.packets, error = %e, "undecodable packet");
                }
            }
        };
        for (w, batch) in batches.into_iter().enumerate() {
            if !batch.items.is_empty() {
                send_to(&inputs[w], batch, &out_rx, &mut on_out);
            }
        }
        // Closed inputs end the workers: each drains its table and says it is done.
        drop(inputs);
        for o in out_rx.iter() {
            on_out(o);
        }
        result
    });
    stats.flows = flows;
    stats.evictions = evictions;
    stats.updates = updates;
    debug_assert_eq!(done, threads);
    match result {
        Ok(()) => Ok(stats),
        Err(e) => Err((stats, e)),
    }
}
