//! Capture files: both formats, both byte orders, timestamp resolutions, damage.

mod common;
use common::*;
use flowmesh_sensor::flow::rfc3339_micros;

#[test]
fn a_truncated_capture_yields_the_flows_so_far_and_an_error() {
    let full = pcap(
        1,
        &[
            eth_udp(40000, 53, &dns_query("a.example")),
            eth_udp(40001, 53, &dns_query("b.example")),
        ],
    );
    for cut in [full.len() - 10, full.len() - 60] {
        let (f, r) = flows(&full[..cut]);
        let err = r.unwrap_err();
        assert!(err.contains("truncated"), "{err}");
        assert_eq!(
            f.len(),
            1,
            "the first, complete packet's flow is still reported"
        );
    }
}

#[test]
fn a_file_that_is_not_a_capture_is_refused_clearly() {
    for bytes in [&b"GET / HTTP/1.1\r\n"[..], &b""[..], &b"\x0a\x0d\x0d"[..]] {
        let (_, r) = flows(bytes);
        let err = r.unwrap_err();
        assert!(err.contains("not a pcap or pcapng"), "{err}");
    }
}

#[test]
fn big_endian_and_nanosecond_pcaps() {
    let frame = eth_udp(40000, 53, &dns_query("be.example"));
    let mut f = vec![
        0xa1, 0xb2, 0x3c, 0x4d, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 1,
    ];
    f.extend_from_slice(&1_700_000_000u32.to_be_bytes());
    f.extend_from_slice(&1_500u32.to_be_bytes()); // 1500 ns
    f.extend_from_slice(&(frame.len() as u32).to_be_bytes());
    f.extend_from_slice(&(frame.len() as u32).to_be_bytes());
    f.extend_from_slice(&frame);
    let rec = one_flow(&f);
    assert_eq!(
        rfc3339_micros(rec.first_seen),
        "2023-11-14T22:13:20.000001Z"
    );
}

fn block(kind: u32, body: &[u8]) -> Vec<u8> {
    let len = 12 + body.len().div_ceil(4) * 4;
    let mut b = kind.to_le_bytes().to_vec();
    b.extend_from_slice(&(len as u32).to_le_bytes());
    b.extend_from_slice(body);
    b.resize(len - 4, 0);
    b.extend_from_slice(&(len as u32).to_le_bytes());
    b
}

#[test]
fn pcapng_with_two_interfaces_and_their_own_link_types_and_resolutions() {
    let shb = block(
        0x0A0D0D0A,
        &[
            0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ],
    );
    // Interface 0: Ethernet, microseconds. Interface 1: raw IP, nanoseconds (if_tsresol = 9).
    let idb0 = block(1, &[1, 0, 0, 0, 0, 0, 1, 0]);
    let idb1 = block(
        1,
        &[101, 0, 0, 0, 0, 0, 1, 0, 9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0],
    );
    let epb = |iface: u32, ts: u64, data: &[u8]| {
        let mut b = iface.to_le_bytes().to_vec();
        b.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        b.extend_from_slice(&(ts as u32).to_le_bytes());
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(data);
        block(6, &b)
    };
    let ip = ipv4(IP_B, IP_A, 17, &udp(53, 40000, &dns_response("ng.example")));
    let mut file = [shb, idb0, idb1].concat();
    file.extend(epb(
        0,
        1_700_000_000_000_000,
        &eth_udp(40000, 53, &dns_query("ng.example")),
    ));
    file.extend(epb(1, 1_700_000_000_250_000_000, &ip));
    file.extend(block(5, &[0; 8])); // an interface statistics block, skipped
    let f = one_flow(&file);
    assert_eq!((f.c2s_packets, f.s2c_packets, f.l7), (1, 1, "DNS"));
    assert_eq!(rfc3339_micros(f.last_seen), "2023-11-14T22:13:20.250000Z");
}

#[test]
fn pcaps_of_format_2_0_to_2_2_keep_the_two_lengths_the_other_way_round() {
    // Before format 2.3 a record header held the original length first, then the captured
    // one; libpcap reads them so (nDPI's fuzz-2021-10-13.pcap is such a file).
    let frame = eth_udp(40000, 53, &dns_query("old.example"));
    let mut f = pcap(1, std::slice::from_ref(&frame));
    f[6] = 0; // version 2.0
    let caplen = frame.len() as u32;
    f[32..36].copy_from_slice(&(caplen + 1000).to_le_bytes());
    f[36..40].copy_from_slice(&caplen.to_le_bytes());
    let (read, r) = flows(&f);
    r.unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].c2s_bytes, u64::from(caplen) + 1000);
    // The same header in format 2.4 is a record claiming more than it holds: truncated.
    f[6] = 4;
    let (_, r) = flows(&f);
    assert!(r.unwrap_err().contains("truncated"));
}

/// A packet as compared: time, length, first and last byte.
type Seen = (i64, usize, u8, u8);

/// Every packet of `reader`, and the error it ended with.
fn packets<R: std::io::Read>(
    mut reader: flowmesh_sensor::capture::CaptureReader<R>,
) -> (Vec<Seen>, Option<String>) {
    let mut out = Vec::new();
    loop {
        match reader.next_packet() {
            Ok(Some(p)) => out.push((
                p.ts_micros,
                p.data.len(),
                p.data[0],
                p.data[p.data.len() - 1],
            )),
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e.to_string())),
        }
    }
}

#[test]
fn a_file_read_on_its_own_thread_gives_every_packet_across_chunk_boundaries() {
    use flowmesh_sensor::capture::CaptureReader;
    // About 5 MiB (the reading thread takes 1 MiB chunks): small and large records, so that
    // records straddle chunk boundaries at every offset, some of them 200 KiB long.
    let frames: Vec<Vec<u8>> = (0..4000u32)
        .map(|i| {
            let len = match i % 97 {
                0 => 200_000 + i as usize,
                n => 60 + (n as usize * 13 + i as usize) % 1400,
            };
            (0..len).map(|j| (i as usize + j) as u8).collect()
        })
        .collect();
    let whole = pcap(1, &frames);
    assert!(whole.len() > 4 << 20, "{}", whole.len());
    let dir = tempfile::tempdir().unwrap();
    for cut in [whole.len(), whole.len() - 7, (1 << 20) + 5, 3 << 20] {
        let path = dir.path().join(format!("cut-{cut}.pcap"));
        std::fs::write(&path, &whole[..cut]).unwrap();
        let (by_path, end) = packets(CaptureReader::open(&path).unwrap());
        let (in_memory, end_mem) = packets(CaptureReader::new(&whole[..cut]).unwrap());
        assert_eq!(by_path, in_memory, "cut at {cut}");
        assert_eq!(end, end_mem, "cut at {cut}");
        if cut == whole.len() {
            assert_eq!(by_path.len(), frames.len());
            assert_eq!(end, None);
        } else {
            assert!(end.unwrap().contains("truncated"), "cut at {cut}");
        }
    }
}
