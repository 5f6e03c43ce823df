//! The flow table proper.

use std::net::IpAddr;

use hashbrown::HashTable;

use super::direction::first_sender_is_client;
use super::expect::Expectations;
use super::key::{FlowKey, hash_key};
use super::to_record::record_of;
use crate::decode::{IpPacket, Tunnel};
use crate::dissect::{self, Dpi, L7, PacketView};
use crate::wire::Mac;
use flowmesh_record::FlowRecord;

/// One flow's state.
#[derive(Debug)]
pub struct Flow {
    /// Identity.
    pub key: FlowKey,
    /// Whether endpoint `a` of the key is the client.
    pub client_is_a: bool,
    /// Client MAC (zero when unknown).
    pub client_mac: Mac,
    /// Server MAC.
    pub server_mac: Mac,
    /// Tunnel the flow was found in.
    pub tunnel: Option<Tunnel>,
    /// Client-to-server packets.
    pub c2s_packets: u64,
    /// Client-to-server L2 bytes.
    pub c2s_bytes: u64,
    /// Server-to-client packets.
    pub s2c_packets: u64,
    /// Server-to-client L2 bytes.
    pub s2c_bytes: u64,
    /// First packet time, µs.
    pub first_seen: i64,
    /// Last packet time, µs.
    pub last_seen: i64,
    /// TCP flags seen, client side.
    pub c2s_tcp_flags: u8,
    /// TCP flags seen, server side.
    pub s2c_tcp_flags: u8,
    /// Application detection state and result.
    pub dpi: Dpi,
    /// Counters were reset by an active-timeout record and no packet has come since.
    pub window_empty: bool,
    /// A record of this flow was emitted for the flow-level checks already.
    pub judged: bool,
}

/// Whether a TCP connection has ended: a FIN from each side, or a RST.
fn is_closed(f: &Flow) -> bool {
    use crate::wire::tcp::{FIN, RST};
    f.key.proto == crate::decode::proto::TCP
        && ((f.c2s_tcp_flags | f.s2c_tcp_flags) & RST != 0
            || (f.c2s_tcp_flags & FIN != 0 && f.s2c_tcp_flags & FIN != 0))
}

impl Flow {
    /// (client, server) endpoints.
    pub fn endpoints(&self) -> ((IpAddr, u16), (IpAddr, u16)) {
        if self.client_is_a {
            (self.key.a(), self.key.b())
        } else {
            (self.key.b(), self.key.a())
        }
    }

    /// The record of what the flow did since its previous record. Flow-level checks (ACL, host
    /// policy, device apps) judge a flow once: on its first record emitted with detection done,
    /// or `last` (the flow ends, or its connection closed); the other records say to skip them.
    fn record(&mut self, last: bool) -> FlowRecord {
        let judge = !self.judged && (last || self.dpi.is_done());
        self.judged |= judge;
        let mut r = record_of(self);
        r.skip_flow_checks = !judge;
        r
    }

    /// The flow's last record as it ends: what it did since its previous record, or — when
    /// that is nothing but the checks never judged it (its earlier parts went out before
    /// detection finished) — a record without traffic, for the checks only.
    fn final_record(&mut self) -> Option<FlowRecord> {
        if !self.window_empty {
            return Some(self.record(true));
        }
        if self.judged {
            return None;
        }
        let mut r = self.record(true);
        r.first_seen.clone_from(&r.last_seen);
        Some(r)
    }

    /// Starts a new reporting window after an active-timeout record.
    fn reset_window(&mut self) {
        self.c2s_packets = 0;
        self.c2s_bytes = 0;
        self.s2c_packets = 0;
        self.s2c_bytes = 0;
        self.window_empty = true;
    }
}

/// How long after a TCP connection ends its record waits for the last ACK, live, µs.
pub const LIVE_TCP_CLOSE_GRACE_MICROS: i64 = 500_000;

/// Timeouts and bounds.
#[derive(Debug, Clone, Copy)]
pub struct TableConfig {
    /// Idle timeout for TCP flows, µs.
    pub tcp_idle_micros: i64,
    /// Idle timeout for UDP flows, µs.
    pub udp_idle_micros: i64,
    /// Idle timeout for other flows, µs.
    pub other_idle_micros: i64,
    /// Report TCP connections this long after they ended (a FIN from each side, or a RST), µs,
    /// instead of at their idle timeout: alerts need not wait minutes. The flow stays in the
    /// table until its idle timeout, so a late ACK or retransmission is a small delta record of
    /// the same flow, not a new one. 0: off (reading files, where nothing waits).
    pub tcp_closed_micros: i64,
    /// Most flows tracked at once; beyond it the least recently seen are evicted (emitted).
    pub max_flows: usize,
    /// Active timeout, µs: a flow still running after this long emits a record of what it did
    /// since its previous record (NetFlow's delta semantics: a flow's records add up). 0: off.
    pub active_micros: i64,
    /// Period boundaries, µs (the traffic rules' finest period, 5 minutes, aligned to the
    /// epoch — and so to every time zone's hours, whose offsets are multiples of 15 minutes).
    /// When the capture clock passes a boundary, every flow emits what it did before it as a
    /// delta record, so each record lies within one period and [`FlowTable::watermark`] can say
    /// "every packet before this time is in a record already emitted". 0: off (`flowmesh
    /// flows` prints one record per flow).
    pub period_micros: i64,
}

/// The finest period of traffic rules and timeseries: 5 minutes, µs.
pub const PERIOD_MICROS: i64 = 300_000_000;

impl Default for TableConfig {
    fn default() -> Self {
        TableConfig {
            tcp_idle_micros: 300_000_000,
            udp_idle_micros: 180_000_000,
            other_idle_micros: 60_000_000,
            tcp_closed_micros: 0,
            max_flows: 2_000_000,
            active_micros: 0,
            period_micros: 0,
        }
    }
}

/// Counters for the user.
#[derive(Debug, Clone, Copy, Default)]
pub struct TableStats {
    /// Packets that entered a flow.
    pub packets: u64,
    /// Flows created.
    pub flows: u64,
    /// Flows evicted early because the table was full.
    pub evictions: u64,
    /// Flows expired by idle timeout.
    pub expired: u64,
    /// Active-timeout records of flows still running.
    pub updates: u64,
}

/// The flow table: flows live in a slab (`slots`), found through a hash table of slot numbers
/// (5 bytes a bucket), so the memory per tracked flow is the flow itself plus a few bytes,
/// and iteration order (sweeps, the final drain) is deterministic.
pub struct FlowTable {
    index: HashTable<u32>,
    slots: Vec<Option<Flow>>,
    free: Vec<u32>,
    config: TableConfig,
    /// Data connections announced by control connections (FTP).
    expected: Expectations,
    next_sweep: i64,
    /// Closed TCP connections in the order they closed: (due time, slot). Checked often, so
    /// their records go out promptly without scanning the whole table.
    closing: std::collections::VecDeque<(i64, u32)>,
    next_closed_check: i64,
    /// The next period boundary of the capture clock (with `period_micros`).
    next_boundary: i64,
    /// Every packet before this time is in a record already emitted (with `period_micros`).
    watermark: Option<i64>,
    /// Its clock moves only by [`FlowTable::tick`] (a flow worker, which the reader ticks in
    /// global packet order), not by the packets it is given.
    external_clock: bool,
    /// Counters.
    pub stats: TableStats,
}

/// Idle flows are looked for this often (packet time): idle timeouts are tens of seconds.
const SWEEP_EVERY_MICROS: i64 = 5_000_000;
/// How often closed TCP connections due for reporting are looked for (a queue: cheap).
const CLOSED_EVERY_MICROS: i64 = 100_000;

fn new_flow(p: &IpPacket<'_>, key: FlowKey, src_is_a: bool, ts: i64) -> Flow {
    let src_is_client = first_sender_is_client(p.proto, p.tcp_flags, p.src_port, p.dst_port);
    Flow {
        key,
        client_is_a: src_is_a == src_is_client,
        client_mac: [0; 6],
        server_mac: [0; 6],
        tunnel: p.tunnel,
        c2s_packets: 0,
        c2s_bytes: 0,
        s2c_packets: 0,
        s2c_bytes: 0,
        first_seen: ts,
        last_seen: ts,
        c2s_tcp_flags: 0,
        s2c_tcp_flags: 0,
        dpi: Dpi::default(),
        window_empty: false,
        judged: false,
    }
}

impl FlowTable {
    /// An empty table.
    pub fn new(config: TableConfig) -> Self {
        FlowTable {
            index: HashTable::new(),
            slots: Vec::new(),
            free: Vec::new(),
            config,
            next_sweep: i64::MIN,
            closing: std::collections::VecDeque::new(),
            next_closed_check: i64::MIN,
            next_boundary: i64::MIN,
            watermark: None,
            external_clock: false,
            stats: TableStats::default(),
            expected: Expectations::default(),
        }
    }

    /// A table whose clock moves only by [`FlowTable::tick`]: the flow workers' tables, ticked
    /// by the reader at the packets where a single table's clock would act, so that idle
    /// expiry, closed connections and period boundaries fall as they would on one thread.
    pub fn with_external_clock(mut self) -> Self {
        self.external_clock = true;
        self
    }

    /// Moves the capture clock to `ts`: period boundaries, closed connections and idle flows
    /// due by then are emitted. Returns whether anything was due (on an empty table too: the
    /// reader of the flow workers runs an empty table to know when to tick theirs).
    pub fn tick(&mut self, ts: i64, emit: &mut impl FnMut(FlowRecord)) -> bool {
        let mut due = self.config.period_micros > 0 && ts >= self.next_boundary;
        self.cross_boundaries(ts, emit);
        if ts >= self.next_closed_check {
            self.expire_closed(ts, emit);
            self.next_closed_check = ts.saturating_add(CLOSED_EVERY_MICROS);
            due = true;
        }
        if ts >= self.next_sweep {
            self.sweep(ts, emit);
            self.next_sweep = ts.saturating_add(SWEEP_EVERY_MICROS);
            due = true;
        }
        due
    }

    /// With `period_micros`: every packet before this time (a period boundary) is in a record
    /// already emitted. It moves when the capture clock passes a boundary.
    pub fn watermark(&self) -> Option<i64> {
        self.watermark
    }

    /// The capture clock reached `now`: past a period boundary, every flow emits what it did
    /// before the boundary, and the watermark moves to the boundary.
    fn cross_boundaries(&mut self, now: i64, emit: &mut impl FnMut(FlowRecord)) {
        let period = self.config.period_micros;
        if period <= 0 || now < self.next_boundary {
            return;
        }
        for flow in self.slots.iter_mut().flatten() {
            if !flow.window_empty {
                emit(flow.record(false));
                flow.reset_window();
                self.stats.updates += 1;
            }
        }
        let boundary = now.div_euclid(period) * period;
        self.watermark = Some(boundary);
        self.next_boundary = boundary.saturating_add(period);
    }

    /// Flows tracked now.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether no flow is tracked.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    fn idle_limit(config: &TableConfig, proto: u8) -> i64 {
        match proto {
            crate::decode::proto::TCP => config.tcp_idle_micros,
            crate::decode::proto::UDP => config.udp_idle_micros,
            _ => config.other_idle_micros,
        }
    }

    /// Accounts one packet of `wire_len` bytes at `ts`; flows that end go to `emit`.
    pub fn add(
        &mut self,
        p: &IpPacket<'_>,
        wire_len: u32,
        ts: i64,
        emit: &mut impl FnMut(FlowRecord),
    ) {
        if !self.external_clock {
            self.tick(ts, emit);
        }
        let (key, src_is_a) = FlowKey::of(p);
        let hash = hash_key(&key);
        let slots = &self.slots;
        let found = self
            .index
            .find(hash, |&i| {
                slots[i as usize].as_ref().is_some_and(|f| f.key == key)
            })
            .copied();
        let slot = match found {
            Some(i) => {
                let flow = self.slots[i as usize]
                    .as_mut()
                    .expect("indexed slots are live");
                if ts - flow.last_seen > Self::idle_limit(&self.config, p.proto) {
                    // The same tuple after a long silence is a new flow.
                    if let Some(r) = flow.final_record() {
                        emit(r);
                    }
                    self.stats.expired += 1;
                    self.stats.flows += 1;
                    *flow = new_flow(p, key, src_is_a, ts);
                    if let Some(l7) = self.expected.claim(key.a(), key.b(), ts) {
                        flow.dpi.classify(l7);
                    }
                }
                i
            }
            None => {
                if self.index.len() >= self.config.max_flows {
                    self.evict_oldest(emit);
                }
                self.stats.flows += 1;
                let mut flow = new_flow(p, key, src_is_a, ts);
                if let Some(l7) = self.expected.claim(key.a(), key.b(), ts) {
                    flow.dpi.classify(l7);
                }
                let i = match self.free.pop() {
                    Some(i) => {
                        self.slots[i as usize] = Some(flow);
                        i
                    }
                    None => {
                        self.slots.push(Some(flow));
                        (self.slots.len() - 1) as u32
                    }
                };
                let slots = &self.slots;
                self.index.insert_unique(hash, i, |&j| {
                    hash_key(
                        &slots[j as usize]
                            .as_ref()
                            .expect("indexed slots are live")
                            .key,
                    )
                });
                i
            }
        };
        self.stats.packets += 1;
        let flow = self.slots[slot as usize]
            .as_mut()
            .expect("indexed slots are live");
        let from_client = src_is_a == flow.client_is_a;
        let closed_before = is_closed(flow);
        if flow.window_empty {
            flow.window_empty = false;
            flow.first_seen = ts;
        }
        let (src_mac, dst_mac) = (p.src_mac.unwrap_or([0; 6]), p.dst_mac.unwrap_or([0; 6]));
        // A later fragment is no new packet, unless its flow has none yet (the first
        // fragment's flow was emitted meanwhile): a flow never has bytes without packets.
        let new_packet =
            u64::from(!p.continues_datagram || flow.c2s_packets + flow.s2c_packets == 0);
        if from_client {
            flow.c2s_packets += new_packet;
            flow.c2s_bytes += u64::from(wire_len);
            flow.c2s_tcp_flags |= p.tcp_flags;
            flow.client_mac = src_mac;
            flow.server_mac = dst_mac;
        } else {
            flow.s2c_packets += new_packet;
            flow.s2c_bytes += u64::from(wire_len);
            flow.s2c_tcp_flags |= p.tcp_flags;
            flow.client_mac = dst_mac;
            flow.server_mac = src_mac;
        }
        let was_closed = closed_before;
        flow.last_seen = flow.last_seen.max(ts);
        flow.first_seen = flow.first_seen.min(ts);
        if !was_closed && is_closed(flow) && self.config.tcp_closed_micros > 0 {
            self.closing
                .push_back((ts.saturating_add(self.config.tcp_closed_micros), slot));
        }
        // A later fragment carries no transport payload: nothing to inspect.
        if !flow.dpi.is_done() && !p.continues_datagram {
            let (client, server) = flow.endpoints();
            dissect::inspect(
                &mut flow.dpi,
                &PacketView {
                    proto: p.proto,
                    from_client,
                    client_port: client.1,
                    server_port: server.1,
                    payload: p.payload,
                    tcp_flags: p.tcp_flags,
                    icmp: p.icmp,
                    server_ip: server.0,
                    client_ip: client.0,
                    c2s_packets: flow.c2s_packets,
                    s2c_packets: flow.s2c_packets,
                    current: L7::Unknown,
                },
            );
        }
        if flow.dpi.l7() == L7::FTP_CONTROL && !p.payload.is_empty() {
            // Past detection, a control connection still announces data connections.
            let (client, server) = flow.endpoints();
            if let Some(d) = dissect::data_channel(p.payload, from_client, client.0, server.0) {
                self.expected.announce(d, L7::FTP_DATA, ts);
            }
        }
        let active = self.config.active_micros;
        if active > 0 && ts - flow.first_seen >= active {
            emit(flow.record(false));
            self.stats.updates += 1;
            flow.reset_window();
        }
    }

    /// Reports closed connections whose grace period ended by `now`: their record goes out
    /// and their counters start a new window (they stay until their idle timeout).
    fn expire_closed(&mut self, now: i64, emit: &mut impl FnMut(FlowRecord)) {
        let limit = self.config.tcp_closed_micros;
        while let Some(&(due, slot)) = self.closing.front() {
            if due > now {
                break;
            }
            self.closing.pop_front();
            // The slot may have been reused, or the connection may have sent its last ACKs
            // since: judge whatever occupies it now.
            let Some(f) = self.slots[slot as usize].as_mut() else {
                continue;
            };
            if !is_closed(f) || f.window_empty {
                continue;
            }
            if now - f.last_seen > limit {
                // The connection is over: judged now, whatever detection found.
                emit(f.record(true));
                f.reset_window();
                self.stats.updates += 1;
            } else {
                let again = f.last_seen.saturating_add(limit + 1);
                self.closing.push_back((again, slot));
            }
        }
    }

    /// Emits and forgets the flow in slot `i`.
    fn remove_at(&mut self, i: usize, emit: &mut impl FnMut(FlowRecord)) {
        let Some(mut flow) = self.slots[i].take() else {
            return;
        };
        if let Some(r) = flow.final_record() {
            emit(r);
        }
        if let Ok(entry) = self
            .index
            .find_entry(hash_key(&flow.key), |&j| j as usize == i)
        {
            entry.remove();
        }
        self.free.push(i as u32);
    }

    /// Emits and forgets every flow for which `done` holds; returns how many.
    fn remove_where(
        &mut self,
        mut done: impl FnMut(&Flow) -> bool,
        emit: &mut impl FnMut(FlowRecord),
    ) -> u64 {
        let mut removed = 0;
        for i in 0..self.slots.len() {
            let Some(flow) = self.slots[i].as_ref() else {
                continue;
            };
            if !done(flow) {
                continue;
            }
            self.remove_at(i, emit);
            removed += 1;
        }
        removed
    }

    /// Emits flows idle longer than their timeout at `now` (and, with `period_micros`, the
    /// part before a boundary `now` has passed).
    pub fn sweep(&mut self, now: i64, emit: &mut impl FnMut(FlowRecord)) {
        self.cross_boundaries(now, emit);
        let cfg = self.config;
        let n = self.remove_where(
            |f| now - f.last_seen > Self::idle_limit(&cfg, f.key.proto),
            emit,
        );
        self.stats.expired += n;
    }

    fn evict_oldest(&mut self, emit: &mut impl FnMut(FlowRecord)) {
        // Rare (only at the bound): find the least recently seen tenth and emit it.
        let mut times: Vec<i64> = self.slots.iter().flatten().map(|f| f.last_seen).collect();
        if times.is_empty() {
            return;
        }
        let cut = times.len() / 10;
        let (_, &mut threshold, _) = times.select_nth_unstable(cut);
        let n = self.remove_where(|f| f.last_seen <= threshold, emit);
        self.stats.evictions += n;
    }

    /// Emits every flow (end of input), in the order they were first seen (slots are reused, so
    /// nearly).
    pub fn drain(&mut self, emit: &mut impl FnMut(FlowRecord)) {
        self.closing.clear();
        for mut flow in self.slots.drain(..).flatten() {
            if let Some(r) = flow.final_record() {
                emit(r);
            }
        }
        self.index.clear();
        self.free.clear();
    }
}
