//! Host policy: a restricted host reaching a public address that is not whitelisted, a
//! restricted host reaching a core host, a core host reaching anything not whitelisted.

use std::net::IpAddr;

use flowmesh_sensor::flow::FlowRecord;

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

/// Whether an address is routable on the internet (not private, loopback, link-local, shared,
/// multicast, documentation or unspecified).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            !(a.is_private()
                || a.is_loopback()
                || a.is_link_local()
                || a.is_multicast()
                || a.is_broadcast()
                || a.is_unspecified()
                || a.is_documentation()
                || (o[0] == 100 && (64..128).contains(&o[1])))
        }
        IpAddr::V6(a) => {
            let s0 = a.segments()[0];
            !(a.is_loopback()
                || a.is_multicast()
                || a.is_unspecified()
                || (s0 & 0xffc0) == 0xfe80
                || (s0 & 0xfe00) == 0xfc00)
        }
    }
}

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
