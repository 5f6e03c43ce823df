//! `flowmesh manager`: the cloud operator's daemon. It follows instance connects and
//! disconnects across the supercluster (system events, metadata only), takes attacker-IP
//! reports in its inbox — sealed to the cloud's key by each user — and broadcasts the shared
//! blacklist to every enrolled user, each copy sealed to that user's key with the cloud as
//! sender. It holds no user's key: users' flows, alerts and status are unreadable to it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flowmesh_link::access::ApiConfig;
use flowmesh_link::async_nats::{self, Client};
use flowmesh_link::cloud_sig;
use flowmesh_link::connect::connect_in_background;
use flowmesh_link::retry::until_ok;
use flowmesh_link::subject::cloud;
use flowmesh_link::{Identity, Opener, PublicKey, Sealer};
use flowmesh_proto::v1::{
    self as pb, BlacklistReport, CloudRequest, CloudSigned, InboxReply, cloud_request,
    manager_server,
};
use futures::StreamExt;
use prost::Message;
use tonic::{Request, Response};

use crate::blacklist::Blacklist;
use crate::broker::AccountRecord;
use crate::registry::Registry;

mod config;
mod inbox;
pub use config::{ManagerConfig, ManagerError};

/// What the manager counted.
#[derive(Debug, Default)]
pub struct Counters {
    /// Reports accepted.
    pub reports: AtomicU64,
    /// Remote-assistance credentials issued.
    pub assist: AtomicU64,
    /// Inbox messages refused, by reason.
    pub refused: Mutex<BTreeMap<&'static str, u64>>,
    /// Broadcasts sent (one per user per round).
    pub broadcasts: AtomicU64,
}

impl Counters {
    fn refuse(&self, why: &'static str) {
        *self
            .refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(why)
            .or_default() += 1;
    }
}

/// Users, from the cluster's `accounts/`: their public keys, accounts and enrolled instances.
#[derive(Default)]
struct Users {
    keys: BTreeMap<String, PublicKey>,
    /// Account public key → user name.
    accounts: BTreeMap<String, String>,
    /// Every enrolled instance's user public key.
    enrolled: std::collections::BTreeSet<String>,
    records: Vec<AccountRecord>,
    modified: Option<std::time::SystemTime>,
}

/// The running manager.
pub struct Manager {
    identity: Identity,
    cluster: PathBuf,
    registry: Mutex<Registry>,
    blacklist: Mutex<Blacklist>,
    users: Mutex<Users>,
    opener: Mutex<Opener>,
    /// What it counted.
    pub counters: Counters,
    changed: tokio::sync::Notify,
    state_file: PathBuf,
}

fn now_micros() -> i64 {
    flowmesh_link::envelope::now_micros() as i64
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Manager {
    fn new(config: &ManagerConfig) -> Result<Self, ManagerError> {
        let identity = Identity::load(&config.identity).map_err(|e| ManagerError(e.to_string()))?;
        // Reports are accepted once each, per sender, across restarts too.
        let opener = Opener::new(&identity)
            .journaled(&config.state_file.with_extension("replay.redb"))
            .map_err(|e| ManagerError(e.to_string()))?;
        let m = Manager {
            opener: Mutex::new(opener),
            identity,
            cluster: config.cluster.clone(),
            registry: Mutex::new(Registry::default()),
            blacklist: Mutex::new(Blacklist::new(config.blacklist_ttl_secs, config.blacklist)),
            users: Mutex::new(Users::default()),
            counters: Counters::default(),
            changed: tokio::sync::Notify::new(),
            state_file: config.state_file.clone(),
        };
        m.refresh_users()?;
        m.restore();
        Ok(m)
    }

    /// Takes back the blacklist and registry of the previous run. An unreadable state file is
    /// set aside (renamed `.unreadable`), never overwritten, and the manager starts empty.
    fn restore(&self) {
        let Ok(text) = std::fs::read_to_string(&self.state_file) else {
            return;
        };
        let restored = serde_json::from_str::<serde_json::Value>(&text)
            .map_err(|e| e.to_string())
            .and_then(|v| {
                lock(&self.blacklist).restore(&v["blacklist"], now_micros())?;
                lock(&self.registry).restore(&v["registry"])
            });
        match restored {
            Ok(()) => tracing::info!(
                state = %self.state_file.display(),
                blacklisted = lock(&self.blacklist).len(),
                "state restored"
            ),
            Err(e) => {
                let aside = self.state_file.with_extension("json.unreadable");
                let _ = std::fs::rename(&self.state_file, &aside);
                tracing::error!(error = %e, moved_to = %aside.display(), "state file unreadable; starting empty");
            }
        }
    }

    /// Writes the blacklist and registry (atomically, 0600).
    fn save(&self) {
        let state = serde_json::json!({
            "blacklist": lock(&self.blacklist).save(),
            "registry": lock(&self.registry).save(),
        });
        if let Err(e) =
            flowmesh_link::secret_file::write(&self.state_file, state.to_string().as_bytes(), true)
        {
            tracing::warn!(error = %e, "state not saved");
        }
    }

    /// Re-reads the accounts if they changed (enrollment, revocation): new users are trusted
    /// at once, revoked instances leave the registry. Every change renames a file into
    /// `accounts/`, which changes the directory's modification time.
    fn refresh_users(&self) -> Result<(), ManagerError> {
        let dir = self.cluster.join("accounts");
        let modified = std::fs::metadata(&dir).and_then(|m| m.modified()).ok();
        if modified.is_some() && modified == lock(&self.users).modified {
            return Ok(());
        }
        let records = AccountRecord::all_users(&self.cluster).map_err(|e| {
            ManagerError(format!(
                "{e} (is `cluster` the directory `flowmesh broker init` wrote?)"
            ))
        })?;
        let mut fresh = Users {
            modified,
            ..Users::default()
        };
        for r in &records {
            fresh.accounts.insert(r.account.clone(), r.name.clone());
            fresh
                .enrolled
                .extend(r.instances.values().map(|i| i.key.clone()));
            match r.user_id.as_deref().map(PublicKey::from_hex) {
                Some(Ok(k)) => {
                    fresh.keys.insert(r.name.clone(), k);
                }
                Some(Err(e)) => tracing::warn!(user = %r.name, error = %e, "bad user id"),
                None => tracing::warn!(user = %r.name, "user without a public key: no broadcasts"),
            }
        }
        fresh.records = records;
        {
            let mut opener = lock(&self.opener);
            for k in fresh.keys.values() {
                opener.trust(*k);
            }
        }
        tracing::info!(users = fresh.keys.len(), "users loaded");
        // One lock at a time: connection events hold the registry while they look up users.
        lock(&self.registry).retain_enrolled(&|k| fresh.enrolled.contains(k));
        *lock(&self.users) = fresh;
        Ok(())
    }

    /// The user whose account has public key `account` (as of the last refresh).
    /// The cluster directory (`flowmesh broker init`'s).
    pub(crate) fn cluster_dir(&self) -> &Path {
        &self.cluster
    }

    /// The cloud's public key.
    pub(crate) fn public_key(&self) -> PublicKey {
        self.identity.public()
    }

    /// Reads the users again (after a sign-up).
    pub(crate) fn reload_users(&self) {
        if let Err(e) = self.refresh_users() {
            tracing::warn!(error = %e, "users not reloaded");
        }
    }

    /// Opens a request the console sealed to the cloud on `subject`: the user whose key sealed
    /// it, and its payload. Each is accepted once (the journaled opener), across restarts too.
    pub(crate) fn open_sealed(
        &self,
        subject: &str,
        data: &[u8],
    ) -> Result<(String, Vec<u8>), String> {
        let _ = self.refresh_users();
        let opened = lock(&self.opener)
            .open(subject, data)
            .map_err(|e| e.to_string())?;
        let user = lock(&self.users)
            .keys
            .iter()
            .find(|(_, k)| **k == opened.sender)
            .map(|(name, _)| name.clone())
            .ok_or("the key that sealed it is not an enrolled user's")?;
        Ok((user, opened.payload))
    }

    /// The registry's view of `user`'s instances (where each is connected).
    pub(crate) fn instances_of(&self, user: &str) -> Vec<pb::CloudInstance> {
        lock(&self.registry).list(Some(user))
    }

    fn user_of_account(&self, account: &str) -> Option<String> {
        lock(&self.users).accounts.get(account).cloned()
    }

    fn key_of(&self, user: &str) -> Option<PublicKey> {
        lock(&self.users).keys.get(user).copied()
    }

    /// Seals `body` to `key` for `subject`, signed by the cloud (see `link::cloud_sig`).
    fn seal_signed(&self, key: PublicKey, subject: &str, body: Vec<u8>) -> Option<Vec<u8>> {
        let signature = cloud_sig::sign(&self.identity, subject, &body).to_vec();
        let signed = CloudSigned { body, signature }.encode_to_vec();
        match Sealer::new(&self.identity, key).seal(subject, &signed) {
            Ok(sealed) => Some(sealed),
            Err(e) => {
                tracing::error!(error = %e, "cannot seal");
                None
            }
        }
    }

    /// Sends every user its view of the blacklist, sealed to that user and signed, in as many
    /// parts as the broker's `max_payload` needs.
    async fn broadcast(&self, client: &Client) {
        let _ = self.refresh_users();
        let now = now_micros();
        lock(&self.blacklist).expire(now);
        let users: Vec<(String, PublicKey)> = lock(&self.users)
            .keys
            .iter()
            .map(|(u, k)| (u.clone(), *k))
            .collect();
        // Room for the envelope, the signature and the protobuf framing around each part.
        let budget = (client.server_info().max_payload.max(4096) - 1024).min(MAX_PART_BYTES);
        for (user, key) in users {
            let subject = cloud::broadcast_to(&user);
            let whole = lock(&self.blacklist).for_user(&user, now);
            for part in crate::blacklist::split(whole, budget) {
                let Some(sealed) = self.seal_signed(key, &subject, part.encode_to_vec()) else {
                    continue;
                };
                match client.publish(subject.clone(), sealed.into()).await {
                    Ok(()) => {
                        self.counters.broadcasts.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => tracing::warn!(%user, error = %e, "broadcast not sent"),
                }
            }
        }
    }
}

/// The largest broadcast part, whatever the broker allows (smaller messages travel better).
const MAX_PART_BYTES: usize = 256 * 1024;

/// Runs the manager until `stop` is set.
pub async fn run(config: ManagerConfig, stop: Arc<AtomicBool>) -> Result<(), ManagerError> {
    let m = Arc::new(Manager::new(&config)?);
    let cloud_client = connect_in_background(&config.broker, "manager")
        .await
        .map_err(|e| ManagerError(e.to_string()))?;
    let system = connect_in_background(&config.system, "manager")
        .await
        .map_err(|e| ManagerError(e.to_string()))?;
    let (api_stop, api_stopped) = tokio::sync::oneshot::channel::<()>();
    // The access file is removed when `_access` drops, at the end of this function.
    let mut _access = None;
    if let Some(addr) = config.api.address().map_err(ManagerError)? {
        let (_, published) = serve_api(m.clone(), &config.api, addr, async {
            let _ = api_stopped.await;
        })
        .await
        .map_err(ManagerError)?;
        _access = Some(published);
    }
    let (console_stop, console_stopped) = tokio::sync::oneshot::channel::<()>();
    if let Some(url) = crate::console::serve(m.clone(), system.clone(), &config.console, async {
        let _ = console_stopped.await;
    })
    .await
    .map_err(ManagerError)?
    {
        // Printed, not only logged: the address a person opens.
        println!("web console: {url}");
    }
    tracing::info!(cluster = %config.cluster.display(), "manager starting");
    let nodes = tokio::spawn(follow_nodes(config.cluster.clone()));
    let events = tokio::spawn(follow_connections(m.clone(), system, stop.clone()));
    let inbox = tokio::spawn(inbox::serve_inbox(
        m.clone(),
        cloud_client.clone(),
        stop.clone(),
    ));
    let releases = tokio::spawn(crate::releases::serve(cloud_client.clone()));
    let mut every = tokio::time::interval(Duration::from_secs(config.rebroadcast_secs.max(1)));
    while !stop.load(Ordering::Relaxed) {
        tokio::select! {
            _ = every.tick() => {}
            _ = m.changed.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(250)) => continue,
        }
        m.broadcast(&cloud_client).await;
        m.save();
    }
    m.save();
    let _ = api_stop.send(());
    let _ = console_stop.send(());
    events.abort();
    nodes.abort();
    inbox.abort();
    releases.abort();
    let _ = tokio::time::timeout(Duration::from_secs(5), cloud_client.flush()).await;
    tracing::info!(
        reports = m.counters.reports.load(Ordering::Relaxed),
        broadcasts = m.counters.broadcasts.load(Ordering::Relaxed),
        refused = ?lock(&m.counters.refused),
        "manager stopped"
    );
    Ok(())
}

/// Keeps every node's resolver current (see [`broker::follow_nodes`]), logging why if it
/// cannot follow the nodes.
async fn follow_nodes(cluster: std::path::PathBuf) {
    if let Err(e) = crate::broker::follow_nodes(cluster).await {
        tracing::error!(error = %e, "not following the nodes: a node that restarts catches up on accounts only at its resolver's periodic sync");
    }
}

/// Connects and disconnects from every node, after a first inventory of who is connected.
async fn follow_connections(m: Arc<Manager>, system: Client, stop: Arc<AtomicBool>) {
    let subscribe = || async {
        let c = system.subscribe("$SYS.ACCOUNT.*.CONNECT").await?;
        let d = system.subscribe("$SYS.ACCOUNT.*.DISCONNECT").await?;
        system.flush().await?;
        Ok::<_, async_nats::Error>(futures::stream::select(c, d))
    };
    let Some(mut events) = until_ok("following connection events", &stop, subscribe).await else {
        return;
    };
    inventory(&m, &system).await;
    let user_of = |a: &str| m.user_of_account(a);
    while let Some(msg) = events.next().await {
        let mut seen = lock(&m.registry).event(&msg.payload, now_micros(), &user_of);
        if seen == crate::registry::Seen::Ignored {
            // Perhaps a user enrolled since the last look: look again, once.
            let _ = m.refresh_users();
            seen = lock(&m.registry).event(&msg.payload, now_micros(), &user_of);
        }
        tracing::debug!(?seen, subject = %msg.subject, "connection event");
    }
}

/// Asks every node for its connections (one answer per node) and seeds the registry.
async fn inventory(m: &Manager, system: &Client) {
    let ask = br#"{"auth":true,"limit":100000}"#;
    let answers = crate::broker::ask_every_node(
        system,
        "$SYS.REQ.SERVER.PING.CONNZ",
        ask,
        None,
        Duration::from_secs(2),
    )
    .await;
    let nodes = answers.len();
    for answer in answers {
        let _ = m.refresh_users();
        let user_of = |a: &str| m.user_of_account(a);
        lock(&m.registry).seed(&answer.payload, now_micros(), &user_of);
    }
    tracing::info!(nodes, "connection inventory");
}

struct Api {
    m: Arc<Manager>,
}

#[tonic::async_trait]
impl manager_server::Manager for Api {
    async fn list_instances(
        &self,
        r: Request<pb::CloudInstancesRequest>,
    ) -> Result<Response<pb::CloudInstancesResponse>, tonic::Status> {
        let user = r.into_inner().user;
        // Revoked instances leave the list as soon as their account record changed.
        let _ = self.m.refresh_users();
        Ok(Response::new(pb::CloudInstancesResponse {
            instances: lock(&self.m.registry).list(user.as_deref()),
        }))
    }

    async fn list_users(
        &self,
        _: Request<pb::CloudUsersRequest>,
    ) -> Result<Response<pb::CloudUsersResponse>, tonic::Status> {
        self.m
            .refresh_users()
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let seen = lock(&self.m.registry).list(None);
        let users = lock(&self.m.users)
            .records
            .iter()
            .map(|a| pb::CloudUser {
                user: a.name.clone(),
                public_key: a.user_id.clone().unwrap_or_default(),
                enrolled: a.instances.keys().cloned().collect(),
                online: seen.iter().filter(|i| i.user == a.name && i.online).count() as u32,
            })
            .collect();
        Ok(Response::new(pb::CloudUsersResponse { users }))
    }

    async fn get_blacklist(
        &self,
        _: Request<pb::GetBlacklistRequest>,
    ) -> Result<Response<pb::BlacklistBroadcast>, tonic::Status> {
        Ok(Response::new(
            lock(&self.m.blacklist).broadcast(now_micros()),
        ))
    }

    async fn add_to_blacklist(
        &self,
        r: Request<pb::BlacklistAddRequest>,
    ) -> Result<Response<InboxReply>, tonic::Status> {
        let r = r.into_inner();
        let ip: std::net::IpAddr = r.ip.trim().parse().map_err(|_| {
            tonic::Status::invalid_argument(format!("{:?} is not an IP address", r.ip))
        })?;
        let result = lock(&self.m.blacklist).add_by_operator(ip, &r.reason, now_micros());
        Ok(Response::new(match result {
            Ok(()) => {
                tracing::info!(%ip, reason = %r.reason, "listed by the operator");
                self.m.changed.notify_one();
                InboxReply {
                    accepted: true,
                    ..Default::default()
                }
            }
            Err(error) => InboxReply {
                accepted: false,
                error,
                ..Default::default()
            },
        }))
    }
}

async fn serve_api(
    m: Arc<Manager>,
    api: &ApiConfig,
    addr: SocketAddr,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, flowmesh_link::access::Published), String> {
    flowmesh_proto::serve::with_access(api, addr, stop, |check| {
        tonic::service::Routes::new(manager_server::ManagerServer::with_interceptor(
            Api { m },
            check,
        ))
    })
    .await
}
