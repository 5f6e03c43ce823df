//! Builds packets and captures in test code, byte by byte, so every decoder and dissector is
//! tested on input the project controls.
#![allow(dead_code)]

use flowmesh_sensor::capture::CaptureReader;
use flowmesh_sensor::flow::FlowRecord;
use flowmesh_sensor::offline::{self, RunStats};

pub const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
pub const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
pub const IP_A: [u8; 4] = [192, 168, 1, 20];
pub const IP_B: [u8; 4] = [10, 0, 0, 5];

pub fn eth(src: [u8; 6], dst: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A VLAN tag followed by the inner EtherType and payload (the payload of an 0x8100 frame).
pub fn vlan(id: u16, inner: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = id.to_be_bytes().to_vec();
    v.extend_from_slice(&inner.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

pub fn ipv4_frag(
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    id: u16,
    offset: usize,
    more: bool,
    payload: &[u8],
) -> Vec<u8> {
    let total = 20 + payload.len();
    let frag = ((offset / 8) as u16) | if more { 0x2000 } else { 0 };
    let mut p = vec![0x45, 0, (total >> 8) as u8, total as u8];
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&frag.to_be_bytes());
    p.extend_from_slice(&[64, proto, 0, 0]);
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(payload);
    p
}

pub fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, payload: &[u8]) -> Vec<u8> {
    ipv4_frag(src, dst, proto, 1, 0, false, payload)
}

pub fn ipv6(src: [u8; 16], dst: [u8; 16], next: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    p.extend_from_slice(&[next, 64]);
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(payload);
    p
}

pub fn udp(sp: u16, dp: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = sp.to_be_bytes().to_vec();
    u.extend_from_slice(&dp.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

pub const SYN: u8 = 0x02;
pub const ACK: u8 = 0x10;
pub const PSH_ACK: u8 = 0x18;

pub fn tcp(sp: u16, dp: u16, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut t = sp.to_be_bytes().to_vec();
    t.extend_from_slice(&dp.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    t.extend_from_slice(payload);
    t
}

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

/// Runs the whole sensor over capture bytes.
pub fn flows(capture: &[u8]) -> (Vec<FlowRecord>, Result<RunStats, String>) {
    let mut out = Vec::new();
    let r = CaptureReader::new(capture).map_err(|e| e.to_string());
    let result = match r {
        Ok(reader) => {
            offline::run_reader(reader, &mut |rec| out.push(rec)).map_err(|(_, e)| e.to_string())
        }
        Err(e) => Err(e),
    };
    (out, result)
}

/// The only flow of a capture that must yield exactly one.
pub fn one_flow(capture: &[u8]) -> FlowRecord {
    let (mut f, r) = flows(capture);
    r.expect("capture reads");
    assert_eq!(f.len(), 1, "expected one flow, got {f:#?}");
    f.remove(0)
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

/// A TLS ClientHello record with an SNI extension.
pub fn client_hello(sni: &str) -> Vec<u8> {
    let name = sni.as_bytes();
    let mut ext = vec![0, 0];
    ext.extend_from_slice(&((name.len() + 5) as u16).to_be_bytes());
    ext.extend_from_slice(&((name.len() + 3) as u16).to_be_bytes());
    ext.push(0);
    ext.extend_from_slice(&(name.len() as u16).to_be_bytes());
    ext.extend_from_slice(name);
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
