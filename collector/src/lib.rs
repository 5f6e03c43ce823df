//! The collector: the policy model and checks (issue 4), then the subscriber, timeseries and
//! alert store (issue 5).
//!
//! - [`policy`]: the policy file of DESIGN.md, validated with line numbers.
//! - [`checks`]: the checks, run on flow records, raising [`alert::Alert`]s.
//! - [`store`]: alerts and timeseries in redb; [`status`]: instance status from heartbeats.
//! - [`daemon`]: the collector process; [`watch`]: the subscriber `flowmesh watch` runs.
//! - [`cloud`]: reports to the cloud inbox, the cloud's shared blacklist.
//! - [`api`]: the collector's gRPC API, which the CLI uses.
//! - [`assist`]: remote-assistance sessions into the API.

pub mod alert;
pub mod api;
pub mod assist;
pub mod checks;
pub mod cloud;
pub mod daemon;
pub mod policy;
pub mod status;
pub mod store;
pub mod watch;
pub mod webhook;
