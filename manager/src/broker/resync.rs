//! Bringing a restarted node's resolver up to date at once. A node that was down when an
//! account changed (a revocation above all) starts again with its old copy and, left alone,
//! learns the change only at its resolver's periodic sync, minutes later — admitting a revoked
//! instance meanwhile (measured: still admitting it 60 s after it came back). Every node
//! announces itself on `$SYS.SERVER.<id>.STATSZ`, with an id that is new at each start; when a
//! node of the cluster shows a new id, every stored account is pushed again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use flowmesh_link::async_nats::Client;
use futures::StreamExt;

use super::{AccountsLock, BrokerError, ask_every_node, invalid, push_stored, read_summary};

/// How long to gather nodes starting together (a whole cluster restarting) into one push.
const GATHER: Duration = Duration::from_secs(1);

/// Follows the nodes of the cluster in `out` and pushes every stored account to the cluster
/// whenever one of them (re)starts, and once for all of them when this starts (a node may have
/// missed a push while nothing was watching). Runs until the connection closes; the manager
/// runs it for as long as it runs.
pub async fn follow_nodes(system: Client, out: PathBuf) -> Result<(), BrokerError> {
    let mut beats = system
        .subscribe("$SYS.SERVER.*.STATSZ")
        .await
        .map_err(|e| invalid(format!("following the nodes: {e}")))?;
    let mut nodes = Nodes::new(out.clone());
    // First every running node at once, so that one push covers them all (their heartbeats
    // come seconds apart).
    let mut started = Vec::new();
    let expected = Some(nodes.names.len()).filter(|n| *n > 0);
    let quiet = Duration::from_secs(2);
    for answer in ask_every_node(&system, "$SYS.REQ.SERVER.PING.STATSZ", b"", expected, quiet).await
    {
        nodes.note(&answer.payload, &mut started);
    }
    if !started.is_empty() {
        push_again(&system, &out, &mut nodes, &started).await;
    }
    while let Some(beat) = beats.next().await {
        let mut started = Vec::new();
        nodes.note(&beat.payload, &mut started);
        if started.is_empty() {
            continue;
        }
        // Gather the others starting in the same moment.
        let until = tokio::time::Instant::now() + GATHER;
        while let Ok(Some(beat)) = tokio::time::timeout_at(until, beats.next()).await {
            nodes.note(&beat.payload, &mut started);
        }
        push_again(&system, &out, &mut nodes, &started).await;
    }
    Ok(())
}

/// Pushes every stored account for the nodes that `started`; a node that did not store them
/// is forgotten, so that its next heartbeat tries again.
async fn push_again(system: &Client, out: &Path, nodes: &mut Nodes, started: &[String]) {
    let pushed = match AccountsLock::acquire_async(out).await {
        Ok(held) => push_stored(system, &held).await,
        Err(e) => Err(e),
    };
    match pushed {
        Ok((n, pushed)) => {
            tracing::info!(nodes = ?started, accounts = n, %pushed, "node(s) started: accounts pushed again");
            for node in &pushed.missing {
                nodes.forget(node);
            }
        }
        Err(e) => {
            tracing::warn!(nodes = ?started, error = %e, "node(s) started: pushing the accounts again failed; retrying at their next heartbeat");
            for node in started {
                nodes.forget(node);
            }
        }
    }
}

/// The cluster's nodes and the id each runs under.
struct Nodes {
    out: PathBuf,
    /// Node name -> its id; only names of this cluster are kept (bounded).
    known: HashMap<String, String>,
    /// The names in `nodes.tsv`.
    names: Vec<String>,
}

impl Nodes {
    fn new(out: PathBuf) -> Nodes {
        let names = node_names(&out);
        Nodes {
            out,
            known: HashMap::new(),
            names,
        }
    }

    /// Records one heartbeat; a node of the cluster under a new id goes into `started`.
    fn note(&mut self, payload: &[u8], started: &mut Vec<String>) {
        let v: serde_json::Value = serde_json::from_slice(payload).unwrap_or_default();
        let (Some(name), Some(id)) = (v["server"]["name"].as_str(), v["server"]["id"].as_str())
        else {
            return;
        };
        if !self.names.iter().any(|n| n == name) {
            // Perhaps the cluster grew: look at its node list again.
            let fresh = node_names(&self.out);
            if !fresh.is_empty() {
                self.names = fresh;
            }
            if !self.names.iter().any(|n| n == name) {
                return;
            }
        }
        if self.known.get(name).map(String::as_str) != Some(id) {
            self.known.insert(name.to_string(), id.to_string());
            if !started.iter().any(|s| s == name) {
                started.push(name.to_string());
            }
        }
    }

    /// Forgets a node's id, so that its next heartbeat counts as a start.
    fn forget(&mut self, name: &str) {
        self.known.remove(name);
    }
}

/// The node names in the cluster's `nodes.tsv` (none if it cannot be read).
fn node_names(out: &Path) -> Vec<String> {
    read_summary(out)
        .map(|n| n.into_iter().map(|n| n.name).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(name: &str, id: &str) -> Vec<u8> {
        format!(r#"{{"server":{{"name":"{name}","id":"{id}"}},"statsz":{{}}}}"#).into_bytes()
    }

    #[test]
    fn a_node_counts_as_started_when_its_id_is_new() {
        let mut nodes = Nodes::new(PathBuf::from("/nonexistent"));
        nodes.names = vec!["eu-1".to_string(), "eu-2".to_string()];
        let mut started = Vec::new();
        nodes.note(&beat("eu-1", "A"), &mut started);
        nodes.note(&beat("eu-1", "A"), &mut started);
        assert_eq!(started, ["eu-1"], "first sight counts once");
        started.clear();
        nodes.note(&beat("eu-1", "A"), &mut started);
        assert!(started.is_empty(), "same id: still running");
        nodes.note(&beat("eu-1", "B"), &mut started);
        assert_eq!(started, ["eu-1"], "restarted under a new id");
        started.clear();
        nodes.forget("eu-1");
        nodes.note(&beat("eu-1", "B"), &mut started);
        assert_eq!(started, ["eu-1"], "forgotten: its next beat counts again");
        started.clear();
        nodes.note(&beat("intruder", "X"), &mut started);
        nodes.note(b"garbage", &mut started);
        assert!(started.is_empty() && !nodes.known.contains_key("intruder"));
    }
}
