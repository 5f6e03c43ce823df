//! The ACL check: an allow-list; a flow that matches no rule violates it.
//!
//! Rules are indexed by (protocol, server port) so a flow looks at the few rules that can
//! match it, not at all of them: single-port rules in a hash map, and the rest (port ranges,
//! any port, applications, other protocols) in per-protocol lists.

use std::collections::HashMap;

use flowmesh_sensor::flow::FlowRecord;

use crate::policy::{AclRule, Endpoint, Service};

/// A prepared ACL.
pub struct AclCheck {
    by_port: HashMap<(String, u16), Vec<(Endpoint, Endpoint)>>,
    general: HashMap<String, Vec<(Endpoint, Endpoint, Service)>>,
}

impl AclCheck {
    /// Indexes `rules` (ARP rules are for ARP traffic, not flows).
    pub fn new(rules: &[AclRule]) -> Self {
        let mut by_port: HashMap<(String, u16), Vec<(Endpoint, Endpoint)>> = HashMap::new();
        let mut general: HashMap<String, Vec<(Endpoint, Endpoint, Service)>> = HashMap::new();
        for r in rules {
            match r {
                AclRule::Transport {
                    proto,
                    client,
                    server,
                    service: Service::Ports(a, b),
                } if a == b => {
                    by_port
                        .entry((proto.clone(), *a))
                        .or_default()
                        .push((*client, *server));
                }
                AclRule::Transport {
                    proto,
                    client,
                    server,
                    service,
                } => {
                    general.entry(proto.clone()).or_default().push((
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
                    general.entry(proto.clone()).or_default().push((
                        *client,
                        *server,
                        Service::AnyPort,
                    ));
                }
                AclRule::Arp(_) => {}
            }
        }
        AclCheck { by_port, general }
    }

    /// Whether some rule allows the flow.
    pub fn allows(&self, f: &FlowRecord) -> bool {
        let ends = |c: &Endpoint, s: &Endpoint| c.matches(f.client_ip) && s.matches(f.server_ip);
        if let Some(list) = self.by_port.get(&(f.l4.to_string(), f.server_port))
            && list.iter().any(|(c, s)| ends(c, s))
        {
            return true;
        }
        self.general.get(f.l4).is_some_and(|list| {
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
