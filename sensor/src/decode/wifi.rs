//! IEEE 802.11 data frames (monitor-mode captures, with or without a radiotap header, and
//! CAPWAP's native frames): the MAC header by its To/From-DS bits, QoS and HT control fields,
//! then LLC/SNAP down to an EtherType. Management, control and protected (encrypted) frames
//! carry nothing to decode.

use super::link::ethertype_chain;
use super::{DecodeError, L2};
use crate::wire::{mac_at, need};

/// Radiotap: version 0, a little-endian length, present-field bitmaps (chained by bit 31);
/// the Flags field (present bit 1) says whether the frame ends in an FCS.
pub(super) fn radiotap(data: &[u8]) -> Result<L2<'_>, DecodeError> {
    need(data, 8, "radiotap")?;
    if data[0] != 0 {
        return Ok(super::link::other());
    }
    let len = usize::from(u16::from_le_bytes([data[2], data[3]]));
    need(data, len.max(8), "radiotap")?;
    let present = u32::from_le_bytes([data[4], data[5], data[6], data[7]]);
    // The fields start after the last present word; TSFT (bit 0, 8 bytes, 8-aligned) comes
    // before Flags (bit 1, one byte).
    let mut at = 8;
    let mut word = present;
    while word & 0x8000_0000 != 0 && at + 4 <= len {
        word = u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
        at += 4;
    }
    if present & 1 != 0 {
        at = at.next_multiple_of(8) + 8;
    }
    let fcs = present & 2 != 0 && at < len && data[at] & 0x10 != 0;
    frame(&data[len..], fcs)
}

/// An 802.11 frame (`fcs`: its last four bytes are the checksum).
pub(super) fn frame(data: &[u8], fcs: bool) -> Result<L2<'_>, DecodeError> {
    frame_with(data, fcs, false)
}

/// An 802.11 frame from a CAPWAP tunnel: Cisco controllers send the frame control field with
/// its two bytes swapped (Wireshark's "swap frame control"), which shows as a protocol version
/// other than 0 in the first byte.
pub(super) fn capwap_frame(data: &[u8]) -> Result<L2<'_>, DecodeError> {
    let swapped = data.len() >= 2 && data[0] & 0x03 != 0 && data[1] & 0x03 == 0;
    frame_with(data, false, swapped)
}

fn frame_with(data: &[u8], fcs: bool, swapped: bool) -> Result<L2<'_>, DecodeError> {
    let data = if fcs {
        &data[..data.len().saturating_sub(4)]
    } else {
        data
    };
    need(data, 24, "802.11")?;
    let fc = if swapped {
        u16::from_be_bytes([data[0], data[1]])
    } else {
        u16::from_le_bytes([data[0], data[1]])
    };
    let (kind, subtype) = ((fc >> 2) & 3, (fc >> 4) & 0xf);
    // Data frames only, with data (not the null functions), not protected.
    if kind != 2 || subtype & 0x4 != 0 || fc & 0x4000 != 0 {
        return Ok(super::link::other());
    }
    let (to_ds, from_ds) = (fc & 0x0100 != 0, fc & 0x0200 != 0);
    let mut header = if to_ds && from_ds { 30 } else { 24 };
    if subtype & 0x8 != 0 {
        header += 2; // QoS control
        if fc & 0x8000 != 0 {
            header += 4; // HT control
        }
    }
    need(data, header + 8, "802.11")?;
    let (dst, src) = match (to_ds, from_ds) {
        (false, false) => (mac_at(data, 4), mac_at(data, 10)),
        (true, false) => (mac_at(data, 16), mac_at(data, 10)),
        (false, true) => (mac_at(data, 4), mac_at(data, 16)),
        (true, true) => (mac_at(data, 16), mac_at(data, 24)),
    };
    let llc = &data[header..];
    // LLC/SNAP with the RFC 1042 or 802.1H (bridge tunnel) OUI.
    if llc[..3] != [0xaa, 0xaa, 0x03] || !matches!(llc[3..6], [0, 0, 0] | [0, 0, 0xf8]) {
        return Ok(super::link::other());
    }
    let ethertype = u16::from_be_bytes([llc[6], llc[7]]);
    ethertype_chain(Some(src), Some(dst), ethertype, &llc[8..])
}
