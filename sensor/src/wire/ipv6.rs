//! IPv6 headers and the extension-header chain.

use std::net::Ipv6Addr;

use super::{WireError, be16, need};

/// A view of an IPv6 packet after walking its extension headers.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    buf: &'a [u8],
    next: u8,
    payload_at: usize,
    end: usize,
    /// (identification, offset in bytes, more fragments) of a fragment header.
    pub fragment: Option<(u32, usize, bool)>,
}

impl<'a> Packet<'a> {
    /// Checks the fixed header and walks hop-by-hop, routing, fragment, destination options,
    /// AH and mobility headers to the upper-layer protocol.
    pub fn new_checked(b: &'a [u8]) -> Result<Self, WireError> {
        need(b, 40, "ipv6")?;
        if b[0] >> 4 != 6 {
            return Err(WireError::Malformed {
                layer: "ipv6",
                reason: "version is not 6",
            });
        }
        let end = (40 + usize::from(be16(b, 4))).min(b.len());
        let mut next = b[6];
        let mut at = 40;
        let mut fragment = None;
        // Bounded: a chain longer than 8 headers is treated as malformed.
        for _ in 0..8 {
            match next {
                0 | 43 | 60 | 135 => {
                    need(&b[..end], at + 8, "ipv6 extension")?;
                    let len = (usize::from(b[at + 1]) + 1) * 8;
                    next = b[at];
                    at += len;
                }
                51 => {
                    need(&b[..end], at + 8, "ipv6 AH")?;
                    let len = (usize::from(b[at + 1]) + 2) * 4;
                    next = b[at];
                    at += len;
                }
                44 => {
                    need(&b[..end], at + 8, "ipv6 fragment")?;
                    let off = usize::from(be16(b, at + 2) & 0xfff8);
                    let more = b[at + 3] & 1 != 0;
                    let id = u32::from_be_bytes([b[at + 4], b[at + 5], b[at + 6], b[at + 7]]);
                    fragment = Some((id, off, more));
                    next = b[at];
                    at += 8;
                }
                _ => {
                    return Ok(Packet {
                        buf: b,
                        next,
                        payload_at: at.min(end),
                        end,
                        fragment,
                    });
                }
            }
            if at > end {
                return Err(WireError::Truncated {
                    layer: "ipv6 extension",
                });
            }
        }
        Err(WireError::Malformed {
            layer: "ipv6",
            reason: "extension header chain too long",
        })
    }
    /// The upper-layer protocol number.
    pub fn protocol(&self) -> u8 {
        self.next
    }
    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.buf[7]
    }
    /// Source address.
    pub fn src(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.buf[8..24]);
        Ipv6Addr::from(a)
    }
    /// Destination address.
    pub fn dst(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.buf[24..40]);
        Ipv6Addr::from(a)
    }
    /// The upper-layer bytes.
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[self.payload_at..self.end]
    }
}
