//! The collector: the policy model and checks (issue 4), then the subscriber, timeseries and
//! alert store (issue 5).
//!
//! - [`policy`]: the policy file of DESIGN.md, validated with line numbers.
//! - [`checks`]: the checks, run on flow records, raising [`alert::Alert`]s.

pub mod alert;
pub mod checks;
pub mod offline;
pub mod policy;
pub mod store;
