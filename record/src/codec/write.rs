//! Records written straight as protobuf: the bytes prost makes of [`super::to_proto`]'s `Flow`
//! inside a `FlowBatch`, without building the message (its strings and byte fields were seven
//! allocations a record, and the batch was encoded, copied and freed again record by record).
//!
//! A sensor's flow workers write each record as a batch entry ([`write_batch_entry`]); the
//! batcher moves entries into batches ([`batch_entries`]) and frames them ([`write_batch`]).
//! The decoding side is prost's, unchanged: tests compare every byte with prost's encoding.

use std::net::IpAddr;

use prost::encoding::{WireType, decode_varint, encoded_len_varint};

use crate::FlowRecord;

/// `FlowBatch.flows`' field number.
const FLOWS_FIELD: u32 = 3;

/// Where the fields go: a buffer, or a count of their length (for the length prefix).
trait Sink {
    fn bytes(&mut self, b: &[u8]);
    fn varint(&mut self, v: u64);
}

impl Sink for Vec<u8> {
    fn bytes(&mut self, b: &[u8]) {
        self.extend_from_slice(b);
    }
    fn varint(&mut self, mut v: u64) {
        // Into a stack buffer, then one copy. prost's `encode_varint` straight into the `Vec`
        // pushes byte by byte, each push checking the capacity (4% of a sensor's time), and
        // into a stack slice through `BufMut` it measured 132 ns a record against 76 ns here.
        let mut b = [0u8; 10];
        let mut n = 0;
        while v >= 0x80 {
            b[n] = v as u8 | 0x80;
            v >>= 7;
            n += 1;
        }
        b[n] = v as u8;
        self.extend_from_slice(&b[..=n]);
    }
}

/// The length of what would be written.
struct Len(usize);

impl Sink for Len {
    fn bytes(&mut self, b: &[u8]) {
        self.0 += b.len();
    }
    fn varint(&mut self, v: u64) {
        self.0 += encoded_len_varint(v);
    }
}

fn key(o: &mut impl Sink, tag: u32, wire: WireType) {
    o.varint(u64::from(tag << 3 | wire as u32));
}

/// A length-delimited field, written whatever its length (proto3 `optional` and repeated
/// elements are).
fn delimited(o: &mut impl Sink, tag: u32, b: &[u8]) {
    key(o, tag, WireType::LengthDelimited);
    o.varint(b.len() as u64);
    o.bytes(b);
}

/// A proto3 string or bytes field: absent when empty.
fn nonempty(o: &mut impl Sink, tag: u32, b: &[u8]) {
    if !b.is_empty() {
        delimited(o, tag, b);
    }
}

/// A proto3 integer field: absent when zero (negative `int64`s are ten-byte varints).
fn number(o: &mut impl Sink, tag: u32, v: u64) {
    if v != 0 {
        key(o, tag, WireType::Varint);
        o.varint(v);
    }
}

fn ip(o: &mut impl Sink, tag: u32, a: IpAddr) {
    match a {
        IpAddr::V4(a) => delimited(o, tag, &a.octets()),
        IpAddr::V6(a) => delimited(o, tag, &a.octets()),
    }
}

/// The `Flow` message's fields, in field order as prost writes them.
fn flow(o: &mut impl Sink, r: &FlowRecord, update: bool) {
    nonempty(o, 1, r.l4.as_bytes());
    ip(o, 2, r.client_ip);
    number(o, 3, u64::from(r.client_port));
    ip(o, 4, r.server_ip);
    number(o, 5, u64::from(r.server_port));
    if let Some(v) = r.vlan {
        key(o, 6, WireType::Varint);
        o.varint(u64::from(v));
    }
    if let Some(t) = r.tunnel {
        delimited(o, 7, t.as_bytes());
    }
    nonempty(o, 8, r.l7.as_bytes());
    if let Some(a) = r.app {
        delimited(o, 9, a.as_bytes());
    }
    if let Some(s) = &r.server_name {
        delimited(o, 10, s.as_bytes());
    }
    if let Some(m) = &r.client_mac {
        delimited(o, 11, m);
    }
    if let Some(m) = &r.server_mac {
        delimited(o, 12, m);
    }
    number(o, 13, r.c2s_packets);
    number(o, 14, r.c2s_bytes);
    number(o, 15, r.s2c_packets);
    number(o, 16, r.s2c_bytes);
    number(o, 17, r.first_seen as u64);
    number(o, 18, r.last_seen as u64);
    number(o, 19, u64::from(update));
    for a in r.alpn.iter().flatten() {
        delimited(o, 20, a.as_bytes());
    }
    number(o, 21, u64::from(r.c2s_tcp_flags));
    number(o, 22, u64::from(r.s2c_tcp_flags));
    number(o, 23, u64::from(r.skip_flow_checks));
    if let Some(e) = &r.export {
        ip(o, 24, e.exporter);
        number(o, 25, u64::from(e.in_if));
        number(o, 26, u64::from(e.out_if));
        number(o, 27, u64::from(e.sampling));
    }
}

/// Appends `r` as one entry of `FlowBatch.flows`: the field's key, the message's length, the
/// message (`update` marks an active-timeout record, as in [`super::to_proto`]).
pub fn write_batch_entry(r: &FlowRecord, update: bool, out: &mut Vec<u8>) {
    let mut len = Len(0);
    flow(&mut len, r, update);
    out.reserve(len.0 + 4);
    key(out, FLOWS_FIELD, WireType::LengthDelimited);
    out.varint(len.0 as u64);
    flow(out, r, update);
}

/// The entries in `bytes` (as [`write_batch_entry`] wrote them), one slice each, key and
/// length included. Stops at anything else: the bytes come from this process, not the network.
pub fn batch_entries(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        let mut cursor = rest;
        let tag = decode_varint(&mut cursor).ok()?;
        if tag != u64::from(FLOWS_FIELD << 3 | WireType::LengthDelimited as u32) {
            return None;
        }
        let len = usize::try_from(decode_varint(&mut cursor).ok()?).ok()?;
        let header = rest.len() - cursor.len();
        let end = header.checked_add(len).filter(|&e| e <= rest.len())?;
        let (entry, after) = rest.split_at(end);
        rest = after;
        Some(entry)
    })
}

/// A `FlowBatch` around `entries` (what [`write_batch_entry`] wrote, any number of records),
/// as prost writes the message.
pub fn write_batch(
    instance: &str,
    sequence: u64,
    entries: &[u8],
    boot_id: &[u8],
    watermark_us: i64,
    out: &mut Vec<u8>,
) {
    nonempty(out, 1, instance.as_bytes());
    number(out, 2, sequence);
    out.extend_from_slice(entries);
    nonempty(out, 4, boot_id);
    number(out, 5, watermark_us as u64);
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::codec::tests::every_field;
    use crate::codec::to_proto;
    use flowmesh_proto::v1::FlowBatch;
    use prost::Message;

    /// Every field set, at the edges of its encoding.
    fn full() -> FlowRecord {
        FlowRecord {
            vlan: Some(0),
            server_name: Some("x".repeat(200)),
            alpn: Some(vec!["h3".into(), String::new()]),
            server_mac: Some([0; 6]),
            c2s_bytes: u64::MAX,
            first_seen: -1,
            export: Some(crate::Exported {
                in_if: 0,
                ..every_field().export.unwrap()
            }),
            ..every_field()
        }
    }

    /// Records with every field set, and with each optional one absent or zero in turn.
    pub(in crate::codec) fn records() -> Vec<FlowRecord> {
        let r = full();
        vec![
            r.clone(),
            FlowRecord {
                l4: "",
                client_ip: "10.0.0.1".parse().unwrap(),
                server_ip: "10.0.0.2".parse().unwrap(),
                l7: "",
                server_name: Some(String::new()),
                last_seen: i64::MIN,
                ..FlowRecord::default()
            },
            FlowRecord {
                alpn: Some(Vec::new()),
                server_name: None,
                ..r
            },
        ]
    }

    #[test]
    fn varints_are_prost_s() {
        for v in [
            0,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            ours.varint(v);
            prost::encoding::encode_varint(v, &mut theirs);
            assert_eq!(ours, theirs, "{v}");
            assert_eq!(ours.len(), encoded_len_varint(v));
        }
    }

    #[test]
    fn entries_are_the_bytes_prost_writes() {
        for r in records() {
            for update in [false, true] {
                let mut ours = Vec::new();
                write_batch_entry(&r, update, &mut ours);
                let batch = FlowBatch {
                    flows: vec![to_proto(&r, update)],
                    ..FlowBatch::default()
                };
                assert_eq!(ours, batch.encode_to_vec(), "{r:?}");
            }
        }
    }

    #[test]
    fn batches_are_the_bytes_prost_writes_and_split_back_into_entries() {
        let rs = records();
        let mut entries = Vec::new();
        for r in &rs {
            write_batch_entry(r, false, &mut entries);
        }
        let split: Vec<&[u8]> = batch_entries(&entries).collect();
        assert_eq!(split.len(), rs.len());
        assert_eq!(split.concat(), entries);
        for (instance, sequence, boot, mark) in [("s1", 7, &[1u8, 2][..], 9), ("", 0, &[][..], -5)]
        {
            let mut ours = Vec::new();
            write_batch(instance, sequence, &entries, boot, mark, &mut ours);
            let batch = FlowBatch {
                instance: instance.into(),
                sequence,
                flows: rs.iter().map(|r| to_proto(r, false)).collect(),
                boot_id: boot.to_vec(),
                watermark_us: mark,
            };
            assert_eq!(ours, batch.encode_to_vec());
        }
        // Anything but an entry ends the walk; a cut entry is not handed out.
        assert_eq!(batch_entries(&[0x0a, 1, b'x']).count(), 0);
        assert_eq!(
            batch_entries(&entries[..entries.len() - 1]).count(),
            rs.len() - 1
        );
    }
}
