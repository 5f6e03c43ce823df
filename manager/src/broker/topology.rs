//! The topology file: regions, nodes, users and their instances.
//!
//! ```toml
//! host = "127.0.0.1"      # where every node listens (one machine) ...
//! base_port = 14222       # ... and ports from here, 10 per node: client, cluster, gateway,
//!                         # monitor, websocket (wss, for the web console)
//! console_origin = "https://127.0.0.1:9443"  # the only origin whose pages may use the websocket
//! [[region]]
//! name = "eu"
//! nodes = 3
//! [[region]]
//! name = "us"
//! nodes = 2
//! [[user]]
//! name = "alice"
//! identity = "alice.id"   # or public_key = "<64 hex>": recorded as the account's user id
//! sensors = ["eu-sensor"]             # each name gets credentials with that role's rights
//! collectors = ["us-collector"]
//! watchers = ["laptop-cli"]
//! ```

use std::collections::HashSet;
use std::path::Path;

use flowmesh_link::subject::validate_token;

use super::roles::Role;
use serde::{Deserialize, Serialize};

/// The whole cluster as the operator describes it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// The address nodes listen on and advertise.
    #[serde(default = "default_host")]
    pub host: String,
    /// First port of the automatic plan (5 consecutive ports per node, 10 apart).
    #[serde(default = "default_base_port")]
    pub base_port: u16,
    /// The web console's origin (`https://host:port` of the manager's console): the only
    /// origin from which browsers may open the nodes' WebSocket listeners. Default: the
    /// manager's default console address on `host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_origin: Option<String>,
    /// The regions (NATS clusters joined by gateways into one supercluster).
    #[serde(rename = "region")]
    pub regions: Vec<Region>,
    /// The cloud users: one NATS account each.
    #[serde(rename = "user", default)]
    pub users: Vec<User>,
}

/// One region: a NATS cluster of `nodes` servers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Region {
    /// Region name, e.g. `eu`; nodes are named `eu-1`, `eu-2`, ...
    pub name: String,
    /// Number of nodes.
    pub nodes: usize,
    /// Explicit ports per node, instead of the automatic plan (tests use free ports).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<NodePorts>,
}

/// The four ports of one node.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NodePorts {
    /// Client connections (TLS 1.3).
    pub client: u16,
    /// Routes within the region.
    pub cluster: u16,
    /// Gateways between regions.
    pub gateway: u16,
    /// HTTP monitoring (loopback).
    pub monitor: u16,
    /// WebSocket over TLS 1.3 for browsers (the web console); none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub websocket: Option<u16>,
}

/// A cloud user and the instances it runs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Account name.
    pub name: String,
    /// The user's public key (user id), 64 hex characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// Or the path of the user's identity file, to read the public key from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// Sensors: each gets its own credentials with the sensor role.
    #[serde(default)]
    pub sensors: Vec<String>,
    /// Collectors (the collector role).
    #[serde(default)]
    pub collectors: Vec<String>,
    /// Watch clients: alerts, status changes and remote actions only.
    #[serde(default)]
    pub watchers: Vec<String>,
}

impl User {
    /// Every instance with its role.
    pub fn instances(&self) -> Vec<(String, Role)> {
        let mut all = Vec::new();
        for (list, role) in [
            (&self.sensors, Role::Sensor),
            (&self.collectors, Role::Collector),
            (&self.watchers, Role::Watch),
        ] {
            all.extend(list.iter().map(|n| (n.clone(), role)));
        }
        all
    }
}

/// A node with its place in the topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// `region-index`, e.g. `eu-1`.
    pub name: String,
    /// Region name.
    pub region: String,
    /// Its ports.
    pub ports: NodePorts,
}

/// What is wrong with a topology.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TopologyError {
    /// Not parseable.
    #[error("topology {path}: {reason}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message.
        reason: String,
    },
    /// Semantically wrong.
    #[error("topology: {0}")]
    Invalid(String),
}

fn default_host() -> String {
    "127.0.0.1".into()
}

/// Where the manager serves the console unless told otherwise.
pub const DEFAULT_CONSOLE_PORT: u16 = 9443;

impl Topology {
    /// The console's origin: `console_origin`, or `https://host:9443`.
    pub fn console_origin(&self) -> String {
        self.console_origin
            .clone()
            .unwrap_or_else(|| format!("https://{}:{DEFAULT_CONSOLE_PORT}", self.host))
    }
}

fn default_base_port() -> u16 {
    14222
}

impl Topology {
    /// The reference topology: `eu` with 3 nodes and `us` with 2, users alice and bob.
    pub fn reference() -> Self {
        Topology {
            host: default_host(),
            base_port: default_base_port(),
            console_origin: None,
            regions: vec![
                Region {
                    name: "eu".into(),
                    nodes: 3,
                    ports: vec![],
                },
                Region {
                    name: "us".into(),
                    nodes: 2,
                    ports: vec![],
                },
            ],
            users: vec![],
        }
    }

    /// Reads and validates a topology file.
    pub fn load(path: &Path) -> Result<Self, TopologyError> {
        let parse = |reason: String| TopologyError::Parse {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| parse(e.to_string()))?;
        let topology: Topology = toml::from_str(&text).map_err(|e| parse(e.to_string()))?;
        topology.validate()?;
        Ok(topology)
    }

    /// Checks names, counts and ports.
    pub fn validate(&self) -> Result<(), TopologyError> {
        let bad = |m: String| Err(TopologyError::Invalid(m));
        if self.regions.is_empty() {
            return bad("at least one [[region]] is needed".into());
        }
        let mut names = HashSet::new();
        for r in &self.regions {
            if validate_token(&r.name).is_err() {
                return bad(format!(
                    "region name {:?} must be letters, digits, '-' or '_'",
                    r.name
                ));
            }
            if !names.insert(r.name.clone()) {
                return bad(format!("region {} appears twice", r.name));
            }
            if r.nodes == 0 {
                return bad(format!("region {} has no nodes", r.name));
            }
            if !r.ports.is_empty() && r.ports.len() != r.nodes {
                return bad(format!(
                    "region {} lists {} port sets for {} nodes",
                    r.name,
                    r.ports.len(),
                    r.nodes
                ));
            }
        }
        let mut users = HashSet::new();
        for u in &self.users {
            if validate_token(&u.name).is_err() || u.name == "SYS" || u.name == "CLOUD" {
                return bad(format!(
                    "user name {:?} must be letters, digits, '-' or '_' (and not SYS or CLOUD)",
                    u.name
                ));
            }
            if !users.insert(u.name.clone()) {
                return bad(format!("user {} appears twice", u.name));
            }
            let mut seen = HashSet::new();
            for (i, _) in u.instances() {
                if validate_token(&i).is_err() {
                    return bad(format!(
                        "instance name {i:?} of user {} must be letters, digits, '-' or '_'",
                        u.name
                    ));
                }
                if !seen.insert(i.clone()) {
                    return bad(format!("instance {i} of user {} appears twice", u.name));
                }
            }
        }
        let mut ports = HashSet::new();
        for n in self.nodes() {
            for p in [
                n.ports.client,
                n.ports.cluster,
                n.ports.gateway,
                n.ports.monitor,
            ]
            .into_iter()
            .chain(n.ports.websocket)
            {
                if p == 0 || !ports.insert(p) {
                    return bad(format!("port {p} of node {} is zero or used twice", n.name));
                }
            }
        }
        Ok(())
    }

    /// Every node with its ports, region by region.
    pub fn nodes(&self) -> Vec<Node> {
        let mut out = Vec::new();
        let mut auto = 0u16;
        for r in &self.regions {
            for i in 0..r.nodes {
                let ports = r.ports.get(i).copied().unwrap_or_else(|| {
                    let p = self.base_port.saturating_add(auto.saturating_mul(10));
                    NodePorts {
                        client: p,
                        cluster: p.saturating_add(1),
                        gateway: p.saturating_add(2),
                        monitor: p.saturating_add(3),
                        websocket: Some(p.saturating_add(4)),
                    }
                });
                auto = auto.saturating_add(1);
                out.push(Node {
                    name: format!("{}-{}", r.name, i + 1),
                    region: r.name.clone(),
                    ports,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_plan_has_five_nodes_with_distinct_ports() {
        let t = Topology::reference();
        t.validate().unwrap();
        let nodes = t.nodes();
        assert_eq!(nodes.len(), 5);
        assert_eq!(nodes[0].name, "eu-1");
        assert_eq!(nodes[3].name, "us-1");
        assert_eq!(nodes[1].ports.client, 14232);
    }

    #[test]
    fn rejects_bad_topologies() {
        let mut t = Topology::reference();
        t.regions[1].name = "eu".into();
        assert!(t.validate().is_err());
        let mut t = Topology::reference();
        t.regions[0].nodes = 0;
        assert!(t.validate().is_err());
        let mut t = Topology::reference();
        t.users.push(User {
            name: "a.b".into(),
            public_key: None,
            identity: None,
            sensors: vec![],
            collectors: vec![],
            watchers: vec![],
        });
        assert!(t.validate().is_err());
        let mut t = Topology::reference();
        t.base_port = 65530;
        assert!(t.validate().is_err());
    }

    #[test]
    fn parses_the_documented_form() {
        let t: Topology = toml::from_str(
            "base_port = 20000\n[[region]]\nname = \"eu\"\nnodes = 1\n[[user]]\nname = \"alice\"\nsensors = [\"a\"]\ncollectors = [\"c\"]\n",
        )
        .unwrap();
        t.validate().unwrap();
        assert_eq!(t.nodes()[0].ports.monitor, 20003);
        assert_eq!(
            t.users[0].instances(),
            vec![("a".into(), Role::Sensor), ("c".into(), Role::Collector)]
        );
    }
}
