//! The policy: the TOML file of DESIGN.md, validated into a model the checks use.
//!
//! Validation collects every error, each with its line, rather than stopping at the first; a
//! policy with any error is not applied at all.

pub mod acl;
pub mod edit;
mod model;
pub mod net;
mod parse;
pub mod units;

pub use acl::{AclRule, Service};
pub use edit::{Edit, EditError};
pub use model::*;
pub use net::{Cidr, Endpoint, Mac};
pub use parse::parse;

/// Imports ntopng rule lines into a policy file's `[acl]` (appending, or replacing the rules),
/// keeping the rest of the file as written. Nothing is returned unless every line is valid and
/// the resulting policy validates.
pub fn import_acl(policy_text: &str, rules_text: &str, replace: bool) -> Result<String, EditError> {
    edit::apply(
        policy_text,
        &Edit::AclImport {
            text: rules_text.to_string(),
            replace,
        },
    )
    .map(|a| a.text)
}
