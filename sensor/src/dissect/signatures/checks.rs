//! The checks of the signature table, one per protocol.

use crate::dissect::{u16_at, u32_at};

/// A little-endian u16 at `at`, if the payload holds it.
pub(super) fn u16_le(p: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*p.get(at)?, *p.get(at + 1)?]))
}

/// A little-endian u32 at `at`, if the payload holds it.
pub(super) fn u32_le(p: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(p.get(at..at + 4)?.try_into().ok()?))
}

/// A length field that counts from `base` covers the message (or this first segment of it).
pub(super) fn covers(len: Option<usize>, base: usize, p: &[u8]) -> bool {
    len.is_some_and(|l| l + base == p.len())
}

/// TDS: packet type, status, length (big-endian, the whole packet), SPID, packet id, window 0.
pub(super) fn tds(p: &[u8], _: bool) -> bool {
    p.len() >= 8
        && matches!(
            p[0],
            0x01 | 0x02 | 0x03 | 0x04 | 0x06 | 0x07 | 0x0e | 0x0f | 0x10 | 0x11 | 0x12
        )
        && p[1] & !0x1f == 0
        && covers(u16_at(p, 2).map(usize::from), 0, p)
        && p[7] == 0
}

/// PostgreSQL's first message: its length, then protocol 3.0 or an SSL, GSS or cancel request.
pub(super) fn postgres(p: &[u8], from_client: bool) -> bool {
    from_client
        && covers(u32_at(p, 0).map(|l| l as usize), 0, p)
        && match u32_at(p, 4) {
            Some(0x0003_0000) => p.len() > 8 && p.ends_with(&[0]),
            Some(80_877_103 | 80_877_104) => p.len() == 8,
            Some(80_877_102) => p.len() == 16,
            _ => false,
        }
}

/// MongoDB wire protocol: message length (little-endian), request id, response-to, a known op
/// code; a request answers nothing.
pub(super) fn mongodb(p: &[u8], from_client: bool) -> bool {
    let op = u32_le(p, 12).unwrap_or(0);
    p.len() >= 21
        && covers(u32_le(p, 0).map(|l| l as usize), 0, p)
        && matches!(op, 1 | 2001..=2007 | 2010..=2013)
        && (!from_client || matches!(u32_le(p, 8), Some(0 | u32::MAX)))
}

/// MQTT: a control packet whose fixed header's remaining length (a varint) covers the rest of
/// the segment exactly, and either the client's CONNECT (protocol name MQTT, level 4 or 5, or
/// v3.1's MQIsdp, level 3) or — met mid-session, from either side — a PUBLISH (QoS 0–2) whose
/// topic is at least 3 printable characters without the wildcards a topic filter may hold, then
/// a packet id other than 0 when the QoS asks for one.
pub(super) fn mqtt(p: &[u8], from_client: bool) -> bool {
    let Some((&first, body)) = mqtt_packet(p) else {
        return false;
    };
    match first {
        0x10 => {
            from_client
                && (body.starts_with(b"\x00\x04MQTT") && matches!(body.get(6), Some(4 | 5))
                    || body.starts_with(b"\x00\x06MQIsdp") && body.get(8) == Some(&3))
        }
        0x30..=0x3d if (first >> 1) & 3 != 3 => {
            let qos = (first >> 1) & 3;
            let Some(len) = u16_at(body, 0).map(usize::from) else {
                return false;
            };
            let topic = body.get(2..2 + len).unwrap_or_default();
            let id = u16_at(body, 2 + len);
            len >= 3
                && topic.len() == len
                && topic
                    .iter()
                    .all(|&c| (0x20..0x7f).contains(&c) && c != b'+' && c != b'#')
                && (qos == 0 || id.is_some_and(|id| id != 0))
        }
        _ => false,
    }
}

/// An MQTT control packet filling `p`: its first byte and the body its remaining length covers.
fn mqtt_packet(p: &[u8]) -> Option<(&u8, &[u8])> {
    let first = p.first()?;
    let (mut remaining, mut at) = (0usize, 1);
    loop {
        let b = *p.get(at)?;
        remaining |= usize::from(b & 0x7f) << (7 * (at - 1));
        at += 1;
        if b & 0x80 == 0 {
            break;
        }
        if at > 4 {
            return None; // at most four length bytes
        }
    }
    (remaining + at == p.len()).then(|| (first, &p[at..]))
}

/// TeamSpeak 3: the client's first datagram, its MAC field the literal `TS3INIT1`, then packet
/// id and client id, and the INIT1 packet type (8) in the flags byte.
pub(super) fn teamspeak(p: &[u8], from_client: bool) -> bool {
    from_client && p.len() >= 13 && p.starts_with(b"TS3INIT1") && p[12] & 0x0f == 8
}

/// RTSP: a request line naming an rtsp:// URL and RTSP/1.0 or 2.0, or a response.
pub(super) fn rtsp(p: &[u8], _: bool) -> bool {
    if p.starts_with(b"RTSP/1.0 ") || p.starts_with(b"RTSP/2.0 ") {
        return true;
    }
    // The method first (a space within 14 bytes), so that binary payloads are not scanned
    // for a line end.
    let Some(method_end) = p[..p.len().min(14)].iter().position(|&b| b == b' ') else {
        return false;
    };
    if !(3..=13).contains(&method_end)
        || !p[..method_end]
            .iter()
            .all(|b| b.is_ascii_uppercase() || *b == b'_')
        || !p[method_end + 1..].starts_with(b"rtsp")
    {
        return false;
    }
    let line = p.split(|&b| b == b'\n').next().unwrap_or(&[]);
    line.ends_with(b"RTSP/1.0\r") || line.ends_with(b"RTSP/2.0\r")
}

/// VNC: the server's protocol version, `RFB xxx.yyy\n`.
pub(super) fn vnc(p: &[u8], _: bool) -> bool {
    p.len() == 12
        && p.starts_with(b"RFB ")
        && p[4..7].iter().all(u8::is_ascii_digit)
        && p[7] == b'.'
        && p[8..11].iter().all(u8::is_ascii_digit)
        && p[11] == b'\n'
}

/// Telnet: option negotiation first — IAC (255) then WILL/WONT/DO/DONT or SB.
pub(super) fn telnet(p: &[u8], _: bool) -> bool {
    p.len() >= 3 && p[0] == 0xff && (0xfa..=0xfe).contains(&p[1])
}

/// Munin: the node's banner.
pub(super) fn munin(p: &[u8], from_client: bool) -> bool {
    !from_client && p.starts_with(b"# munin node at ")
}

/// AJP13: the request magic 0x1234 with the length after it, or the container's "AB".
pub(super) fn ajp(p: &[u8], from_client: bool) -> bool {
    let magic = if from_client { [0x12, 0x34] } else { *b"AB" };
    p.len() >= 5 && p[..2] == magic && covers(u16_at(p, 2).map(usize::from), 4, p)
}

/// SOCKS 4 (connect or bind, a user id ending in NUL) or 5 (the method list).
pub(super) fn socks(p: &[u8], from_client: bool) -> bool {
    from_client
        && match p.first() {
            Some(4) => p.len() >= 9 && matches!(p[1], 1 | 2) && p.last() == Some(&0),
            Some(5) => p.len() >= 3 && usize::from(p[1]) + 2 == p.len() && p[1] > 0,
            _ => false,
        }
}

/// RESP (Redis): a client command as an array of bulk strings, `*N\r\n$M\r\n`.
pub(super) fn resp(p: &[u8], from_client: bool) -> bool {
    let number = |b: &[u8]| -> Option<usize> {
        let end = b.iter().position(|&c| c == b'\r')?;
        (end > 0
            && end <= 9
            && b[..end].iter().all(u8::is_ascii_digit)
            && b.get(end + 1) == Some(&b'\n'))
        .then_some(end + 2)
    };
    from_client
        && p.first() == Some(&b'*')
        && number(&p[1..])
            .is_some_and(|n| p.get(1 + n) == Some(&b'$') && number(&p[2 + n..]).is_some())
}

/// CoAP: version 1, a token of at most 8 bytes, a request method or a response class.
pub(super) fn coap(p: &[u8], _: bool) -> bool {
    let (version, tkl, code) = (
        p.first().map_or(0, |b| b >> 6),
        p.first().map_or(9, |b| b & 0x0f),
        p.get(1).copied().unwrap_or(0xff),
    );
    p.len() >= 4
        && version == 1
        && tkl <= 8
        && p.len() >= 4 + usize::from(tkl)
        && (matches!(code, 1..=7) || matches!(code >> 5, 2 | 4 | 5) || code == 0 && p.len() == 4)
}

/// HSRP: version 0 (hello, coup or resign, a defined state, 20 bytes) or 2 (its TLVs).
pub(super) fn hsrp(p: &[u8], _: bool) -> bool {
    match p {
        [0, op, state, ..] if p.len() == 20 => *op <= 2 && matches!(state, 0 | 1 | 2 | 4 | 8 | 16),
        [1, 40, 2, ..] => p.len() >= 42,
        _ => false,
    }
}

/// BFD control: version 1, the length field equal to the datagram's, a detect multiplier.
pub(super) fn bfd(p: &[u8], _: bool) -> bool {
    p.len() >= 24 && p[0] >> 5 == 1 && usize::from(p[3]) == p.len() && p[2] != 0
}

/// XDMCP: version 1, an opcode (1..=14), the length of the rest.
pub(super) fn xdmcp(p: &[u8], _: bool) -> bool {
    u16_at(p, 0) == Some(1)
        && u16_at(p, 2).is_some_and(|o| (1..=14).contains(&o))
        && covers(u16_at(p, 4).map(usize::from), 6, p)
}

/// NAT-PMP: version 0; an address request (2 bytes), a mapping request (12) or an answer.
pub(super) fn nat_pmp(p: &[u8], from_client: bool) -> bool {
    match (p, from_client) {
        ([0, 0], true) => true,
        ([0, 1 | 2, 0, 0, ..], true) => p.len() == 12,
        ([0, 128..=130, _, _, ..], false) => matches!(p.len(), 12 | 16),
        _ => false,
    }
}

/// Roughtime: the `ROUGHTIM` packet magic of the IETF drafts, or (Google's first form) a bare
/// tagged message — a tag count, its offsets (multiples of 4, rising, inside the message) and
/// its tags (four characters, ascending).
pub(super) fn roughtime(p: &[u8], _: bool) -> bool {
    if p.len() >= 12 && p.starts_with(b"ROUGHTIM") {
        return true;
    }
    let Some(n) = u32_le(p, 0)
        .map(|n| n as usize)
        .filter(|n| (1..=64).contains(n))
    else {
        return false;
    };
    let header = 4 + 4 * (n - 1) + 4 * n;
    if p.len() < header {
        return false;
    }
    let body = p.len() - header;
    let offsets = (1..n).map(|i| u32_le(p, 4 * i).unwrap_or(u32::MAX) as usize);
    let tags = (0..n).map(|i| u32_le(p, 4 * n + 4 * i).unwrap_or(0));
    let mut last_offset = 0;
    for o in offsets {
        if o % 4 != 0 || o < last_offset || o > body {
            return false;
        }
        last_offset = o;
    }
    let mut last_tag = None;
    for t in tags {
        let chars_ok = t
            .to_le_bytes()
            .iter()
            .all(|&b| b.is_ascii_uppercase() || b == 0 || b == 0xff);
        if !chars_ok || last_tag.is_some_and(|l| t <= l) {
            return false;
        }
        last_tag = Some(t);
    }
    n >= 2
}

/// Tuya's local protocol: prefix 0x000055AA and suffix 0x0000AA55, a length in between.
pub(super) fn tuya(p: &[u8], _: bool) -> bool {
    p.len() >= 24 && p.starts_with(&[0, 0, 0x55, 0xaa]) && p.ends_with(&[0, 0, 0xaa, 0x55])
}

/// RakNet's unconnected messages: an id, then the 16-byte offline magic where the id puts it.
pub(super) fn raknet(p: &[u8], _: bool) -> bool {
    const MAGIC: [u8; 16] = [
        0x00, 0xff, 0xff, 0x00, 0xfe, 0xfe, 0xfe, 0xfe, 0xfd, 0xfd, 0xfd, 0xfd, 0x12, 0x34, 0x56,
        0x78,
    ];
    let at = match p.first() {
        Some(0x01 | 0x02) => 9,
        Some(0x1c) => 17,
        Some(0x05..=0x08 | 0x19 | 0x1a) => 1,
        _ => return false,
    };
    p.get(at..at + 16) == Some(&MAGIC[..])
}

/// Canon BJNP: its magic (`BJNP`, or `BNJB`/`MFNP` for scanners) and a payload type.
pub(super) fn bjnp(p: &[u8], _: bool) -> bool {
    p.len() >= 16 && (p.starts_with(b"BJNP") || p.starts_with(b"BNJB") || p.starts_with(b"MFNP"))
}

/// Syncthing's local discovery announcement: its magic number.
pub(super) fn syncthing(p: &[u8], _: bool) -> bool {
    p.len() > 4 && (u32_at(p, 0) == Some(0x2ea7_d90b) || u32_at(p, 0) == Some(0x7d79_bc40))
}

/// collectd's binary protocol: parts (type, length ≥ 4) filling the datagram, the first one
/// a host, time or plugin part.
pub(super) fn collectd(mut p: &[u8], _: bool) -> bool {
    if !matches!(u16_at(p, 0), Some(0 | 1 | 2 | 3 | 4 | 5 | 8 | 9)) {
        return false;
    }
    while !p.is_empty() {
        match u16_at(p, 2).map(usize::from) {
            Some(l) if l >= 4 && l <= p.len() => p = &p[l..],
            _ => return false,
        }
    }
    true
}

/// WS-Discovery: SOAP over UDP naming the discovery namespace.
pub(super) fn wsd(p: &[u8], _: bool) -> bool {
    p.starts_with(b"<?xml")
        && p.windows(32)
            .any(|w| w.eq_ignore_ascii_case(b"schemas.xmlsoap.org/ws/2005/04/d"))
}

/// TeamViewer: its command bytes at the start of a segment (0x17 0x24 or 0x11 0x30).
pub(super) fn teamviewer(p: &[u8], _: bool) -> bool {
    p.len() >= 4 && matches!((p[0], p[1]), (0x17, 0x24) | (0x11, 0x30))
}

/// Agora's SD-RTN: a 12-byte header (type 0x21 in its second word), then a count of tags,
/// each a 4-character name and a little-endian length, filling the datagram (SNI, NONC, ...).
pub(super) fn sd_rtn(p: &[u8], _: bool) -> bool {
    if p.len() < 13 + 6 || p[0] != 0 || p[4..12] != [0, 0, 0x21, 0, 0, 0, 0, 0] {
        return false;
    }
    let (count, mut rest) = (p[12], &p[13..]);
    for _ in 0..count {
        let Some(len) = u16_le(rest, 4).map(usize::from) else {
            return false;
        };
        let tag_ok = rest[..4].iter().all(|&b| b.is_ascii_uppercase() || b == 0);
        if !tag_ok || 6 + len > rest.len() {
            return false;
        }
        rest = &rest[6 + len..];
    }
    count > 0 && rest.is_empty()
}

/// AliCloud's long connection: the client's 8-byte opening with its magic.
pub(super) fn alicloud(p: &[u8], from_client: bool) -> bool {
    from_client && p.len() == 8 && p[..4] == [0xce, 0xfa, 0xbe, 0xba]
}

/// Avast's update protocol: `NOSA` and the message length.
pub(super) fn avast(p: &[u8], _: bool) -> bool {
    p.starts_with(b"NOSA") && covers(u16_at(p, 4).map(usize::from), 0, p)
}

/// CAN frames carried over UDP (ISO 11898 gateways): the `ISO11898` header.
pub(super) fn can(p: &[u8], _: bool) -> bool {
    p.len() > 8 && p.starts_with(b"ISO11898")
}

/// KCP: segments of a 24-byte header (conversation, a command of push/ack/window probe/
/// window size, fragment, window, time, sequence, una, a little-endian data length) and data,
/// filling the datagram.
pub(super) fn kcp(mut p: &[u8], _: bool) -> bool {
    if p.len() < 24 {
        return false;
    }
    let conv = u32_le(p, 0);
    while !p.is_empty() {
        let (Some(len), Some(&cmd)) = (u32_le(p, 20), p.get(4)) else {
            return false;
        };
        let len = len as usize;
        if !(0x51..=0x54).contains(&cmd) || u32_le(p, 0) != conv || 24 + len > p.len() {
            return false;
        }
        p = &p[24 + len..];
    }
    true
}

/// ZUG (a game's transport): the datagram's length, then `UG` and version 0x10.
pub(super) fn zug(p: &[u8], _: bool) -> bool {
    p.len() >= 8 && covers(u16_at(p, 0).map(usize::from), 0, p) && p[2..5] == *b"UG\x10"
}

/// Genshin Impact's connection handshake (20 bytes around the magic 1234567890): connect
/// (0xFF ... 0xFFFFFFFF), established (0x145 ... 0x14514545) or disconnect (0x194).
pub(super) fn genshin(p: &[u8], _: bool) -> bool {
    p.len() == 20
        && u32_at(p, 12) == Some(1_234_567_890)
        && matches!(
            (u32_at(p, 0), u32_at(p, 16)),
            (Some(0xff), Some(0xffff_ffff)) | (Some(0x145), Some(0x1451_4545)) | (Some(0x194), _)
        )
}

/// Viber's TCP framing: a little-endian length equal to the segment's, then a message type.
pub(super) fn viber(p: &[u8], _: bool) -> bool {
    p.len() >= 8 && covers(u16_le(p, 0).map(usize::from), 0, p) && p[3] == 0 && p[2] != 0
}

/// CAPWAP: a clear header (preamble 0: its length in words of at least 2 within the datagram,
/// IEEE 802.11 or EPCGlobal wireless binding) or the DTLS preamble (1) before a DTLS record.
pub(super) fn capwap(p: &[u8], _: bool) -> bool {
    match p.first() {
        Some(0) => u16_at(p, 1).is_some_and(|w| {
            let (hlen, wbid) = (usize::from(w >> 11) * 4, (w >> 1) & 0x1f);
            hlen >= 8 && hlen <= p.len() && matches!(wbid, 1 | 3)
        }),
        Some(1) => p.len() > 16 && (0x14..=0x17).contains(&p[4]) && p[5] == 0xfe,
        _ => false,
    }
}

/// LISP control messages: a type (request, reply, register, notify, encapsulated control)
/// and room for its fixed fields.
pub(super) fn lisp(p: &[u8], _: bool) -> bool {
    p.len() >= 12 && matches!(p[0] >> 4, 1..=4 | 8)
}

/// AFS's Rx: the 28-byte header — a packet type (1..=13) and a security index (0..=3).
pub(super) fn rx(p: &[u8], _: bool) -> bool {
    p.len() >= 28 && (1..=13).contains(&p[20]) && p[23] <= 3
}

/// TLS records met mid-connection (the handshake was before the capture): each header a
/// content type (change cipher spec, alert, handshake, application data), version 3.1 to
/// 3.4 and a length within the limit; the records fill the segment, or the last one goes on
/// in the next.
pub(super) fn tls_records(mut p: &[u8], _: bool) -> bool {
    let mut records = 0;
    while p.len() >= 5 {
        let len = usize::from(u16_at(p, 3).unwrap_or(u16::MAX));
        if !(20..=23).contains(&p[0])
            || p[1] != 3
            || !(1..=4).contains(&p[2])
            || len == 0
            || len > 18_432
        {
            return false;
        }
        records += 1;
        if 5 + len >= p.len() {
            return true;
        }
        p = &p[5 + len..];
    }
    records > 0 && p.is_empty()
}

/// DTLS records met mid-session: a content type, version 1.0 (0xFEFF) or 1.2 (0xFEFD), an
/// epoch and sequence number, and lengths that fill the datagram exactly.
pub(super) fn dtls_records(mut p: &[u8], _: bool) -> bool {
    if p.len() < 13 {
        return false;
    }
    while !p.is_empty() {
        let Some(len) = u16_at(p, 11).map(usize::from) else {
            return false;
        };
        if !(20..=25).contains(&p[0])
            || p[1] != 0xfe
            || !matches!(p[2], 0xff | 0xfd)
            || 13 + len > p.len()
        {
            return false;
        }
        p = &p[13 + len..];
    }
    true
}

/// A BER length at `at`: the value's length and where it starts (short or long form).
fn ber_len(p: &[u8], at: usize) -> Option<(usize, usize)> {
    let first = *p.get(at)?;
    if first & 0x80 == 0 {
        return Some((usize::from(first), at + 1));
    }
    let n = usize::from(first & 0x7f);
    if !(1..=4).contains(&n) {
        return None;
    }
    let len = p
        .get(at + 1..at + 1 + n)?
        .iter()
        .fold(0usize, |l, &b| l << 8 | usize::from(b));
    Some((len, at + 1 + n))
}

/// Kerberos v5: (over TCP, a 4-byte record length) a message's APPLICATION tag, a SEQUENCE,
/// and protocol version 5 as its first field.
pub(super) fn kerberos(p: &[u8], _: bool) -> bool {
    let msg = match u32_at(p, 0) {
        Some(l) if l as usize + 4 == p.len() || (l as usize + 4 > p.len() && l < 0x0010_0000) => {
            &p[4..]
        }
        _ => p,
    };
    let Some(&tag) = msg.first() else {
        return false;
    };
    if !matches!(tag, 0x6a..=0x6f | 0x74..=0x76 | 0x7e) {
        return false;
    }
    let Some((_, at)) = ber_len(msg, 1) else {
        return false;
    };
    if msg.get(at) != Some(&0x30) {
        return false;
    }
    let Some((_, at)) = ber_len(msg, at + 1) else {
        return false;
    };
    matches!(msg.get(at..at + 5), Some([0xa0 | 0xa1, 3, 2, 1, 5]))
}

/// LDAP: a SEQUENCE holding a message id (INTEGER of 1 to 4 bytes) and a protocol operation
/// (an APPLICATION tag); the sequence fills the segment, or goes on in the next.
pub(super) fn ldap(p: &[u8], _: bool) -> bool {
    if p.first() != Some(&0x30) {
        return false;
    }
    let Some((len, at)) = ber_len(p, 1) else {
        return false;
    };
    let fits = at + len == p.len() || (at + len > p.len() && p.len() >= 1024);
    let id_len = match p.get(at..at + 2) {
        Some([0x02, l @ 1..=4]) => usize::from(*l),
        _ => return false,
    };
    let op = p.get(at + 2 + id_len).copied().unwrap_or(0);
    fits && (matches!(op, 0x60..=0x78) || matches!(op, 0x42 | 0x4a | 0x50))
}

/// SMB 2 and 3 (and their encrypted transform): the NetBIOS session header with the length of
/// what follows, then the protocol id `\xfeSMB` or `\xfdSMB`.
pub(super) fn smb2(p: &[u8], _: bool) -> bool {
    netbios_session(p) && matches!(p.get(4..8), Some([0xfe | 0xfd, b'S', b'M', b'B']))
}

/// SMB 1 over the NetBIOS session service (nDPI names it by its carrier, NetBIOS).
pub(super) fn smb1(p: &[u8], _: bool) -> bool {
    netbios_session(p) && p.get(4..8) == Some(b"\xffSMB")
}

fn netbios_session(p: &[u8]) -> bool {
    p.len() >= 8 && p[0] == 0 && {
        let len = usize::from(p[1]) << 16 | usize::from(p[2]) << 8 | usize::from(p[3]);
        len + 4 >= p.len() && len >= 4
    }
}

/// DCE/RPC connection-oriented: version 5.0 or 5.1, a packet type, the data representation
/// (little- or big-endian integers, ASCII), and a fragment length covering the segment.
pub(super) fn dcerpc(p: &[u8], _: bool) -> bool {
    if p.len() < 16
        || p[0] != 5
        || p[1] > 1
        || p[2] > 19
        || !matches!(p[4], 0x10 | 0x00)
        || p[5..8] != [0, 0, 0]
    {
        return false;
    }
    let frag = if p[4] == 0x10 {
        u16_le(p, 8)
    } else {
        u16_at(p, 8)
    };
    frag.is_some_and(|f| usize::from(f) >= p.len() && f >= 16)
}

/// RTCP: a compound packet — version 2, a first sender or receiver report, every part a
/// control type (192..=207) whose length in words fills the datagram exactly.
pub(super) fn rtcp(mut p: &[u8], _: bool) -> bool {
    if p.len() < 8 || !matches!(p.get(1), Some(200 | 201)) {
        return false;
    }
    while !p.is_empty() {
        let Some(words) = u16_at(p, 2) else {
            return false;
        };
        let len = (usize::from(words) + 1) * 4;
        if p[0] >> 6 != 2 || !(192..=207).contains(&p[1]) || len > p.len() {
            return false;
        }
        p = &p[len..];
    }
    true
}
