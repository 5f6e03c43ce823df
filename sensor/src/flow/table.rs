//! The flow table proper.

use std::collections::HashMap;
use std::net::IpAddr;

use super::direction::first_sender_is_client;
use super::record::FlowRecord;
use crate::decode::{IpPacket, Tunnel};
use crate::dissect::{self, Dpi, PacketView};
use crate::wire::Mac;

/// A flow's identity: protocol, both endpoints in canonical order (lower first), VLAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// IP protocol.
    pub proto: u8,
    /// The lower endpoint.
    pub a: (IpAddr, u16),
    /// The higher endpoint.
    pub b: (IpAddr, u16),
    /// VLAN id, 0xffff for none.
    pub vlan: u16,
}

impl FlowKey {
    fn of(p: &IpPacket<'_>) -> (FlowKey, bool) {
        let s = (p.src, p.src_port);
        let d = (p.dst, p.dst_port);
        let src_is_a = s <= d;
        let (a, b) = if src_is_a { (s, d) } else { (d, s) };
        (
            FlowKey {
                proto: p.proto,
                a,
                b,
                vlan: p.vlan.unwrap_or(0xffff),
            },
            src_is_a,
        )
    }
}

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
}

/// Timeouts and bounds.
#[derive(Debug, Clone, Copy)]
pub struct TableConfig {
    /// Idle timeout for TCP flows, µs.
    pub tcp_idle_micros: i64,
    /// Idle timeout for UDP flows, µs.
    pub udp_idle_micros: i64,
    /// Idle timeout for other flows, µs.
    pub other_idle_micros: i64,
    /// Most flows tracked at once; beyond it the least recently seen are evicted (emitted).
    pub max_flows: usize,
}

impl Default for TableConfig {
    fn default() -> Self {
        TableConfig {
            tcp_idle_micros: 300_000_000,
            udp_idle_micros: 180_000_000,
            other_idle_micros: 60_000_000,
            max_flows: 2_000_000,
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
}

/// The flow table.
pub struct FlowTable {
    flows: HashMap<FlowKey, Flow>,
    config: TableConfig,
    next_sweep: i64,
    /// Counters.
    pub stats: TableStats,
}

const SWEEP_EVERY_MICROS: i64 = 1_000_000;

impl FlowTable {
    /// An empty table.
    pub fn new(config: TableConfig) -> Self {
        FlowTable {
            flows: HashMap::new(),
            config,
            next_sweep: i64::MIN,
            stats: TableStats::default(),
        }
    }

    /// Flows tracked now.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// Whether no flow is tracked.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    fn idle_limit(&self, proto: u8) -> i64 {
        match proto {
            crate::decode::proto::TCP => self.config.tcp_idle_micros,
            crate::decode::proto::UDP => self.config.udp_idle_micros,
            _ => self.config.other_idle_micros,
        }
    }

    /// Accounts one packet of `wire_len` bytes at `ts`; expired flows go to `emit`.
    pub fn add(
        &mut self,
        p: &IpPacket<'_>,
        wire_len: u32,
        ts: i64,
        emit: &mut impl FnMut(FlowRecord),
    ) {
        if ts >= self.next_sweep {
            self.sweep(ts, emit);
            self.next_sweep = ts.saturating_add(SWEEP_EVERY_MICROS);
        }
        let (key, src_is_a) = FlowKey::of(p);
        if !self.flows.contains_key(&key) && self.flows.len() >= self.config.max_flows {
            self.evict_oldest(emit);
        }
        let idle = self.idle_limit(p.proto);
        let mut expired_same_key = None;
        if let Some(f) = self.flows.get(&key)
            && ts - f.last_seen > idle
        {
            expired_same_key = self.flows.remove(&key);
        }
        if let Some(f) = expired_same_key {
            self.stats.expired += 1;
            emit(FlowRecord::from_flow(&f));
        }
        let stats = &mut self.stats;
        let flow = self.flows.entry(key).or_insert_with(|| {
            stats.flows += 1;
            let src_is_client =
                first_sender_is_client(p.proto, p.tcp_flags, p.src_port, p.dst_port);
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
            }
        });
        stats.packets += 1;
        let from_client = src_is_a == flow.client_is_a;
        let (src_mac, dst_mac) = (p.src_mac.unwrap_or([0; 6]), p.dst_mac.unwrap_or([0; 6]));
        if from_client {
            flow.c2s_packets += 1;
            flow.c2s_bytes += u64::from(wire_len);
            flow.c2s_tcp_flags |= p.tcp_flags;
            flow.client_mac = src_mac;
            flow.server_mac = dst_mac;
        } else {
            flow.s2c_packets += 1;
            flow.s2c_bytes += u64::from(wire_len);
            flow.s2c_tcp_flags |= p.tcp_flags;
            flow.client_mac = dst_mac;
            flow.server_mac = src_mac;
        }
        flow.last_seen = flow.last_seen.max(ts);
        flow.first_seen = flow.first_seen.min(ts);
        if !flow.dpi.is_done() {
            let (client, server) = if flow.client_is_a {
                (flow.key.a, flow.key.b)
            } else {
                (flow.key.b, flow.key.a)
            };
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
                    current: crate::dissect::L7::Unknown,
                },
            );
        }
    }

    /// Emits flows idle longer than their timeout at `now`.
    pub fn sweep(&mut self, now: i64, emit: &mut impl FnMut(FlowRecord)) {
        let cfg = self.config;
        let limit = |proto: u8| match proto {
            crate::decode::proto::TCP => cfg.tcp_idle_micros,
            crate::decode::proto::UDP => cfg.udp_idle_micros,
            _ => cfg.other_idle_micros,
        };
        let mut expired = 0;
        self.flows.retain(|_, f| {
            let keep = now - f.last_seen <= limit(f.key.proto);
            if !keep {
                expired += 1;
                emit(FlowRecord::from_flow(f));
            }
            keep
        });
        self.stats.expired += expired;
    }

    fn evict_oldest(&mut self, emit: &mut impl FnMut(FlowRecord)) {
        // Rare (only at the bound): a linear scan for the least recently seen tenth.
        let mut times: Vec<i64> = self.flows.values().map(|f| f.last_seen).collect();
        let cut = times.len() / 10;
        let (_, &mut threshold, _) = times.select_nth_unstable(cut);
        let mut evicted = 0;
        self.flows.retain(|_, f| {
            let keep = f.last_seen > threshold;
            if !keep {
                evicted += 1;
                emit(FlowRecord::from_flow(f));
            }
            keep
        });
        self.stats.evictions += evicted;
    }

    /// Emits every flow (end of input), oldest first.
    pub fn drain(&mut self, emit: &mut impl FnMut(FlowRecord)) {
        let mut all: Vec<Flow> = self.flows.drain().map(|(_, f)| f).collect();
        all.sort_by_key(|f| (f.first_seen, f.key.a, f.key.b));
        for f in &all {
            emit(FlowRecord::from_flow(f));
        }
    }
}
