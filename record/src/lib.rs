//! The flow record every component shares, below both sensor and collector.
//!
//! - [`FlowRecord`]: one flow (or part of one), typed: addresses as `IpAddr`, times as
//!   integer microseconds, MACs as 6 bytes, protocol, application and tunnel names as the
//!   static strings of this build's tables. Serialized, it is DESIGN.md's JSON record.
//! - [`codec`]: to and from the protobuf `Flow` it travels as.
//! - The names: [`L7`] (master protocols, nDPI's spelling), applications ([`app_for_name`]),
//!   [`Tunnel`]s, [`DeviceType`]s, IP protocols ([`l4_name`]).

#![forbid(unsafe_code)]

mod apps;
pub mod codec;
mod device;
mod json;
mod l4;
mod l7;
mod record;
mod tunnel;

pub use apps::{app_for_name, app_named, is_app};
pub use device::DeviceType;
pub use flowmesh_link::time::{parse_rfc3339_micros, rfc3339_micros};
pub use l4::{l4_name, l4_number};
pub use l7::L7;
pub use record::{Exported, FlowRecord, mac_text};
pub use tunnel::Tunnel;

/// Whether `name` is a protocol or application flowmesh can recognise (policy files name them).
pub fn is_known_protocol(name: &str) -> bool {
    L7::from_name(name).is_some() || is_app(name) || name.eq_ignore_ascii_case("Unknown")
}
