//! The reader against prost's decoding and `from_proto`, on good and hostile bytes.

use flowmesh_proto::v1::{Flow, FlowBatch};
use prost::Message;

use super::*;
use crate::codec::write::tests::records;
use crate::codec::{from_proto, to_proto, write_batch, write_batch_entry};

/// What prost and `from_proto` make of `bytes`, and what the reader makes of them, agree:
/// the same record and flag, or both an error of the same kind.
fn same_as_prost(reader: &mut FlowReader, r: &mut FlowRecord, bytes: &[u8]) {
    let theirs = Flow::decode(bytes).map_err(ReadError::from).and_then(|f| {
        let update = f.update;
        Ok((from_proto(f)?, update))
    });
    let ours = reader.read(bytes, r).map(|update| (r.clone(), update));
    assert_eq!(ours, theirs, "{bytes:02x?}");
}

/// The message of one entry (the entry without its key and length).
fn message(r: &FlowRecord, update: bool) -> Vec<u8> {
    to_proto(r, update).encode_to_vec()
}

#[test]
fn records_read_back_as_prost_and_from_proto_make_them() {
    let (mut reader, mut r) = (FlowReader::new(), FlowRecord::default());
    for record in records() {
        for update in [false, true] {
            same_as_prost(&mut reader, &mut r, &message(&record, update));
        }
    }
}

#[test]
fn a_field_a_flow_lacks_is_not_left_over_from_the_flow_before() {
    let (mut reader, mut r) = (FlowReader::new(), FlowRecord::default());
    let full = records().remove(0);
    let bare = FlowRecord {
        client_ip: "10.0.0.1".parse().unwrap(),
        server_ip: "10.0.0.2".parse().unwrap(),
        ..FlowRecord::default()
    };
    for record in [&full, &bare, &full, &full, &bare] {
        reader.read(&message(record, false), &mut r).unwrap();
        assert_eq!(&r, record);
    }
    // Fewer ALPN ids than the flow before: only this flow's.
    let one = FlowRecord {
        alpn: Some(vec!["h2".into()]),
        ..full.clone()
    };
    reader.read(&message(&full, false), &mut r).unwrap();
    reader.read(&message(&one, false), &mut r).unwrap();
    assert_eq!(r, one);
}

#[test]
fn hostile_flows_are_the_errors_and_names_prost_and_from_proto_make_of_them() {
    let (mut reader, mut r) = (FlowReader::new(), FlowRecord::default());
    let base = Flow {
        client_ip: vec![10, 0, 0, 1],
        server_ip: vec![10, 0, 0, 2],
        ..Flow::default()
    };
    let cases = [
        Flow {
            client_ip: vec![1, 2, 3],
            ..base.clone()
        },
        Flow {
            server_port: 70_000,
            ..base.clone()
        },
        Flow {
            l7: "NotAProtocol".into(),
            app: Some("NotAnApp".into()),
            tunnel: Some("Wormhole".into()),
            l4: "tcp".into(),
            ..base.clone()
        },
        Flow {
            l7: "tls".into(),
            app: Some("youtube".into()),
            l4: "17".into(),
            vlan: Some(70_000),
            client_mac: vec![1, 2, 3],
            exporter: vec![1, 2, 3, 4],
            c2s_tcp_flags: 0x1ff,
            ..base.clone()
        },
    ];
    for f in cases {
        same_as_prost(&mut reader, &mut r, &f.encode_to_vec());
    }
    let mut good = message(&records().remove(0), true);
    // Unknown fields of every wire type, a group among them, are skipped; a known field of
    // the wrong wire type, a string that is not UTF-8, a cut message and a bad group are not.
    let unknown: &[&[u8]] = &[
        &[0xf8, 0x01, 0x05],                   // 31, varint
        &[0xfd, 0x01, 1, 2, 3, 4],             // 31, 32-bit
        &[0xf9, 0x01, 1, 2, 3, 4, 5, 6, 7, 8], // 31, 64-bit
        &[0xfa, 0x01, 2, b'h', b'i'],          // 31, bytes
        &[0xfb, 0x01, 0x08, 0x01, 0xfc, 0x01], // 31, a group holding field 1
    ];
    for extra in unknown {
        let mut b = good.clone();
        b.extend_from_slice(extra);
        same_as_prost(&mut reader, &mut r, &b);
        assert!(reader.read(&b, &mut r).is_ok());
    }
    let broken: &[&[u8]] = &[
        &[0x0d, 1, 2, 3, 4],       // field 1 (a string) as 32-bit
        &[0x18, 0x80],             // field 3, a varint cut short
        &[0x42, 2, 0xff, 0xfe],    // field 8 (a string), not UTF-8
        &[0x12, 9, 1],             // field 2, longer than what is left
        &[0xfb, 0x01, 0xec, 0x01], // a group closed with another field's end
        &[0x00],                   // field 0
    ];
    for extra in broken {
        let mut b = good.clone();
        b.extend_from_slice(extra);
        same_as_prost(&mut reader, &mut r, &b);
        assert_eq!(reader.read(&b, &mut r), Err(ReadError::Malformed));
    }
    // Every cut and every flipped bit of a good flow: whatever prost makes of it.
    for cut in 0..good.len() {
        same_as_prost(&mut reader, &mut r, &good[..cut]);
    }
    for i in 0..good.len() {
        for bit in 0..8 {
            good[i] ^= 1 << bit;
            same_as_prost(&mut reader, &mut r, &good);
            good[i] ^= 1 << bit;
        }
    }
}

#[test]
fn a_batch_reads_as_prost_decodes_it_and_a_malformed_flow_is_that_flow_s_error() {
    let rs = records();
    let mut entries = Vec::new();
    for r in &rs {
        write_batch_entry(r, false, &mut entries);
    }
    let mut bytes = Vec::new();
    write_batch("s1", 7, &entries, &[1, 2], 99, &mut bytes);
    let theirs = FlowBatch::decode(bytes.as_slice()).unwrap();
    let view = read_batch(&bytes).unwrap();
    assert_eq!(
        (
            view.instance,
            view.sequence,
            view.boot_id,
            view.watermark_us
        ),
        ("s1", 7, &[1u8, 2][..], 99)
    );
    assert_eq!(view.flow_count, theirs.flows.len());
    let (mut reader, mut r) = (FlowReader::new(), FlowRecord::default());
    let ours: Vec<FlowRecord> = view
        .flows()
        .map(|f| {
            reader.read(f, &mut r).unwrap();
            r.clone()
        })
        .collect();
    let theirs: Vec<FlowRecord> = theirs
        .flows
        .into_iter()
        .map(|f| from_proto(f).unwrap())
        .collect();
    assert_eq!(ours, theirs);

    // A flow that is not protobuf in the middle: prost refuses the batch; the reader reads
    // the others and reports that one.
    let mut bad = Vec::new();
    write_batch_entry(&rs[0], false, &mut bad);
    bad.extend_from_slice(&[0x1a, 2, 0x18, 0x80]);
    write_batch_entry(&rs[1], false, &mut bad);
    let mut bytes = Vec::new();
    write_batch("s1", 8, &bad, &[1, 2], 0, &mut bytes);
    assert!(FlowBatch::decode(bytes.as_slice()).is_err());
    let view = read_batch(&bytes).unwrap();
    let read: Vec<bool> = view
        .flows()
        .map(|f| reader.read(f, &mut r).is_ok())
        .collect();
    assert_eq!(read, [true, false, true]);
    // The batch's own fields are checked as prost checks them.
    for broken in [
        &[0x0a, 1, 0xff][..],
        &[0x10][..],
        &[0x1a, 5, 1][..],
        &[0x25, 0, 0][..],
    ] {
        assert!(FlowBatch::decode(broken).is_err());
        assert_eq!(read_batch(broken).unwrap_err(), ReadError::Malformed);
    }
}
