//! The pipeline on several cores: one thread reads and decodes (fragments are reassembled and
//! tunnels opened there, so what is hashed is the inner packet), and N flow workers, each with
//! its own flow table, take the packets of their flows. A packet goes to the worker of a
//! symmetric hash of its addresses, IP protocol and VLAN: both directions of a flow, and every
//! fragment of it, land on the same worker. Ports are left out of the hash on purpose: a
//! packet whose ports cannot be read (a fragment that was not reassembled) still finds its flow.
//!
//! When there is no core to spare for the reader alone (`Layout::for_machine`), it keeps one
//! of the tables itself, with half a worker's share of the flows (it also reads and decodes
//! every packet); its records and watermarks are handed on as a worker's are.
//!
//! Each worker's table sees only its flows, and a flow's record depends only on its own
//! packets (idle timeouts are checked when a flow's next packet comes), so the records are the
//! single-threaded ones, in another order. Packets travel in batches with their payloads in one
//! buffer per batch, and buffers go back to the reader to be reused: no allocation per packet.
//!
//! Workers also finish their records (JSON for `flowmesh flows`, protobuf for the sensor
//! daemon), so that work is spread too. Watermarks: every worker is ticked at the same
//! packets, so once each has passed a period boundary, every packet before it is in a record
//! already handed on; the reader then reports it. Live (and paced replay), the reader hands
//! partial batches on when the clock acts (a few ms apart at most) and when the source is idle, so a record is never held
//! back waiting for a batch to fill.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::capture::{CaptureError, Next};

mod queue;
use crate::decode::{self, Decoded, FragmentTable, IpPacket};
use crate::flow::{FlowRecord, FlowTable, TableConfig};
use crate::offline::{PacketSource, RunStats};
use queue::{Receiver, Sender as SyncSender, TrySendError, bounded as sync_channel};

/// Packets per batch sent to a worker: 2,048 parks and wakes workers a quarter as often as 512
/// (8% of the reader's time), 0.169 → 0.155 s on two threads. Workers drift further apart in
/// capture time with larger batches, which the collector allows for: it judges a period by the
/// watermark (the slowest worker), never by the first record it sees.
const BATCH: usize = 2048;
/// Partial batches are handed on at most this often when the clock acts (and whenever the
/// source is idle): records are late by this much at most, and batches stay large.
const FLUSH_EVERY: Duration = Duration::from_millis(5);
/// Batches in flight per worker (bounds memory; the reader waits when a worker lags).
const IN_FLIGHT: usize = 4;
/// Records of the reader's own table handed on together (the others come in batches too).
const OWN_RECORDS: usize = 256;

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

/// What a worker sends back: finished records, its watermark, or its counters when done.
enum Out<T> {
    Records { items: Vec<T>, flows: u64 },
    Mark { worker: usize, mark: i64 },
    Done { evictions: u64, updates: u64 },
}

/// How the flow tables are laid out over threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Flow tables (`--threads`).
    pub tables: usize,
    /// Whether the reader keeps one of them itself; otherwise each has a thread of its own and
    /// the reader only reads, decodes and hands on.
    pub reader_keeps_one: bool,
}

impl Layout {
    /// `tables` flow tables on this machine: the reader keeps one when no core would be left
    /// for it alone (on 2 cores with 2 tables: 0.166 -> 0.158 s on the 1M-packet capture);
    /// with cores to spare it does not, since every worker waits for it. A single table is
    /// the reader's: one thread, as a single-threaded run, its records handed on in chunks.
    pub fn for_machine(tables: usize) -> Layout {
        Layout {
            tables: tables.max(1),
            reader_keeps_one: tables <= 1 || tables + 1 > crate::cores(),
        }
    }
}

impl From<usize> for Layout {
    fn from(tables: usize) -> Layout {
        Layout::for_machine(tables)
    }
}

/// Flow workers to run: `requested`, or one per core.
pub fn workers(requested: Option<usize>) -> usize {
    requested.unwrap_or_else(crate::cores).max(1)
}

/// The worker a packet belongs to: the same for both directions of its flow. The addresses are
/// folded by XOR (symmetric without ordering them), mixed with the protocol and VLAN by one
/// multiplication, and the high bits pick the worker: a few instructions per packet on the
/// reader, which every packet waits for.
pub fn worker_of(ip: &IpPacket<'_>, workers: usize) -> usize {
    let fold = |a: std::net::IpAddr| -> u64 {
        match a {
            std::net::IpAddr::V4(v4) => u64::from(u32::from(v4)),
            std::net::IpAddr::V6(v6) => {
                let x = u128::from(v6);
                (x as u64) ^ ((x >> 64) as u64)
            }
        }
    };
    let key = (fold(ip.src) ^ fold(ip.dst))
        ^ (u64::from(ip.proto) << 48)
        ^ (u64::from(ip.vlan.unwrap_or(0)) << 32).rotate_left(7);
    let mixed = key.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    ((u128::from(mixed >> 32) * workers as u128) >> 32) as usize
}

/// The flow table a packet belongs to when the reader keeps table 0 itself: the reader also
/// reads and decodes every packet, so its table takes half a worker's share of the flows
/// (`1 / (2N - 1)`), each of the `shards - 1` worker threads twice that.
fn shard_of(ip: &IpPacket<'_>, shards: usize) -> usize {
    let units = 2 * shards - 1;
    match worker_of(ip, units) {
        0 => 0,
        u => 1 + (u - 1) / 2,
    }
}

struct WorkerIo<T> {
    id: usize,
    input: Receiver<Batch>,
    recycle: SyncSender<Batch>,
    output: SyncSender<Out<T>>,
}

/// One flow table and the records it emitted not yet handed on: on a worker thread, or kept by
/// the reader (table 0).
struct Shard<T> {
    table: FlowTable,
    items: Vec<T>,
    flows: u64,
    /// The watermark last handed on.
    mark: Option<i64>,
}

impl<T> Shard<T> {
    fn new(config: TableConfig) -> Self {
        Shard {
            table: FlowTable::new(config).with_external_clock(),
            items: Vec::new(),
            flows: 0,
            mark: None,
        }
    }

    /// The table and where its records go: finished, and counted.
    fn parts<'a>(
        &'a mut self,
        finish: &'a impl Finish<T>,
    ) -> (&'a mut FlowTable, impl FnMut(FlowRecord) + 'a) {
        let (items, flows) = (&mut self.items, &mut self.flows);
        (&mut self.table, move |r| {
            *flows += 1;
            finish(r, items);
        })
    }

    fn add(&mut self, ip: &IpPacket<'_>, wire_len: u32, ts: i64, finish: &impl Finish<T>) {
        let (table, mut out) = self.parts(finish);
        table.add(ip, wire_len, ts, &mut out);
    }

    /// Moves the table's clock; whether its watermark moved (a report is due).
    fn tick(&mut self, ts: i64, finish: &impl Finish<T>) -> bool {
        {
            let (table, mut out) = self.parts(finish);
            table.tick(ts, &mut out);
        }
        self.table.watermark() != self.mark
    }

    fn drain(&mut self, finish: &impl Finish<T>) {
        let (table, mut out) = self.parts(finish);
        table.drain(&mut out);
    }

    /// [`Shard::report`] on the reader's own table, straight to the reader's handler.
    fn hand_on(&mut self, on_out: &mut dyn FnMut(Out<T>)) {
        self.report(0, &mut |o| {
            on_out(o);
            true
        });
    }

    /// Hands on the records emitted so far, then the table's watermark if it moved: every
    /// record a watermark covers goes before it. `false` when the receiver is gone.
    fn report(&mut self, id: usize, send: &mut dyn FnMut(Out<T>) -> bool) -> bool {
        if self.flows > 0 {
            let records = Out::Records {
                items: std::mem::take(&mut self.items),
                flows: std::mem::take(&mut self.flows),
            };
            if !send(records) {
                return false;
            }
        }
        let now = self.table.watermark();
        if now != self.mark {
            self.mark = now;
            if let Some(m) = now
                && !send(Out::Mark {
                    worker: id,
                    mark: m,
                })
            {
                return false;
            }
        }
        true
    }

    /// Its counters, when it is done.
    fn done(&self) -> Out<T> {
        Out::Done {
            evictions: self.table.stats.evictions,
            updates: self.table.stats.updates,
        }
    }
}

/// What turns a record into what the caller wants (JSON, protobuf), on the thread that made it.
trait Finish<T>: Fn(FlowRecord, &mut Vec<T>) + Sync {}
impl<T, F: Fn(FlowRecord, &mut Vec<T>) + Sync> Finish<T> for F {}

fn worker<T: Send>(config: TableConfig, io: WorkerIo<T>, finish: &impl Finish<T>) {
    let mut shard = Shard::new(config);
    let mut send = |o: Out<T>| io.output.send(o).is_ok();
    while let Some(mut batch) = io.input.recv() {
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
                    shard.add(&ip, *wire_len, *ts, finish);
                }
                // Each watermark as it is reached (a batch may cross several boundaries),
                // after the records it covers.
                Item::Tick(ts) => {
                    if shard.tick(*ts, finish) && !shard.report(io.id, &mut send) {
                        return;
                    }
                }
            }
        }
        if !shard.report(io.id, &mut send) {
            return;
        }
        batch.buf.clear();
        batch.items.clear();
        let _ = io.recycle.try_send(batch);
    }
    shard.drain(finish);
    let _ = shard.report(io.id, &mut send);
    let _ = send(shard.done());
}

/// Sends `batch` to a worker; while its queue is full, what the workers emitted is taken
/// (`on_out`), so a worker waiting to hand over records never waits on the reader. The reader
/// wakes as soon as the worker takes a batch (not after a fixed sleep).
fn send_to<T>(
    input: &SyncSender<Batch>,
    batch: Batch,
    out: &Receiver<Out<T>>,
    on_out: &mut dyn FnMut(Out<T>),
) {
    let mut pending = batch;
    loop {
        match input.send_timeout(pending, Duration::from_micros(200)) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => return,
            Err(TrySendError::Full(b)) => {
                pending = b;
                while let Some(o) = out.try_recv() {
                    on_out(o);
                }
            }
        }
    }
}

/// [`crate::offline::run`] for `flowmesh flows` on flow workers (no device table, no
/// ARP, no watermarks). Records reach `emit` on the calling thread, as the workers emit them.
pub fn run<S: PacketSource + ?Sized>(
    source: &mut S,
    stop: &AtomicBool,
    config: TableConfig,
    layout: impl Into<Layout>,
    emit: &mut impl FnMut(FlowRecord),
) -> Result<RunStats, (RunStats, CaptureError)> {
    run_with(
        source,
        stop,
        config,
        layout,
        &|r, v: &mut Vec<FlowRecord>| v.push(r),
        &mut |_| {},
        &mut |rs| rs.into_iter().for_each(&mut *emit),
    )
}

/// The pipeline on flow workers (`layout`: a table count, or a [`Layout`]), over any source,
/// until its end or `stop`. Each
/// worker turns its records into `T`s with `finish` (appending to a batch); batches reach `emit`
/// on the calling thread. With `config.period_micros`, `marks` hears each new watermark right
/// after the records it covers, and at the end the time of the last packet, as
/// [`crate::offline::run`] does.
pub fn run_with<S, T, F>(
    source: &mut S,
    stop: &AtomicBool,
    config: TableConfig,
    layout: impl Into<Layout>,
    finish: &F,
    marks: &mut impl FnMut(i64),
    emit: &mut impl FnMut(Vec<T>),
) -> Result<RunStats, (RunStats, CaptureError)>
where
    S: PacketSource + ?Sized,
    T: Send,
    F: Fn(FlowRecord, &mut Vec<T>) + Sync,
{
    let layout: Layout = layout.into();
    let (threads, own_share) = (layout.tables.max(1), layout.reader_keeps_one);
    // Tables: 0 is the reader's (empty unless it takes a share), 1..=workers on threads.
    let workers = if own_share { threads - 1 } else { threads };
    let table_of = |ip: &IpPacket<'_>| {
        if own_share {
            shard_of(ip, threads)
        } else {
            1 + worker_of(ip, workers)
        }
    };
    let mut stats = RunStats::default();
    let mut frags = FragmentTable::default();
    let (out_tx, out_rx) = sync_channel::<Out<T>>(threads * IN_FLIGHT * 2);
    let (recycle_tx, recycle_rx) = sync_channel::<Batch>(threads * IN_FLIGHT);
    let (mut flows, mut evictions, mut updates, mut done) = (0u64, 0u64, 0u64, 0usize);
    let mut worker_marks: Vec<Option<i64>> = vec![None; workers + 1];
    let mut mark: Option<i64> = None;
    let mut last_ts: Option<i64> = None;
    let mut on_out = |o: Out<T>| match o {
        Out::Records { items, flows: n } => {
            flows += n;
            emit(items);
        }
        Out::Mark { worker: w, mark: m } => {
            worker_marks[w] = Some(m);
            let lowest = worker_marks.iter().copied().min().flatten();
            if lowest > mark {
                mark = lowest;
                mark.into_iter().for_each(&mut *marks);
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
        // Table 0 is the reader's own; tables 1.. are on worker threads.
        let mut inputs = Vec::with_capacity(workers);
        for id in 1..=workers {
            let (tx, rx) = sync_channel::<Batch>(IN_FLIGHT);
            let io = WorkerIo {
                id,
                input: rx,
                recycle: recycle_tx.clone(),
                output: out_tx.clone(),
            };
            scope.spawn(move || worker(config, io, finish));
            inputs.push(tx);
        }
        drop(out_tx);
        let mut own = Shard::<T>::new(config);
        let mut batches: Vec<Batch> = (0..workers).map(|_| Batch::default()).collect();
        // Hands every partial batch on (the workers then act on what came so far), and what
        // the reader's own table emitted.
        let flush =
            |batches: &mut Vec<Batch>, own: &mut Shard<T>, on_out: &mut dyn FnMut(Out<T>)| {
                for (w, b) in batches.iter_mut().enumerate() {
                    if !b.items.is_empty() {
                        let full = std::mem::replace(b, recycle_rx.try_recv().unwrap_or_default());
                        send_to(&inputs[w], full, &out_rx, on_out);
                    }
                }
                own.hand_on(on_out);
            };
        // Every table's clock to `ts`: the workers' through their batches, the reader's own
        // at once (its watermark handed on after its records).
        let tick_all = |ts: i64,
                        batches: &mut Vec<Batch>,
                        own: &mut Shard<T>,
                        on_out: &mut dyn FnMut(Out<T>)| {
            for b in batches.iter_mut() {
                b.items.push(Item::Tick(ts));
            }
            if own.tick(ts, finish) {
                own.hand_on(on_out);
            }
        };
        // The clock of one table, run empty: where it would act, every table is ticked.
        let mut clock = FlowTable::new(config);
        let mut last_flush = Instant::now();
        let mut idle = false;
        let result = loop {
            // Records emitted so far, without waiting (not at every packet: a batch's worth
            // of packets comes before the workers have anything new; but at every idle tick).
            if stats.packets % 64 == 0 || idle {
                while let Some(o) = out_rx.try_recv() {
                    on_out(o);
                }
            }
            idle = false;
            let stopping = stop.load(Ordering::Relaxed);
            let packet = match source.next_packet() {
                Ok(Some(Next::Packet(p))) => p,
                Ok(Some(Next::Idle(_))) if stopping => break Ok(()),
                Ok(Some(Next::Idle(now))) => {
                    // The clock moves without packets too (see `offline::run`).
                    clock.tick(now, &mut |_| {});
                    tick_all(now, &mut batches, &mut own, &mut on_out);
                    flush(&mut batches, &mut own, &mut on_out);
                    idle = true;
                    continue;
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            };
            let decoded = decode::decode(packet.link, packet.data, &mut frags, packet.ts_micros);
            stats.count(packet.wire_len, &decoded);
            last_ts = last_ts.max(Some(packet.ts_micros));
            if matches!(decoded, Ok(Decoded::Ip(_))) && clock.tick(packet.ts_micros, &mut |_| {}) {
                tick_all(packet.ts_micros, &mut batches, &mut own, &mut on_out);
                // What the tick makes due (closed connections, a boundary) goes out soon, but
                // a fast replay, whose clock acts thousands of times a second, still sends
                // full batches.
                if last_flush.elapsed() >= FLUSH_EVERY {
                    flush(&mut batches, &mut own, &mut on_out);
                    last_flush = Instant::now();
                }
            }
            if let Ok(Decoded::Ip(ip)) = decoded {
                match table_of(&ip) {
                    0 => {
                        own.add(&ip, packet.wire_len, packet.ts_micros, finish);
                        if own.items.len() >= OWN_RECORDS {
                            own.hand_on(&mut on_out);
                        }
                    }
                    w => {
                        let b = &mut batches[w - 1];
                        b.push(&ip, packet.wire_len, packet.ts_micros);
                        if b.items.len() >= BATCH {
                            let fresh = recycle_rx.try_recv().unwrap_or_default();
                            let full = std::mem::replace(b, fresh);
                            send_to(&inputs[w - 1], full, &out_rx, &mut on_out);
                        }
                    }
                }
            }
        };
        flush(&mut batches, &mut own, &mut on_out);
        // Closed inputs end the workers: each drains its table and says it is done, while the
        // reader drains its own.
        drop(inputs);
        own.drain(finish);
        own.hand_on(&mut on_out);
        on_out(own.done());
        while let Some(o) = out_rx.recv() {
            on_out(o);
        }
        result
    });
    crate::offline::final_mark(&config, last_ts, mark)
        .into_iter()
        .for_each(&mut *marks);
    stats.flows = flows;
    stats.evictions = evictions;
    stats.updates = updates;
    debug_assert_eq!(done, workers + 1);
    match result {
        Ok(()) => Ok(stats),
        Err(e) => Err((stats, e)),
    }
}

#[cfg(test)]
mod tests;
