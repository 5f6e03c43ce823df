//! Whether the nodes *apply* a pushed account, not only store it.
//!
//! (A node can also hold the right JWT with the account wrongly marked expired: see
//! [`holds_other`].)
//!
//! A node stores a pushed account JWT in its resolver and applies it to the account it has
//! loaded in memory, if any. But nats-server loads an account in two steps: it reads the stored
//! JWT, then registers the account built from it. A push stored between the two finds no
//! account to apply itself to, and the account then registered carries the claims read before:
//! the node holds the new JWT on disk and the old claims in memory until the account next
//! changes. For a revocation that means the node keeps admitting the revoked instance (seen:
//! in 2 of 10 runs of a test that restarts a node, which loads accounts as logins come in).
//! Pushing the same JWT again does not help (the node applies a push only when the stored JWT
//! changes); pushing it signed anew does.
//!
//! So after a push that changes an account, [`holding_other_claims`] asks every node which JWT
//! its loaded account was built from (`$SYS.REQ.ACCOUNT.<key>.INFO`, which every node answers).
//! A node that has not loaded the account answers that it does not exist, and counts as
//! applying the push: it will build the account from what it stored.

use std::time::Duration;

use flowmesh_link::async_nats::Client;

use super::ask::ask_every_node;
use super::{BrokerError, invalid};

/// How long the nodes' answers may pause before the others count as silent.
const QUIET: Duration = Duration::from_millis(500);

/// The nodes whose loaded account `key` was built from another JWT than `jwt`, among the
/// `nodes` expected to answer. A node that does not answer is not named (a push reports it).
pub async fn holding_other_claims(
    system: &Client,
    key: &str,
    jwt: &str,
    nodes: usize,
) -> Vec<String> {
    let subject = format!("$SYS.REQ.ACCOUNT.{key}.INFO");
    ask_every_node(system, &subject, b"", Some(nodes), QUIET)
        .await
        .iter()
        .filter_map(|answer| other_claims(&answer.payload, jwt))
        .collect()
}

/// What the manager stored for an account, given the account's public key and the name in the
/// JWT the node holds: the JWT, or `None` for an account that is not one of the stored ones.
pub(super) type Stored<'a> = dyn Fn(&str, &str) -> Option<String> + Send + Sync + 'a;

/// Checks the accounts the node at the other end of `node` (a connection to that node alone)
/// has loaded, asking it directly (`$SYS.REQ.SERVER.<id>.ACCOUNTZ`): first which accounts it
/// loaded (after a restart, the few logged into since), then, in key order from after `after`,
/// at most `max` of them (at least one). Returns the keys and names of those it holds otherwise than `stored`
/// says, and the last key checked (`None` when the end was reached). An account loaded
/// without any JWT names nothing to compare with and is left alone.
pub(super) async fn stale_on_node(
    node: &Client,
    stored: &Stored<'_>,
    after: Option<&str>,
    max: usize,
) -> Result<(Vec<(String, String)>, Option<String>), BrokerError> {
    let subject = format!("$SYS.REQ.SERVER.{}.ACCOUNTZ", node.server_info().server_id);
    let ask = |body: String| {
        let subject = subject.clone();
        async move {
            let answer = tokio::time::timeout(ASK, node.request(subject, body.into()))
                .await
                .map_err(|_| invalid("the node did not answer ACCOUNTZ in time".into()))?
                .map_err(|e| invalid(format!("asking the node for its accounts: {e}")))?;
            serde_json::from_slice::<serde_json::Value>(&answer.payload)
                .map_err(|e| invalid(format!("the node's ACCOUNTZ answer: {e}")))
        }
    };
    let listed = ask(String::new()).await?;
    let mut loaded: Vec<&str> = listed["data"]["accounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k.as_str())
        .filter(|k| after.is_none_or(|after| *k > after))
        .collect();
    loaded.sort_unstable();
    let max = max.max(1);
    let last = (loaded.len() > max).then(|| loaded[max - 1].to_string());
    let mut stale = Vec::new();
    for key in loaded.into_iter().take(max) {
        let detail = ask(serde_json::json!({ "account": key }).to_string()).await?;
        let Some(held) = detail["data"]["account_detail"].as_object() else {
            continue;
        };
        let Some(name) = held
            .get("decoded_jwt")
            .and_then(|c| c["name"].as_str())
            .map(str::to_string)
        else {
            continue;
        };
        if let Some(jwt) = stored(key, &name)
            && holds_other(held, &jwt)
        {
            stale.push((key.to_string(), name));
        }
    }
    Ok((stale, last))
}

/// How long one node may take to answer a direct request.
const ASK: Duration = Duration::from_secs(5);

/// The answering node's name when the account it has loaded was built from another JWT than
/// `jwt`, or from none (an account registered without claims refuses every login); `None`
/// when it holds `jwt`, has not loaded the account, or the answer is not one.
fn other_claims(payload: &[u8], jwt: &str) -> Option<String> {
    let answer: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let loaded = answer["data"].as_object()?;
    holds_other(loaded, jwt).then(|| answer["server"]["name"].as_str().unwrap_or("?").to_string())
}

/// Whether a loaded account's description (`AccountInfo`) names another JWT than `jwt`, or
/// none, or says the account expired. Account JWTs never expire, yet a node was seen holding
/// a new account marked expired (its first logins came from two sides at once: a client and a
/// route), refusing every login with "Account JWT has expired"; looking the account up again
/// finds the same claims and leaves the mark. A JWT signed anew clears it.
fn holds_other(loaded: &serde_json::Map<String, serde_json::Value>, jwt: &str) -> bool {
    loaded.get("jwt").and_then(|j| j.as_str()) != Some(jwt)
        || loaded.get("expired").and_then(|e| e.as_bool()) == Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_is_named_only_when_it_holds_other_claims() {
        let holding = |jwt: &str| {
            format!(r#"{{"server":{{"name":"eu-2"}},"data":{{"account_name":"A","jwt":"{jwt}"}}}}"#)
        };
        assert_eq!(
            other_claims(holding("old").as_bytes(), "new"),
            Some("eu-2".into())
        );
        assert_eq!(other_claims(holding("new").as_bytes(), "new"), None);
        let not_loaded =
            br#"{"server":{"name":"eu-1"},"error":{"code":500,"description":"Account A does not exist"}}"#;
        assert_eq!(other_claims(not_loaded, "new"), None);
        assert_eq!(other_claims(b"garbage", "new"), None);
        let without_claims = br#"{"server":{"name":"eu-3"},"data":{"account_name":"A"}}"#;
        assert_eq!(other_claims(without_claims, "new"), Some("eu-3".into()));
        let expired = br#"{"server":{"name":"eu-3"},"data":{"jwt":"new","expired":true}}"#;
        assert_eq!(other_claims(expired, "new"), Some("eu-3".into()));
        let current = br#"{"server":{"name":"eu-3"},"data":{"jwt":"new","expired":false}}"#;
        assert_eq!(other_claims(current, "new"), None);
    }
}
