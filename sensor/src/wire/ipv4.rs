//! IPv4 headers.

use std::net::Ipv4Addr;

use super::{WireError, be16, need};

/// A view of an IPv4 packet, its payload cut to the header's total length.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    buf: &'a [u8],
    header_len: usize,
    end: usize,
}

impl<'a> Packet<'a> {
    /// Checks version, header length and total length (a capture may cut the payload short:
    /// the payload is then what was captured).
    pub fn new_checked(b: &'a [u8]) -> Result<Self, WireError> {
        need(b, 20, "ipv4")?;
        if b[0] >> 4 != 4 {
            return Err(WireError::Malformed {
                layer: "ipv4",
                reason: "version is not 4",
            });
        }
        let header_len = usize::from(b[0] & 0x0f) * 4;
        if header_len < 20 {
            return Err(WireError::Malformed {
                layer: "ipv4",
                reason: "header length below 20",
            });
        }
        need(b, header_len, "ipv4")?;
        let total = usize::from(be16(b, 2));
        if total < header_len {
            return Err(WireError::Malformed {
                layer: "ipv4",
                reason: "total length below header length",
            });
        }
        Ok(Packet {
            buf: b,
            header_len,
            end: total.min(b.len()),
        })
    }
    /// Identification (for fragments).
    pub fn ident(&self) -> u16 {
        be16(self.buf, 4)
    }
    /// More-fragments flag.
    pub fn more_fragments(&self) -> bool {
        self.buf[6] & 0x20 != 0
    }
    /// Fragment offset in bytes.
    pub fn fragment_offset(&self) -> usize {
        usize::from(be16(self.buf, 6) & 0x1fff) * 8
    }
    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.buf[8]
    }
    /// The next protocol number.
    pub fn protocol(&self) -> u8 {
        self.buf[9]
    }
    /// Source address.
    pub fn src(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.buf[12], self.buf[13], self.buf[14], self.buf[15])
    }
    /// Destination address.
    pub fn dst(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.buf[16], self.buf[17], self.buf[18], self.buf[19])
    }
    /// The bytes after the header, up to the total length.
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[self.header_len.min(self.end)..self.end]
    }
}
