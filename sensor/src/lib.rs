//! The sensor: capture, packet decoding, flow table, L7 dissectors and devices.
//!
//! The data takes one road: [`capture`] (packets from a file or an interface) → [`wire`]
//! (typed zero-copy views) → [`decode`] (one packet to a flow key and its payload) → [`flow`]
//! (the bidirectional flow table) → [`dissect`] (application protocols) → flow records.

pub mod capture;
