//! Pushing account JWTs to the running nodes' `full` resolvers through the system account.
//!
//! A push is one message on `$SYS.REQ.CLAIMS.UPDATE`, which every node subscribes to and
//! answers. Taking the first answer (a plain request) says nothing about the others: a node
//! whose routes did not carry the system account's interest yet (just after the cluster
//! started) misses the message and would learn the account, or a revocation, only at its
//! resolver's next sync, minutes later. So a push collects the answers of every node listed in
//! the cluster's `nodes.tsv`, sends the message again while some are silent, and reports which
//! stored it. Storing the same JWT twice is harmless (the resolver keeps the newest by issue
//! time), so sending again is safe — the same JWT: a node also takes an older one, so pushes
//! happen under the [`AccountsLock`] (see there).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::time::Duration;

use flowmesh_link::async_nats::Client;
use flowmesh_link::connect::BrokerConfig;
use futures::StreamExt;

use super::accounts::{AccountRecord, CLOUD, SYSTEM};
use super::authority::Authority;
use super::in_force;
use super::lock::AccountsLock;
use super::{BrokerError, invalid, read_summary};

/// The subject every node's resolver answers account updates on.
const CLAIMS_UPDATE: &str = "$SYS.REQ.CLAIMS.UPDATE";

/// How long the first node may take to answer; none in this time fails the push.
const FIRST_ANSWER: Duration = Duration::from_secs(5);

/// After the first answer, how long the other nodes get (a node that is down costs this).
const OTHERS: Duration = Duration::from_secs(3);

/// How soon the push is sent again while some node has not answered; the wait doubles after
/// each resend that brought nothing new (a node that is down would only draw copies).
const RESEND: Duration = Duration::from_millis(500);

/// Which nodes stored a pushed account JWT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// Nodes that answered that they stored it.
    pub stored: Vec<String>,
    /// Listed nodes that did not answer (down, or not reachable yet): their resolvers catch up
    /// at the next sync (within 15 s) once they run, or push again.
    pub missing: Vec<String>,
    /// Nodes that stored a changed account but still apply its older claims (see
    /// [`push_change`]); empty unless every push signed anew left them so.
    pub stale: Vec<String>,
}

impl Pushed {
    /// Whether every listed node stored it (and applies it, after a [`push_change`]).
    pub fn complete(&self) -> bool {
        self.missing.is_empty() && self.stale.is_empty()
    }
}

impl fmt::Display for Pushed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let all = self.stored.len() + self.missing.len();
        if self.missing.is_empty() {
            write!(f, "stored by every node ({all})")?;
        } else {
            write!(
                f,
                "stored by {} of {all} nodes; not answered by {} (down or not connected yet: \
                 they catch up at their resolver's next sync, within 15 s of running, \
                 or push again with `flowmesh broker push`)",
                self.stored.len(),
                self.missing.join(", ")
            )?;
        }
        if !self.stale.is_empty() {
            write!(
                f,
                "; but {} still apply the account's older claims (push again with \
                 `flowmesh broker push`)",
                self.stale.join(", ")
            )?;
        }
        Ok(())
    }
}

/// Pushes an account JWT to the nodes of the cluster in `out` (named in its `nodes.tsv`).
/// `Ok` once every node stored it, or once at least one did and the others stayed silent for
/// a few seconds (see [`Pushed::missing`]; logged as a warning). Fails when no node answered
/// or a node refused the JWT.
pub async fn push(
    system: &Client,
    held: &AccountsLock,
    account_jwt: &str,
) -> Result<Pushed, BrokerError> {
    push_many(system, held, &[account_jwt.to_string()]).await
}

/// [`push`] for several accounts at once: every JWT is sent before any answer is awaited, so
/// pushing thousands costs about one round trip, not one each. A node counts as having stored
/// them when it answered for every account.
pub async fn push_many(
    system: &Client,
    held: &AccountsLock,
    account_jwts: &[String],
) -> Result<Pushed, BrokerError> {
    let nodes: BTreeSet<String> = read_summary(held.out())?
        .into_iter()
        .map(|n| n.name)
        .collect();
    let pushed = push_to(system, &nodes, account_jwts).await?;
    if !pushed.complete() {
        tracing::warn!(%pushed, accounts = account_jwts.len(), "account push incomplete");
    }
    Ok(pushed)
}

/// [`push_many`] to the nodes named `nodes`.
async fn push_to(
    system: &Client,
    nodes: &BTreeSet<String>,
    account_jwts: &[String],
) -> Result<Pushed, BrokerError> {
    if account_jwts.is_empty() {
        return Ok(Pushed {
            stored: nodes.iter().cloned().collect(),
            missing: Vec::new(),
            stale: Vec::new(),
        });
    }
    // Each account, by its public key (what a node's answer names), with the nodes that have
    // not confirmed it yet.
    let mut pending: BTreeMap<String, (&str, BTreeSet<String>)> = BTreeMap::new();
    for jwt in account_jwts {
        let claims = super::jwt::claims(jwt).map_err(|e| invalid(e.to_string()))?;
        let key = claims["sub"].as_str().unwrap_or_default().to_string();
        pending.insert(key, (jwt.as_str(), nodes.clone()));
    }
    let inbox = system.new_inbox();
    let mut answers = system
        .subscribe(inbox.clone())
        .await
        .map_err(|e| invalid(format!("push: {e}")))?;
    let send = |pending: &BTreeMap<String, (&str, BTreeSet<String>)>| {
        let unconfirmed: Vec<String> = pending
            .values()
            .filter(|(_, left)| !left.is_empty())
            .map(|(jwt, _)| jwt.to_string())
            .collect();
        let inbox = inbox.clone();
        async move {
            for jwt in unconfirmed {
                system
                    .publish_with_reply(CLAIMS_UPDATE, inbox.clone(), jwt.into())
                    .await
                    .map_err(|e| invalid(format!("push: {e}")))?;
            }
            system
                .flush()
                .await
                .map_err(|e| invalid(format!("push: {e}")))
        }
    };
    send(&pending).await?;
    let mut deadline = tokio::time::Instant::now() + FIRST_ANSWER;
    let mut wait = RESEND;
    let mut resend = tokio::time::Instant::now() + wait;
    let mut answered = BTreeSet::new();
    // (account, node) pairs not confirmed yet: counted down, not found by scanning `pending`
    // at every answer (thousands of accounts times every node's answer).
    let mut unconfirmed = pending.len() * nodes.len();
    while answered.is_empty() || unconfirmed > 0 {
        tokio::select! {
            answer = answers.next() => {
                let Some(answer) = answer else { break };
                let (server, account) = answer_from(&answer.payload)?;
                if let Some((_, left)) = pending.get_mut(&account)
                    && left.remove(&server)
                {
                    unconfirmed -= 1;
                    // Progress: the silent nodes get a while longer, counted from now.
                    deadline = tokio::time::Instant::now() + OTHERS;
                    wait = RESEND;
                    resend = tokio::time::Instant::now() + wait;
                }
                answered.insert(server);
            }
            _ = tokio::time::sleep_until(resend) => {
                send(&pending).await?;
                wait *= 2;
                resend = tokio::time::Instant::now() + wait;
            }
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    if answered.is_empty() {
        return Err(invalid(format!(
            "no node answered the push within {FIRST_ANSWER:?}; is the cluster up \
             (`deploy/cluster.sh status DIR`)?"
        )));
    }
    let missing: BTreeSet<String> = pending.into_values().flat_map(|(_, left)| left).collect();
    Ok(Pushed {
        stored: answered.difference(&missing).cloned().collect(),
        missing: missing.into_iter().collect(),
        stale: Vec::new(),
    })
}

/// The node that stored the JWT and the account's public key, from its answer; an error if
/// it refused it.
fn answer_from(payload: &[u8]) -> Result<(String, String), BrokerError> {
    let v: serde_json::Value = serde_json::from_slice(payload).unwrap_or_default();
    if v["data"]["code"] == 200 {
        let field = |f: &serde_json::Value| f.as_str().unwrap_or("?").to_string();
        Ok((field(&v["server"]["name"]), field(&v["data"]["account"])))
    } else {
        Err(invalid(format!(
            "the cluster refused the account: {}",
            String::from_utf8_lossy(payload)
        )))
    }
}

/// Signs every account's JWT again with what this version grants (so an upgrade's new
/// exports and imports, such as the release service, reach a running cluster) and pushes it
/// (after `broker init`, after an upgrade, or to repair a node's resolver); returns how many,
/// and where they landed.
pub async fn push_all(
    system: &Client,
    held: &AccountsLock,
) -> Result<(usize, Pushed), BrokerError> {
    let tokens = sign_all(held)?;
    Ok((tokens.len(), push_many(system, held, &tokens).await?))
}

/// Every account signed again (issued later than the version saved) and saved.
fn sign_all(held: &AccountsLock) -> Result<Vec<String>, BrokerError> {
    let out = held.out();
    let authority = Authority::load(out)?;
    let mut records = vec![AccountRecord::load(out, CLOUD)?];
    records.extend(AccountRecord::all_users(out)?);
    records
        .iter()
        .map(|record| sign_again(&authority, out, record))
        .collect()
}

/// One account signed again (issued later than the version saved) and saved.
fn sign_again(
    authority: &Authority,
    out: &Path,
    record: &AccountRecord,
) -> Result<String, BrokerError> {
    let token = authority.sign(record)?;
    record.save(out, &token)?;
    Ok(token)
}

/// How long after a push of a changed account the nodes are asked whether they apply it: a
/// node that was loading the account as the push came registers it within milliseconds.
const SETTLE: Duration = Duration::from_millis(200);

/// How many times a changed account is signed anew and pushed again while some node still
/// applies its older claims.
const SIGNED_AGAIN: usize = 3;

/// [`push`] for a changed account (a revocation): once the nodes stored it, asks each which
/// claims it applies, and while some still apply older ones (it loaded the account as the push
/// came: see `in_force`), signs the account anew and pushes it again. The nodes still doing so
/// after that are in [`Pushed::stale`] (logged as an error).
pub async fn push_change(
    system: &Client,
    held: &AccountsLock,
    account_jwt: &str,
) -> Result<Pushed, BrokerError> {
    let claims = super::jwt::claims(account_jwt).map_err(|e| invalid(e.to_string()))?;
    let key = claims["sub"].as_str().unwrap_or_default();
    let name = claims["name"].as_str().unwrap_or_default();
    let mut jwt = account_jwt.to_string();
    let mut pushed = push(system, held, &jwt).await?;
    for round in 0..=SIGNED_AGAIN {
        tokio::time::sleep(SETTLE).await;
        let stale = in_force::holding_other_claims(system, key, &jwt, pushed.stored.len()).await;
        if stale.is_empty() {
            return Ok(pushed);
        }
        if round == SIGNED_AGAIN {
            tracing::error!(account = %name, nodes = ?stale, "nodes still apply the account's older claims after it was pushed again, signed anew");
            pushed.stale = stale;
            return Ok(pushed);
        }
        tracing::warn!(account = %name, nodes = ?stale, "nodes stored the account but apply its older claims (they loaded it as the push came): pushing it again, signed anew");
        let out = held.out();
        jwt = sign_again(
            &Authority::load(out)?,
            out,
            &AccountRecord::load(out, name)?,
        )?;
        pushed = push(system, held, &jwt).await?;
    }
    Ok(pushed)
}

/// The accounts `node` (a connection to that node alone) applies with older claims than
/// stored, signed anew and pushed to it again; how many. A node applies a pushed account to the
/// account it has loaded only when the JWT differs from the one it stored: one loaded from its
/// old copy while it was taking [`push_stored_to`]'s would keep the old claims (a revoked
/// instance was still admitted 10 s after such a push was confirmed, in 2 test runs of 10). A
/// newer JWT is a change it applies. Only the accounts it has loaded are asked about.
pub async fn push_where_stale_to(
    system: &Client,
    held: &AccountsLock,
    node: &str,
) -> Result<(usize, Pushed), BrokerError> {
    audit_node(system, held, node, &mut None, usize::MAX).await
}

/// How many loaded accounts one round of [`audit_node`] checks on a node at most.
pub const AUDITED_PER_ROUND: usize = 500;

/// One round of the follower's audit of `node`: [`push_where_stale_to`] for at most `max` of
/// its loaded accounts (the follower: [`AUDITED_PER_ROUND`]), from after `cursor` (where the
/// previous round stopped; `None` starts again from the first, and is where a round that
/// reached the last one leaves it).
pub async fn audit_node(
    system: &Client,
    held: &AccountsLock,
    node: &str,
    cursor: &mut Option<String>,
    max: usize,
) -> Result<(usize, Pushed), BrokerError> {
    let out = held.out();
    // The stored JWT of a loaded account, read when asked about (not every account's: a
    // million of them at every audit). SYS is the nodes' own (preloaded), never re-issued.
    let stored = |key: &str, name: &str| {
        let jwt = (name != SYSTEM)
            .then(|| AccountRecord::jwt(out, name).ok())
            .flatten()?;
        let claims = super::jwt::claims(&jwt).ok()?;
        (claims["sub"].as_str() == Some(key)).then_some(jwt)
    };
    let (stale, last) = in_force::stale_on_node(system, &stored, cursor.as_deref(), max).await?;
    *cursor = last;
    if stale.is_empty() {
        return push_to_node(system, node, Vec::new()).await;
    }
    let authority = Authority::load(out)?;
    let mut tokens = Vec::with_capacity(stale.len());
    for (_, name) in &stale {
        tokens.push(sign_again(
            &authority,
            out,
            &AccountRecord::load(out, name)?,
        )?);
    }
    let names: Vec<&str> = stale.iter().map(|(_, name)| name.as_str()).collect();
    tracing::warn!(%node, accounts = ?names, "the node stored the accounts but holds them otherwise (older claims, or marked expired): pushing them again, signed anew");
    push_to_node(system, node, tokens).await
}

/// Pushes every account's JWT as stored (not signed again) to one node, over a connection to
/// that node alone (`system`): what it may have missed while it was down. It stores them even
/// before its routes to the others are up.
pub async fn push_stored_to(
    system: &Client,
    held: &AccountsLock,
    node: &str,
) -> Result<(usize, Pushed), BrokerError> {
    push_to_node(system, node, stored(held)?).await
}

/// Pushes `tokens` to `node` alone; how many, and whether it stored them.
async fn push_to_node(
    system: &Client,
    node: &str,
    tokens: Vec<String>,
) -> Result<(usize, Pushed), BrokerError> {
    let only = BTreeSet::from([node.to_string()]);
    Ok((tokens.len(), push_to(system, &only, &tokens).await?))
}

/// Every account's JWT as stored.
fn stored(held: &AccountsLock) -> Result<Vec<String>, BrokerError> {
    let out = held.out();
    let mut tokens = vec![AccountRecord::jwt(out, CLOUD)?];
    for record in AccountRecord::all_users(out)? {
        tokens.push(AccountRecord::jwt(out, &record.name)?);
    }
    Ok(tokens)
}

/// The `[broker]` settings of the manager's login to the system account.
pub fn system_broker(out: &Path) -> Result<BrokerConfig, BrokerError> {
    let path = out.join(format!("creds/{SYSTEM}/manager.toml"));
    BrokerConfig::load(&path).map_err(|e| invalid(e.to_string()))
}

/// Connects to the cluster as the system account's manager (to push accounts).
pub async fn system_client(out: &Path) -> Result<Client, BrokerError> {
    let cfg = system_broker(out)?;
    flowmesh_link::connect::connect(&cfg, "flowmesh-enroll")
        .await
        .map_err(|e| invalid(e.to_string()))
}

/// Connects as the system account's manager to the node at `url` alone (no other region, no
/// discovered server): what asks one node about itself ([`push_where_stale_to`]).
pub async fn system_client_to(out: &Path, url: &str) -> Result<Client, BrokerError> {
    let mut cfg = system_broker(out)?;
    cfg.urls = vec![url.to_string()];
    cfg.regions.clear();
    flowmesh_link::connect::connect(&cfg, "flowmesh-node")
        .await
        .map_err(|e| invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_name_their_node_or_refuse() {
        let ok = br#"{"server":{"name":"eu-1","id":"N"},"data":{"account":"A","code":200,"message":"jwt updated"}}"#;
        assert_eq!(answer_from(ok).unwrap(), ("eu-1".into(), "A".into()));
        let refused =
            br#"{"server":{"name":"eu-1"},"error":{"account":"A","code":500,"description":"bad"}}"#;
        let e = answer_from(refused).unwrap_err().to_string();
        assert!(e.contains("refused") && e.contains("bad"), "{e}");
        assert!(answer_from(b"not json").is_err());
    }

    #[test]
    fn a_partial_push_names_the_silent_nodes() {
        let p = Pushed {
            stored: vec!["eu-1".into(), "us-1".into()],
            missing: vec!["eu-2".into()],
            stale: vec![],
        };
        let s = p.to_string();
        assert!(
            s.starts_with("stored by 2 of 3 nodes") && s.contains("eu-2"),
            "{s}"
        );
        let full = Pushed {
            stored: vec!["eu-1".into()],
            missing: vec![],
            stale: vec![],
        };
        assert_eq!(full.to_string(), "stored by every node (1)");
        let stale = Pushed {
            stale: vec!["eu-2".into()],
            ..full
        };
        assert!(!stale.complete());
        assert!(
            stale
                .to_string()
                .starts_with("stored by every node (1); but eu-2 still apply"),
            "{stale}"
        );
    }
}
