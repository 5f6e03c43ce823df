//! Packets through decoding, the flow table and dissection, records out: what `flowmesh flows`
//! runs, on a capture file or live on an interface.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::capture::{CaptureError, CaptureReader, LiveCapture, LiveStats, Next, Packet};
use crate::decode::{self, DecodeError, Decoded, FragmentTable};
use crate::devices::DeviceTable;
use crate::flow::{FlowRecord, FlowTable, TableConfig};

/// Counters of one run.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunStats {
    /// Packets read from the capture.
    pub packets: u64,
    /// Bytes on the wire of those packets.
    pub bytes: u64,
    /// Packets that were not IP (ARP, LLDP, ...).
    pub non_ip: u64,
    /// Packets that could not be decoded (malformed, truncated, unsupported).
    pub undecodable: u64,
    /// Flow records emitted (final and active-timeout ones).
    pub flows: u64,
    /// Flows evicted early because the table was full.
    pub evictions: u64,
    /// Active-timeout records of running flows.
    pub updates: u64,
}

impl RunStats {
    /// Counts a packet read and what decoding made of it (not IP, or undecodable: logged).
    pub(crate) fn count(&mut self, wire_len: u32, decoded: &Result<Decoded<'_>, DecodeError>) {
        self.packets += 1;
        self.bytes += u64::from(wire_len);
        match decoded {
            Ok(Decoded::Ip(_)) => {}
            Ok(_) => self.non_ip += 1,
            Err(e) => {
                self.undecodable += 1;
                tracing::debug!(packet = self.packets, error = %e, "undecodable packet");
            }
        }
    }
}

/// The watermark that ends a run split at periods (`config.period_micros`): the time of the
/// last packet, once everything is emitted, when it is past the last watermark said.
pub(crate) fn final_mark(
    config: &TableConfig,
    last_ts: Option<i64>,
    mark: Option<i64>,
) -> Option<i64> {
    last_ts.filter(|&t| config.period_micros > 0 && Some(t) > mark)
}

/// Reads `path` to the end and emits every flow record. On a damaged capture, every flow seen
/// up to the damage is still emitted before the error is returned.
pub fn run_file(
    path: &Path,
    emit: &mut impl FnMut(FlowRecord),
) -> Result<RunStats, (RunStats, CaptureError)> {
    run_file_with(path, TableConfig::default(), emit)
}

/// Like [`run_file`] with chosen flow-table settings.
pub fn run_file_with(
    path: &Path,
    config: TableConfig,
    emit: &mut impl FnMut(FlowRecord),
) -> Result<RunStats, (RunStats, CaptureError)> {
    let reader = CaptureReader::open(path).map_err(|e| (RunStats::default(), e))?;
    run_reader_with(reader, config, emit)
}

/// Like [`run_file`] over any capture reader (tests feed bytes from memory).
pub fn run_reader<R: std::io::Read>(
    reader: CaptureReader<R>,
    emit: &mut impl FnMut(FlowRecord),
) -> Result<RunStats, (RunStats, CaptureError)> {
    run_reader_with(reader, TableConfig::default(), emit)
}

/// Like [`run_reader`] with chosen flow-table settings (timeouts, bounds).
pub fn run_reader_with<R: std::io::Read>(
    reader: CaptureReader<R>,
    config: TableConfig,
    emit: &mut impl FnMut(FlowRecord),
) -> Result<RunStats, (RunStats, CaptureError)> {
    run_reader_observed(reader, config, &mut |_| {}, &mut |_| {}, emit)
}

/// The device table of a capture file (the flows are computed and discarded).
pub fn devices_in_file(path: &Path) -> Result<(DeviceTable, RunStats), (RunStats, CaptureError)> {
    let reader = CaptureReader::open(path).map_err(|e| (RunStats::default(), e))?;
    devices_in_reader(reader)
}

/// Like [`devices_in_file`] over any capture reader.
pub fn devices_in_reader<R: std::io::Read>(
    mut reader: CaptureReader<R>,
) -> Result<(DeviceTable, RunStats), (RunStats, CaptureError)> {
    let mut devices = DeviceTable::default();
    let stats = run(
        &mut reader,
        &AtomicBool::new(false),
        Some(&mut devices),
        TableConfig::default(),
        &mut |_| {},
        &mut |_| {},
        &mut |_| {},
    )?;
    Ok((devices, stats))
}

/// Captures on `iface` (with an optional BPF filter) until `stop` is set, emitting flows as
/// they end and every flow still open at the stop; returns the kernel's counters too.
pub fn run_live(
    iface: &str,
    filter: Option<&str>,
    config: TableConfig,
    stop: &AtomicBool,
    emit: &mut impl FnMut(FlowRecord),
) -> Result<(RunStats, Option<LiveStats>), (RunStats, CaptureError)> {
    let mut cap = LiveCapture::open(iface, filter).map_err(|e| (RunStats::default(), e))?;
    tracing::info!(%iface, filter = filter.unwrap_or(""), "capturing; Ctrl-C to stop");
    let stats = run(&mut cap, stop, None, config, &mut |_| {}, &mut |_| {}, emit)?;
    Ok((stats, cap.stats()))
}

/// An ARP packet's sender, for checks that judge ARP (ARP is no flow).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpSeen {
    /// The sender's MAC.
    pub mac: [u8; 6],
    /// The sender's IPv4 address.
    pub ip: std::net::Ipv4Addr,
    /// When, µs.
    pub ts: i64,
}

/// Like [`run_reader_with`], also reporting every ARP sender to `arp` and every watermark
/// (with `config.period_micros`) to `marks`, in order with the records.
pub fn run_reader_observed<R: std::io::Read>(
    mut reader: CaptureReader<R>,
    config: TableConfig,
    arp: &mut impl FnMut(ArpSeen),
    marks: &mut impl FnMut(i64),
    emit: &mut impl FnMut(FlowRecord),
) -> Result<RunStats, (RunStats, CaptureError)> {
    run(
        &mut reader,
        &AtomicBool::new(false),
        None,
        config,
        arp,
        marks,
        emit,
    )
}

/// Where packets come from: a file, or an interface.
pub trait PacketSource {
    /// A packet, an idle tick (live only), or `None` at the end.
    fn next_packet(&mut self) -> Result<Option<Next<'_>>, CaptureError>;
}

impl<R: std::io::Read> PacketSource for CaptureReader<R> {
    fn next_packet(&mut self) -> Result<Option<Next<'_>>, CaptureError> {
        CaptureReader::next_packet(self).map(|p| p.map(Next::Packet))
    }
}

impl PacketSource for LiveCapture {
    fn next_packet(&mut self) -> Result<Option<Next<'_>>, CaptureError> {
        self.read().map(Some)
    }
}

/// The pipeline over any source of packets, until its end or `stop`. With
/// `config.period_micros`, `marks` hears each new watermark (every packet before it is in a
/// record already emitted) right after the records it covers, and at the end the time of the
/// last packet (everything is emitted then; later periods are not complete).
#[allow(clippy::too_many_arguments)]
pub fn run<S: PacketSource + ?Sized>(
    source: &mut S,
    stop: &AtomicBool,
    mut devices: Option<&mut DeviceTable>,
    config: TableConfig,
    arp: &mut impl FnMut(ArpSeen),
    marks: &mut impl FnMut(i64),
    emit: &mut impl FnMut(FlowRecord),
) -> Result<RunStats, (RunStats, CaptureError)> {
    let mut table = FlowTable::new(config);
    let mut frags = FragmentTable::default();
    let mut stats = RunStats::default();
    let mut flows = 0u64;
    let mut mark = None;
    let mut last_ts = None;
    // Records stream straight out: nothing is collected, so memory is the flow table's.
    let mut out = |r: FlowRecord| {
        flows += 1;
        emit(r);
    };
    let result = loop {
        // Once stopped, what is already queued in the capture buffer is still read: a stop
        // ends the capture at the first idle tick, losing nothing that had arrived.
        let stopping = stop.load(Ordering::Relaxed);
        let packet: Packet<'_> = match source.next_packet() {
            Ok(Some(Next::Packet(p))) => p,
            Ok(Some(Next::Idle(_))) if stopping => break Ok(()),
            Ok(Some(Next::Idle(now))) => {
                // The clock moves on without packets too: a connection that closed just before
                // the network went quiet is reported now, not at the next packet.
                table.tick(now, &mut out);
                if table.watermark() != mark {
                    mark = table.watermark();
                    mark.into_iter().for_each(&mut *marks);
                }
                continue;
            }
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        let decoded = decode::decode(packet.link, packet.data, &mut frags, packet.ts_micros);
        stats.count(packet.wire_len, &decoded);
        if let (Some(d), Ok(ok)) = (devices.as_deref_mut(), &decoded) {
            d.observe(ok, packet.ts_micros);
        }
        last_ts = last_ts.max(Some(packet.ts_micros));
        // Matched by reference: moving the packet out copied it whole, and the copy stalled
        // on store forwarding (its fields were just written one by one).
        match &decoded {
            Ok(Decoded::Ip(ip)) => {
                table.add(ip, packet.wire_len, packet.ts_micros, &mut out);
                if table.watermark() != mark {
                    mark = table.watermark();
                    mark.into_iter().for_each(&mut *marks);
                }
            }
            Ok(Decoded::Arp {
                sender_mac,
                sender_ip,
                ..
            }) => arp(ArpSeen {
                mac: *sender_mac,
                ip: *sender_ip,
                ts: packet.ts_micros,
            }),
            Ok(Decoded::Other) | Err(_) => {}
        }
    };
    table.drain(&mut out);
    final_mark(&config, last_ts, mark)
        .into_iter()
        .for_each(&mut *marks);
    stats.flows = flows;
    stats.evictions = table.stats.evictions;
    stats.updates = table.stats.updates;
    match result {
        Ok(()) => Ok(stats),
        Err(e) => Err((stats, e)),
    }
}
