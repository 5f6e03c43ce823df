//! Reading a batch of 1,000 flow records as a collector does: prost's `FlowBatch::decode`
//! and `from_proto` per record (the way before), against `read_batch` and one reused
//! `FlowReader` record. `cargo bench -p flowmesh-record --bench codec`; the ratio of the two
//! in one run is the figure (the machine is shared).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowmesh_proto::v1::FlowBatch;
use flowmesh_record::FlowRecord;
use flowmesh_record::codec::{FlowReader, from_proto, read_batch, write_batch, write_batch_entry};
use prost::Message;

const FLOWS: usize = 1_000;

/// TLS flows with a server name and ALPN, DNS with its query, HTTP with its host: what the
/// synthetic capture holds.
fn record(i: usize) -> FlowRecord {
    let t = 1_795_946_400_000_000 + (i as i64) * 100;
    let (l4, l7, port, name, alpn) = match i % 3 {
        0 => (
            "TCP",
            "TLS",
            443,
            format!("www.site{}.example.com", i % 500),
            true,
        ),
        1 => ("UDP", "DNS", 53, format!("host{i}.example.org"), false),
        _ => (
            "TCP",
            "HTTP",
            80,
            format!("cdn{}.example.net", i % 50),
            false,
        ),
    };
    FlowRecord {
        l4,
        client_ip: format!("10.1.{}.{}", (i / 250) % 250, i % 250)
            .parse()
            .unwrap(),
        client_port: 40_000 + (i % 20_000) as u16,
        server_ip: format!("93.184.{}.{}", i % 200, i % 250).parse().unwrap(),
        server_port: port,
        l7,
        app: i.is_multiple_of(7).then_some("YouTube"),
        server_name: Some(name),
        alpn: alpn.then(|| vec!["h2".into(), "http/1.1".into()]),
        client_mac: Some([2, 0, 0, 0, (i >> 8) as u8, i as u8]),
        server_mac: Some([2, 0, 0, 0, 0, 1]),
        c2s_packets: 5,
        c2s_bytes: 700 + i as u64,
        s2c_packets: 4,
        s2c_bytes: 4_000 + i as u64,
        first_seen: t,
        last_seen: t + 80_000,
        c2s_tcp_flags: 0x1b,
        s2c_tcp_flags: 0x1b,
        ..FlowRecord::default()
    }
}

fn bench(c: &mut Criterion) {
    let mut entries = Vec::new();
    for i in 0..FLOWS {
        write_batch_entry(&record(i), false, &mut entries);
    }
    let mut batch = Vec::new();
    write_batch("sensor-1", 1, &entries, &[7; 16], 0, &mut batch);
    let mut g = c.benchmark_group("read a batch of 1,000 flows");
    g.throughput(Throughput::Elements(FLOWS as u64));
    g.bench_function("prost FlowBatch::decode + from_proto", |b| {
        b.iter(|| {
            let decoded = FlowBatch::decode(black_box(batch.as_slice())).unwrap();
            let mut bytes = 0u64;
            for f in decoded.flows {
                bytes += from_proto(f).unwrap().c2s_bytes;
            }
            bytes
        })
    });
    g.bench_function("read_batch + FlowReader", |b| {
        let (mut reader, mut r) = (FlowReader::new(), FlowRecord::default());
        b.iter(|| {
            let view = read_batch(black_box(&batch)).unwrap();
            let mut bytes = 0u64;
            for f in view.flows() {
                reader.read(f, &mut r).unwrap();
                bytes += r.c2s_bytes;
            }
            bytes
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
