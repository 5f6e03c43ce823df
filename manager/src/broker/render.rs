//! Rendering: accounts with per-instance nkeys, one nats-server config per node, the node list.

use std::fmt::Write as _;
use std::path::Path;

use flowmesh_link::subject::cloud;
use flowmesh_link::{Identity, secret_file};
use serde::{Deserialize, Serialize};

use super::BrokerError;
use super::topology::{Node, Topology};

/// One instance's login: its name and public nkey.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Member {
    /// The instance name.
    pub instance: String,
    /// Its public nkey (the seed is only in `creds/<account>/<instance>.nk`).
    pub nkey: String,
}

/// One account and the public nkeys allowed to log into it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Account {
    /// The account (user) name.
    pub name: String,
    /// The user's public key (hex), for cloud users.
    pub user_id: Option<String>,
    /// Its logins.
    pub members: Vec<Member>,
}

/// The system account (the manager's view of connections), the cloud account (the manager's
/// inbox and broadcasts) and one account per cloud user. Kept in `accounts.json` so users and
/// instances can be added and revoked later (`flowmesh enroll`, `flowmesh revoke`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Accounts {
    /// `SYS`.
    pub system: Account,
    /// `CLOUD`.
    pub cloud: Account,
    /// The users.
    pub users: Vec<Account>,
}

/// The system account's name.
pub const SYSTEM: &str = "SYS";
/// The cloud account's name.
pub const CLOUD: &str = "CLOUD";

/// Creates a login for `instance` in `account`: the seed goes to `creds/`, the public key back.
pub fn new_member(out: &Path, account: &str, instance: &str) -> Result<Member, BrokerError> {
    let kp = nkeys::KeyPair::new_user();
    let seed = kp.seed().map_err(|e| BrokerError::Nkey(e.to_string()))?;
    let body =
        format!("# nkey seed of {instance} in account {account}: PRIVATE (mode 0600)\n{seed}\n");
    secret_file::write(
        &out.join(format!("creds/{account}/{instance}.nk")),
        body.as_bytes(),
        true,
    )?;
    Ok(Member {
        instance: instance.to_string(),
        nkey: kp.public_key(),
    })
}

impl Accounts {
    /// Creates a fresh nkey for every instance (seeds written under `out/creds`) and for the
    /// manager's logins to the system and cloud accounts.
    pub fn generate(topology: &Topology, base: &Path, out: &Path) -> Result<Self, BrokerError> {
        let system = Account {
            name: SYSTEM.into(),
            user_id: None,
            members: vec![new_member(out, SYSTEM, "manager")?],
        };
        let cloud = Account {
            name: CLOUD.into(),
            user_id: None,
            members: vec![new_member(out, CLOUD, "manager")?],
        };
        let mut users = Vec::new();
        for u in &topology.users {
            let user_id = match (&u.public_key, &u.identity) {
                (Some(k), _) => Some(k.clone()),
                (None, Some(path)) => {
                    let id = Identity::load(&base.join(path)).map_err(|e| {
                        BrokerError::Topology(super::TopologyError::Invalid(format!(
                            "user {}: {e}",
                            u.name
                        )))
                    })?;
                    Some(id.public().to_hex())
                }
                (None, None) => None,
            };
            let mut members = Vec::new();
            for i in &u.instances {
                members.push(new_member(out, &u.name, i)?);
            }
            users.push(Account {
                name: u.name.clone(),
                user_id,
                members,
            });
        }
        Ok(Accounts {
            system,
            cloud,
            users,
        })
    }

    /// Reads `accounts.json` of a generated directory.
    pub fn load(out: &Path) -> Result<Self, BrokerError> {
        let path = out.join("accounts.json");
        let text = std::fs::read_to_string(&path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                BrokerError::Topology(super::TopologyError::Invalid(format!(
                    "{} not found: {} is not a cluster directory, or was generated before \
                     enrollment existed (regenerate it with `flowmesh broker init --force`)",
                    path.display(),
                    out.display()
                )))
            } else {
                BrokerError::Io {
                    path: path.clone(),
                    source,
                }
            }
        })?;
        serde_json::from_str(&text).map_err(|e| {
            BrokerError::Topology(super::TopologyError::Invalid(format!(
                "{}: {e}",
                path.display()
            )))
        })
    }

    /// Writes `accounts.json` (public keys only).
    pub fn save(&self, out: &Path) -> Result<(), BrokerError> {
        let json = serde_json::to_string_pretty(self)
            .map_err(|e| BrokerError::Topology(super::TopologyError::Invalid(e.to_string())))?;
        super::write_file(&out.join("accounts.json"), &json)
    }

    /// The account of user `name`.
    pub fn user_mut(&mut self, name: &str) -> Option<&mut Account> {
        self.users.iter_mut().find(|a| a.name == name)
    }
}

fn tls_block(out: &mut String, node: &str, indent: &str, verify: bool, client_port: bool) {
    let _ = writeln!(out, "{indent}tls {{");
    let _ = writeln!(out, "{indent}  cert_file: \"nodes/{node}.pem\"");
    let _ = writeln!(out, "{indent}  key_file: \"secrets/{node}-key.pem\"");
    let _ = writeln!(out, "{indent}  ca_file: \"ca.pem\"");
    let _ = writeln!(out, "{indent}  min_version: \"1.3\"");
    if verify {
        let _ = writeln!(out, "{indent}  verify: true");
    }
    if client_port {
        // TLS before any plaintext byte, INFO included; flowmesh clients use tls_first.
        let _ = writeln!(out, "{indent}  handshake_first: true");
    }
    let _ = writeln!(out, "{indent}  timeout: 3");
    let _ = writeln!(out, "{indent}}}");
}

/// How an account's block is written: its exports and imports.
enum Role {
    System,
    Cloud,
    User,
}

fn account_block(out: &mut String, a: &Account, role: Role) {
    if let Some(id) = &a.user_id {
        let _ = writeln!(out, "  # user id {id}");
    }
    let _ = writeln!(out, "  {}: {{", a.name);
    match role {
        Role::System => {}
        Role::Cloud => {
            // The cloud inbox is a service each user reaches only on its own subject; the
            // broadcasts are streams each user receives only on its own subject.
            let _ = writeln!(out, "    exports: [");
            let _ = writeln!(out, "      {{ service: \"{}.*\" }}", cloud::INBOX);
            let _ = writeln!(out, "      {{ stream: \"{}.*\" }}", cloud::BROADCAST);
            let _ = writeln!(out, "    ]");
        }
        Role::User => {
            let _ = writeln!(out, "    jetstream: enabled");
            let _ = writeln!(out, "    imports: [");
            let _ = writeln!(
                out,
                "      {{ service: {{ account: {CLOUD}, subject: \"{}.{}\" }}, to: \"{}\" }}",
                cloud::INBOX,
                a.name,
                cloud::INBOX
            );
            let _ = writeln!(
                out,
                "      {{ stream: {{ account: {CLOUD}, subject: \"{}.{}\" }} }}",
                cloud::BROADCAST,
                a.name
            );
            let _ = writeln!(out, "    ]");
        }
    }
    let _ = writeln!(out, "    users: [");
    for m in &a.members {
        let _ = writeln!(out, "      {{ nkey: \"{}\" }}  # {}", m.nkey, m.instance);
    }
    let _ = writeln!(out, "    ]");
    let _ = writeln!(out, "  }}");
}

/// The nats-server configuration of `node`.
pub fn node_config(t: &Topology, node: &Node, all: &[Node], accounts: &Accounts) -> String {
    let host = &t.host;
    let p = node.ports;
    let mut c = String::new();
    let _ = writeln!(
        c,
        "# Generated by `flowmesh broker init`: node {} of region {}.",
        node.name, node.region
    );
    let _ = writeln!(
        c,
        "# Paths are relative to the generated directory: start nats-server there."
    );
    let _ = writeln!(c, "server_name: \"{}\"", node.name);
    let _ = writeln!(c, "listen: \"{host}:{}\"", p.client);
    let _ = writeln!(c, "http: \"127.0.0.1:{}\"", p.monitor);
    let _ = writeln!(c, "max_payload: 4MB");
    let _ = writeln!(c, "ping_interval: \"20s\"\n");
    tls_block(&mut c, &node.name, "", false, true);

    let _ = writeln!(c, "\ncluster {{");
    let _ = writeln!(c, "  name: \"{}\"", node.region);
    let _ = writeln!(c, "  listen: \"{host}:{}\"", p.cluster);
    let _ = writeln!(c, "  routes: [");
    for peer in all
        .iter()
        .filter(|n| n.region == node.region && n.name != node.name)
    {
        let _ = writeln!(c, "    \"nats-route://{host}:{}\"", peer.ports.cluster);
    }
    let _ = writeln!(c, "  ]");
    tls_block(&mut c, &node.name, "  ", true, false);
    let _ = writeln!(c, "}}");

    let _ = writeln!(c, "\ngateway {{");
    let _ = writeln!(c, "  name: \"{}\"", node.region);
    let _ = writeln!(c, "  listen: \"{host}:{}\"", p.gateway);
    let _ = writeln!(c, "  gateways: [");
    for r in &t.regions {
        let urls: Vec<String> = all
            .iter()
            .filter(|n| n.region == r.name)
            .map(|n| format!("\"nats://{host}:{}\"", n.ports.gateway))
            .collect();
        let _ = writeln!(
            c,
            "    {{ name: \"{}\", urls: [{}] }}",
            r.name,
            urls.join(", ")
        );
    }
    let _ = writeln!(c, "  ]");
    tls_block(&mut c, &node.name, "  ", true, false);
    let _ = writeln!(c, "}}");

    let _ = writeln!(c, "\njetstream {{");
    let _ = writeln!(c, "  store_dir: \"jetstream/{}\"", node.name);
    let _ = writeln!(c, "  max_memory_store: 256MB");
    let _ = writeln!(c, "  max_file_store: 4GB");
    let _ = writeln!(c, "}}");

    let _ = writeln!(
        c,
        "\n# One account per cloud user: the broker keeps users apart."
    );
    let _ = writeln!(c, "system_account: {SYSTEM}");
    let _ = writeln!(c, "accounts {{");
    account_block(&mut c, &accounts.system, Role::System);
    account_block(&mut c, &accounts.cloud, Role::Cloud);
    for a in &accounts.users {
        account_block(&mut c, a, Role::User);
    }
    let _ = writeln!(c, "}}");
    c
}

/// One line of `nodes.tsv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSummary {
    /// Node name.
    pub name: String,
    /// Region name.
    pub region: String,
    /// Config file, relative to the generated directory.
    pub config: String,
    /// `tls://host:port` for clients.
    pub client_url: String,
    /// `http://127.0.0.1:port` for monitoring.
    pub monitor_url: String,
}

pub fn summaries(t: &Topology, nodes: &[Node]) -> Vec<NodeSummary> {
    nodes
        .iter()
        .map(|n| NodeSummary {
            name: n.name.clone(),
            region: n.region.clone(),
            config: format!("nodes/{}.conf", n.name),
            client_url: format!("tls://{}:{}", t.host, n.ports.client),
            monitor_url: format!("http://127.0.0.1:{}", n.ports.monitor),
        })
        .collect()
}

pub fn summary_tsv(nodes: &[NodeSummary]) -> String {
    let mut s = String::from("# name\tregion\tconfig\tclient_url\tmonitor_url\n");
    for n in nodes {
        let _ = writeln!(
            s,
            "{}\t{}\t{}\t{}\t{}",
            n.name, n.region, n.config, n.client_url, n.monitor_url
        );
    }
    s
}

/// Reads `nodes.tsv` of a generated directory.
pub fn read_summary(out: &Path) -> Result<Vec<NodeSummary>, BrokerError> {
    let path = out.join("nodes.tsv");
    let text = std::fs::read_to_string(&path).map_err(|source| BrokerError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() == 5).then(|| NodeSummary {
                name: f[0].into(),
                region: f[1].into(),
                config: f[2].into(),
                client_url: f[3].into(),
                monitor_url: f[4].into(),
            })
        })
        .collect())
}
