//! Bringing a restarted node's resolver up to date at once. A node that was down when an
//! account changed (a revocation above all) starts again with its old copy and, left alone,
//! learns the change only at its resolver's periodic sync, minutes later — admitting a revoked
//! instance meanwhile (measured: still admitting it 60 s after it came back). Every node
//! announces itself on `$SYS.SERVER.<id>.STATSZ`, with an id that is new at each start; when a
//! node of the cluster shows a new id, every stored account is pushed again.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use flowmesh_link::async_nats::Client;
use futures::StreamExt;

use super::{AccountsLock, BrokerError, invalid, push_stored, read_summary};

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
    // Node name -> the id it runs under; only names of this cluster are kept (bounded).
    let mut known: HashMap<String, String> = HashMap::new();
    let mut names = node_names(&out);
    while let Some(beat) = beats.next().await {
        let mut started = Vec::new();
        note(&beat.payload, &mut known, &mut names, &out, &mut started);
        if started.is_empty() {
            continue;
        }
        // Gather the others starting in the same moment.
        let until = tokio::time::Instant::now() + GATHER;
        while let Ok(Some(beat)) = tokio::time::timeout_at(until, beats.next()).await {
            note(&beat.payload, &mut known, &mut names, &out, &mut started);
        }
        let pushed = match AccountsLock::acquire_async(&out).await {
            Ok(held) => push_stored(&system, &held).await,
            Err(e) => Err(e),
        };
        match pushed {
            Ok((n, pushed)) => {
                tracing::info!(nodes = ?started, accounts = n, %pushed, "node(s) started: accounts pushed again");
                // A node that did not answer is tried again at its next heartbeat.
                for node in pushed.missing {
                    known.remove(&node);
                }
            }
            Err(e) => {
                tracing::warn!(nodes = ?started, error = %e, "node(s) started: pushing the accounts again failed; retrying at their next heartbeat");
                for node in &started {
                    known.remove(node);
                }
            }
        }
    }
    Ok(())
}

/// The node names in the cluster's `nodes.tsv` (none if it cannot be read).
fn node_names(out: &std::path::Path) -> Vec<String> {
    read_summary(out)
        .map(|n| n.into_iter().map(|n| n.name).collect())
        .unwrap_or_default()
}

/// Records one heartbeat; a node of the cluster under a new id goes into `started`.
fn note(
    payload: &[u8],
    known: &mut HashMap<String, String>,
    names: &mut Vec<String>,
    out: &std::path::Path,
    started: &mut Vec<String>,
) {
    let v: serde_json::Value = serde_json::from_slice(payload).unwrap_or_default();
    let (Some(name), Some(id)) = (v["server"]["name"].as_str(), v["server"]["id"].as_str()) else {
        return;
    };
    if !names.iter().any(|n| n == name) {
        // Perhaps the cluster grew: look at its node list again.
        let fresh = node_names(out);
        if !fresh.is_empty() {
            *names = fresh;
        }
        if !names.iter().any(|n| n == name) {
            return;
        }
    }
    if known.get(name).map(String::as_str) != Some(id) {
        known.insert(name.to_string(), id.to_string());
        if !started.iter().any(|s| s == name) {
            started.push(name.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(name: &str, id: &str) -> Vec<u8> {
        format!(r#"{{"server":{{"name":"{name}","id":"{id}"}},"statsz":{{}}}}"#).into_bytes()
    }

    #[test]
    fn a_node_counts_as_started_when_its_id_is_new() {
        let out = std::path::Path::new("/nonexistent");
        let mut known = HashMap::new();
        let mut names = vec!["eu-1".to_string(), "eu-2".to_string()];
        let mut started = Vec::new();
        note(
            &beat("eu-1", "A"),
            &mut known,
            &mut names,
            out,
            &mut started,
        );
        note(
            &beat("eu-1", "A"),
            &mut known,
            &mut names,
            out,
            &mut started,
        );
        assert_eq!(started, ["eu-1"], "first sight counts once");
        started.clear();
        note(
            &beat("eu-1", "A"),
            &mut known,
            &mut names,
            out,
            &mut started,
        );
        assert!(started.is_empty(), "same id: still running");
        note(
            &beat("eu-1", "B"),
            &mut known,
            &mut names,
            out,
            &mut started,
        );
        assert_eq!(started, ["eu-1"], "restarted under a new id");
        started.clear();
        note(
            &beat("intruder", "X"),
            &mut known,
            &mut names,
            out,
            &mut started,
        );
        note(b"garbage", &mut known, &mut names, out, &mut started);
        assert!(started.is_empty() && !known.contains_key("intruder"));
    }
}
