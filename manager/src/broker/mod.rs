//! `flowmesh broker init`: a topology file in, a ready-to-run federated cluster out.
//!
//! ```text
//! OUT/ca.pem                      cluster CA certificate (clients trust only this)
//! OUT/nodes.tsv                   one line per node: name, region, config, client URL, monitor URL
//! OUT/nodes/<node>.conf           nats-server config, paths relative to OUT
//! OUT/nodes/<node>.pem            node certificate (server and route/gateway client)
//! OUT/operator.jwt                the operator every node trusts (also in each node config)
//! OUT/accounts/<account>.json|jwt each account's public record and JWT (see `accounts`)
//! OUT/secrets/*-key.pem           CA and node private keys (0600)
//! OUT/secrets/operator.nk         the operator's seed (0600): signs accounts
//! OUT/secrets/accounts/<a>.nk     each account's signing seed (0600): signs its instances
//! OUT/creds/<user>/<inst>.creds   per-instance user JWT and nkey seed (0600)
//! OUT/creds/<user>/<inst>.toml    the `[broker]` table for that instance's config
//! OUT/resolver/<node>/            each node's account resolver (written by nats-server)
//! ```
//!
//! Nodes run in NATS operator mode: their configs name the operator, the system account and a
//! `full` resolver, and list no user or account of a cloud user. Accounts are pushed to the
//! running cluster (`push_all` after start, `enroll` for each new user).
//!
//! Configs refer to files relative to OUT, so nats-server is started with OUT as its working
//! directory (`deploy/cluster.sh` and the test harness do so); the tree can then be moved.

pub mod accounts;
mod ask;
pub mod authority;
mod enroll;
mod in_force;
pub mod jwt;
mod lock;
mod pki;
mod push;
mod render;
mod resync;
pub mod roles;
mod topology;

pub use accounts::{AccountRecord, CLOUD, SYSTEM};
pub use ask::ask_every_node;
pub use authority::Authority;
pub use enroll::{Enrolled, Enrollment, enroll, revoke};
pub use in_force::holding_other_claims;
pub use lock::AccountsLock;
pub use push::{
    AUDITED_PER_ROUND, Pushed, audit_node, push, push_all, push_change, push_many, push_stored_to,
    push_where_stale_to, system_broker, system_client, system_client_to,
};
pub use render::{NodeSummary, read_summary};
pub use resync::follow_nodes;
pub use roles::Role;
pub use topology::{DEFAULT_CONSOLE_PORT, NodePorts, Region, Topology, TopologyError, User};

use std::fs;
use std::path::{Path, PathBuf};

use flowmesh_link::connect::BrokerConfig;
use flowmesh_link::secret_file;

/// Why generation failed.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The topology is invalid.
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// The output directory already holds a generated cluster.
    #[error(
        "{0} already holds a generated cluster (nodes.tsv); pass --force to regenerate it, which replaces every certificate and credential"
    )]
    Exists(PathBuf),
    /// Writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Writing a private file failed.
    #[error(transparent)]
    Secret(#[from] secret_file::SecretFileError),
    /// Certificate generation failed.
    #[error("certificate generation: {0}")]
    Pki(#[from] rcgen::Error),
    /// nkey generation failed.
    #[error("nkey generation: {0}")]
    Nkey(String),
}

pub(crate) fn invalid(m: String) -> BrokerError {
    BrokerError::Topology(TopologyError::Invalid(m))
}

/// Writes `body` to `path` through a temporary file and a rename: readers see all or nothing.
pub(crate) fn write_atomic(path: &Path, body: &[u8]) -> Result<(), BrokerError> {
    let io = |source| BrokerError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, body).map_err(io)?;
    fs::rename(&tmp, path).map_err(io)
}

pub(crate) fn write_file(path: &Path, body: &str) -> Result<(), BrokerError> {
    let io = |source| BrokerError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io)?;
    }
    fs::write(path, body).map_err(io)
}

/// What `generate` produced.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The output directory (absolute).
    pub out: PathBuf,
    /// The nodes, in topology order.
    pub nodes: Vec<NodeSummary>,
}

impl Generated {
    /// The `[broker]` settings for `instance` of `user`, with every node's client URL.
    pub fn broker_config(&self, user: &str, instance: &str) -> BrokerConfig {
        broker_config(&self.out, &self.nodes, user, instance)
    }
}

/// The `[broker]` settings for an instance of a cluster generated into `out`.
pub fn broker_config(
    out: &Path,
    nodes: &[NodeSummary],
    user: &str,
    instance: &str,
) -> BrokerConfig {
    BrokerConfig {
        urls: nodes.iter().map(|n| n.client_url.clone()).collect(),
        ca_file: out.join("ca.pem"),
        creds_file: authority::creds_path(out, user, instance),
        connect_timeout_secs: 10,
        // By region, so the instance measures and connects to the nearest one.
        regions: nodes.iter().fold(Default::default(), |mut m, n| {
            m.entry(n.region.clone())
                .or_insert_with(Vec::new)
                .push(n.client_url.clone());
            m
        }),
        region: None,
    }
}

/// Writes `creds/<user>/<instance>.toml`: the `[broker]` table of that instance's config.
fn write_broker_toml(
    out: &Path,
    nodes: &[NodeSummary],
    user: &str,
    instance: &str,
) -> Result<(), BrokerError> {
    let cfg = broker_config(out, nodes, user, instance);
    // As a `broker` table, so its sub-table comes out as `[broker.regions]`.
    let table = toml::Value::try_from(&cfg)
        .map(|v| toml::Table::from_iter([("broker".to_string(), v)]))
        .map_err(|e| BrokerError::Io {
            path: out.join(format!("creds/{user}/{instance}.toml")),
            source: std::io::Error::other(e.to_string()),
        })?;
    let body = format!(
        "# [broker] settings for instance {instance} of user {user}; paste into its config\n{}",
        toml::to_string(&table).unwrap_or_default()
    );
    write_file(&out.join(format!("creds/{user}/{instance}.toml")), &body)
}

/// The user id (X25519 public key, hex) of a topology user.
fn user_id(u: &User, base: &Path) -> Result<String, BrokerError> {
    match (&u.public_key, &u.identity) {
        (Some(k), _) => Ok(k.clone()),
        (None, Some(path)) => flowmesh_link::Identity::load(&base.join(path))
            .map(|id| id.public().to_hex())
            .map_err(|e| invalid(format!("user {}: {e}", u.name))),
        (None, None) => Err(invalid(format!(
            "user {} needs `identity` or `public_key` (its envelopes are sealed to it)",
            u.name
        ))),
    }
}

/// The name of the console's certificate: `nodes/console.pem`, key `secrets/console-key.pem`.
pub const CONSOLE_CERT: &str = "console";

/// Generates CA, certificates, node configs, the operator, accounts and credentials for
/// `topology` into `out`. Users' accounts still have to be pushed once the nodes run
/// ([`push_all`]).
/// `base` resolves relative identity paths in the topology.
pub fn generate(
    topology: &Topology,
    base: &Path,
    out: &Path,
    force: bool,
) -> Result<Generated, BrokerError> {
    topology.validate()?;
    if out.join("nodes.tsv").exists() {
        if !force {
            return Err(BrokerError::Exists(out.to_path_buf()));
        }
        // A new operator: everything signed by the old one goes (node logs and JetStream data
        // stay, as nats-server wrote them).
        for dir in ["accounts", "creds", "secrets", "resolver", "nodes"] {
            let path = out.join(dir);
            if path.exists() {
                fs::remove_dir_all(&path).map_err(|source| BrokerError::Io { path, source })?;
            }
        }
    }
    fs::create_dir_all(out).map_err(|source| BrokerError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    let out = out.canonicalize().map_err(|source| BrokerError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    let ca = pki::Ca::generate()?;
    write_file(&out.join("ca.pem"), &ca.cert_pem())?;
    secret_file::write(
        &out.join("secrets/ca-key.pem"),
        ca.key_pem().as_bytes(),
        true,
    )?;

    let created = Authority::create(&out)?;
    let auth = render::NodeAuth {
        operator_jwt: created.operator_jwt.clone(),
        system: created.system.clone(),
        cloud: created.cloud.clone(),
    };
    write_file(
        &out.join("topology.toml"),
        &toml::to_string(topology).map_err(|e| TopologyError::Invalid(e.to_string()))?,
    )?;
    let nodes = topology.nodes();
    // The manager's web console is served with a certificate of the same CA: a browser that
    // trusts `ca.pem` trusts the console and the nodes' WebSocket listeners alike.
    let names = nodes.iter().map(|n| n.name.as_str()).chain([CONSOLE_CERT]);
    for name in names {
        let cert = ca.issue_node(name, &topology.host)?;
        write_file(&out.join(format!("nodes/{name}.pem")), &cert.cert_pem)?;
        secret_file::write(
            &out.join(format!("secrets/{name}-key.pem")),
            cert.key_pem.as_bytes(),
            true,
        )?;
    }
    for node in &nodes {
        write_file(
            &out.join(format!("nodes/{}.conf", node.name)),
            &render::node_config(topology, node, &nodes, &auth),
        )?;
    }
    let summary = render::summaries(topology, &nodes);
    write_file(&out.join("nodes.tsv"), &render::summary_tsv(&summary))?;
    let generated = Generated {
        out,
        nodes: summary,
    };
    let held = AccountsLock::acquire(&generated.out)?;
    for user in &topology.users {
        let enrollment = Enrollment {
            user: user.name.clone(),
            public_key: Some(user_id(user, base)?),
            instances: user.instances(),
            expires_in: None,
        };
        enroll(&created.authority, &held, &enrollment)?;
    }
    for account in [SYSTEM, CLOUD] {
        write_broker_toml(&generated.out, &generated.nodes, account, "manager")?;
    }
    tracing::info!(out = %generated.out.display(), nodes = generated.nodes.len(), "cluster generated");
    Ok(generated)
}
