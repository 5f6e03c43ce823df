//! pcapng: a sequence of blocks (type, length, body, length). Section headers fix the byte
//! order, interface descriptions the link type and timestamp resolution of their packets.

use std::io::Read;

use super::{CaptureError, LinkType, Packet, ReadOutcome, read_full};

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 1;
const OBSOLETE_PB: u32 = 2;
const SPB: u32 = 3;
const EPB: u32 = 6;
/// Largest block accepted: larger claims are corruption.
const MAX_BLOCK: u32 = 16 * 1024 * 1024;

#[derive(Clone, Copy)]
struct Interface {
    link: LinkType,
    snaplen: u32,
    /// Timestamp units per second.
    units_per_sec: u64,
}

/// A pcapng reader.
pub struct PcapNgReader<R: Read> {
    input: R,
    big_endian: bool,
    interfaces: Vec<Interface>,
    block: Vec<u8>,
    offset: u64,
    packets: u64,
    pending_shb: Option<[u8; 4]>,
}

impl<R: Read> PcapNgReader<R> {
    pub(super) fn new(input: R, magic: [u8; 4]) -> Result<Self, CaptureError> {
        Ok(PcapNgReader {
            input,
            big_endian: false,
            interfaces: Vec::new(),
            block: Vec::with_capacity(65536),
            offset: 0,
            packets: 0,
            pending_shb: Some(magic),
        })
    }

    fn u32(&self, b: &[u8]) -> u32 {
        let raw = [b[0], b[1], b[2], b[3]];
        if self.big_endian {
            u32::from_be_bytes(raw)
        } else {
            u32::from_le_bytes(raw)
        }
    }

    fn u16(&self, b: &[u8]) -> u16 {
        let raw = [b[0], b[1]];
        if self.big_endian {
            u16::from_be_bytes(raw)
        } else {
            u16::from_le_bytes(raw)
        }
    }

    fn truncated(&self, extra: usize) -> CaptureError {
        CaptureError::Truncated {
            offset: self.offset + extra as u64,
            packets: self.packets,
        }
    }

    fn malformed(&self, reason: impl Into<String>) -> CaptureError {
        CaptureError::Malformed {
            offset: self.offset,
            reason: reason.into(),
        }
    }

    /// Reads the next block into `self.block` (body only); returns its type.
    fn read_block(&mut self) -> Result<Option<u32>, CaptureError> {
        let mut head = [0u8; 8];
        let start = match self.pending_shb.take() {
            Some(magic) => {
                head[..4].copy_from_slice(&magic);
                4
            }
            None => 0,
        };
        match read_full(&mut self.input, &mut head[start..])? {
            ReadOutcome::Full => {}
            ReadOutcome::End if start == 0 => return Ok(None),
            ReadOutcome::End => return Err(self.truncated(start)),
            ReadOutcome::Short(n) => return Err(self.truncated(start + n)),
        }
        let raw_type = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        if raw_type == SHB {
            // The byte-order magic follows the length; read it to learn the order first.
            let mut bom = [0u8; 4];
            match read_full(&mut self.input, &mut bom)? {
                ReadOutcome::Full => {}
                _ => return Err(self.truncated(8)),
            }
            self.big_endian = match bom {
                [0x4d, 0x3c, 0x2b, 0x1a] => false,
                [0x1a, 0x2b, 0x3c, 0x4d] => true,
                _ => return Err(self.malformed("section header with an unknown byte-order magic")),
            };
            let len = self.u32(&head[4..8]);
            if !(28..=MAX_BLOCK).contains(&len) || !len.is_multiple_of(4) {
                return Err(self.malformed(format!("section header length {len}")));
            }
            self.block.resize(len as usize - 12, 0);
            self.fill_block(12)?;
            // A new section starts a new interface list.
            self.interfaces.clear();
            self.offset += len as u64;
            return Ok(Some(SHB));
        }
        let block_type = self.u32(&head[0..4]);
        let len = self.u32(&head[4..8]);
        if !(12..=MAX_BLOCK).contains(&len) || !len.is_multiple_of(4) {
            return Err(self.malformed(format!("block of type {block_type:#x} with length {len}")));
        }
        self.block.resize(len as usize - 8, 0);
        self.fill_block(8)?;
        self.offset += len as u64;
        Ok(Some(block_type))
    }

    fn fill_block(&mut self, already: usize) -> Result<(), CaptureError> {
        let mut block = std::mem::take(&mut self.block);
        let outcome = read_full(&mut self.input, &mut block);
        self.block = block;
        match outcome? {
            ReadOutcome::Full => Ok(()),
            ReadOutcome::End => Err(self.truncated(already)),
            ReadOutcome::Short(n) => Err(self.truncated(already + n)),
        }
    }

    fn add_interface(&mut self) -> Result<(), CaptureError> {
        let body_len = self.block.len().saturating_sub(4);
        if body_len < 8 {
            return Err(self.malformed("interface description too short"));
        }
        let link = LinkType(self.u16(&self.block[0..2]));
        let snaplen = self.u32(&self.block[4..8]);
        let mut units_per_sec = 1_000_000u64;
        // Options: code u16, length u16, value padded to 4.
        let mut i = 8;
        while i + 4 <= body_len {
            let code = self.u16(&self.block[i..i + 2]);
            let olen = self.u16(&self.block[i + 2..i + 4]) as usize;
            let v = i + 4;
            if code == 0 || v + olen > body_len {
                break;
            }
            if code == 9 && olen >= 1 {
                let r = self.block[v];
                units_per_sec = if r & 0x80 == 0 {
                    10u64.checked_pow(u32::from(r)).unwrap_or(1_000_000)
                } else {
                    1u64.checked_shl(u32::from(r & 0x7f)).unwrap_or(1_000_000)
                };
            }
            i = v + olen.div_ceil(4) * 4;
        }
        self.interfaces.push(Interface {
            link,
            snaplen,
            units_per_sec: units_per_sec.max(1),
        });
        Ok(())
    }

    fn micros(ts: u64, units_per_sec: u64) -> i64 {
        let secs = ts / units_per_sec;
        let frac = ts % units_per_sec;
        (secs as i64).saturating_mul(1_000_000)
            + ((frac as u128 * 1_000_000) / units_per_sec as u128) as i64
    }

    /// The next packet, `None` at the clean end of the file.
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, CaptureError> {
        loop {
            let Some(kind) = self.read_block()? else {
                return Ok(None);
            };
            let body_len = self.block.len().saturating_sub(4);
            let (iface, ts, start, caplen, wire_len) = match kind {
                IDB => {
                    self.add_interface()?;
                    continue;
                }
                EPB | OBSOLETE_PB => {
                    if body_len < 20 {
                        return Err(self.malformed("packet block too short"));
                    }
                    let (iface, ts_at) = if kind == EPB {
                        (self.u32(&self.block[0..4]) as usize, 4)
                    } else {
                        (self.u16(&self.block[0..2]) as usize, 4)
                    };
                    let ts = (u64::from(self.u32(&self.block[ts_at..ts_at + 4])) << 32)
                        | u64::from(self.u32(&self.block[ts_at + 4..ts_at + 8]));
                    let caplen = self.u32(&self.block[12..16]) as usize;
                    let wire = self.u32(&self.block[16..20]);
                    (iface, Some(ts), 20, caplen, wire)
                }
                SPB => {
                    if body_len < 4 {
                        return Err(self.malformed("simple packet block too short"));
                    }
                    let wire = self.u32(&self.block[0..4]);
                    let snap = self.interfaces.first().map_or(u32::MAX, |i| i.snaplen);
                    let snap = if snap == 0 { u32::MAX } else { snap };
                    let caplen = (wire.min(snap) as usize).min(body_len - 4);
                    (0, None, 4, caplen, wire)
                }
                _ => continue,
            };
            let Some(info) = self.interfaces.get(iface).copied() else {
                return Err(self.malformed(format!("packet on undeclared interface {iface}")));
            };
            if start + caplen > body_len {
                return Err(self.malformed(format!("packet of {caplen} bytes overruns its block")));
            }
            self.packets += 1;
            return Ok(Some(Packet {
                ts_micros: ts.map_or(0, |t| Self::micros(t, info.units_per_sec)),
                data: &self.block[start..start + caplen],
                wire_len: wire_len.max(caplen as u32),
                link: info.link,
            }));
        }
    }
}
