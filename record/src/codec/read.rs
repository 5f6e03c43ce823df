//! Flow batches read straight from their protobuf bytes into a reused [`FlowRecord`]: the
//! inverse of [`super::write`]. prost's `FlowBatch::decode` made a `Flow` of owned strings and
//! byte vectors for every record (ten or more allocations each, a quarter of a collector's
//! time went to the allocator) only for [`super::from_proto`] to throw most of them away.
//!
//! The wire rules are prost's own (`decode_key`, `decode_varint` and `skip_field` are called,
//! not rewritten): unknown fields are skipped, the last of a repeated scalar wins, a known
//! field of the wrong wire type or a string that is not UTF-8 is an error. What a record
//! becomes is one rule ([`Raw::fill`]) that [`super::from_proto`] follows too; a test and a
//! fuzz target compare the two on any bytes. One difference, on purpose: prost refuses a whole batch when one of
//! its flows is malformed, here that flow alone is an error ([`BatchView::flows`]) and the
//! others are read.

use flowmesh_proto::v1::Flow;
use prost::encoding::{DecodeContext, WireType, decode_key, decode_varint, skip_field};

use super::{FlowError, ip_from};
use crate::{Exported, FlowRecord, L7, Tunnel, app_named, l4_name, l4_number};

/// Why bytes are not a flow batch, or not a flow.
#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
pub enum ReadError {
    /// Not protobuf of the expected message (truncated, a field of the wrong type, a string
    /// that is not UTF-8, ...).
    #[error("malformed protobuf")]
    Malformed,
    /// Well-formed, but a field no record can hold.
    #[error(transparent)]
    Flow(#[from] FlowError),
}

impl From<prost::DecodeError> for ReadError {
    fn from(_: prost::DecodeError) -> Self {
        ReadError::Malformed
    }
}

/// The fields of one protobuf message, in order: field number and value.
struct Fields<'a> {
    rest: &'a [u8],
}

/// A field's value as it is on the wire.
enum Value<'a> {
    Varint(u64),
    Delimited(&'a [u8]),
    /// Any other wire type (fixed-width, groups): skipped already; wrong for every field here.
    Other,
}

impl<'a> Fields<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Fields { rest: bytes }
    }

    fn next_field(&mut self) -> Result<Option<(u32, Value<'a>)>, ReadError> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let (tag, wire) = decode_key(&mut self.rest)?;
        let value = match wire {
            WireType::Varint => Value::Varint(decode_varint(&mut self.rest)?),
            WireType::LengthDelimited => {
                let len = decode_varint(&mut self.rest)?;
                let len = usize::try_from(len)
                    .ok()
                    .filter(|&l| l <= self.rest.len())
                    .ok_or(ReadError::Malformed)?;
                let (value, after) = self.rest.split_at(len);
                self.rest = after;
                Value::Delimited(value)
            }
            other => {
                skip_field(other, tag, &mut self.rest, DecodeContext::default())?;
                Value::Other
            }
        };
        Ok(Some((tag, value)))
    }
}

/// A field this module knows, checked for its wire type as prost checks it.
fn varint(v: Value<'_>) -> Result<u64, ReadError> {
    match v {
        Value::Varint(n) => Ok(n),
        _ => Err(ReadError::Malformed),
    }
}

fn delimited(v: Value<'_>) -> Result<&[u8], ReadError> {
    match v {
        Value::Delimited(b) => Ok(b),
        _ => Err(ReadError::Malformed),
    }
}

fn text(v: Value<'_>) -> Result<&str, ReadError> {
    std::str::from_utf8(delimited(v)?).map_err(|_| ReadError::Malformed)
}

/// A `FlowBatch`'s own fields, borrowed from its bytes, and its flows still unread.
#[derive(Debug, Clone)]
pub struct BatchView<'a> {
    /// The sending instance.
    pub instance: &'a str,
    /// Its per-boot batch sequence number.
    pub sequence: u64,
    /// The sensor process's random id.
    pub boot_id: &'a [u8],
    /// The sensor's watermark, microseconds (0: none).
    pub watermark_us: i64,
    /// How many flow entries the batch holds.
    pub flow_count: usize,
    bytes: &'a [u8],
}

/// Reads a `FlowBatch`'s own fields (every field but the flows, which are only counted).
pub fn read_batch(bytes: &[u8]) -> Result<BatchView<'_>, ReadError> {
    let mut view = BatchView {
        instance: "",
        sequence: 0,
        boot_id: &[],
        watermark_us: 0,
        flow_count: 0,
        bytes,
    };
    let mut fields = Fields::new(bytes);
    while let Some((tag, value)) = fields.next_field()? {
        match tag {
            1 => view.instance = text(value)?,
            2 => view.sequence = varint(value)?,
            3 => {
                delimited(value)?;
                view.flow_count += 1;
            }
            4 => view.boot_id = delimited(value)?,
            5 => view.watermark_us = varint(value)? as i64,
            _ => {}
        }
    }
    Ok(view)
}

impl<'a> BatchView<'a> {
    /// The flows' encoded messages, in order (each for [`FlowReader::read`]).
    pub fn flows(&self) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        let mut fields = Fields::new(self.bytes);
        // `read_batch` walked these bytes without an error: every field is there again.
        std::iter::from_fn(move || {
            loop {
                match fields.next_field().ok()?? {
                    (3, Value::Delimited(flow)) => return Some(flow),
                    _ => continue,
                }
            }
        })
    }
}

/// Reads flows into one record again and again, keeping the record's server name and ALPN
/// buffers from flow to flow so that steady traffic reads without allocating.
#[derive(Debug, Default)]
pub struct FlowReader {
    name: String,
    alpn: Vec<String>,
    /// ALPN strings not in use, kept for their buffers.
    spare: Vec<String>,
}

impl FlowReader {
    /// A reader with no buffers yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads one encoded `Flow` message into `r`, every field overwritten, as
    /// [`super::from_proto`] would make it of prost's decoding. Returns the `update` flag (an
    /// active-timeout record). After an error, `r` holds some of the flow's fields.
    pub fn read(&mut self, flow: &[u8], r: &mut FlowRecord) -> Result<bool, ReadError> {
        // Take the buffers back from the record the last flow was read into.
        if let Some(name) = r.server_name.take() {
            self.name = name;
        }
        if let Some(alpn) = r.alpn.take() {
            self.alpn = alpn;
        }
        self.spare.append(&mut self.alpn);
        let mut f = Raw::default();
        let mut fields = Fields::new(flow);
        while let Some((tag, value)) = fields.next_field()? {
            match tag {
                1 => f.l4 = text(value)?,
                2 => f.client_ip = delimited(value)?,
                3 => f.client_port = varint(value)? as u32,
                4 => f.server_ip = delimited(value)?,
                5 => f.server_port = varint(value)? as u32,
                6 => f.vlan = Some(varint(value)? as u32),
                7 => f.tunnel = Some(text(value)?),
                8 => f.l7 = text(value)?,
                9 => f.app = Some(text(value)?),
                10 => f.server_name = Some(text(value)?),
                11 => f.client_mac = delimited(value)?,
                12 => f.server_mac = delimited(value)?,
                13 => f.c2s_packets = varint(value)?,
                14 => f.c2s_bytes = varint(value)?,
                15 => f.s2c_packets = varint(value)?,
                16 => f.s2c_bytes = varint(value)?,
                17 => f.first_seen = varint(value)? as i64,
                18 => f.last_seen = varint(value)? as i64,
                19 => f.update = varint(value)? != 0,
                20 => {
                    let a = text(value)?;
                    let mut s = self.spare.pop().unwrap_or_default();
                    s.clear();
                    s.push_str(a);
                    self.alpn.push(s);
                }
                21 => f.c2s_tcp_flags = varint(value)? as u32,
                22 => f.s2c_tcp_flags = varint(value)? as u32,
                23 => f.skip_flow_checks = varint(value)? != 0,
                24 => f.exporter = delimited(value)?,
                25 => f.in_if = varint(value)? as u32,
                26 => f.out_if = varint(value)? as u32,
                27 => f.sampling = varint(value)? as u32,
                _ => {}
            }
        }
        self.fill(f, r)
    }

    /// The record of the raw fields, with this reader's name and ALPN buffers.
    fn fill(&mut self, f: Raw<'_>, r: &mut FlowRecord) -> Result<bool, ReadError> {
        f.fill(r)?;
        r.server_name = f.server_name.map(|s| {
            let mut name = std::mem::take(&mut self.name);
            name.clear();
            name.push_str(s);
            name
        });
        r.alpn = (!self.alpn.is_empty()).then(|| std::mem::take(&mut self.alpn));
        Ok(f.update)
    }
}

/// A flow's fields as they came, before they are a record: read from the wire here, or
/// borrowed from prost's `Flow` by [`super::from_proto`], so both follow one rule.
#[derive(Default)]
pub(super) struct Raw<'a> {
    l4: &'a str,
    client_ip: &'a [u8],
    client_port: u32,
    server_ip: &'a [u8],
    server_port: u32,
    vlan: Option<u32>,
    tunnel: Option<&'a str>,
    l7: &'a str,
    app: Option<&'a str>,
    server_name: Option<&'a str>,
    client_mac: &'a [u8],
    server_mac: &'a [u8],
    c2s_packets: u64,
    c2s_bytes: u64,
    s2c_packets: u64,
    s2c_bytes: u64,
    first_seen: i64,
    last_seen: i64,
    update: bool,
    c2s_tcp_flags: u32,
    s2c_tcp_flags: u32,
    skip_flow_checks: bool,
    exporter: &'a [u8],
    in_if: u32,
    out_if: u32,
    sampling: u32,
}

impl<'a> Raw<'a> {
    /// The fields of prost's message.
    pub(super) fn of(f: &'a Flow) -> Self {
        Raw {
            l4: &f.l4,
            client_ip: &f.client_ip,
            client_port: f.client_port,
            server_ip: &f.server_ip,
            server_port: f.server_port,
            vlan: f.vlan,
            tunnel: f.tunnel.as_deref(),
            l7: &f.l7,
            app: f.app.as_deref(),
            server_name: f.server_name.as_deref(),
            client_mac: &f.client_mac,
            server_mac: &f.server_mac,
            c2s_packets: f.c2s_packets,
            c2s_bytes: f.c2s_bytes,
            s2c_packets: f.s2c_packets,
            s2c_bytes: f.s2c_bytes,
            first_seen: f.first_seen_us,
            last_seen: f.last_seen_us,
            update: f.update,
            c2s_tcp_flags: f.c2s_tcp_flags,
            s2c_tcp_flags: f.s2c_tcp_flags,
            skip_flow_checks: f.skip_flow_checks,
            exporter: &f.exporter,
            in_if: f.in_if,
            out_if: f.out_if,
            sampling: f.sampling,
        }
    }

    /// Every field of `r` but the server name and ALPN ids (owned strings: the caller's to
    /// place), by the record's rules: names this build does not know become "Unknown"/none,
    /// addresses must be 4 or 16 bytes and ports fit 16 bits.
    pub(super) fn fill(&self, r: &mut FlowRecord) -> Result<(), FlowError> {
        let port = |p: u32| u16::try_from(p).map_err(|_| FlowError::BadPort(p));
        r.l4 = l4_number(self.l4).map_or("Unknown", l4_name);
        r.client_ip = ip_from(self.client_ip).ok_or(FlowError::BadAddress(self.client_ip.len()))?;
        r.client_port = port(self.client_port)?;
        r.server_ip = ip_from(self.server_ip).ok_or(FlowError::BadAddress(self.server_ip.len()))?;
        r.server_port = port(self.server_port)?;
        r.vlan = self.vlan.and_then(|v| u16::try_from(v).ok());
        r.tunnel = self.tunnel.and_then(Tunnel::from_name).map(Tunnel::name);
        r.l7 = L7::from_name(self.l7).unwrap_or_default().name();
        r.app = self.app.and_then(app_named);
        r.client_mac = <[u8; 6]>::try_from(self.client_mac).ok();
        r.server_mac = <[u8; 6]>::try_from(self.server_mac).ok();
        r.c2s_packets = self.c2s_packets;
        r.c2s_bytes = self.c2s_bytes;
        r.s2c_packets = self.s2c_packets;
        r.s2c_bytes = self.s2c_bytes;
        r.first_seen = self.first_seen;
        r.last_seen = self.last_seen;
        // Only the low 8 bits are flags; anything above is ignored.
        r.c2s_tcp_flags = (self.c2s_tcp_flags & 0xff) as u8;
        r.s2c_tcp_flags = (self.s2c_tcp_flags & 0xff) as u8;
        r.skip_flow_checks = self.skip_flow_checks;
        r.export = ip_from(self.exporter).map(|exporter| Exported {
            exporter,
            in_if: self.in_if,
            out_if: self.out_if,
            sampling: self.sampling.max(1),
        });
        Ok(())
    }
}

#[cfg(test)]
#[path = "read_tests.rs"]
mod tests;
