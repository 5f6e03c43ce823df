//! TCP headers.

use super::{WireError, be16, be32, need};

/// FIN flag.
pub const FIN: u8 = 0x01;
/// SYN flag.
pub const SYN: u8 = 0x02;
/// RST flag.
pub const RST: u8 = 0x04;
/// PSH flag.
pub const PSH: u8 = 0x08;
/// ACK flag.
pub const ACK: u8 = 0x10;

/// A view of a TCP segment.
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    buf: &'a [u8],
    header_len: usize,
}

impl<'a> Segment<'a> {
    /// Checks the fixed header; a data offset past the captured bytes leaves an empty payload,
    /// and so does an impossible one (below 5, a damaged or crafted header): the segment still
    /// counts in its flow, but nothing in it is inspected.
    pub fn new_checked(b: &'a [u8]) -> Result<Self, WireError> {
        need(b, 20, "tcp")?;
        let mut header_len = usize::from(b[12] >> 4) * 4;
        if header_len < 20 {
            header_len = b.len();
        }
        Ok(Segment {
            buf: b,
            header_len: header_len.min(b.len()),
        })
    }
    /// Source port.
    pub fn src_port(&self) -> u16 {
        be16(self.buf, 0)
    }
    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        be16(self.buf, 2)
    }
    /// Sequence number.
    pub fn seq(&self) -> u32 {
        be32(self.buf, 4)
    }
    /// Flags (FIN, SYN, RST, PSH, ACK, URG, ECE, CWR).
    pub fn flags(&self) -> u8 {
        self.buf[13]
    }
    /// The segment's data.
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[self.header_len..]
    }
}
