//! The ACL check: an allow-list; a flow that matches no rule violates it.
//!
//! Rules are indexed by (protocol, server port) so a flow looks at the few rules that can
//! match it, not at all of them: single-port rules in a hash map, and the rest (port ranges,
//! any port, applications, other protocols) in per-protocol lists.

use std::collections::HashMap;

use flowmesh_record::FlowRecord;

use crate::policy::{AclRule, Endpoint, Service};

/// A prepared ACL. Protocols are kept as their small codes so a lookup allocates nothing.
pub struct AclCheck {
    by_port: HashMap<(u8, u16), Vec<(Endpoint, Endpoint)>>,
    general: HashMap<u8, Vec<(Endpoint, Endpoint, Service)>>,
    arp: std::collections::HashSet<[u8; 6]>,
}

/// A small code per protocol name (255 for a name without a number).
fn code(proto: &str) -> u8 {
    flowmesh_record::l4_number(proto).unwrap_or(255)
}

impl AclCheck {
    /// Indexes `rules` (ARP rules are for ARP traffic, not flows).
    pub fn new(rules: &[AclRule]) -> Self {
        let mut by_port: HashMap<(u8, u16), Vec<(Endpoint, Endpoint)>> = HashMap::new();
        let mut general: HashMap<u8, Vec<(Endpoint, Endpoint, Service)>> = HashMap::new();
        for r in rules {
            match r {
                AclRule::Transport {
                    proto,
                    client,
                    server,
                    service: Service::Ports(a, b),
                } if a == b => {
                    by_port
                        .entry((code(proto), *a))
                        .or_default()
                        .push((*client, *server));
                }
                AclRule::Transport {
                    proto,
                    client,
                    server,
                    service,
                } => {
                    general.entry(code(proto)).or_default().push((
                        *client,
                        *server,
                        service.clone(),
                    ));
                }
                AclRule::Other {
                    proto,
                    client,
                    server,
                } => {
                    general.entry(code(proto)).or_default().push((
                        *client,
                        *server,
                        Service::AnyPort,
                    ));
                }
                AclRule::Arp(_) => {}
            }
        }
        let arp = rules
            .iter()
            .filter_map(|r| match r {
                AclRule::Arp(m) => Some(m.0),
                _ => None,
            })
            .collect();
        AclCheck {
            by_port,
            general,
            arp,
        }
    }

    /// Whether an `ARP;MAC` rule allows ARP from this MAC.
    pub fn allows_arp(&self, mac: &[u8; 6]) -> bool {
        self.arp.contains(mac)
    }

    /// Whether some rule allows the flow.
    pub fn allows(&self, f: &FlowRecord) -> bool {
        let ends = |c: &Endpoint, s: &Endpoint| c.matches(f.client_ip) && s.matches(f.server_ip);
        let proto = code(f.l4);
        if let Some(list) = self.by_port.get(&(proto, f.server_port))
            && list.iter().any(|(c, s)| ends(c, s))
        {
            return true;
        }
        self.general.get(&proto).is_some_and(|list| {
            list.iter().any(|(c, s, svc)| {
                ends(c, s)
                    && match svc {
                        Service::AnyPort => true,
                        Service::Ports(a, b) => (*a..=*b).contains(&f.server_port),
                        Service::App(name) => {
                            f.l7.eq_ignore_ascii_case(name)
                                || f.app.is_some_and(|a| a.eq_ignore_ascii_case(name))
                        }
                    }
            })
        })
    }
}
