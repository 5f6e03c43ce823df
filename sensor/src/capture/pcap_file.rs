//! Classic pcap: a 24-byte file header, then a 16-byte header per record (24 for the
//! "modified" variant). Either byte order, micro- or nanosecond timestamps.
//!
//! Records are read in large chunks and handed out as slices of the chunk: a packet is copied
//! once (by the kernel, into the chunk), not again into a packet buffer.

use std::io::Read;

use super::prefetch::Prefetch;
use super::{CaptureError, LinkType, Packet, ReadOutcome, read_full};

/// Largest record accepted: larger claims are corruption, not packets.
const MAX_RECORD: u32 = 256 * 1024;
/// Bytes read from the file at once.
const CHUNK: usize = 1 << 20;
/// Room in front of a prefetched chunk for the rest of a record the previous chunk ended in.
const HEAD: usize = MAX_RECORD as usize + 64;

/// A window on the input: bytes read and not yet handed out are `buf[pos..end]`.
struct Chunk {
    buf: Vec<u8>,
    pos: usize,
    end: usize,
}

impl Chunk {
    /// Makes at least `need` bytes available unless the input ends first; returns how many are.
    fn ensure(
        &mut self,
        input: &mut impl Read,
        prefetch: Option<&mut Prefetch>,
        need: usize,
    ) -> std::io::Result<usize> {
        if self.end - self.pos >= need {
            return Ok(self.end - self.pos);
        }
        if let Some(p) = prefetch {
            return self.take_chunks(p, need);
        }
        // Whatever is left moves to the front (less than one record), then the rest fills.
        self.buf.copy_within(self.pos..self.end, 0);
        self.end -= self.pos;
        self.pos = 0;
        if self.buf.len() < need {
            self.buf.resize(need, 0);
        }
        while self.end < need {
            match input.read(&mut self.buf[self.end..]) {
                Ok(0) => break,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.end - self.pos)
    }

    /// [`Chunk::ensure`] from the reading thread: the next chunk becomes the window, with
    /// what is left of this one (part of a record) copied in front of it.
    fn take_chunks(&mut self, p: &mut Prefetch, need: usize) -> std::io::Result<usize> {
        while self.end - self.pos < need {
            let Some(next) = p.next() else { break };
            let mut next = next?;
            let left = self.end - self.pos;
            if left <= p.head {
                let start = p.head - left;
                next.buf[start..p.head].copy_from_slice(&self.buf[self.pos..self.end]);
                p.recycle(std::mem::replace(&mut self.buf, next.buf));
                self.pos = start;
                self.end = p.head + next.len;
            } else {
                // More left than the room in front (records are smaller; kept for safety).
                self.buf.copy_within(self.pos..self.end, 0);
                self.buf.truncate(left);
                self.buf
                    .extend_from_slice(&next.buf[p.head..p.head + next.len]);
                p.recycle(next.buf);
                self.pos = 0;
                self.end = self.buf.len();
            }
        }
        Ok(self.end - self.pos)
    }
}

/// Where a record header keeps its two lengths. Files of format versions before 2.3 have
/// them the other way round; 2.3 was written both ways (libpcap tells them apart by which is
/// larger), later ones have captured length first.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lengths {
    CapturedFirst,
    Swapped,
    Either,
}

/// A classic pcap reader.
pub struct PcapReader<R: Read> {
    input: R,
    lengths: Lengths,
    big_endian: bool,
    nanos: bool,
    record_extra: usize,
    link: LinkType,
    chunk: Chunk,
    /// The file read on a thread of its own (files opened by path).
    prefetch: Option<Prefetch>,
    offset: u64,
    packets: u64,
}

impl PcapReader<std::io::BufReader<std::fs::File>> {
    /// Reads the rest of the file on a thread of its own (see [`Prefetch`]); stays as it is
    /// if the file cannot be shared with a thread.
    pub(super) fn read_ahead(mut self) -> Self {
        use std::io::BufRead;
        let Ok(file) = self.input.get_ref().try_clone() else {
            return self;
        };
        // What the buffered reader holds already comes first; the thread reads on from the
        // file's offset, just after it.
        let held = self.input.buffer();
        if held.len() > self.chunk.buf.len() - self.chunk.end {
            return self;
        }
        let n = held.len();
        self.chunk.buf[self.chunk.end..self.chunk.end + n].copy_from_slice(held);
        self.chunk.end += n;
        self.input.consume(n);
        self.prefetch = Prefetch::start(file, HEAD, CHUNK);
        self
    }
}

impl<R: Read> PcapReader<R> {
    /// `None` when `magic` is not a pcap magic number.
    pub(super) fn new(mut input: R, magic: [u8; 4]) -> Option<Result<Self, CaptureError>> {
        let (big_endian, nanos, record_extra) = match magic {
            [0xd4, 0xc3, 0xb2, 0xa1] => (false, false, 0),
            [0xa1, 0xb2, 0xc3, 0xd4] => (true, false, 0),
            [0x4d, 0x3c, 0xb2, 0xa1] => (false, true, 0),
            [0xa1, 0xb2, 0x3c, 0x4d] => (true, true, 0),
            [0x34, 0xcd, 0xb2, 0xa1] => (false, false, 8),
            [0xa1, 0xb2, 0xcd, 0x34] => (true, false, 8),
            _ => return None,
        };
        let mut rest = [0u8; 20];
        Some(match read_full(&mut input, &mut rest) {
            Err(e) => Err(e.into()),
            Ok(ReadOutcome::Full) => {
                let raw = [rest[16], rest[17], rest[18], rest[19]];
                let network = if big_endian {
                    u32::from_be_bytes(raw)
                } else {
                    u32::from_le_bytes(raw)
                };
                let u16_of = |b: [u8; 2]| {
                    if big_endian {
                        u16::from_be_bytes(b)
                    } else {
                        u16::from_le_bytes(b)
                    }
                };
                let (major, minor) = (u16_of([rest[0], rest[1]]), u16_of([rest[2], rest[3]]));
                let lengths = match (major, minor) {
                    (2, 0..=2) | (543, _) => Lengths::Swapped,
                    (2, 3) => Lengths::Either,
                    _ => Lengths::CapturedFirst,
                };
                Ok(PcapReader {
                    input,
                    lengths,
                    big_endian,
                    nanos,
                    record_extra,
                    // The upper bits carry FCS length flags; the link type is the low 16.
                    link: LinkType((network & 0xffff) as u16),
                    chunk: Chunk {
                        buf: vec![0; CHUNK],
                        pos: 0,
                        end: 0,
                    },
                    prefetch: None,
                    offset: 24,
                    packets: 0,
                })
            }
            Ok(_) => Err(CaptureError::Truncated {
                offset: 4,
                packets: 0,
            }),
        })
    }

    fn u32_at(&self, b: &[u8]) -> u32 {
        let raw = [b[0], b[1], b[2], b[3]];
        if self.big_endian {
            u32::from_be_bytes(raw)
        } else {
            u32::from_le_bytes(raw)
        }
    }

    /// The next packet, `None` at the clean end of the file.
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, CaptureError> {
        let hlen = 16 + self.record_extra;
        let truncated = |avail: usize, r: &Self| CaptureError::Truncated {
            offset: r.offset + avail as u64,
            packets: r.packets,
        };
        match self
            .chunk
            .ensure(&mut self.input, self.prefetch.as_mut(), hlen)?
        {
            0 => return Ok(None),
            n if n < hlen => return Err(truncated(n, self)),
            _ => {}
        }
        let hdr = &self.chunk.buf[self.chunk.pos..self.chunk.pos + hlen];
        let sec = self.u32_at(&hdr[0..4]) as i64;
        let frac = self.u32_at(&hdr[4..8]) as i64;
        let (mut caplen, mut wire_len) = (self.u32_at(&hdr[8..12]), self.u32_at(&hdr[12..16]));
        if self.lengths == Lengths::Swapped
            || (self.lengths == Lengths::Either && caplen > wire_len)
        {
            std::mem::swap(&mut caplen, &mut wire_len);
        }
        if caplen > MAX_RECORD {
            return Err(CaptureError::Malformed {
                offset: self.offset,
                reason: format!("record claims {caplen} bytes"),
            });
        }
        let total = hlen + caplen as usize;
        let avail = self
            .chunk
            .ensure(&mut self.input, self.prefetch.as_mut(), total)?;
        if avail < total {
            return Err(truncated(avail, self));
        }
        let start = self.chunk.pos + hlen;
        self.chunk.pos += total;
        self.offset += total as u64;
        self.packets += 1;
        let ts_micros = sec * 1_000_000 + if self.nanos { frac / 1000 } else { frac };
        Ok(Some(Packet {
            ts_micros,
            data: &self.chunk.buf[start..start + caplen as usize],
            wire_len: wire_len.max(caplen),
            link: self.link,
        }))
    }
}
