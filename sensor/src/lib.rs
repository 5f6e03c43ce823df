//! The sensor: capture, packet decoding, flow table, L7 dissectors and devices.
//!
//! The data takes one road: [`capture`] (packets from a file) → [`wire`] (typed zero-copy
//! views) → [`decode`] (one packet to a flow tuple and its payload) → [`flow`] (the
//! bidirectional flow table) → [`dissect`] (application protocols) → [`flow::FlowRecord`]s.
//! [`offline`] runs the whole road over a capture file; [`daemon`] runs it as the sensor,
//! publishing through [`publish`] (batches, sealing, the disk outbox) and answering remote
//! actions through [`control`].

pub mod capture;
pub mod daemon;
pub mod decode;
pub mod devices;
pub mod dissect;
pub mod flow;
pub mod netflow;
pub mod offline;
pub mod parallel;
pub mod publish;
pub mod source;
pub mod synth;
pub mod wire;

/// The cores this process may run on (its CPU affinity counts): the default for flow
/// workers, and whether a file is worth reading on a thread of its own.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}
