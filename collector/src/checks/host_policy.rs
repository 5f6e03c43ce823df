//! Host policy: a restricted host reaching a public address that is not whitelisted, a
//! restricted host reaching a core host, a core host reaching anything not whitelisted.

use std::net::IpAddr;

use flowmesh_record::FlowRecord;

use crate::policy::{Cidr, HostPolicy};

/// A prepared host policy.
pub struct HostPolicyCheck {
    restricted: Vec<Cidr>,
    core: Vec<Cidr>,
    whitelisted: Vec<Cidr>,
}

fn any(list: &[Cidr], ip: IpAddr) -> bool {
    list.iter().any(|c| c.contains(ip))
}

pub use flowmesh_link::addr::is_public;

impl HostPolicyCheck {
    /// Prepares the lists.
    pub fn new(p: &HostPolicy) -> Self {
        HostPolicyCheck {
            restricted: p.restricted.clone(),
            core: p.core.clone(),
            whitelisted: p.whitelisted.clone(),
        }
    }

    /// The reason this flow breaks the policy, if it does.
    pub fn violation(&self, f: &FlowRecord) -> Option<&'static str> {
        let (c, s) = (f.client_ip, f.server_ip);
        if any(&self.restricted, c) {
            if any(&self.core, s) {
                return Some("restricted_to_core");
            }
            if is_public(s) && !any(&self.whitelisted, s) {
                return Some("restricted_to_public");
            }
        }
        if any(&self.core, c) && !any(&self.whitelisted, s) {
            return Some("core_to_not_whitelisted");
        }
        None
    }
}
