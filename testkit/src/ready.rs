//! Waiting for a test cluster to be ready: healthy nodes with their gateways, and every user's
//! account pushed and served with JetStream on every node.

use std::time::{Duration, Instant};

use anyhow::bail;
use flowmesh_manager::broker;

use crate::{Cluster, http_get};

/// How long a node may refuse an account's users after the push before its accounts are
/// checked (a node takes milliseconds to load a pushed account).
const CHECK_AFTER: Duration = Duration::from_secs(2);

impl Cluster {
    /// Pushes every account to the running nodes, as `flowmesh broker push` does (which sends
    /// again while a node has not answered): every running node must have stored every
    /// account. Then waits until each serves every user's JetStream.
    pub(crate) fn push_accounts(&self) -> anyhow::Result<()> {
        let dir = self.dir.path();
        let missing = on_own_runtime("pushing the accounts", || async {
            let system = broker::system_client(dir).await?;
            let held = broker::AccountsLock::acquire_async(dir).await?;
            let (_, pushed) = broker::push_all(&system, &held).await?;
            system.flush().await?;
            anyhow::Ok(pushed.missing)
        })?;
        let running: Vec<&str> = self
            .nodes
            .iter()
            .filter(|n| n.child.is_some())
            .map(|n| n.name.as_str())
            .collect();
        if let Some(node) = running.iter().find(|n| missing.iter().any(|m| m == **n)) {
            bail!("node {node} is running but did not answer the accounts' push: {missing:?}");
        }
        // A node answers once its resolver stored the account: no need to look at its files.
        let users = broker::AccountRecord::all_users(dir)?;
        on_own_runtime("waiting for JetStream", || {
            self.wait_jetstream_accounts(&users, Duration::from_secs(20))
        })
    }

    /// Waits until every running node answers a JetStream request of every user's account.
    /// The resolver writes an account's file before the node has loaded it and turned its
    /// JetStream on; a stream made in that moment is refused ("JetStream not enabled for
    /// account", seen on a fresh machine).
    async fn wait_jetstream_accounts(
        &self,
        users: &[broker::AccountRecord],
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        for user in users {
            let mut config = self.insider_config(&user.name, "testkit-ready", None);
            for node in self.nodes.iter().filter(|n| n.child.is_some()) {
                config.urls = vec![node.client_url.clone()];
                config.regions.clear();
                let mut last = String::new();
                let since = tokio::time::Instant::now();
                let mut checked = false;
                loop {
                    let answer = async {
                        let client = flowmesh_link::connect::connect(&config, "testkit-ready")
                            .await
                            .map_err(|e| e.to_string())?;
                        let js = flowmesh_link::async_nats::jetstream::new(client);
                        js.query_account().await.map_err(|e| e.to_string())
                    };
                    match tokio::time::timeout_at(deadline, answer).await {
                        Ok(Ok(_)) => break,
                        Ok(Err(e)) => last = e,
                        Err(_) => {}
                    }
                    // What the manager's follower does every 30 s, at once: a node can hold a
                    // new account wrongly (marked expired, seen once in 300 starts).
                    if !checked && last.contains("authorization") && since.elapsed() > CHECK_AFTER {
                        checked = true;
                        eprintln!(
                            "testkit: node {} refuses {}'s users {:?} after the push ({last}); \
                             it held:\n{}checking its accounts as the manager does: {}",
                            node.name,
                            user.name,
                            since.elapsed(),
                            self.account_held(&user.account).await,
                            self.issue_stale_anew(&node.client_url, &node.name).await
                        );
                    }
                    if tokio::time::Instant::now() >= deadline {
                        bail!(
                            "node {} did not serve JetStream to {}'s account within {timeout:?}: {last}\n\
                             what each node holds in memory for the account:\n{}",
                            node.name,
                            user.name,
                            self.account_held(&user.account).await
                        );
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        Ok(())
    }

    /// The manager follower's check of one node ([`broker::push_where_stale_to`]): the accounts
    /// it holds otherwise than stored, issued anew and pushed to it. Says what it did.
    async fn issue_stale_anew(&self, url: &str, node: &str) -> String {
        let dir = self.dir.path();
        let checked = async {
            let client = broker::system_client_to(dir, url).await?;
            let held = broker::AccountsLock::acquire_async(dir).await?;
            let (n, pushed) = broker::push_where_stale_to(&client, &held, node).await?;
            anyhow::Ok(format!("{n} issued anew, {pushed}"))
        };
        checked.await.unwrap_or_else(|e| format!("failed: {e:#}"))
    }

    /// Every node's description of the account `key` it has loaded (`$SYS.REQ.ACCOUNT.<key>.INFO`:
    /// the JWT it was built from, or that it is not loaded), for a failure message: a node that
    /// stored an account yet refuses its users holds something else in memory.
    pub async fn account_held(&self, key: &str) -> String {
        let dir = self.dir.path();
        let Ok(system) = broker::system_client(dir).await else {
            return "(cannot connect as the system account)".into();
        };
        let stored = broker::AccountRecord::all_users(dir)
            .ok()
            .and_then(|users| users.into_iter().find(|u| u.account == key))
            .and_then(|u| broker::AccountRecord::jwt(dir, &u.name).ok())
            .unwrap_or_default();
        let subject = format!("$SYS.REQ.ACCOUNT.{key}.INFO");
        let answers = broker::ask_every_node(
            &system,
            &subject,
            b"",
            Some(self.nodes.len()),
            Duration::from_secs(1),
        )
        .await;
        let mut held = String::new();
        for answer in answers {
            let v: serde_json::Value = serde_json::from_slice(&answer.payload).unwrap_or_default();
            let node = v["server"]["name"].as_str().unwrap_or("?");
            let what = match (&v["data"], &v["error"]) {
                (serde_json::Value::Object(d), _) => {
                    let jwt = d.get("jwt").and_then(|j| j.as_str()).unwrap_or("");
                    let same = if jwt == stored {
                        "the stored JWT"
                    } else if jwt.is_empty() {
                        "NO JWT"
                    } else {
                        "ANOTHER JWT"
                    };
                    format!(
                        "loaded from {same}; expired {}, complete {}, jetstream {}, issuer {}, {} chars: {}",
                        d.get("expired").unwrap_or(&serde_json::Value::Null),
                        d.get("complete").unwrap_or(&serde_json::Value::Null),
                        d.get("jetstream_enabled")
                            .unwrap_or(&serde_json::Value::Null),
                        d.get("issuer_key").unwrap_or(&serde_json::Value::Null),
                        jwt.len(),
                        serde_json::to_string(&d.get("decoded_jwt")).unwrap_or_default()
                    )
                }
                (_, e) => format!("not loaded ({e})"),
            };
            held += &format!("  {node}: {what}\n");
        }
        held
    }

    /// Waits until every running node reports healthy (JetStream included, every stream and
    /// consumer current) and has an outbound gateway to every other region.
    pub fn wait_healthy(&self, timeout: Duration) -> anyhow::Result<()> {
        self.wait_nodes("/healthz", timeout)
    }

    /// Waits until every running node serves with JetStream enabled and has its gateways —
    /// without waiting for every stream and consumer to be current again, which after a whole
    /// cluster restarts can take minutes (clients must cope meanwhile, and tests check that).
    pub fn wait_serving(&self, timeout: Duration) -> anyhow::Result<()> {
        self.wait_nodes("/healthz?js-enabled-only=true", timeout)
    }

    fn wait_nodes(&self, healthz: &str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let regions: Vec<String> = {
            let mut r: Vec<String> = self.nodes.iter().map(|n| n.region.clone()).collect();
            r.dedup();
            r
        };
        for node in self.nodes.iter().filter(|n| n.child.is_some()) {
            loop {
                let healthy = http_get(&node.monitor, healthz).is_ok_and(|b| b.contains("\"ok\""));
                let gateways = http_get(&node.monitor, "/gatewayz")
                    .ok()
                    .and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok())
                    .is_some_and(|v| {
                        regions
                            .iter()
                            .filter(|r| **r != node.region)
                            .all(|r| v["outbound_gateways"][r]["connection"].is_object())
                    });
                if healthy && gateways {
                    break;
                }
                if Instant::now() > deadline {
                    bail!(
                        "node {} not healthy within {timeout:?}; log:\n{}",
                        node.name,
                        self.log_tail(&node.name)
                    );
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    }
}

/// Runs the future `make` gives to its end on a runtime and a thread of its own: tests start
/// clusters from inside their own runtime too. `what` names it if it panics.
fn on_own_runtime<T: Send, F: std::future::Future<Output = anyhow::Result<T>>>(
    what: &str,
    make: impl FnOnce() -> F + Send,
) -> anyhow::Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(make())
        })
        .join()
        .map_err(|_| anyhow::anyhow!("{what} panicked"))?
    })
}
