//! Typed zero-copy views over packet bytes, one module per header (after smoltcp's `wire`).
//!
//! Each view is built with `new_checked`, which verifies that every field the accessors read is
//! inside the buffer; accessors then never panic and never allocate.

pub mod arp;
pub mod ethernet;
pub mod ipv4;
pub mod ipv6;
pub mod tcp;
pub mod udp;

/// Why a header could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The buffer ends before the header does.
    #[error("{layer} header truncated")]
    Truncated {
        /// Which header.
        layer: &'static str,
    },
    /// A field holds an impossible value.
    #[error("{layer}: {reason}")]
    Malformed {
        /// Which header.
        layer: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
}

pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

pub(crate) fn need(buf: &[u8], len: usize, layer: &'static str) -> Result<(), WireError> {
    if buf.len() < len {
        Err(WireError::Truncated { layer })
    } else {
        Ok(())
    }
}

/// A MAC address.
pub type Mac = [u8; 6];

pub(crate) fn mac_at(b: &[u8], at: usize) -> Mac {
    let mut m = [0u8; 6];
    m.copy_from_slice(&b[at..at + 6]);
    m
}
