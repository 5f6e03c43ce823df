//! Flows from exporters: NetFlow v5, v9 and IPFIX over UDP, from routers, nProbe and
//! softflowd, turned into the same flow records packet capture makes.
//!
//! The wire formats are read by the `netflow_parser` crate: templates and options templates
//! are kept per exporter and observation domain (RFC 3954, 7011) in bounded LRU caches with an
//! expiry, data that arrives before its template waits (bounded) and is read when it comes, a
//! malformed datagram is counted and dropped, never a crash. [`fields`] reads each record,
//! [`pair`] joins the two directions of a connection, and [`listen`] runs the UDP socket.
//!
//! Counts are multiplied by the sampling rate: the record's own, else the exporter's last
//! options record (sampling interval), else a v5 header's. Bytes are the IP bytes exporters
//! count (packet capture counts L2 frames: 14 more per Ethernet packet).

pub mod fields;
pub mod listen;
pub mod pair;
pub mod synth;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use flowmesh_record::FlowRecord;
use netflow_parser::variable_versions::ipfix::FlowSetBody as IpfixBody;
use netflow_parser::variable_versions::v9::{
    Data as V9Data, FlowSetBody as V9Body, OptionsData as V9OptionsData,
};
use netflow_parser::{
    AutoScopedParser, NetflowPacket, NetflowParser, PendingFlowsConfig, TtlConfig,
};

use fields::{Clock, Fields, OneWay, from_v5, ipfix_number, v9_number};
use pair::Pairing;

/// Exporters tracked at most (templates, counters, sampling): the least recently heard goes.
pub const MAX_EXPORTERS: usize = 4096;

/// What one exporter sent, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ExporterCounters {
    /// Datagrams received.
    pub datagrams: u64,
    /// Flow records read.
    pub records: u64,
    /// Datagrams that did not parse (wholly or in part).
    pub malformed: u64,
    /// Data sets dropped for want of their template (data that comes before its template
    /// waits up to a minute for it, within bounds, and is not counted here).
    pub missing_template: u64,
}

/// Settings of the receiver.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// How long a one-way record waits for its reverse, µs.
    pub hold_us: i64,
    /// Records held at most.
    pub max_held: usize,
    /// Templates kept per exporter and version.
    pub templates_per_exporter: usize,
    /// A template not refreshed for this long is forgotten (exporters resend them).
    pub template_ttl: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            hold_us: 2_000_000,
            max_held: 200_000,
            templates_per_exporter: 512,
            template_ttl: Duration::from_secs(3600),
        }
    }
}

/// Export datagrams in, flow records out.
pub struct Receiver {
    parser: AutoScopedParser,
    pairing: Pairing,
    sampling: HashMap<IpAddr, u32>,
    counters: HashMap<IpAddr, ExporterCounters>,
    /// A datagram's records before pairing, kept for the next datagram.
    scratch: Vec<OneWay>,
}

impl Receiver {
    /// A receiver with `settings`.
    pub fn new(settings: Settings) -> Self {
        let builder = NetflowParser::builder()
            .with_cache_size(settings.templates_per_exporter.max(1))
            .with_ttl(TtlConfig::new(settings.template_ttl))
            .with_pending_flows({
                // Data for up to 64 unknown templates waits a minute for them, within 4 MB.
                let mut p = PendingFlowsConfig::with_ttl(64, Duration::from_secs(60));
                p.max_entries_per_template = 64;
                p.max_total_bytes = 4 << 20;
                p
            });
        let parser = AutoScopedParser::try_with_builder(builder)
            .and_then(|p| p.with_max_sources(MAX_EXPORTERS))
            .unwrap_or_else(|_| AutoScopedParser::new());
        Receiver {
            parser,
            pairing: Pairing::new(settings.hold_us, settings.max_held),
            sampling: HashMap::new(),
            counters: HashMap::new(),
            scratch: Vec::new(),
        }
    }

    /// Every exporter's counters.
    pub fn counters(&self) -> &HashMap<IpAddr, ExporterCounters> {
        &self.counters
    }

    /// Records that went out unpaired for want of room.
    pub fn evicted(&self) -> u64 {
        self.pairing.evicted
    }

    fn counters_of(&mut self, exporter: IpAddr) -> &mut ExporterCounters {
        if self.counters.len() >= MAX_EXPORTERS && !self.counters.contains_key(&exporter) {
            // Bounded against a flood of forged sources: start again rather than grow.
            self.counters.clear();
            self.sampling.clear();
        }
        self.counters.entry(exporter).or_default()
    }

    /// One datagram from `from`, received at `now` (µs): its records go to the pairing, and
    /// out through `emit` once paired (or alone, later).
    pub fn datagram(
        &mut self,
        from: SocketAddr,
        data: &[u8],
        now: i64,
        emit: &mut impl FnMut(FlowRecord),
    ) {
        let exporter = from.ip();
        self.counters_of(exporter).datagrams += 1;
        let result = self.parser.parse_from_source(from, data);
        if let Some(e) = &result.error {
            self.counters_of(exporter).malformed += 1;
            tracing::debug!(%exporter, error = %e, "a malformed export datagram");
        }
        let mut read = std::mem::take(&mut self.scratch);
        let mut missing = 0;
        for packet in &result.packets {
            match packet {
                NetflowPacket::V5(v5) => {
                    let h = &v5.header;
                    let clock = Clock {
                        unix_ms: i64::from(h.unix_secs) * 1000
                            + i64::from(h.unix_nsecs / 1_000_000),
                        uptime_ms: i64::from(h.sys_up_time),
                    };
                    // The top two bits are the sampling mode, the rest the interval.
                    let interval = u32::from(h.sampling_interval & 0x3fff);
                    if interval > 1 {
                        self.sampling.insert(exporter, interval);
                    }
                    read.extend(v5.flowsets.iter().map(|r| from_v5(r, clock, interval)));
                }
                NetflowPacket::V9(v9) => {
                    let clock = Clock {
                        unix_ms: i64::from(v9.header.unix_secs) * 1000,
                        uptime_ms: i64::from(v9.header.sys_up_time),
                    };
                    for set in &v9.flowsets {
                        missing += self.v9_body(exporter, &set.body, clock, &mut read);
                    }
                }
                NetflowPacket::IPFix(ipfix) => {
                    let clock = Clock {
                        unix_ms: i64::from(ipfix.header.export_time) * 1000,
                        uptime_ms: 0,
                    };
                    for set in &ipfix.flowsets {
                        missing += self.ipfix_body(exporter, &set.body, clock, &mut read);
                    }
                }
                _ => {}
            }
        }
        let c = self.counters_of(exporter);
        c.records += read.len() as u64;
        c.missing_template += missing;
        let fallback = self.sampling.get(&exporter).copied().unwrap_or(1);
        for r in read.drain(..) {
            let sampling = if r.sampling > 0 { r.sampling } else { fallback };
            self.pairing.push(exporter, r, sampling, now, emit);
        }
        self.scratch = read;
    }

    fn v9_body(
        &mut self,
        exporter: IpAddr,
        body: &V9Body,
        clock: Clock,
        read: &mut Vec<OneWay>,
    ) -> u64 {
        match body {
            V9Body::Data(d) => v9_data(d, clock, read),
            V9Body::OptionsData(o) => self.v9_options(exporter, o),
            V9Body::NoTemplate(_) => return 1,
            _ => {}
        }
        0
    }

    fn ipfix_body(
        &mut self,
        exporter: IpAddr,
        body: &IpfixBody,
        clock: Clock,
        read: &mut Vec<OneWay>,
    ) -> u64 {
        match body {
            IpfixBody::Data(d) => read.extend(d.fields.iter().filter_map(|rec| {
                Fields::read(
                    rec.iter().filter_map(|(k, v)| Some((ipfix_number(k)?, v))),
                    clock,
                )
            })),
            // IPFIX messages may carry v9-style sets.
            IpfixBody::V9Data(d) => v9_data(d, clock, read),
            IpfixBody::OptionsData(o) => {
                for rec in &o.fields {
                    self.options(
                        exporter,
                        rec.iter().filter_map(|(k, v)| Some((ipfix_number(k)?, v))),
                    );
                }
            }
            IpfixBody::V9OptionsData(o) => self.v9_options(exporter, o),
            IpfixBody::NoTemplate(_) => return 1,
            _ => {}
        }
        0
    }

    fn v9_options(&mut self, exporter: IpAddr, o: &V9OptionsData) {
        for rec in &o.fields {
            self.options(
                exporter,
                rec.options_fields.iter().map(|(k, v)| (v9_number(k), v)),
            );
        }
    }

    /// An options record: a sampling interval in it becomes the exporter's.
    fn options<'a>(
        &mut self,
        exporter: IpAddr,
        fields: impl Iterator<Item = (u16, &'a netflow_parser::FieldValue)>,
    ) {
        let mut f = Fields::default();
        for (n, v) in fields {
            if matches!(n, 34 | 50 | 305) {
                f.take(n, v);
            }
        }
        let s = f.sampling();
        if s > 0 {
            self.sampling.insert(exporter, s);
        }
    }

    /// Time passes: one-way records held past the hold time go out alone.
    pub fn tick(&mut self, now: i64, emit: &mut impl FnMut(FlowRecord)) {
        self.pairing.tick(now, emit);
    }

    /// The end: every held record goes out.
    pub fn finish(&mut self, emit: &mut impl FnMut(FlowRecord)) {
        self.pairing.flush(emit);
    }
}

/// The records of a v9 data set.
fn v9_data(d: &V9Data, clock: Clock, read: &mut Vec<OneWay>) {
    read.extend(
        d.fields
            .iter()
            .filter_map(|rec| Fields::read(rec.iter().map(|(k, v)| (v9_number(k), v)), clock)),
    );
}
