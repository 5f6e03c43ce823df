//! Export datagrams built by hand (NetFlow v9, IPFIX): for tests, benchmarks and fuzzing seeds.

/// Appends `x`, big-endian.
pub fn be16(v: &mut Vec<u8>, x: u16) {
    v.extend_from_slice(&x.to_be_bytes());
}
/// Appends `x`, big-endian.
pub fn be32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_be_bytes());
}

/// A set (flowset) with its id and length, padded to 4 bytes.
pub fn set(id: u16, body: &[u8]) -> Vec<u8> {
    let mut body = body.to_vec();
    while !body.len().is_multiple_of(4) {
        body.push(0);
    }
    let mut v = Vec::new();
    be16(&mut v, id);
    be16(&mut v, (body.len() + 4) as u16);
    v.extend_from_slice(&body);
    v
}

/// A NetFlow v9 datagram (source id 1, exported at 2026-01-01T00:00:00Z) of `sets`.
pub fn v9(seq: u32, uptime_ms: u32, sets: &[Vec<u8>]) -> Vec<u8> {
    let mut v = Vec::new();
    be16(&mut v, 9);
    be16(&mut v, sets.len() as u16);
    be32(&mut v, uptime_ms);
    be32(&mut v, 1_767_225_600); // 2026-01-01T00:00:00Z
    be32(&mut v, seq);
    be32(&mut v, 1); // source id
    for s in sets {
        v.extend_from_slice(s);
    }
    v
}

/// An IPFIX message (domain 42, exported at 2026-01-01T00:00:00Z) of `sets`.
pub fn ipfix(seq: u32, sets: &[Vec<u8>]) -> Vec<u8> {
    let len: usize = 16 + sets.iter().map(Vec::len).sum::<usize>();
    let mut v = Vec::new();
    be16(&mut v, 10);
    be16(&mut v, len as u16);
    be32(&mut v, 1_767_225_600);
    be32(&mut v, seq);
    be32(&mut v, 42); // observation domain
    for s in sets {
        v.extend_from_slice(s);
    }
    v
}

/// A template record: id and (type, length) pairs.
pub fn template(id: u16, fields: &[(u16, u16)]) -> Vec<u8> {
    let mut v = Vec::new();
    be16(&mut v, id);
    be16(&mut v, fields.len() as u16);
    for (t, l) in fields {
        be16(&mut v, *t);
        be16(&mut v, *l);
    }
    v
}

/// The basic v9 layout: src, dst, sport, dport, proto, packets, bytes, first, last, in, out.
pub const V9_BASIC: &[(u16, u16)] = &[
    (8, 4),
    (12, 4),
    (7, 2),
    (11, 2),
    (4, 1),
    (2, 4),
    (1, 4),
    (22, 4),
    (21, 4),
    (10, 2),
    (14, 2),
];

/// A data record in [`V9_BASIC`]'s layout (TCP, first and last packet at uptime 1 s and 3 s,
/// interfaces 3 and 5).
pub fn v9_record(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    packets: u32,
    bytes: u32,
) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&src);
    v.extend_from_slice(&dst);
    be16(&mut v, sport);
    be16(&mut v, dport);
    v.push(6);
    be32(&mut v, packets);
    be32(&mut v, bytes);
    be32(&mut v, 1000); // first: uptime 1 s
    be32(&mut v, 3000); // last: uptime 3 s
    be16(&mut v, 3);
    be16(&mut v, 5);
    v
}

/// Datagrams as a busy exporter sends them: the template, then `datagrams` v9 datagrams of
/// `per_datagram` records, both directions of each connection in one datagram.
pub fn v9_stream(datagrams: usize, per_datagram: usize) -> Vec<Vec<u8>> {
    let mut out = vec![v9(0, 10_000, &[set(0, &template(256, V9_BASIC))])];
    for d in 0..datagrams {
        let mut records = Vec::new();
        for i in 0..per_datagram / 2 {
            let n = (d * per_datagram + i) as u32;
            let client = [10, (n >> 16) as u8, (n >> 8) as u8, n as u8];
            let port = 1024 + (n % 60_000) as u16;
            records.extend(v9_record(client, [203, 0, 113, 7], port, 443, 10, 1500));
            records.extend(v9_record([203, 0, 113, 7], client, 443, port, 12, 15_000));
        }
        out.push(v9(d as u32 + 1, 10_000, &[set(256, &records)]));
    }
    out
}
