//! `flowmesh collector`: a durable JetStream consumer of the user's flow batches. Each batch is
//! opened (foreign, forged, replayed and malformed ones are rejected and counted), run through
//! the policy engine, its alerts published sealed and stored with its timeseries and its id in
//! one transaction — and only then acknowledged, so a crash at any point loses nothing and a
//! redelivery stores nothing twice. Heartbeats become status changes.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flowmesh_link::async_nats::jetstream::{self, AckKind, consumer, kv};
use flowmesh_link::async_nats::{self, HeaderMap};
use flowmesh_link::connect::{BrokerConfig, connect_in_background};
use flowmesh_link::envelope::{DEFAULT_REPLAY_CAPACITY, OpenError};
use flowmesh_link::replay::ReplayJournal;
use flowmesh_link::retry::{Backoff, until_ok};
use flowmesh_link::subject::{Channel, instance_of, validate_token};
use flowmesh_link::{Identity, Opener, Sealer, streams};
use flowmesh_proto::v1::{FlowBatch, Status};
use flowmesh_sensor::publish::codec;
use futures::StreamExt;
use prost::Message;
use serde::Deserialize;

use crate::alert::Alert;
use crate::api::access::ApiConfig;
use crate::checks::Engine;
use crate::checks::blacklist::Blacklist;
use crate::cloud::{BroadcastCounters, CloudConfig};
use crate::policy::edit::{Applied, Edit, EditError};
use crate::policy::{self, Policy};
use crate::status::{Settings, Tracker};
use crate::store::{Commit, SeriesDelta, Store};

/// The durable consumer every collector of a user shares when it lists no `instances`:
/// JetStream hands each batch to one of them.
pub const DURABLE: &str = "collectors";

/// The durable consumer's name and subject filters for a collector.
pub fn consumer_of(config: &CollectorConfig) -> (String, Vec<String>) {
    match &config.instances {
        None => (DURABLE.to_string(), vec![Channel::Flows.all()]),
        Some(list) => (
            format!("collector-{}", config.name),
            list.iter()
                .filter_map(|i| Channel::Flows.subject(i).ok())
                .collect(),
        ),
    }
}
/// Flow batches older than this are refused even from JetStream (the store remembers batch ids
/// this long, so anything older could not be recognised as a duplicate).
const MAX_AGE_MICROS: u64 = 7 * 86_400 * 1_000_000;

/// The collector's config file.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct CollectorConfig {
    /// This collector's name (a subject token): its alerts go to `flowmesh.alerts.<name>`.
    pub name: String,
    /// The user's identity file.
    pub identity: PathBuf,
    /// The store (redb) file.
    pub store: PathBuf,
    /// The policy file.
    pub policy: PathBuf,
    /// The cluster.
    pub broker: BrokerConfig,
    /// JetStream replicas for streams it creates.
    #[serde(default = "one")]
    pub replicas: usize,
    /// Heartbeat intervals missed before an instance is offline.
    #[serde(default = "three")]
    pub offline_after_missed: u32,
    /// And at least this many seconds without one (an instance that said it stops is offline
    /// without this delay).
    #[serde(default = "thirty")]
    pub offline_after_secs: u64,
    /// Heartbeats in a row before an offline instance is online again.
    #[serde(default = "two")]
    pub online_after: u32,
    /// Offline/online transitions within `flapping_window_secs` that make an instance
    /// `flapping` (reported once; then quiet until it is stable for `flapping_stable_secs`).
    #[serde(default = "four")]
    pub flapping_transitions: u32,
    /// The window in which transitions are counted.
    #[serde(default = "six_hundred")]
    pub flapping_window_secs: u64,
    /// How long a flapping instance must hold one status to be reported again.
    #[serde(default = "one_twenty")]
    pub flapping_stable_secs: u64,
    /// The sensor instances this collector serves. Absent: all of them, through the consumer
    /// every such collector shares (JetStream hands each batch to one of them). Listed: only
    /// these, through a consumer of its own — give each collector its own instances and every
    /// instance's batches, and its stateful checks, stay with one collector.
    pub instances: Option<Vec<String>>,
    /// `[cloud]`: the cloud's key (DNS), for its shared blacklist and for reports.
    pub cloud: Option<CloudConfig>,
    /// `[api]`: the gRPC API the CLI uses (127.0.0.1:7701 by default).
    #[serde(default = "collector_api")]
    pub api: ApiConfig,
}

fn collector_api() -> ApiConfig {
    ApiConfig::on_port(7701)
}

fn one() -> usize {
    1
}
fn two() -> u32 {
    2
}
fn three() -> u32 {
    3
}
fn four() -> u32 {
    4
}
fn thirty() -> u64 {
    30
}
fn one_twenty() -> u64 {
    120
}
fn six_hundred() -> u64 {
    600
}

/// Why the collector cannot start or go on.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CollectorError(pub String);

impl CollectorConfig {
    /// Reads a config file; relative paths are resolved against its directory.
    pub fn load(path: &Path) -> Result<Self, CollectorError> {
        let err = |r: String| CollectorError(format!("{}: {r}", path.display()));
        let (mut c, dir): (CollectorConfig, _) =
            flowmesh_link::config::read_toml(path).map_err(err)?;
        c.identity = dir.join(&c.identity);
        c.store = dir.join(&c.store);
        c.policy = dir.join(&c.policy);
        c.broker = c.broker.relative_to(&dir);
        c.api.resolve(path);
        c.api.address().map_err(err)?;
        validate_token(&c.name).map_err(|e| err(e.to_string()))?;
        for i in c.instances.iter().flatten() {
            validate_token(i).map_err(|e| err(format!("instances: {e}")))?;
        }
        Ok(c)
    }
}

/// Reads and validates a policy file: every error with its line, nothing applied otherwise.
pub fn load_policy(path: &Path) -> Result<Policy, CollectorError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CollectorError(format!("{}: {e}", path.display())))?;
    match policy::parse(&text) {
        Ok((p, report)) => {
            for w in report.warnings {
                tracing::warn!("{}:{}: {}", path.display(), w.line, w.message);
            }
            Ok(p)
        }
        Err(report) => {
            let lines: Vec<String> = report
                .errors
                .iter()
                .map(|e| format!("{}:{}: {}", path.display(), e.line, e.message))
                .collect();
            Err(CollectorError(format!(
                "the policy has errors, nothing applied:\n{}",
                lines.join("\n")
            )))
        }
    }
}

/// What the collector counted, for its logs and the API.
#[derive(Debug, Default)]
pub struct Counters {
    /// Batches stored.
    pub batches: AtomicU64,
    /// Flow records in them.
    pub flows: AtomicU64,
    /// Alerts raised.
    pub alerts: AtomicU64,
    /// Batches delivered again and recognised (not stored twice).
    pub duplicates: AtomicU64,
    /// Rejections by reason.
    pub rejected: Mutex<BTreeMap<&'static str, u64>>,
}

impl Counters {
    fn reject(&self, reason: &'static str) {
        *self
            .rejected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(reason)
            .or_default() += 1;
    }

    /// Rejections so far, by reason.
    pub fn rejections(&self) -> BTreeMap<&'static str, u64> {
        self.rejected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

fn reason(e: &OpenError) -> &'static str {
    match e {
        OpenError::WrongRecipient(_) | OpenError::UntrustedSender(_) => "foreign",
        OpenError::Forged | OpenError::BadEphemeralKey => "forged",
        OpenError::Replayed(_) => "replayed",
        OpenError::TooOld | OpenError::FromTheFuture => "stale",
        OpenError::Journal(_) => "journal_unwritable",
        _ => "malformed",
    }
}

/// A flow batch opened and judged, waiting to be stored with the others of its fetch.
struct Prepared {
    batch_id: String,
    instance: String,
    flows: u64,
    alerts: Vec<Alert>,
    series: SeriesDelta,
}

/// Why a policy edit was not applied.
#[derive(Debug)]
pub enum PolicyEditError {
    /// The edit does not fit, or the result does not validate.
    Edit(EditError),
    /// The policy file could not be read or written.
    Io(String),
}

/// The running collector's shared parts.
pub struct Collector {
    name: String,
    identity: Identity,
    js: jetstream::Context,
    sealer: Option<Sealer>,
    /// Heartbeats and remote actions: ±10 minutes, each id once, across restarts (journaled).
    opener: Arc<Opener>,
    /// Flow batches (up to 7 days old, replays caught by the store's batch ids) and the status
    /// bucket's entries.
    flows_opener: Opener,
    store: Store,
    policy_path: PathBuf,
    policy: Mutex<Policy>,
    /// Edits are read-modify-write of the file: one at a time.
    policy_edits: tokio::sync::Mutex<()>,
    engines: Mutex<HashMap<String, Engine>>,
    tracker: Mutex<Tracker>,
    /// The cloud's shared blacklist, as last received.
    blacklist: Arc<std::sync::RwLock<Blacklist>>,
    /// What following the cloud's broadcasts counted.
    pub cloud_counters: Arc<BroadcastCounters>,
    /// Alert types whose flow's public address goes to the cloud, and where it is queued.
    report_alerts: Vec<String>,
    reports: Mutex<Option<tokio::sync::mpsc::Sender<(std::net::IpAddr, String, String)>>>,
    /// What it counted.
    pub counters: Counters,
    alert_seq: AtomicU64,
}

fn now_micros() -> i64 {
    flowmesh_link::envelope::now_micros() as i64
}

impl Collector {
    /// Opens the store and policy, and connects (in the background).
    pub async fn start(config: &CollectorConfig, seal: bool) -> Result<Arc<Self>, CollectorError> {
        let identity =
            Identity::load(&config.identity).map_err(|e| CollectorError(e.to_string()))?;
        let policy = load_policy(&config.policy)?;
        let store = Store::open(&config.store).map_err(|e| CollectorError(e.to_string()))?;
        let journal = ReplayJournal::open(&journal_path(&config.store))
            .map_err(|e| CollectorError(e.to_string()))?;
        let opener = Opener::new(&identity)
            .with_journal(journal)
            .map_err(|e| CollectorError(e.to_string()))?;
        let client = connect_in_background(&config.broker, &config.name)
            .await
            .map_err(|e| CollectorError(e.to_string()))?;
        if !seal {
            tracing::warn!("BENCH-ONLY MODE: flow batches are accepted in plaintext");
        }
        let secs = |s: u64| i64::try_from(s.saturating_mul(1_000_000)).unwrap_or(i64::MAX);
        let settings = Settings {
            missed: config.offline_after_missed,
            offline_after: secs(config.offline_after_secs),
            online_after: config.online_after,
            flap_transitions: config.flapping_transitions,
            flap_window: secs(config.flapping_window_secs),
            flap_stable: secs(config.flapping_stable_secs),
        };
        Ok(Arc::new(Collector {
            name: config.name.clone(),
            js: jetstream::new(client),
            sealer: seal.then(|| Sealer::new(&identity, identity.public())),
            opener: Arc::new(opener),
            flows_opener: Opener::with_window(&identity, MAX_AGE_MICROS, DEFAULT_REPLAY_CAPACITY),
            store,
            identity,
            policy_path: config.policy.clone(),
            policy: Mutex::new(policy),
            policy_edits: tokio::sync::Mutex::new(()),
            engines: Mutex::new(HashMap::new()),
            tracker: Mutex::new(Tracker::new(settings)),
            blacklist: Arc::default(),
            cloud_counters: Arc::default(),
            report_alerts: config
                .cloud
                .as_ref()
                .map(|c| c.report_alerts.clone())
                .unwrap_or_default(),
            reports: Mutex::new(None),
            counters: Counters::default(),
            alert_seq: AtomicU64::new(0),
        }))
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The NATS client.
    pub fn client(&self) -> async_nats::Client {
        self.js.client()
    }

    /// The user's identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Every instance heard from: its latest heartbeat with `status` its tracked status and
    /// `time_us` when it was last heard.
    pub fn instances(&self) -> Vec<Status> {
        let bounds: HashMap<String, crate::checks::Bounds> = self
            .engines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(i, e)| (i.clone(), e.bounds()))
            .collect();
        let tracker = self.tracker.lock().unwrap_or_else(|p| p.into_inner());
        tracker
            .known()
            .values()
            .map(|k| {
                let b = bounds.get(&k.last.instance).copied().unwrap_or_default();
                Status {
                    status: k.status.to_string(),
                    time_us: k.last_seen,
                    devices_tracked: b.devices_tracked,
                    devices_evicted: b.devices_evicted,
                    series_dropped: b.series_dropped,
                    ..k.last.clone()
                }
            })
            .collect()
    }

    /// The engines' bounded state, summed over instances.
    pub fn bounds(&self) -> crate::checks::Bounds {
        let mut total = crate::checks::Bounds::default();
        for e in self
            .engines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
        {
            total += e.bounds();
        }
        total
    }

    /// The policy file's text.
    pub fn policy_text(&self) -> Result<String, String> {
        std::fs::read_to_string(&self.policy_path)
            .map_err(|e| format!("{}: {e}", self.policy_path.display()))
    }

    /// Applies an edit to the policy file (rewritten atomically, so a restart finds it) and to
    /// the running checks. Nothing changes unless the result validates.
    pub async fn edit_policy(&self, edit: &Edit) -> Result<Applied, PolicyEditError> {
        let _one_at_a_time = self.policy_edits.lock().await;
        let text = self.policy_text().map_err(PolicyEditError::Io)?;
        let applied = policy::edit::apply(&text, edit).map_err(PolicyEditError::Edit)?;
        flowmesh_link::secret_file::replace(&self.policy_path, applied.text.as_bytes())
            .map_err(|e| PolicyEditError::Io(e.to_string()))?;
        self.install_policy(applied.policy.clone());
        tracing::info!(?edit, "policy edited");
        Ok(applied)
    }

    /// Makes `new` the policy the checks run.
    fn install_policy(&self, new: Policy) {
        let old = std::mem::replace(
            &mut *self.policy.lock().unwrap_or_else(|p| p.into_inner()),
            new.clone(),
        );
        for engine in self
            .engines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values_mut()
        {
            engine.reconfigure(&old, &new);
        }
    }

    /// Reads the policy file again (a remote action, after editing it by hand): applied if it
    /// validates, otherwise every error with its line and the running policy kept.
    pub fn reload_policy(&self) -> Result<String, String> {
        let policy = load_policy(&self.policy_path).map_err(|e| e.0)?;
        self.install_policy(policy);
        tracing::info!(policy = %self.policy_path.display(), "policy reloaded");
        Ok(String::new())
    }

    /// Seals `plain` for `subject`; in the bench-only plaintext mode, passes it through.
    fn seal(&self, subject: &str, plain: &[u8]) -> Result<Vec<u8>, flowmesh_link::SealError> {
        match &self.sealer {
            Some(s) => s.seal(subject, plain),
            None => Ok(plain.to_vec()),
        }
    }

    /// Opens a message received on `subject` (in the plaintext mode, takes it as it is).
    fn open(&self, subject: &str, data: &[u8], how: Opening) -> Result<Vec<u8>, OpenError> {
        if self.sealer.is_none() {
            return Ok(data.to_vec());
        }
        match how {
            Opening::Once => self.opener.open(subject, data),
            Opening::Batch => self.flows_opener.open_idempotent(subject, data),
            Opening::Stored => self.flows_opener.open_stored(subject, data),
        }
        .map(|o| o.payload)
    }

    /// Opens (or takes as plaintext in bench mode) one flow message.
    fn open_batch(&self, subject: &str, data: &[u8]) -> Result<FlowBatch, &'static str> {
        let plain = self
            .open(subject, data, Opening::Batch)
            .map_err(|e| reason(&e))?;
        let batch = FlowBatch::decode(plain.as_slice()).map_err(|_| "malformed")?;
        // The subject is authenticated: a batch must be about the instance it was sent as.
        if instance_of(subject) != Some(batch.instance.as_str()) {
            return Err("instance_mismatch");
        }
        Ok(batch)
    }

    /// Opens one delivered flow message and runs the engine on it. `None`: nothing to store
    /// (rejected and counted, or a batch already stored); it can be acknowledged.
    /// `redelivered`: JetStream delivers this stream message again (its ack was lost or it was
    /// refused before); a batch already stored that comes as a *new* stream message is a replay.
    fn prepare(
        &self,
        subject: &str,
        data: &[u8],
        redelivered: bool,
        seen: &mut std::collections::HashSet<String>,
    ) -> Result<Option<Prepared>, CollectorError> {
        let batch = match self.open_batch(subject, data) {
            Ok(b) => b,
            Err(why) => {
                self.counters.reject(why);
                tracing::warn!(%subject, reason = why, "rejected a flow message");
                return Ok(None);
            }
        };
        let batch_id = format!(
            "{}/{}/{}",
            batch.instance,
            hex::encode(&batch.boot_id),
            batch.sequence
        );
        let applied = self
            .store
            .is_applied(&batch_id)
            .map_err(|e| CollectorError(e.to_string()))?;
        if applied && !redelivered {
            self.counters.reject("replayed");
            tracing::warn!(%subject, %batch_id, reason = "replayed", "rejected a flow message: its batch is stored already");
            return Ok(None);
        }
        if applied || !seen.insert(batch_id.clone()) {
            self.counters.duplicates.fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        }
        let mut alerts = Vec::new();
        let mut series = SeriesDelta::default();
        let mut bad = 0u64;
        let now = now_micros();
        {
            let blacklist = self.blacklist.read().unwrap_or_else(|p| p.into_inner());
            let mut engines = self.engines.lock().unwrap_or_else(|p| p.into_inner());
            let engine = engines.entry(batch.instance.clone()).or_insert_with(|| {
                let policy = self.policy.lock().unwrap_or_else(|p| p.into_inner());
                Engine::new(&policy, &batch.instance)
            });
            for f in &batch.flows {
                let Ok(r) = codec::from_proto(f) else {
                    bad += 1;
                    continue;
                };
                series.add_flow(&r, f.last_seen_us);
                engine.flow(&r, &mut |a| alerts.push(a));
                blacklist.check(&r, &batch.instance, now, &mut |a| alerts.push(a));
            }
        }
        if bad > 0 {
            tracing::warn!(%batch_id, bad, "flows with impossible fields skipped");
        }
        Ok(Some(Prepared {
            batch_id,
            instance: batch.instance,
            flows: batch.flows.len() as u64,
            alerts,
            series,
        }))
    }

    /// Publishes the alerts of prepared batches, then stores them all in one transaction.
    async fn store_all(&self, group: &[Prepared]) -> Result<(), CollectorError> {
        for p in group {
            self.publish_alerts(&p.batch_id, &p.alerts).await?;
        }
        let now = now_micros();
        let commits: Vec<Commit<'_>> = group
            .iter()
            .map(|p| Commit {
                batch_id: Some(&p.batch_id),
                instance: &p.instance,
                alerts: &p.alerts,
                series: &p.series,
                now_micros: now,
            })
            .collect();
        let fresh = self
            .store
            .commit_all(&commits)
            .map_err(|e| CollectorError(format!("store: {e}")))?;
        for (p, fresh) in group.iter().zip(fresh) {
            if !fresh {
                self.counters.duplicates.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            self.report_to_cloud(&p.alerts);
            self.counters.batches.fetch_add(1, Ordering::Relaxed);
            self.counters.flows.fetch_add(p.flows, Ordering::Relaxed);
            self.counters
                .alerts
                .fetch_add(p.alerts.len() as u64, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Queues the public address of each reportable alert's flow for the cloud inbox.
    fn report_to_cloud(&self, alerts: &[Alert]) {
        if self.report_alerts.is_empty() {
            return;
        }
        let queue = self.reports.lock().unwrap_or_else(|p| p.into_inner());
        let Some(tx) = queue.as_ref() else { return };
        for a in alerts {
            if !self.report_alerts.iter().any(|k| k == a.kind) {
                continue;
            }
            let Some(f) = &a.flow else { continue };
            // Only a completed handshake proves the addresses: a spoofed packet must not turn
            // its forged source into a reported attacker.
            if !f.handshake_seen() {
                continue;
            }
            let remote = [f.server_ip, f.client_ip]
                .into_iter()
                .find(|ip| flowmesh_link::addr::is_public(*ip));
            if let Some(ip) = remote {
                // A full queue drops the report: the cloud hears of busy attackers again.
                let _ = tx.try_send((ip, a.kind.to_string(), a.instance.clone()));
            }
        }
    }

    /// Publishes alerts sealed on `flowmesh.alerts.<collector>`, each with a message id derived
    /// from `origin` so a re-run after a crash is de-duplicated by JetStream.
    async fn publish_alerts(&self, origin: &str, alerts: &[Alert]) -> Result<(), CollectorError> {
        let subject = Channel::Alerts
            .subject(&self.name)
            .map_err(|e| CollectorError(e.to_string()))?;
        self.publish_json(&subject, origin, alerts).await
    }

    async fn publish_json(
        &self,
        subject: &str,
        origin: &str,
        alerts: &[Alert],
    ) -> Result<(), CollectorError> {
        let mut acks = Vec::new();
        for (i, a) in alerts.iter().enumerate() {
            let json = serde_json::to_vec(a).map_err(|e| CollectorError(e.to_string()))?;
            let payload = self
                .seal(subject, &json)
                .map_err(|e| CollectorError(e.to_string()))?;
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", format!("{origin}/{i}").as_str());
            match self
                .js
                .publish_with_headers(subject.to_string(), headers, payload.into())
                .await
            {
                Ok(ack) => acks.push(ack),
                Err(e) => return Err(CollectorError(format!("publishing alerts: {e}"))),
            }
        }
        for ack in acks {
            match tokio::time::timeout(Duration::from_secs(10), ack).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    return Err(CollectorError(format!(
                        "alert not stored by JetStream: {e}"
                    )));
                }
                Err(_) => return Err(CollectorError("alert not acknowledged by JetStream".into())),
            }
        }
        Ok(())
    }

    /// Judges time-based checks (device silence, traffic-rule periods) at the wall clock. The
    /// alerts they raise exist only here, so they are retried until published and stored.
    async fn tick(&self, stop: &AtomicBool) {
        let now = now_micros();
        let mut alerts = Vec::new();
        {
            let mut engines = self.engines.lock().unwrap_or_else(|p| p.into_inner());
            for e in engines.values_mut() {
                e.finish(now, &mut |a| alerts.push(a));
            }
        }
        if alerts.is_empty() {
            return;
        }
        let origin = format!(
            "{}/tick/{now}/{}",
            self.name,
            self.alert_seq.fetch_add(1, Ordering::Relaxed)
        );
        let commit = Commit {
            batch_id: None,
            instance: &self.name,
            alerts: &alerts,
            series: &SeriesDelta::default(),
            now_micros: now,
        };
        let published = until_ok("publishing time-based alerts", stop, || {
            self.publish_alerts(&origin, &alerts)
        })
        .await;
        let stored = until_ok("storing time-based alerts", stop, || async {
            self.store.commit(&commit)
        })
        .await;
        if published.is_none() || stored.is_none() {
            tracing::error!(
                alerts = alerts.len(),
                "stopping: time-based alerts not delivered"
            );
            return;
        }
        self.counters
            .alerts
            .fetch_add(alerts.len() as u64, Ordering::Relaxed);
    }
}

/// How a message is opened.
#[derive(Clone, Copy)]
enum Opening {
    /// Once, within ±10 minutes (heartbeats).
    Once,
    /// A flow batch: within 7 days; the store's batch ids catch replays.
    Batch,
    /// A status-bucket entry, read again and again.
    Stored,
}

/// The replay journal beside the store: `collector.redb` → `collector.replay.redb`.
pub fn journal_path(store: &Path) -> PathBuf {
    store.with_extension("replay.redb")
}

/// Runs the collector until `stop` is set.
pub async fn run(
    config: CollectorConfig,
    stop: Arc<AtomicBool>,
    seal: bool,
) -> Result<(), CollectorError> {
    let c = Collector::start(&config, seal).await?;
    tracing::info!(name = %config.name, store = %config.store.display(), "collector starting");
    // The streams: wait for the cluster (it may still be starting).
    loop {
        match streams::ensure_streams(&c.js, config.replicas).await {
            Ok(()) => break,
            Err(e) if stop.load(Ordering::Relaxed) => return Err(CollectorError(e.to_string())),
            Err(e) => {
                tracing::warn!(error = %e, "waiting for JetStream");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
    let api_stop = {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        if let Some(addr) = config.api.address().map_err(CollectorError)? {
            crate::api::serve(c.clone(), &config.api, addr, async {
                let _ = rx.await;
            })
            .await
            .map_err(CollectorError)?;
        }
        tx
    };
    let status = tokio::spawn(status_loop(c.clone(), config.replicas, stop.clone()));
    let remote = {
        let (c, report) = (
            c.clone(),
            serde_json::to_string(&config).unwrap_or_default(),
        );
        tokio::spawn(flowmesh_sensor::control::serve(
            c.client(),
            c.identity.clone(),
            c.opener.clone(),
            config.name.clone(),
            move |action| {
                use flowmesh_sensor::control::answer;
                match action {
                    "reload_policy" => answer(c.reload_policy()),
                    "report_config" => answer(Ok(report.clone())),
                    other => answer(Err(format!("{other}: not something a collector does"))),
                }
            },
        ))
    };
    let cloud_task = config.cloud.clone().map(|cloud| {
        let journal = config.store.with_extension("cloud-replay.redb");
        tokio::spawn(follow_cloud(c.clone(), cloud, journal, stop.clone()))
    });
    let ticks = {
        let c = c.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(5));
            while !stop.load(Ordering::Relaxed) {
                every.tick().await;
                c.tick(&stop).await;
            }
        })
    };
    let pruning = tokio::spawn(prune_loop(c.clone(), stop.clone()));
    let result = consume(c.clone(), consumer_of(&config), stop.clone()).await;
    stop.store(true, Ordering::Relaxed);
    let _ = api_stop.send(());
    if let Some(t) = cloud_task {
        t.abort();
    }
    remote.abort();
    // A task stuck on an unreachable broker must not hold the exit.
    pruning.abort();
    for task in [ticks, status] {
        if tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .is_err()
        {
            tracing::warn!("a task did not finish in 5 s; leaving it");
        }
    }
    tracing::info!(
        batches = c.counters.batches.load(Ordering::Relaxed),
        flows = c.counters.flows.load(Ordering::Relaxed),
        alerts = c.counters.alerts.load(Ordering::Relaxed),
        duplicates = c.counters.duplicates.load(Ordering::Relaxed),
        rejected = ?c.counters.rejections(),
        cloud_broadcasts = c.cloud_counters.applied.load(Ordering::Relaxed),
        cloud_refused = c.cloud_counters.refused.load(Ordering::Relaxed),
        "collector stopped"
    );
    result
}

/// How often the store drops what is past its retention.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Keeps the store within its retention: at start, then every hour (timeseries points past
/// each resolution's retention, batch ids older than the freshness window of flow batches).
async fn prune_loop(c: Arc<Collector>, stop: Arc<AtomicBool>) {
    let mut every = tokio::time::interval(PRUNE_EVERY);
    while !stop.load(Ordering::Relaxed) {
        every.tick().await;
        let now_secs = now_micros() / 1_000_000;
        let store = &c.store;
        match tokio::task::block_in_place(|| {
            store.prune(now_secs, crate::store::Resolution::default_retention_secs)
        }) {
            Ok(removed) => tracing::info!(removed, "store pruned to its retention"),
            Err(e) => tracing::warn!(error = %e, "store not pruned; trying again in an hour"),
        }
    }
}

/// The durable consumer, created or found, retrying while the cluster does not answer.
async fn durable_consumer(
    c: &Collector,
    (durable, filters): (String, Vec<String>),
    stop: &AtomicBool,
) -> Option<consumer::PullConsumer> {
    let config = consumer::pull::Config {
        durable_name: Some(durable.clone()),
        filter_subjects: filters,
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: Duration::from_secs(30),
        max_ack_pending: 10_000,
        ..Default::default()
    };
    let mut said = false;
    while !stop.load(Ordering::Relaxed) {
        let found = match c.js.get_stream(streams::FLOWS).await {
            Ok(stream) => stream
                .get_or_create_consumer(&durable, config.clone())
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match found {
            Ok(consumer) => return Some(consumer),
            Err(e) if !said => {
                said = true;
                tracing::warn!(error = %e, "waiting for the FLOWS stream and its consumer");
            }
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    None
}

/// The consumer loop: fetch, handle, acknowledge. Nothing the broker or the disk does wrong
/// for a while ends it: a group that cannot be stored is retried (its messages kept in
/// progress) until it is, and only what is stored is acknowledged.
async fn consume(
    c: Arc<Collector>,
    which: (String, Vec<String>),
    stop: Arc<AtomicBool>,
) -> Result<(), CollectorError> {
    let Some(consumer) = durable_consumer(&c, which, &stop).await else {
        return Ok(());
    };
    let mut last_log = std::time::Instant::now();
    let mut backoff = Backoff::default();
    while !stop.load(Ordering::Relaxed) {
        let mut batch = match consumer
            .fetch()
            .max_messages(256)
            .expires(Duration::from_secs(1))
            .messages()
            .await
        {
            Ok(b) => {
                backoff.reset();
                b
            }
            Err(e) => {
                tracing::debug!(error = %e, "fetch failed; retrying");
                tokio::time::sleep(backoff.pause()).await;
                continue;
            }
        };
        // Group commit: everything this fetch brought is judged, its alerts published, then
        // stored in one transaction, and only then acknowledged.
        let mut messages = Vec::new();
        while let Some(m) = batch.next().await {
            if let Ok(m) = m {
                messages.push(m);
            }
        }
        if messages.is_empty() {
            continue;
        }
        let mut seen = std::collections::HashSet::new();
        let mut group = Vec::new();
        // Messages before `judged` went through the engine (or were rejected); the rest did
        // not and go back to JetStream untouched.
        let mut judged = 0;
        for m in &messages {
            let redelivered = m.info().is_ok_and(|i| i.delivered > 1);
            match c.prepare(&m.subject, &m.payload, redelivered, &mut seen) {
                Ok(p) => {
                    group.extend(p);
                    judged += 1;
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot judge a batch; it will be redelivered");
                    break;
                }
            }
        }
        let (done, rest) = messages.split_at(judged);
        if !c.store_group(&group, done, &stop).await {
            // Stopping before the group was stored: all of it comes back to the next start
            // (whose engine state starts afresh with it).
            for m in &messages {
                let _ = m.ack_with(AckKind::Nak(None)).await;
            }
            break;
        }
        for m in done {
            // Stored (or rejected for good): JetStream may forget it. A lost ack means a
            // redelivery, which the store recognises.
            if let Err(e) = m.ack().await {
                tracing::debug!(error = %e, "ack not sent");
            }
        }
        for m in rest {
            let _ = m.ack_with(AckKind::Nak(Some(Duration::from_secs(1)))).await;
        }
        if last_log.elapsed() > Duration::from_secs(30) {
            last_log = std::time::Instant::now();
            let b = c.bounds();
            tracing::info!(
                batches = c.counters.batches.load(Ordering::Relaxed),
                flows = c.counters.flows.load(Ordering::Relaxed),
                alerts = c.counters.alerts.load(Ordering::Relaxed),
                rejected = ?c.counters.rejections(),
                devices_tracked = b.devices_tracked,
                devices_evicted = b.devices_evicted,
                series = b.series,
                series_dropped = b.series_dropped,
                "progress"
            );
            if b.devices_evicted > 0 || b.series_dropped > 0 {
                tracing::warn!(
                    devices_evicted = b.devices_evicted,
                    series_dropped = b.series_dropped,
                    "bounded state full: forgetting devices or not counting host series (a flood of MACs or addresses?)"
                );
            }
        }
    }
    Ok(())
}

impl Collector {
    /// Publishes and stores a judged group, retrying with capped backoff until both succeed
    /// (alerts carry message ids, so a retried publish is de-duplicated by JetStream). Its
    /// messages are kept "in progress" meanwhile, so JetStream does not hand them to another
    /// collector. `false` only when asked to stop first.
    async fn store_group(
        &self,
        group: &[Prepared],
        messages: &[jetstream::Message],
        stop: &AtomicBool,
    ) -> bool {
        let mut backoff = Backoff::default();
        let mut failures = 0u32;
        loop {
            match self.store_all(group).await {
                Ok(()) => return true,
                Err(e) => {
                    failures += 1;
                    if failures == 1 || failures.is_multiple_of(10) {
                        tracing::error!(error = %e, failures, "batches not stored yet; retrying");
                    }
                }
            }
            if stop.load(Ordering::Relaxed) {
                return false;
            }
            for m in messages {
                let _ = m.ack_with(AckKind::Progress).await;
            }
            tokio::time::sleep(backoff.pause()).await;
        }
    }
}

/// The subject a status is sealed to in the key-value bucket.
fn kv_subject(instance: &str) -> String {
    format!("$KV.{}.{instance}", streams::STATUS_BUCKET)
}

/// Heartbeats in, status changes out: sealed on `flowmesh.changes.<instance>`, kept in the
/// status bucket, stored as `instance_status` alerts. With several collectors, the bucket's
/// compare-and-set decides which one announces a change.
async fn status_loop(c: Arc<Collector>, replicas: usize, stop: Arc<AtomicBool>) {
    let client = c.client();
    let Some(kv) = until_ok("opening the status bucket", &stop, || {
        streams::status_bucket(&c.js, replicas)
    })
    .await
    else {
        return;
    };
    let Some(mut sub) = until_ok("subscribing to heartbeats", &stop, || {
        client.subscribe(Channel::Status.all())
    })
    .await
    else {
        return;
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while !stop.load(Ordering::Relaxed) {
        let changes = tokio::select! {
            m = sub.next() => {
                let Some(m) = m else { break };
                let plain = match c.open(&m.subject, &m.payload, Opening::Once) {
                    Ok(p) => p,
                    Err(e) => {
                        c.counters.reject(reason(&e));
                        tracing::warn!(subject = %m.subject, reason = reason(&e), error = %e, "heartbeat refused");
                        continue;
                    }
                };
                let Ok(hb) = Status::decode(plain.as_slice()) else {
                    c.counters.reject("malformed");
                    continue;
                };
                if instance_of(&m.subject) != Some(hb.instance.as_str()) {
                    c.counters.reject("instance_mismatch");
                    continue;
                }
                c.tracker.lock().unwrap_or_else(|p| p.into_inner())
                    .heartbeat(hb, now_micros()).into_iter().collect::<Vec<_>>()
            }
            _ = tick.tick() => c.tracker.lock().unwrap_or_else(|p| p.into_inner()).tick(now_micros()),
        };
        for change in changes {
            announce(&c, &kv, &change, &stop).await;
        }
    }
}

/// Whether this collector's write of a change to the bucket landed.
enum Claim {
    /// It did: this collector announces the change.
    Won,
    /// Another collector announced this change, or a later one.
    Lost,
}

/// One compare-and-set attempt on the bucket. An error is the broker's (retry), never a loss.
async fn claim(
    c: &Collector,
    kv: &kv::Store,
    change: &crate::status::Change,
    value: &[u8],
) -> Result<Claim, String> {
    let entry = kv
        .entry(change.instance.clone())
        .await
        .map_err(|e| e.to_string())?;
    match entry {
        Some(e) => {
            // Already said, or overtaken: another collector has announced this change, or a
            // later one (a lagging collector must not bring back `restarted` after `online`).
            let stale = peek_status(c, &change.instance, &e.value)
                .is_some_and(|(status, time)| status == change.status || time >= change.time);
            if stale {
                return Ok(Claim::Lost);
            }
            match kv
                .update(&change.instance, value.to_vec().into(), e.revision)
                .await
            {
                Ok(_) => Ok(Claim::Won),
                // Someone wrote in between: look again.
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    Err("the entry changed meanwhile".into())
                }
                Err(e) => Err(e.to_string()),
            }
        }
        None => match kv.create(&change.instance, value.to_vec().into()).await {
            Ok(_) => Ok(Claim::Won),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                Err("the entry appeared meanwhile".into())
            }
            Err(e) => Err(e.to_string()),
        },
    }
}

async fn announce(
    c: &Collector,
    kv: &kv::Store,
    change: &crate::status::Change,
    stop: &AtomicBool,
) {
    let alert = change.alert();
    let Ok(json) = serde_json::to_vec(&alert) else {
        return;
    };
    let Ok(value) = c.seal(&kv_subject(&change.instance), &json) else {
        return;
    };
    // Compare-and-set on the bucket: the collector whose write lands announces.
    let Some(claimed) = until_ok("claiming a status change in the bucket", stop, || {
        claim(c, kv, change, &value)
    })
    .await
    else {
        return;
    };
    if let Claim::Lost = claimed {
        tracing::debug!(instance = %change.instance, status = change.status, "another collector announced it");
        return;
    }
    tracing::info!(instance = %change.instance, status = change.status, previous = change.previous, "status change");
    let Ok(subject) = Channel::Changes.subject(&change.instance) else {
        return;
    };
    let origin = format!("{}/{}/{}", change.instance, change.status, change.time);
    let alerts = std::slice::from_ref(&alert);
    until_ok("publishing a status change", stop, || {
        c.publish_json(&subject, &origin, alerts)
    })
    .await;
    let commit = Commit {
        batch_id: None,
        instance: &change.instance,
        alerts,
        series: &SeriesDelta::default(),
        now_micros: change.time,
    };
    until_ok("storing a status change", stop, || async {
        c.store.commit(&commit)
    })
    .await;
}

/// The status a bucket entry holds (opened), and when it changed (µs), if readable.
fn peek_status(c: &Collector, instance: &str, value: &[u8]) -> Option<(String, i64)> {
    let plain = c.open(&kv_subject(instance), value, Opening::Stored).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&plain).ok()?;
    let time = v
        .get("time")
        .and_then(|t| t.as_str())
        .and_then(flowmesh_sensor::flow::parse_rfc3339_micros)
        .unwrap_or(i64::MIN);
    Some((v.get("status")?.as_str()?.to_string(), time))
}

/// Addresses reported in the last hour that a collector remembers (not to report them again).
const REPORTED_MEMORY: usize = 10_000;

/// The cloud: its keys from DNS (retried until found), then its blacklist broadcasts applied and
/// reports of alerting addresses sent, each address at most once an hour.
async fn follow_cloud(
    c: Arc<Collector>,
    cloud: CloudConfig,
    journal: PathBuf,
    stop: Arc<AtomicBool>,
) {
    let Some(keys) = until_ok("finding the cloud's keys", &stop, || cloud.keys()).await else {
        return;
    };
    // Broadcasts are applied once each, across restarts too.
    let opener = match ReplayJournal::open(&journal).and_then(|j| {
        let mut o = Opener::new(&c.identity);
        o.trust(keys.key);
        o.with_journal(j)
    }) {
        Ok(o) => Arc::new(o),
        Err(e) => {
            tracing::error!(error = %e, "cannot follow the cloud's blacklist");
            return;
        }
    };
    tracing::info!(cloud_key = %keys.key, signing_key = %keys.signing.to_hex(), "following the cloud's blacklist");
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(std::net::IpAddr, String, String)>(1024);
    *c.reports.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
    let reporter = {
        let c = c.clone();
        tokio::spawn(async move {
            let mut sent: HashMap<std::net::IpAddr, std::time::Instant> = HashMap::new();
            while let Some((ip, reason, instance)) = rx.recv().await {
                sent.retain(|_, at| at.elapsed() < Duration::from_secs(3600));
                if sent.contains_key(&ip) || sent.len() >= REPORTED_MEMORY {
                    continue;
                }
                sent.insert(ip, std::time::Instant::now());
                let report = flowmesh_proto::v1::BlacklistReport {
                    ip: ip.to_string(),
                    reason,
                    instance,
                };
                match crate::cloud::report_ip(&c.client(), &c.identity, &keys, &report).await {
                    Ok(r) if r.accepted => tracing::info!(%ip, "reported to the cloud"),
                    Ok(r) => tracing::warn!(%ip, error = %r.error, "the cloud refused a report"),
                    Err(e) => tracing::warn!(%ip, error = %e, "report not delivered"),
                }
            }
        })
    };
    until_ok("following the cloud's blacklist", &stop, || {
        crate::cloud::follow_broadcasts(
            c.client(),
            opener.clone(),
            keys,
            c.blacklist.clone(),
            c.cloud_counters.clone(),
        )
    })
    .await;
    reporter.abort();
}
