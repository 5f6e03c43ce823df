//! The cloud side of flowmesh.
//!
//! - [`broker`]: generates everything a federated nats-server cluster needs (`flowmesh broker
//!   init`): a CA and node certificates, one config per node, accounts and per-instance keys.
//!
//! - [`registry`]: users and instances from the broker's connection events (metadata only).
//! - [`blacklist`]: the shared blacklist users report attacker IPs into.
//! - [`console`]: the web console, served over HTTPS: its files, sign-up and sign-in.
//! - [`daemon`]: `flowmesh manager`: the registry, the cloud inbox and broadcasts, its API.

pub mod blacklist;
pub mod broker;
pub mod console;
pub mod daemon;
pub mod registry;
pub mod releases;
