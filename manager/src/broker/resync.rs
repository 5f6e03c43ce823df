//! Bringing a restarted node's resolver up to date at once. A node that was down when an
//! account changed (a revocation above all) starts again with its old copy and, left alone,
//! learns the change only at its resolver's periodic sync — admitting a revoked instance
//! meanwhile (measured: for 120 s with the earlier 2-minute interval, 15 s with today's).
//!
//! So the manager keeps a connection to each node alone (no discovered servers, retried every
//! 200 ms while the node is down) and pushes every stored account over it each time it is
//! (re)established. Pushing through the cluster instead, on noticing a node's new server id in
//! its heartbeats, left the restarted node admitting a revoked instance for up to 2.3 s (16
//! logins in the test): its heartbeats and the push both wait for its routes to come up. Over
//! its own connection the node stores the accounts as soon as it accepts clients: 0.13–0.26 s.
//!
//! A node that loads an account from its old copy while it takes that push keeps the old claims
//! (the push is stored, but applied only to accounts already loaded): in 2 of 10 runs of the
//! test the restarted node admitted the revoked instance until the account was pushed again,
//! issued anew — a change it applies to loaded accounts. So a second after the push the node is
//! asked which claims its loaded accounts hold, and those it holds older are issued anew and
//! pushed to it again (session 17 issued every account anew instead: a million accounts'
//! signatures for each node that restarts).

use std::path::PathBuf;
use std::time::Duration;

use flowmesh_link::async_nats::connection::State;
use flowmesh_link::async_nats::{Client, Event};

use super::{
    AccountsLock, BrokerError, NodeSummary, audit_node, invalid, push_stored_to,
    push_where_stale_to, read_summary,
};

/// How soon a lost connection to one node is tried again (a refused connection costs nothing).
const RECONNECT: Duration = Duration::from_millis(200);

/// How soon a push that failed on a connected node is tried again.
const RETRY: Duration = Duration::from_secs(2);

/// How long after a push to a (re)connected node it is asked whether it applies it (see
/// [`push_where_stale_to`]).
const SETTLE: Duration = Duration::from_secs(1);

/// How many times the accounts a node applies with older claims are issued anew and pushed.
const SIGNED_AGAIN: usize = 3;

/// How often a connected node's loaded accounts are checked against the stored ones (see
/// [`audit`]).
const AUDIT: Duration = Duration::from_secs(30);

/// Watches every node of the cluster in `out` (as listed in its `nodes.tsv` when this starts)
/// and pushes every stored account to a node each time the connection to it is made: when
/// this starts (a node may have missed a push while nothing was watching) and whenever the
/// node comes back. Runs until stopped; the manager runs it for as long as it runs.
pub async fn follow_nodes(out: PathBuf) -> Result<(), BrokerError> {
    let nodes = read_summary(&out)?;
    let watchers: Vec<_> = nodes
        .into_iter()
        .map(|node| tokio::spawn(watch_node(out.clone(), node)))
        .collect();
    for w in watchers {
        let _ = w.await;
    }
    Ok(())
}

/// Keeps a connection to `node` alone and pushes every stored account over it each time the
/// connection is made. A push under way when the connection is made again starts over on the
/// new one at once: it was sent into the lost connection (or waited for the lock while the node
/// went down), and waiting for it to time out left a restarted node admitting a revoked
/// instance for over 10 s (the test's bound) in one run of four.
async fn watch_node(out: PathBuf, node: NodeSummary) {
    let (client, mut up) = match connect_to(&out, &node).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(node = %node.name, error = %e, "not watching the node: when it restarts it catches up on accounts only at its resolver's periodic sync");
            return;
        }
    };
    // Whether a push is owed without waiting for the next connection.
    let mut owed = false;
    // Where the audit's previous round stopped in the node's loaded accounts.
    let mut cursor = None;
    let mut audits = tokio::time::interval_at(tokio::time::Instant::now() + AUDIT, AUDIT);
    audits.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if !owed {
            tokio::select! {
                again = up.recv() => if again.is_none() {
                    return;
                },
                _ = audits.tick() => {
                    if client.connection_state() == State::Connected {
                        audit(&out, &client, &node.name, &mut cursor).await;
                    }
                    continue;
                }
            }
        }
        owed = false;
        let attempt = async {
            let held = AccountsLock::acquire_async(&out).await?;
            let (n, first) = push_stored_to(&client, &held, &node.name).await?;
            drop(held);
            if !first.complete() {
                return Ok((n, first));
            }
            // Any account it loaded from its old copy while taking the push, issued anew: a
            // change it applies.
            let mut last = (n, first);
            for _ in 0..SIGNED_AGAIN {
                tokio::time::sleep(SETTLE).await;
                let held = AccountsLock::acquire_async(&out).await?;
                let (again, pushed) = push_where_stale_to(&client, &held, &node.name).await?;
                if again == 0 {
                    break;
                }
                last = (n, pushed);
            }
            Ok::<_, BrokerError>(last)
        };
        let pushed = tokio::select! {
            pushed = attempt => pushed,
            again = up.recv() => {
                if again.is_none() {
                    return;
                }
                tracing::debug!(node = %node.name, "connected to the node again during a push: pushing again");
                owed = true;
                continue;
            }
        };
        match pushed {
            Ok((n, pushed)) if pushed.complete() => {
                tracing::info!(node = %node.name, accounts = n, "connected to the node: every account pushed to it");
                continue;
            }
            Ok((_, pushed)) => {
                tracing::warn!(node = %node.name, %pushed, "connected to the node: push incomplete; trying again")
            }
            Err(e) => {
                tracing::warn!(node = %node.name, error = %e, "connected to the node: push failed; trying again")
            }
        }
        // Again after a while if still connected, or as soon as the connection is made again.
        tokio::select! {
            _ = tokio::time::sleep(RETRY) => owed = client.connection_state() == State::Connected,
            again = up.recv() => {
                if again.is_none() {
                    return;
                }
                owed = true;
            }
        }
    }
}

/// Checks which claims a connected node applies for the accounts it has loaded, at most
/// [`AUDITED_PER_ROUND`](super::AUDITED_PER_ROUND) a round from where the previous one stopped, and issues anew and
/// pushes those it holds otherwise than stored ([`audit_node`]). A node can
/// come to hold an account wrongly without any push racing: a new account's first logins, from
/// a client and through a route at once, left one marked expired in about one test-cluster
/// start of 300 (every later login of its users refused), and nats-server keeps the mark
/// until the account's JWT changes. So the follower looks every 30 s: one request per node,
/// and one per account checked (a node with 100,000 accounts loaded is gone through in 100
/// minutes).
async fn audit(out: &std::path::Path, client: &Client, node: &str, cursor: &mut Option<String>) {
    let checked = async {
        let held = AccountsLock::acquire_async(out).await?;
        audit_node(client, &held, node, cursor, super::AUDITED_PER_ROUND).await
    };
    match checked.await {
        Ok((0, _)) => {
            tracing::trace!(%node, "audit: the node applies every loaded account as stored")
        }
        Ok((n, pushed)) => {
            tracing::info!(%node, accounts = n, %pushed, "audit: accounts the node held otherwise than stored were issued anew and pushed to it")
        }
        Err(e) => tracing::debug!(%node, error = %e, "audit: could not check the node's accounts"),
    }
}

/// A system-account connection to `node` only, and what says each time it is (re)made.
async fn connect_to(
    out: &std::path::Path,
    node: &NodeSummary,
) -> Result<(Client, tokio::sync::mpsc::UnboundedReceiver<()>), BrokerError> {
    let mut cfg = super::system_broker(out)?;
    cfg.urls = vec![node.client_url.clone()];
    cfg.regions.clear();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let client = flowmesh_link::connect::options(&cfg, "flowmesh-resync")
        .map_err(|e| invalid(e.to_string()))?
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                if matches!(event, Event::Connected) {
                    let _ = tx.send(());
                }
            }
        })
        .ignore_discovered_servers()
        .reconnect_delay_callback(|_| RECONNECT)
        .retry_on_initial_connect()
        .connect(node.client_url.as_str())
        .await
        .map_err(|e| invalid(e.to_string()))?;
    Ok((client, rx))
}
