//! Exported flow records decoded and turned into flow records, per second on one core.
//!
//! `cargo bench --bench netflow` (FLOWMESH_BENCH_NETFLOW_DATAGRAMS, default 20,000 datagrams
//! of 30 records: 600,000 records). Figures: records/s through `netflow_parser` alone (the
//! baseline: what the crate costs), and through flowmesh's receiver (parsing, reading the
//! fields, pairing both directions, building records); the ratio is what flowmesh adds.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Instant;

use flowmesh_sensor::netflow::synth::v9_stream;
use flowmesh_sensor::netflow::{Receiver, Settings};

fn main() {
    let datagrams: usize = std::env::var("FLOWMESH_BENCH_NETFLOW_DATAGRAMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let per = 30;
    let stream = v9_stream(datagrams, per);
    let records = (datagrams * per) as f64;
    let from: SocketAddr = "192.0.2.1:2055".parse().expect("an address");

    let mut best_parse = f64::MAX;
    let mut best_full = f64::MAX;
    for _ in 0..3 {
        let mut parser = netflow_parser::AutoScopedParser::new();
        let t = Instant::now();
        for d in &stream {
            let _ = black_box(parser.parse_from_source(from, d));
        }
        best_parse = best_parse.min(t.elapsed().as_secs_f64());

        let mut rx = Receiver::new(Settings::default());
        let mut n = 0u64;
        let t = Instant::now();
        for d in &stream {
            rx.datagram(from, d, 0, &mut |r| {
                n += 1;
                black_box(r);
            });
        }
        rx.finish(&mut |r| {
            n += 1;
            black_box(r);
        });
        best_full = best_full.min(t.elapsed().as_secs_f64());
        assert_eq!(n as f64, records / 2.0, "each pair becomes one record");
    }
    println!(
        "netflow v9, {datagrams} datagrams x {per} records (best of 3, one core):\n  \
         netflow_parser alone:  {:>10.0} records/s\n  \
         flowmesh receiver:     {:>10.0} records/s ({:.0} flow records/s after pairing)\n  \
         ratio receiver/parser: {:.2}",
        records / best_parse,
        records / best_full,
        records / 2.0 / best_full,
        best_full / best_parse
    );
}
