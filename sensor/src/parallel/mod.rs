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

/// Flow workers to run: `requested`, or one per core.
pub fn workers(requested: Option<usize>) -> usize {
    requested
        .unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
        .max(1)
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

struct WorkerIo<T> {
    id: usize,
    input: Receiver<Batch>,
    recycle: SyncSender<Batch>,
    output: SyncSender<Out<T>>,
}

fn worker<T: Send>(
    config: TableConfig,
    io: WorkerIo<T>,
    finish: &(impl Fn(FlowRecord, &mut Vec<T>) + Sync),
) {
    let mut table = FlowTable::new(config).with_external_clock();
    let (mut items, mut flows) = (Vec::new(), 0u64);
    let mut mark = None;
    // The records a table emits, finished into `items`.
    macro_rules! out {
        () => {
            &mut |r: FlowRecord| {
                flows += 1;
                finish(r, &mut items);
            }
        };
    }
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
                    table.add(&ip, *wire_len, *ts, out!());
                }
                Item::Tick(ts) => {
                    table.tick(*ts, out!());
                    // Each watermark as it is reached (a batch may cross several boundaries),
                    // after the records it covers.
                    if table.watermark() != mark
                        && !report(&io, &mut items, &mut flows, &mut mark, table.watermark())
                    {
                        return;
                    }
                }
            }
        }
        if !report(&io, &mut items, &mut flows, &mut mark, table.watermark()) {
            return;
        }
        batch.buf.clear();
        batch.items.clear();
        let _ = io.recycle.try_send(batch);
    }
    table.drain(out!());
    let _ = io.output.send(Out::Records { items, flows });
    let _ = io.output.send(Out::Done {
        evictions: table.stats.evictions,
        updates: table.stats.updates,
    });
}

/// Hands on the records a worker emitted so far, then its table's watermark `now` if it moved:
/// every record a watermark covers goes before it. `false` when the reader is gone.
fn report<T>(
    io: &WorkerIo<T>,
    items: &mut Vec<T>,
    flows: &mut u64,
    mark: &mut Option<i64>,
    now: Option<i64>,
) -> bool {
    if *flows > 0 {
        let records = Out::Records {
            items: std::mem::take(items),
            flows: std::mem::take(flows),
        };
        if io.output.send(records).is_err() {
            return false;
        }
    }
    if now != *mark {
        *mark = now;
        if let Some(m) = now
            && io
                .output
                .send(Out::Mark {
                    worker: io.id,
                    mark: m,
                })
                .is_err()
        {
            return false;
        }
    }
    true
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

/// [`crate::offline::run`] for `flowmesh flows` on `threads` flow workers (no device table, no
/// ARP, no watermarks). Records reach `emit` on the calling thread, as the workers emit them.
pub fn run<S: PacketSource + ?Sized>(
    source: &mut S,
    stop: &AtomicBool,
    config: TableConfig,
    threads: usize,
    emit: &mut impl FnMut(FlowRecord),
) -> Result<RunStats, (RunStats, CaptureError)> {
    run_with(
        source,
        stop,
        config,
        threads,
        &|r, v: &mut Vec<FlowRecord>| v.push(r),
        &mut |_| {},
        &mut |rs| rs.into_iter().for_each(&mut *emit),
    )
}

/// The pipeline on `threads` flow workers, over any source, until its end or `stop`. Each
/// worker turns its records into `T`s with `finish` (appending to a batch); batches reach `emit`
/// on the calling thread. With `config.period_micros`, `marks` hears each new watermark right
/// after the records it covers, and at the end the time of the last packet, as
/// [`crate::offline::run`] does.
pub fn run_with<S, T, F>(
    source: &mut S,
    stop: &AtomicBool,
    config: TableConfig,
    threads: usize,
    finish: &F,
    marks: &mut impl FnMut(i64),
    emit: &mut impl FnMut(Vec<T>),
) -> Result<RunStats, (RunStats, CaptureError)>
where
    S: PacketSource + ?Sized,
    T: Send,
    F: Fn(FlowRecord, &mut Vec<T>) + Sync,
{
    let threads = threads.max(1);
    let mut stats = RunStats::default();
    let mut frags = FragmentTable::default();
    let (out_tx, out_rx) = sync_channel::<Out<T>>(threads * IN_FLIGHT * 2);
    let (recycle_tx, recycle_rx) = sync_channel::<Batch>(threads * IN_FLIGHT);
    let (mut flows, mut evictions, mut updates, mut done) = (0u64, 0u64, 0u64, 0usize);
    let mut worker_marks: Vec<Option<i64>> = vec![None; threads];
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
        let mut inputs = Vec::with_capacity(threads);
        for id in 0..threads {
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
        let mut batches: Vec<Batch> = (0..threads).map(|_| Batch::default()).collect();
        // Hands every partial batch on: the workers then act on what came so far.
        let flush = |batches: &mut Vec<Batch>, on_out: &mut dyn FnMut(Out<T>)| {
            for (w, b) in batches.iter_mut().enumerate() {
                if !b.items.is_empty() {
                    let full = std::mem::replace(b, recycle_rx.try_recv().unwrap_or_default());
                    send_to(&inputs[w], full, &out_rx, on_out);
                }
            }
        };
        // The clock of one table, run empty: where it would act, every worker is ticked.
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
                    for b in &mut batches {
                        b.items.push(Item::Tick(now));
                    }
                    flush(&mut batches, &mut on_out);
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
                for b in &mut batches {
                    b.items.push(Item::Tick(packet.ts_micros));
                }
                // What the tick makes due (closed connections, a boundary) goes out soon, but
                // a fast replay, whose clock acts thousands of times a second, still sends
                // full batches.
                if last_flush.elapsed() >= FLUSH_EVERY {
                    flush(&mut batches, &mut on_out);
                    last_flush = Instant::now();
                }
            }
            if let Ok(Decoded::Ip(ip)) = decoded {
                let w = worker_of(&ip, threads);
                batches[w].push(&ip, packet.wire_len, packet.ts_micros);
                if batches[w].items.len() >= BATCH {
                    let fresh = recycle_rx.try_recv().unwrap_or_default();
                    let full = std::mem::replace(&mut batches[w], fresh);
                    send_to(&inputs[w], full, &out_rx, &mut on_out);
                }
            }
        };
        flush(&mut batches, &mut on_out);
        // Closed inputs end the workers: each drains its table and says it is done.
        drop(inputs);
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
    debug_assert_eq!(done, threads);
    match result {
        Ok(()) => Ok(stats),
        Err(e) => Err((stats, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn packet(src: IpAddr, dst: IpAddr, sp: u16, dp: u16) -> IpPacket<'static> {
        IpPacket {
            src_mac: None,
            dst_mac: None,
            vlan: Some(7),
            tunnel: None,
            src,
            dst,
            proto: 6,
            src_port: sp,
            dst_port: dp,
            tcp_flags: 0,
            payload: &[],
            icmp: None,
            ttl: 64,
            continues_datagram: false,
        }
    }

    #[test]
    fn both_directions_and_every_fragment_go_to_one_worker_and_workers_share_the_flows() {
        for workers in [2, 3, 4] {
            let mut load = vec![0u32; workers];
            for i in 0..20_000u32 {
                let (a, b): (IpAddr, IpAddr) = if i % 2 == 0 {
                    (
                        std::net::Ipv4Addr::from(0x0a00_0000 + i).into(),
                        std::net::Ipv4Addr::from(0xc0a8_0000 + i * 7).into(),
                    )
                } else {
                    (
                        std::net::Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(i)).into(),
                        std::net::Ipv6Addr::from(0xfe80_u128 << 112 | u128::from(i * 13)).into(),
                    )
                };
                let w = worker_of(&packet(a, b, 40000, 443), workers);
                assert_eq!(w, worker_of(&packet(b, a, 443, 40000), workers));
                // A later fragment has no ports of its own before they are looked up.
                assert_eq!(w, worker_of(&packet(a, b, 0, 0), workers));
                load[w] += 1;
            }
            let fair = 20_000 / workers as u32;
            assert!(
                load.iter().all(|&n| n > fair * 8 / 10),
                "{workers} workers: {load:?}"
            );
        }
    }
}
