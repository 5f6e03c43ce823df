//! Packets and captures built byte by byte: the tests' inputs and `flowmesh gen`'s output.
//!
//! Checksums are left zero (the sensor does not verify them, like nDPI).

#![allow(missing_docs)]

pub mod periods;

pub const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
pub const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
pub const IP_A: [u8; 4] = [192, 168, 1, 20];
pub const IP_B: [u8; 4] = [10, 0, 0, 5];

pub use flowmesh_bpf::frame::{ACK, PSH_ACK, SYN, eth, ipv4, ipv4_frag, ipv6, tcp, udp, vlan};

/// A UDP/IPv4/Ethernet frame from A to B.
pub fn eth_udp(sp: u16, dp: u16, payload: &[u8]) -> Vec<u8> {
    eth(
        MAC_A,
        MAC_B,
        0x0800,
        &ipv4(IP_A, IP_B, 17, &udp(sp, dp, payload)),
    )
}

/// The same, from B back to A.
pub fn eth_udp_back(sp: u16, dp: u16, payload: &[u8]) -> Vec<u8> {
    eth(
        MAC_B,
        MAC_A,
        0x0800,
        &ipv4(IP_B, IP_A, 17, &udp(sp, dp, payload)),
    )
}

pub fn eth_tcp(from_a: bool, sp: u16, dp: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let (ms, md, is, id) = if from_a {
        (MAC_A, MAC_B, IP_A, IP_B)
    } else {
        (MAC_B, MAC_A, IP_B, IP_A)
    };
    eth(
        ms,
        md,
        0x0800,
        &ipv4(is, id, 6, &tcp(sp, dp, 1, flags, payload)),
    )
}

/// A classic little-endian microsecond pcap of `link` type.
pub fn pcap(link: u32, packets: &[Vec<u8>]) -> Vec<u8> {
    let mut f = vec![
        0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0,
    ];
    f.extend_from_slice(&link.to_le_bytes());
    for (i, p) in packets.iter().enumerate() {
        let ts = 1_700_000_000u32 + i as u32;
        f.extend_from_slice(&ts.to_le_bytes());
        f.extend_from_slice(&0u32.to_le_bytes());
        f.extend_from_slice(&(p.len() as u32).to_le_bytes());
        f.extend_from_slice(&(p.len() as u32).to_le_bytes());
        f.extend_from_slice(p);
    }
    f
}

pub fn dns_query(name: &str) -> Vec<u8> {
    let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    m
}

pub fn dns_response(name: &str) -> Vec<u8> {
    let mut m = dns_query(name);
    m[2] = 0x81;
    m[3] = 0x80;
    m
}

/// A TLS record holding a ClientHello for `sni` that offers h2 and http/1.1, as browsers do.
pub fn client_hello(sni: &str) -> Vec<u8> {
    client_hello_with(sni, &["h2", "http/1.1"])
}

/// A TLS record holding a ClientHello for `sni` (none when empty) offering `alpn`.
pub fn client_hello_with(sni: &str, alpn: &[&str]) -> Vec<u8> {
    let name = sni.as_bytes();
    let mut ext = Vec::new();
    if !name.is_empty() {
        ext.extend_from_slice(&[0, 0]);
        ext.extend_from_slice(&((name.len() + 5) as u16).to_be_bytes());
        ext.extend_from_slice(&((name.len() + 3) as u16).to_be_bytes());
        ext.push(0);
        ext.extend_from_slice(&(name.len() as u16).to_be_bytes());
        ext.extend_from_slice(name);
    }
    if !alpn.is_empty() {
        let list: Vec<u8> = alpn
            .iter()
            .flat_map(|id| std::iter::once(id.len() as u8).chain(id.bytes()))
            .collect();
        ext.extend_from_slice(&[0, 16]);
        ext.extend_from_slice(&((list.len() + 2) as u16).to_be_bytes());
        ext.extend_from_slice(&(list.len() as u16).to_be_bytes());
        ext.extend_from_slice(&list);
    }
    // Padding extension, so the hello is realistically large and can be split.
    ext.extend_from_slice(&[0, 21, 0, 200]);
    ext.extend_from_slice(&[0; 200]);
    let mut hello = vec![3, 3];
    hello.extend_from_slice(&[7; 32]);
    hello.push(0);
    hello.extend_from_slice(&[0, 2, 0x13, 0x01, 1, 0]);
    hello.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    hello.extend_from_slice(&ext);
    let mut hs = vec![1, 0, (hello.len() >> 8) as u8, hello.len() as u8];
    hs.extend_from_slice(&hello);
    let mut rec = vec![0x16, 3, 1, (hs.len() >> 8) as u8, hs.len() as u8];
    rec.extend_from_slice(&hs);
    rec
}

const SERVER_NAMES: &[&str] = &[
    "www.google.com",
    "r4---sn-4g5e6nsz.googlevideo.com",
    "graph.facebook.com",
    "api.dropbox.com",
    "teams.microsoft.com",
    "www.netflix.com",
    "web.whatsapp.com",
    "open.spotify.com",
    "zoom.us",
    "github.com",
    "en.wikipedia.org",
    "www.example.org",
];

/// Client, server and client port of flow `id`. Every flow has a client of its own, or, with
/// `hosts`, the flows take turns over that many clients (each with ports of its own, so no two
/// flows below `hosts` × 60,000 share a tuple).
fn endpoints(id: u64, hosts: Option<u64>) -> ([u8; 4], [u8; 4], u16) {
    let (client, port) = match hosts {
        None => (id, id % 60_000),
        Some(n) => (id % n.max(1), (id / n.max(1)) % 60_000),
    };
    let c = [10, (client >> 16) as u8, (client >> 8) as u8, client as u8];
    let s = [203, 0, 113 + ((id % 3) as u8), (id % 250) as u8 + 1];
    (c, s, 1024 + port as u16)
}

fn frame(from_client: bool, c: [u8; 4], s: [u8; 4], l4: u8, payload: Vec<u8>) -> Vec<u8> {
    let (src, dst, ms, md) = if from_client {
        (c, s, MAC_A, MAC_B)
    } else {
        (s, c, MAC_B, MAC_A)
    };
    eth(ms, md, 0x0800, &ipv4(src, dst, l4, &payload))
}

/// Packet `j` of synthetic flow `id`, or `None` past its last packet. Flows are a mix of
/// TLS (60%: handshake with SNI, data, FIN), DNS (25%: query and answer) and HTTP (15%).
pub fn flow_packet(id: u64, j: usize) -> Option<Vec<u8>> {
    packet_of(id, j, None)
}

/// [`flow_packet`], the client chosen as [`endpoints`] says.
fn packet_of(id: u64, j: usize, hosts: Option<u64>) -> Option<Vec<u8>> {
    let (c, s, cp) = endpoints(id, hosts);
    let name = SERVER_NAMES[(id % SERVER_NAMES.len() as u64) as usize];
    let tcp_pkt = |from_client: bool, dp: u16, flags: u8, payload: &[u8]| {
        let (sp, dp2) = if from_client { (cp, dp) } else { (dp, cp) };
        frame(from_client, c, s, 6, tcp(sp, dp2, j as u32, flags, payload))
    };
    match id % 20 {
        0..=11 => {
            let data = [0x17u8, 3, 3, 4, 0xb0];
            Some(match j {
                0 => tcp_pkt(true, 443, SYN, &[]),
                1 => tcp_pkt(false, 443, SYN | ACK, &[]),
                2 => tcp_pkt(true, 443, ACK, &[]),
                3 => tcp_pkt(true, 443, PSH_ACK, &client_hello(name)),
                4 => tcp_pkt(
                    false,
                    443,
                    PSH_ACK,
                    &[&[0x16, 3, 3, 0, 90, 2, 0, 0, 86, 3, 3][..], &[9; 86][..]].concat(),
                ),
                5 => tcp_pkt(true, 443, PSH_ACK, &[&data[..], &[1; 120][..]].concat()),
                6 | 7 => tcp_pkt(false, 443, PSH_ACK, &[&data[..], &[2; 1195][..]].concat()),
                8 => tcp_pkt(true, 443, ACK, &[]),
                9 => tcp_pkt(true, 443, 0x11, &[]),
                10 => tcp_pkt(false, 443, 0x11, &[]),
                11 => tcp_pkt(true, 443, ACK, &[]),
                _ => return None,
            })
        }
        12..=16 => Some(match j {
            0 => frame(true, c, s, 17, udp(cp, 53, &dns_query(name))),
            1 => frame(false, c, s, 17, udp(53, cp, &dns_response(name))),
            _ => return None,
        }),
        _ => Some(match j {
            0 => tcp_pkt(true, 80, SYN, &[]),
            1 => tcp_pkt(false, 80, SYN | ACK, &[]),
            2 => tcp_pkt(true, 80, ACK, &[]),
            3 => tcp_pkt(
                true,
                80,
                PSH_ACK,
                format!("GET / HTTP/1.1\r\nHost: {name}\r\nUser-Agent: flowmesh-gen\r\n\r\n")
                    .as_bytes(),
            ),
            4 => tcp_pkt(
                false,
                80,
                PSH_ACK,
                &[
                    &b"HTTP/1.1 200 OK\r\nContent-Length: 600\r\n\r\n"[..],
                    &[b'x'; 600][..],
                ]
                .concat(),
            ),
            5 => tcp_pkt(true, 80, 0x11, &[]),
            6 => tcp_pkt(false, 80, 0x11, &[]),
            7 => tcp_pkt(true, 80, ACK, &[]),
            _ => return None,
        }),
    }
}

/// Writes a classic pcap of `flows` synthetic flows to `out`, interleaving up to `concurrent`
/// flows at a time (the flow table then holds that many at once), spread over `span_secs`.
/// Returns the number of packets written. Every flow has a local client of its own (the
/// worst case for per-host state); [`generate_for_hosts`] bounds them.
pub fn generate(
    flows: u64,
    concurrent: u64,
    span_secs: u64,
    out: &mut impl std::io::Write,
) -> std::io::Result<u64> {
    generate_for_hosts(flows, concurrent, span_secs, None, out)
}

/// [`generate`] with the flows' clients taken from `hosts` local addresses (10.0.0.0 up),
/// as on a site with that many machines; `None`: a client per flow.
pub fn generate_for_hosts(
    flows: u64,
    concurrent: u64,
    span_secs: u64,
    hosts: Option<u64>,
    out: &mut impl std::io::Write,
) -> std::io::Result<u64> {
    out.write_all(&[
        0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0,
    ])?;
    let concurrent = concurrent.max(1);
    // About 9 packets per flow on average: spread the timestamps evenly over the span.
    let step_micros = (span_secs.max(1) * 1_000_000) / (flows.max(1) * 9);
    let mut ts: u64 = 1_700_000_000_000_000;
    let mut written = 0u64;
    let mut start = 0;
    while start < flows {
        let end = (start + concurrent).min(flows);
        for j in 0.. {
            let mut any = false;
            for id in start..end {
                if let Some(p) = packet_of(id, j, hosts) {
                    any = true;
                    out.write_all(&((ts / 1_000_000) as u32).to_le_bytes())?;
                    out.write_all(&((ts % 1_000_000) as u32).to_le_bytes())?;
                    out.write_all(&(p.len() as u32).to_le_bytes())?;
                    out.write_all(&(p.len() as u32).to_le_bytes())?;
                    out.write_all(&p)?;
                    ts += step_micros.max(1);
                    written += 1;
                }
            }
            if !any {
                break;
            }
        }
        start = end;
    }
    Ok(written)
}

/// A classic pcap whose packets carry the given times (seconds after 2023-11-14T22:13:20Z).
pub fn pcap_at(link: u32, packets: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let mut f = vec![
        0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0,
    ];
    f.extend_from_slice(&link.to_le_bytes());
    for (secs, p) in packets {
        f.extend_from_slice(&(1_700_000_000u32 + secs).to_le_bytes());
        f.extend_from_slice(&0u32.to_le_bytes());
        f.extend_from_slice(&(p.len() as u32).to_le_bytes());
        f.extend_from_slice(&(p.len() as u32).to_le_bytes());
        f.extend_from_slice(p);
    }
    f
}

/// An ARP frame from `mac`/`ip` about `target_ip` (opcode 1 request, 2 reply), broadcast.
pub fn arp(mac: [u8; 6], ip: [u8; 4], target_ip: [u8; 4], opcode: u8) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4, 0, opcode];
    a.extend_from_slice(&mac);
    a.extend_from_slice(&ip);
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&target_ip);
    eth(mac, [0xff; 6], 0x0806, &a)
}

/// An mDNS response (announcement) of `name` from `mac`/`ip` to 224.0.0.251.
pub fn mdns_announcement(mac: [u8; 6], ip: [u8; 4], name: &str) -> Vec<u8> {
    let mut answer = dns_response(name);
    answer[2] = 0x84; // response, authoritative
    eth(
        mac,
        [0x01, 0, 0x5e, 0, 0, 0xfb],
        0x0800,
        &ipv4(ip, [224, 0, 0, 251], 17, &udp(5353, 5353, &answer)),
    )
}

/// An mDNS query for `name` from `mac`/`ip`.
pub fn mdns_query(mac: [u8; 6], ip: [u8; 4], name: &str) -> Vec<u8> {
    eth(
        mac,
        [0x01, 0, 0x5e, 0, 0, 0xfb],
        0x0800,
        &ipv4(ip, [224, 0, 0, 251], 17, &udp(5353, 5353, &dns_query(name))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(hosts: Option<u64>) -> Vec<crate::flow::FlowRecord> {
        let mut pcap = Vec::new();
        generate_for_hosts(3_000, 500, 60, hosts, &mut pcap).unwrap();
        let reader = crate::capture::CaptureReader::new(std::io::Cursor::new(pcap));
        let mut out = Vec::new();
        crate::offline::run_reader(reader.unwrap(), &mut |r| out.push(r)).unwrap();
        out
    }

    #[test]
    fn flows_take_turns_over_the_hosts_asked_for_and_stay_apart() {
        let clients = |rs: &[crate::flow::FlowRecord]| {
            rs.iter()
                .map(|r| r.client_ip)
                .collect::<std::collections::HashSet<_>>()
                .len()
        };
        let own = records(None);
        let ten = records(Some(10));
        // Every flow is a record of its own either way: no two share a tuple.
        assert_eq!((own.len(), ten.len()), (3_000, 3_000));
        assert_eq!((clients(&own), clients(&ten)), (3_000, 10));
    }
}
