//! The bidirectional flow table: packets to flows, client = initiator, per-direction counters,
//! idle expiry, bounded memory.

mod direction;
mod expect;
mod key;
mod table;
mod to_record;

pub use flowmesh_record::{
    FlowRecord, l4_name, l4_number, mac_text, parse_rfc3339_micros, rfc3339_micros,
};
pub use key::FlowKey;
pub use table::{
    Flow, FlowTable, LIVE_TCP_CLOSE_GRACE_MICROS, PERIOD_MICROS, TableConfig, TableStats,
};
