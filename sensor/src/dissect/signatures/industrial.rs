//! The checks of the signature table for industrial, building and vehicle networks: field
//! buses over TCP/UDP, where a length field and a few defined codes are the evidence.

use super::checks::{covers, u16_le};
use crate::dissect::{u16_at, u32_at};

/// DNP3: the link layer's start bytes 0x05 0x64, a length of at least 5, and the header CRC
/// after the 8 header bytes.
pub(super) fn dnp3(p: &[u8], _: bool) -> bool {
    p.len() >= 10 && p[0] == 0x05 && p[1] == 0x64 && p[2] >= 5
}

/// IEC 60870-5-104: APDUs of start byte 0x68 and a length (4..=253), filling the segment.
pub(super) fn iec104(mut p: &[u8], _: bool) -> bool {
    if p.len() < 6 {
        return false;
    }
    while !p.is_empty() {
        match p {
            [0x68, len, ..] if (4..=253).contains(len) && usize::from(*len) + 2 <= p.len() => {
                p = &p[usize::from(*len) + 2..];
            }
            _ => return false,
        }
    }
    true
}

/// Modbus/TCP: MBAP header with protocol id 0 and a length covering unit id and PDU, then a
/// function code (an exception sets the top bit).
pub(super) fn modbus(p: &[u8], _: bool) -> bool {
    p.len() >= 8
        && u16_at(p, 2) == Some(0)
        && covers(u16_at(p, 4).map(usize::from), 6, p)
        && (1..=127).contains(&(p[7] & 0x7f))
}

/// Data over ISO transport: TPKT (version 3, its length), then a COTP data TPDU (length 2,
/// code 0xF0) — what follows it tells S7comm and MMS apart.
fn cotp_data(p: &[u8]) -> Option<&[u8]> {
    let framed = p.len() >= 8
        && p[0] == 3
        && p[1] == 0
        && covers(u16_at(p, 2).map(usize::from), 0, p)
        && p[4] == 2
        && p[5] == 0xf0;
    framed.then(|| &p[7..])
}

/// S7comm: its protocol id 0x32 and a PDU type (job, ack, ack-data, user data).
pub(super) fn s7comm(p: &[u8], _: bool) -> bool {
    cotp_data(p).is_some_and(|s7| s7.len() >= 10 && s7[0] == 0x32 && matches!(s7[1], 1 | 2 | 3 | 7))
}

/// MMS (ISO 9506): an ISO session CONNECT or ACCEPT SPDU, or the give-tokens + data SPDUs
/// that carry MMS PDUs.
pub(super) fn mms(p: &[u8], _: bool) -> bool {
    cotp_data(p)
        .is_some_and(|s| s.len() >= 4 && (matches!(s[0], 0x0d | 0x0e) || s[..4] == [1, 0, 1, 0]))
}

/// EtherNet/IP encapsulation: a known command and a length covering the data after the
/// 24-byte header (little-endian).
pub(super) fn enip(p: &[u8], _: bool) -> bool {
    p.len() >= 24
        && matches!(
            u16_le(p, 0),
            Some(0x0004 | 0x0063 | 0x0064 | 0x0065 | 0x0066 | 0x006f | 0x0070)
        )
        && covers(u16_le(p, 2).map(usize::from), 24, p)
}

/// BACnet/IP: BVLC type 0x81, a function (0..=0x0c), the length of the datagram.
pub(super) fn bacnet(p: &[u8], _: bool) -> bool {
    p.len() >= 4 && p[0] == 0x81 && p[1] <= 0x0c && covers(u16_at(p, 2).map(usize::from), 0, p)
}

/// HART-IP: version 1, message type (request, response, publish, NAK), its byte count.
pub(super) fn hart_ip(p: &[u8], _: bool) -> bool {
    p.len() >= 8 && p[0] == 1 && p[1] <= 3 && covers(u16_at(p, 6).map(usize::from), 0, p)
}

/// IEEE C37.118 synchrophasors: sync byte 0xAA, a frame type (data, header, configuration,
/// command), the frame size.
pub(super) fn c37118(p: &[u8], _: bool) -> bool {
    p.len() >= 16
        && p[0] == 0xaa
        && matches!(p[1] >> 4, 0..=5)
        && matches!(p[1] & 0x0f, 1 | 2)
        && covers(u16_at(p, 2).map(usize::from), 0, p)
}

/// SOME/IP (AUTOSAR, in vehicles): messages of a message id, a length that counts from the
/// request id (8 bytes in) to the message's end, protocol version 1, a message type (request,
/// fire-and-forget, notification, response, error, their acknowledgements, each possibly
/// TP-segmented) and a return code in the defined range; one or more messages filling the
/// payload exactly.
pub(super) fn someip(mut p: &[u8], _: bool) -> bool {
    if p.len() < 16 {
        return false;
    }
    while !p.is_empty() {
        let Some(len) = u32_at(p, 4).and_then(|l| usize::try_from(l).ok()) else {
            return false;
        };
        let end = len.saturating_add(8);
        let header = p.len() >= 16
            && len >= 8
            && end <= p.len()
            && p[12] == 1
            && matches!(
                p[14] & !0x20,
                0x00 | 0x01 | 0x02 | 0x40 | 0x41 | 0x42 | 0x80 | 0x81 | 0xc0 | 0xc1
            )
            && p[15] <= 0x5e;
        if !header {
            return false;
        }
        p = &p[end..];
    }
    true
}
