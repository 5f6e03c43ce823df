//! Link layers, network layers and tunnels, on packets built in test code.

mod common;
use common::*;

const ETHERNET: u32 = 1;

#[test]
fn a_dns_exchange_is_one_flow_with_the_querier_as_client() {
    let f = one_flow(&pcap(
        ETHERNET,
        &[
            eth_udp(40000, 53, &dns_query("www.example.org")),
            eth_udp_back(53, 40000, &dns_response("www.example.org")),
        ],
    ));
    assert_eq!(
        (f.l4, f.l7, f.server_name.as_deref()),
        ("UDP", "DNS", Some("www.example.org"))
    );
    assert_eq!(
        (f.client_ip.to_string(), f.client_port, f.server_port),
        ("192.168.1.20".into(), 40000, 53)
    );
    assert_eq!((f.c2s_packets, f.s2c_packets), (1, 1));
    let frame_len = eth_udp(40000, 53, &dns_query("www.example.org")).len() as u64;
    assert_eq!(f.c2s_bytes, frame_len, "bytes are L2 frame lengths");
    assert_eq!(f.client_mac, Some([2, 0, 0, 0, 0, 0x0a]));
    assert_eq!(
        flowmesh_sensor::flow::rfc3339_micros(f.first_seen),
        "2023-11-14T22:13:20.000000Z"
    );
}

#[test]
fn a_reply_seen_first_still_makes_the_service_port_the_server() {
    let f = one_flow(&pcap(
        ETHERNET,
        &[
            eth_udp_back(53, 40000, &dns_response("a.example")),
            eth_udp(40000, 53, &dns_query("a.example")),
        ],
    ));
    assert_eq!((f.client_port, f.server_port), (40000, 53));
}

#[test]
fn vlan_qinq_mpls_and_pppoe_are_peeled() {
    let inner = ipv4(IP_A, IP_B, 17, &udp(40000, 53, &dns_query("x.example")));
    let single = eth(MAC_A, MAC_B, 0x8100, &vlan(42, 0x0800, &inner));
    let qinq = eth(
        MAC_A,
        MAC_B,
        0x88a8,
        &vlan(100, 0x8100, &vlan(7, 0x0800, &inner)),
    );
    let mut mpls = vec![0, 0x01, 0x21, 0x40];
    mpls.extend_from_slice(&inner);
    let mpls = eth(MAC_A, MAC_B, 0x8847, &mpls);
    let mut pppoe = vec![0x11, 0, 0, 1, 0, (inner.len() + 2) as u8, 0x00, 0x21];
    pppoe.extend_from_slice(&inner);
    let pppoe = eth(MAC_A, MAC_B, 0x8864, &pppoe);
    for (frame, vid) in [
        (single, Some(42)),
        (qinq, Some(7)),
        (mpls, None),
        (pppoe, None),
    ] {
        let f = one_flow(&pcap(ETHERNET, &[frame]));
        assert_eq!((f.l7, f.vlan), ("DNS", vid));
    }
}

#[test]
fn every_supported_link_type_decodes() {
    let ip = ipv4(IP_A, IP_B, 17, &udp(40000, 53, &dns_query("l.example")));
    let mut sll = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 0x0a, 0, 0, 0x08, 0x00];
    sll.extend_from_slice(&ip);
    let mut sll2 = vec![
        0x08, 0x00, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 2, 0, 0, 0, 0, 0x0a, 0, 0,
    ];
    sll2.extend_from_slice(&ip);
    let mut null = 2u32.to_le_bytes().to_vec();
    null.extend_from_slice(&ip);
    let mut ppp = vec![0xff, 0x03, 0x00, 0x21];
    ppp.extend_from_slice(&ip);
    let mut hdlc = vec![0x0f, 0x00, 0x08, 0x00];
    hdlc.extend_from_slice(&ip);
    for (link, frame) in [
        (113, sll),
        (276, sll2),
        (0, null),
        (101, ip.clone()),
        (228, ip.clone()),
        (9, ppp),
        (104, hdlc),
    ] {
        let f = one_flow(&pcap(link, &[frame]));
        assert_eq!(f.l7, "DNS", "link type {link}");
    }
}

#[test]
fn ipv6_extension_headers_are_walked() {
    let a = [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let b = [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    let mut hbh = vec![60, 0, 1, 4, 0, 0, 0, 0]; // hop-by-hop -> destination options
    hbh.extend_from_slice(&[17, 0, 1, 4, 0, 0, 0, 0]); // destination options -> UDP
    hbh.extend_from_slice(&udp(40000, 53, &dns_query("six.example")));
    let f = one_flow(&pcap(
        ETHERNET,
        &[eth(MAC_A, MAC_B, 0x86dd, &ipv6(a, b, 0, &hbh))],
    ));
    assert_eq!(
        (f.l7, f.client_ip.to_string().as_str()),
        ("DNS", "2001:db8::1")
    );
}

#[test]
fn later_ipv4_fragments_count_in_their_flow_as_one_datagram() {
    let datagram = udp(
        40000,
        53,
        &[&dns_query("frag.example")[..], &[0u8; 64][..]].concat(),
    );
    let (first, rest) = datagram.split_at(24);
    let packets = [
        eth(
            MAC_A,
            MAC_B,
            0x0800,
            &ipv4_frag(IP_A, IP_B, 17, 77, 0, true, first),
        ),
        eth(
            MAC_A,
            MAC_B,
            0x0800,
            &ipv4_frag(IP_A, IP_B, 17, 77, 24, false, rest),
        ),
    ];
    let f = one_flow(&pcap(ETHERNET, &packets));
    // One datagram is one packet (as Zeek and Suricata count after reassembly); its bytes are
    // every frame's.
    let frames: usize = packets.iter().map(Vec::len).sum();
    assert_eq!(
        (f.c2s_packets, f.c2s_bytes, f.client_port, f.server_port),
        (1, frames as u64, 40000, 53)
    );
}

#[test]
fn a_first_fragment_too_short_for_its_tcp_header_is_a_flow_without_ports() {
    // RFC 1858's tiny fragment: 16 bytes of a TCP header, the rest in the next fragment.
    let segment = tcp(40000, 443, 1, SYN, &[0u8; 40]);
    let (first, rest) = segment.split_at(16);
    let packets = [
        eth(
            MAC_A,
            MAC_B,
            0x0800,
            &ipv4_frag(IP_A, IP_B, 6, 9, 0, true, first),
        ),
        eth(
            MAC_A,
            MAC_B,
            0x0800,
            &ipv4_frag(IP_A, IP_B, 6, 9, 16, false, rest),
        ),
    ];
    let f = one_flow(&pcap(ETHERNET, &packets));
    let frames: usize = packets.iter().map(Vec::len).sum();
    assert_eq!(
        (
            f.l4,
            f.client_port,
            f.server_port,
            f.c2s_packets,
            f.c2s_bytes
        ),
        ("TCP", 0, 0, 1, frames as u64)
    );
}

#[test]
fn a_tcp_header_with_an_impossible_data_offset_counts_in_its_flow_uninspected() {
    let mut segment = tcp(
        40000,
        80,
        1,
        PSH_ACK,
        b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n",
    );
    segment[12] = 0x20; // data offset 2 (8 bytes): below the fixed header
    let f = one_flow(&pcap(
        ETHERNET,
        &[eth(MAC_A, MAC_B, 0x0800, &ipv4(IP_A, IP_B, 6, &segment))],
    ));
    assert_eq!(
        (
            f.client_port,
            f.server_port,
            f.c2s_packets,
            f.l7,
            f.server_name
        ),
        (40000, 80, 1, "Unknown", None)
    );
}

#[test]
fn other_ip_protocols_are_named_as_ndpi_names_them_else_by_number() {
    let packets = [
        eth(MAC_A, MAC_B, 0x0800, &ipv4(IP_A, IP_B, 113, &[0u8; 24])),
        eth(MAC_A, MAC_B, 0x0800, &ipv4(IP_A, IP_B, 254, &[0u8; 24])),
    ];
    let (flows, r) = flows(&pcap(ETHERNET, &packets));
    r.expect("capture reads");
    let mut seen: Vec<(&str, &str)> = flows.iter().map(|f| (f.l4, f.l7)).collect();
    seen.sort();
    assert_eq!(seen, [("254", "Unknown"), ("PGM", "PGM")]);
}

#[test]
fn ppi_headers_are_peeled_down_to_the_frame_they_name() {
    let frame = eth_udp(40000, 53, &dns_query("ppi.example"));
    // Version 0, flags 0, length 16 (8 + one 8-byte field), link type 1 (Ethernet).
    let mut ppi = vec![0, 0, 16, 0, 1, 0, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0];
    ppi.extend_from_slice(&frame);
    let f = one_flow(&pcap(192, &[ppi.clone()]));
    assert_eq!(
        (f.l7, f.server_name.as_deref(), f.client_port),
        ("DNS", Some("ppi.example"), 40000)
    );
    // A PPI header naming PPI again, or longer than the packet, is refused, not followed.
    let mut nested = ppi.clone();
    nested[4] = 192;
    let mut long = ppi;
    long[2] = 0xff;
    let (flows, r) = flows(&pcap(192, &[nested, long]));
    assert!(flows.is_empty() && r.is_ok(), "{flows:?} {r:?}");
}

#[test]
fn tunnels_yield_the_inner_flow_and_say_which_tunnel() {
    let inner = ipv4(
        [172, 16, 0, 1],
        [172, 16, 0, 2],
        17,
        &udp(40000, 53, &dns_query("in.example")),
    );
    let outer =
        |proto: u8, payload: &[u8]| eth(MAC_A, MAC_B, 0x0800, &ipv4(IP_A, IP_B, proto, payload));
    let mut gre = vec![0, 0, 0x08, 0x00];
    gre.extend_from_slice(&inner);
    let mut vxlan = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
    vxlan.extend_from_slice(&eth(MAC_A, MAC_B, 0x0800, &inner));
    let mut gtp = vec![0x30, 0xff, 0, inner.len() as u8, 0, 0, 0, 1];
    gtp.extend_from_slice(&inner);
    let six = ipv6(
        [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
        17,
        &udp(40000, 53, &dns_query("in.example")),
    );
    // A Teredo client (2001:0::/32) talking to a native IPv6 host through a relay.
    let teredo_client = [
        0x20, 1, 0, 0, 0x41, 0x37, 0x9e, 0x50, 0, 0, 0xf2, 0x27, 0x3d, 0x77, 0xe3, 0xb3,
    ];
    let teredo = ipv6(
        teredo_client,
        [0x2a, 0, 0x14, 0x50, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0e],
        17,
        &udp(40000, 53, &dns_query("in.example")),
    );
    let cases = [
        (outer(17, &udp(51812, 61000, &teredo)), "Teredo"),
        (outer(47, &gre), "GRE"),
        (outer(17, &udp(50000, 4789, &vxlan)), "VXLAN"),
        (outer(17, &udp(2152, 2152, &gtp)), "GTP"),
        (outer(4, &inner), "4in4"),
        (outer(41, &six), "6in4"),
    ];
    for (frame, tunnel) in cases {
        let f = one_flow(&pcap(ETHERNET, &[frame]));
        assert_eq!((f.tunnel, f.l7), (Some(tunnel), "DNS"), "{tunnel}");
        assert_ne!(
            f.client_ip.to_string(),
            "192.168.1.20",
            "{tunnel}: the outer tuple leaked"
        );
    }
}

#[test]
fn teredo_signalling_stays_the_outer_flow() {
    // A router solicitation from a Teredo client to its server (UDP 3544): qualification,
    // not user traffic, so it is the UDP flow to the server, named Teredo as nDPI names it.
    let link_local = [
        0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x80, 0, 0xf2, 0x27, 0x3d, 0x77, 0xe3, 0xb3,
    ];
    let all_routers = [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    let rs = ipv6(link_local, all_routers, 58, &[133, 0, 0, 0, 0, 0, 0, 0]);
    let mut bubble = ipv6(
        [
            0x20, 1, 0, 0, 0x41, 0x37, 0x9e, 0x50, 0, 0, 0xf2, 0x27, 0x3d, 0x77, 0xe3, 0xb3,
        ],
        link_local,
        59,
        &[],
    );
    // Origin indication in front of the bubble.
    let mut indicated = vec![0, 0, 0x35, 0x9b, 0x46, 0xf9, 0x3f, 0x46];
    indicated.append(&mut bubble);
    let frames = [
        eth(
            MAC_A,
            MAC_B,
            0x0800,
            &ipv4(IP_A, IP_B, 17, &udp(51812, 3544, &rs)),
        ),
        eth(
            MAC_B,
            MAC_A,
            0x0800,
            &ipv4(IP_B, IP_A, 17, &udp(3544, 51812, &indicated)),
        ),
    ];
    let f = one_flow(&pcap(ETHERNET, &frames));
    assert_eq!((f.l4, f.l7, f.tunnel), ("UDP", "Teredo", None));
    assert_eq!((f.server_port, f.c2s_packets, f.s2c_packets), (3544, 1, 1));
}

#[test]
fn malformed_packets_are_counted_not_fatal() {
    let good = eth_udp(40000, 53, &dns_query("ok.example"));
    let mut bad_ihl = good.clone();
    bad_ihl[14] = 0x41; // IHL 4: below the minimum
    let short = good[..20].to_vec();
    let mut bad_version = good.clone();
    bad_version[14] = 0x75;
    let (flows, result) = flows(&pcap(
        ETHERNET,
        &[bad_ihl, short, bad_version, good, vec![], vec![0xff; 3]],
    ));
    let stats = result.unwrap();
    assert_eq!(flows.len(), 1);
    assert_eq!(stats.undecodable, 5);
}

#[test]
fn arbitrary_bytes_never_panic_the_decoder() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut packets = Vec::new();
    for len in 0..400 {
        let mut p = eth_udp(40000, 53, &dns_query("seed.example"));
        p.truncate(len % p.len());
        for b in p.iter_mut().skip(12) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if state.is_multiple_of(5) {
                *b = state as u8;
            }
        }
        packets.push(p);
    }
    for link in [1u32, 0, 9, 101, 104, 113, 276] {
        let (_, r) = flows(&pcap(link, &packets));
        assert!(r.is_ok());
    }
}

#[test]
fn active_timeout_splits_a_long_flow_into_records_that_add_up() {
    use flowmesh_sensor::capture::CaptureReader;
    use flowmesh_sensor::flow::TableConfig;
    // Ten datagrams one second apart; a 3-second active timeout.
    let packets: Vec<Vec<u8>> = (0..10).map(|_| eth_udp(40000, 5000, b"tick")).collect();
    let bytes = pcap(1, &packets);
    let config = TableConfig {
        active_micros: 3_000_000,
        ..TableConfig::default()
    };
    let mut records = Vec::new();
    flowmesh_sensor::offline::run_reader_with(
        CaptureReader::new(&bytes[..]).unwrap(),
        config,
        &mut |r| records.push(r),
    )
    .unwrap();
    assert!(records.len() >= 3, "{records:#?}");
    assert!(
        records
            .iter()
            .all(|r| r.c2s_packets > 0 && r.first_seen <= r.last_seen)
    );
    assert_eq!(records.iter().map(|r| r.c2s_packets).sum::<u64>(), 10);
    assert!(
        records.windows(2).all(|w| w[0].last_seen < w[1].first_seen),
        "windows do not overlap"
    );
}

#[test]
fn live_a_closed_tcp_connection_is_reported_soon_an_open_one_at_its_idle_timeout() {
    use flowmesh_sensor::capture::LinkType;
    use flowmesh_sensor::decode::{self, Decoded, FragmentTable};
    use flowmesh_sensor::flow::{FlowTable, TableConfig};
    const FIN: u8 = 0x01;
    const S: i64 = 1_000_000;
    // Two connections, one closed by both sides, one left open; then 20 s later an unrelated
    // packet moves time on.
    let frames = [
        (0, eth_tcp(true, 50000, 443, SYN, &[])),
        (0, eth_tcp(false, 443, 50000, SYN | ACK, &[])),
        (S, eth_tcp(true, 50000, 443, FIN | ACK, &[])),
        (S, eth_tcp(false, 443, 50000, FIN | ACK, &[])),
        (S, eth_tcp(true, 50001, 443, SYN, &[])),
        (S, eth_tcp(false, 443, 50001, SYN | ACK, &[])),
        (21 * S, eth_udp(40000, 53, &dns_query("tick.example"))),
    ];
    let mut table = FlowTable::new(TableConfig {
        tcp_closed_micros: 2 * S,
        ..TableConfig::default()
    });
    let mut frags = FragmentTable::default();
    let mut out = Vec::new();
    for (ts, f) in &frames {
        let Ok(Decoded::Ip(ip)) = decode::decode(LinkType::ETHERNET, f, &mut frags, *ts) else {
            panic!("undecodable test frame");
        };
        table.add(&ip, f.len() as u32, *ts, &mut |r| out.push(r.client_port));
    }
    assert_eq!(
        out,
        [50000],
        "only the closed connection is reported while time runs"
    );
    table.drain(&mut |r| out.push(r.client_port));
    assert_eq!(out.len(), 3);
}
