//! The cloud side of flowmesh.
//!
//! - [`broker`]: generates everything a federated nats-server cluster needs (`flowmesh broker
//!   init`): a CA and node certificates, one config per node, accounts and per-instance keys.
//!
//! The instance registry, cloud inbox and status changes come with later issues.

pub mod broker;
