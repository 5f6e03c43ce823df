//! A capture file through decoding, the flow table and dissection, records out: what
//! `flowmesh flows FILE` runs.

use std::path::Path;

use crate::capture::{CaptureError, CaptureReader};
use crate::decode::{self, Decoded, FragmentTable};
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
    /// Flows emitted.
    pub flows: u64,
}

/// Reads `path` to the end and emits every flow record. On a damaged capture, every flow seen
/// up to the damage is still emitted before the error is returned.
pub fn run_file(
    path: &Path,
    emit: &mut impl FnMut(FlowRecord),
) -> Result<RunStats, (RunStats, CaptureError)> {
    let reader = CaptureReader::open(path).map_err(|e| (RunStats::default(), e))?;
    run_reader(reader, emit)
}

/// Like [`run_file`] over any capture reader (tests feed bytes from memory).
pub fn run_reader<R: std::io::Read>(
    mut reader: CaptureReader<R>,
    emit: &mut impl FnMut(FlowRecord),
) -> Result<RunStats, (RunStats, CaptureError)> {
    let mut table = FlowTable::new(TableConfig::default());
    let mut frags = FragmentTable::default();
    let mut stats = RunStats::default();
    let mut flows = 0u64;
    // Records stream straight out: nothing is collected, so memory is the flow table's.
    let mut out = |r: FlowRecord| {
        flows += 1;
        emit(r);
    };
    let result = loop {
        let packet = match reader.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        stats.packets += 1;
        stats.bytes += u64::from(packet.wire_len);
        match decode::decode(packet.link, packet.data, &mut frags, packet.ts_micros) {
            Ok(Decoded::Ip(ip)) => table.add(&ip, packet.wire_len, packet.ts_micros, &mut out),
            Ok(_) => stats.non_ip += 1,
            Err(e) => {
                stats.undecodable += 1;
                tracing::debug!(packet = stats.packets, error = %e, "undecodable packet");
            }
        }
    };
    table.drain(&mut out);
    stats.flows = flows;
    match result {
        Ok(()) => Ok(stats),
        Err(e) => Err((stats, e)),
    }
}
