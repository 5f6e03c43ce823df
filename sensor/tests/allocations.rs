//! No allocation per packet on the sensor's path. A record owns its names (server name, ALPN)
//! and dissectors build them once per flow, so a flow allocates a few times; more packets in
//! the same flows must not allocate more. Two captures of the same 500 TLS flows (handshake,
//! ClientHello with a name and ALPN, FIN), one with 4 and one with 44 data packets per flow,
//! are read, decoded, dissected and turned into records on this thread under a counting
//! allocator; the difference is what the extra packets cost.

#[path = "../../tests/support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::allocations;

use flowmesh_sensor::capture::CaptureReader;
use flowmesh_sensor::flow::TableConfig;
use flowmesh_sensor::offline;
use flowmesh_sensor::synth::{ACK, PSH_ACK, SYN, client_hello_with, eth_tcp, pcap};

const FLOWS: u16 = 500;
const FIN_ACK: u8 = 0x11;

/// The capture: each flow's packets together, `data` data packets each, both directions.
fn capture(data: usize) -> Vec<u8> {
    let mut packets = Vec::new();
    for f in 0..FLOWS {
        let client = 20_000 + f;
        let hello = client_hello_with(&format!("host{f}.example.org"), &["h2", "http/1.1"]);
        packets.push(eth_tcp(true, client, 443, SYN, &[]));
        packets.push(eth_tcp(false, 443, client, SYN | ACK, &[]));
        packets.push(eth_tcp(true, client, 443, ACK, &[]));
        packets.push(eth_tcp(true, client, 443, PSH_ACK, &hello));
        for i in 0..data {
            let payload = [0x17, 3, 3, 0, 64, i as u8];
            packets.push(if i % 2 == 0 {
                eth_tcp(false, 443, client, PSH_ACK, &payload)
            } else {
                eth_tcp(true, client, 443, PSH_ACK, &payload)
            });
        }
        packets.push(eth_tcp(true, client, 443, FIN_ACK, &[]));
        packets.push(eth_tcp(false, 443, client, FIN_ACK, &[]));
    }
    pcap(1, &packets)
}

/// (allocations, packets, records) of one run over `capture`.
fn run(capture: &[u8]) -> (u64, u64, u64) {
    let reader = CaptureReader::new(capture).expect("a pcap");
    let mut records = 0u64;
    let before = allocations();
    let stats = offline::run_reader_with(reader, TableConfig::default(), &mut |r| {
        assert!(
            r.server_name.is_some(),
            "every flow is TLS with a name: {r:?}"
        );
        records += 1;
    })
    .unwrap_or_else(|(_, e)| panic!("{e}"));
    (allocations() - before, stats.packets, records)
}

#[test]
fn more_packets_in_the_same_flows_allocate_nothing_more() {
    let (few, many) = (capture(4), capture(44));
    let (a_few, p_few, r_few) = run(&few);
    let (a_many, p_many, r_many) = run(&many);
    assert_eq!((r_few, r_many), (u64::from(FLOWS), u64::from(FLOWS)));
    let per_packet = (a_many as f64 - a_few as f64) / (p_many - p_few) as f64;
    println!(
        "{a_few} allocations for {p_few} packets, {a_many} for {p_many}: {:.2} per flow, {per_packet:.4} per extra packet",
        a_few as f64 / f64::from(FLOWS)
    );
    assert!(
        per_packet < 0.01,
        "{per_packet:.4} allocations per packet ({a_few} for {p_few} packets, {a_many} for {p_many})"
    );
}
