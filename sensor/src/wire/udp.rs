//! UDP headers.

use super::{WireError, be16, need};

/// A view of a UDP datagram.
#[derive(Debug, Clone, Copy)]
pub struct Datagram<'a>(&'a [u8]);

impl<'a> Datagram<'a> {
    /// Checks the 8-byte header.
    pub fn new_checked(b: &'a [u8]) -> Result<Self, WireError> {
        need(b, 8, "udp")?;
        Ok(Datagram(b))
    }
    /// Source port.
    pub fn src_port(&self) -> u16 {
        be16(self.0, 0)
    }
    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        be16(self.0, 2)
    }
    /// The datagram's data, cut to the length field when it is shorter than what was captured.
    pub fn payload(&self) -> &'a [u8] {
        let len = usize::from(be16(self.0, 4));
        let end = if (8..=self.0.len()).contains(&len) {
            len
        } else {
            self.0.len()
        };
        &self.0[8..end]
    }
}
