//! Users and instances added to a running cluster, and instances revoked, without restarting a
//! node: `accounts.json` changes, every node's config is rendered again, and each node is told
//! to reload it (SIGHUP, what `nats-server --signal reload` sends). On reload nats-server adds
//! the new accounts (JetStream included) and closes the connections of logins that are gone,
//! so a revocation holds on every node at once.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flowmesh_link::PublicKey;
use flowmesh_link::subject::validate_token;

use super::render::{Account, Accounts, CLOUD, SYSTEM, new_member};
use super::{
    BrokerError, Topology, TopologyError, read_summary, render_configs, write_broker_toml,
};

/// What `enroll` created.
#[derive(Debug, Clone)]
pub struct Enrolled {
    /// Whether the user's account is new.
    pub new_account: bool,
    /// For each new instance: its name and the `[broker]` file for its config.
    pub instances: Vec<(String, PathBuf)>,
}

fn invalid(m: String) -> BrokerError {
    BrokerError::Topology(TopologyError::Invalid(m))
}

fn load(out: &Path) -> Result<(Topology, Accounts), BrokerError> {
    // accounts.json first: its absence has the more helpful message.
    let accounts = Accounts::load(out)?;
    Ok((Topology::load(&out.join("topology.toml"))?, accounts))
}

/// Adds `instances` to `user`, creating the user's account (with `public_key`, its user id)
/// if it does not exist. Nodes are not reloaded here: see [`reload`].
pub fn enroll(
    out: &Path,
    user: &str,
    public_key: Option<&str>,
    instances: &[String],
) -> Result<Enrolled, BrokerError> {
    if validate_token(user).is_err() || user == SYSTEM || user == CLOUD {
        return Err(invalid(format!(
            "user name {user:?} must be letters, digits, '-' or '_' (and not {SYSTEM} or {CLOUD})"
        )));
    }
    for i in instances {
        validate_token(i).map_err(|e| invalid(e.to_string()))?;
    }
    let (topology, mut accounts) = load(out)?;
    let new_account = accounts.user_mut(user).is_none();
    if new_account {
        let key = public_key.ok_or_else(|| {
            invalid(format!(
                "{user} is a new user: give its public key (--public-key, from `flowmesh keygen`)"
            ))
        })?;
        PublicKey::from_hex(key).map_err(|e| invalid(format!("--public-key: {e}")))?;
        accounts.users.push(Account {
            name: user.to_string(),
            user_id: Some(key.to_string()),
            members: vec![],
        });
    }
    let nodes = read_summary(out)?;
    let mut created = Vec::new();
    for i in instances {
        let account = accounts
            .user_mut(user)
            .ok_or_else(|| invalid(format!("no account {user}")))?;
        if account.members.iter().any(|m| &m.instance == i) {
            return Err(invalid(format!(
                "{user} already has an instance {i}; revoke it first to give it new credentials"
            )));
        }
        let member = new_member(out, user, i)?;
        account.members.push(member);
        write_broker_toml(out, &nodes, user, i)?;
        created.push((i.clone(), out.join(format!("creds/{user}/{i}.toml"))));
    }
    accounts.save(out)?;
    render_configs(&topology, out, &accounts)?;
    tracing::info!(%user, new_account, instances = ?instances, "enrolled");
    Ok(Enrolled {
        new_account,
        instances: created,
    })
}

/// Revokes `instance` of `user`: its login leaves every node's config and its seed is deleted.
/// Nodes are not reloaded here: see [`reload`].
pub fn revoke(out: &Path, user: &str, instance: &str) -> Result<(), BrokerError> {
    let (topology, mut accounts) = load(out)?;
    let account = accounts
        .user_mut(user)
        .ok_or_else(|| invalid(format!("no user {user} in {}", out.display())))?;
    let before = account.members.len();
    account.members.retain(|m| m.instance != instance);
    if account.members.len() == before {
        return Err(invalid(format!("user {user} has no instance {instance}")));
    }
    accounts.save(out)?;
    render_configs(&topology, out, &accounts)?;
    for ext in ["nk", "toml"] {
        let _ = std::fs::remove_file(out.join(format!("creds/{user}/{instance}.{ext}")));
    }
    tracing::info!(%user, %instance, "revoked");
    Ok(())
}

/// A minimal HTTP/1.0 GET (the monitoring port; no client library needed).
pub fn http_get(addr: &str, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    Ok(body
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default())
}

/// When the node behind `monitor` (host:port) last loaded its config.
fn config_load_time(monitor: &str) -> Option<String> {
    let body = http_get(monitor, "/varz").ok()?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v.get("config_load_time")?.as_str().map(str::to_string)
}

/// Tells every node of the cluster generated in `out` and running on this machine (its pid in
/// `logs/<node>.pid`, as `deploy/cluster.sh` and the tests write it) to reload its config, and
/// waits until each has. Returns the nodes reloaded; a node that is not running here, or did
/// not reload within `timeout`, is an error naming it.
pub fn reload(out: &Path, timeout: Duration) -> Result<Vec<String>, BrokerError> {
    let mut done = Vec::new();
    let mut problems = Vec::new();
    for node in read_summary(out)? {
        let monitor = node.monitor_url.trim_start_matches("http://").to_string();
        let pid_file = out.join(format!("logs/{}.pid", node.name));
        let pid: Option<i32> = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|p| p.trim().parse().ok());
        let Some(pid) = pid else {
            problems.push(format!(
                "{}: no {} (not running on this machine?): reload it where it runs with `nats-server --signal reload`",
                node.name,
                pid_file.display()
            ));
            continue;
        };
        let before = config_load_time(&monitor);
        // SAFETY: kill(2) with a pid read from the node's pid file and SIGHUP, which
        // nats-server takes as "reload the configuration".
        if unsafe { libc::kill(pid, libc::SIGHUP) } != 0 {
            problems.push(format!(
                "{}: cannot signal pid {pid}: {}",
                node.name,
                std::io::Error::last_os_error()
            ));
            continue;
        }
        let deadline = Instant::now() + timeout;
        loop {
            let now = config_load_time(&monitor);
            if now.is_some() && now != before {
                done.push(node.name.clone());
                break;
            }
            if Instant::now() > deadline {
                problems.push(format!(
                    "{}: did not reload within {timeout:?} (its log: {})",
                    node.name,
                    out.join(format!("logs/{}.log", node.name)).display()
                ));
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    if problems.is_empty() {
        Ok(done)
    } else {
        Err(invalid(format!(
            "reloaded {} node(s); not reloaded:\n  {}",
            done.len(),
            problems.join("\n  ")
        )))
    }
}
