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
use flowmesh_link::retry::{Backoff, until_ok};
use flowmesh_link::subject::{Channel, instance_of, validate_token};
use flowmesh_link::{Identity, Opener, Sealer, streams};
use flowmesh_proto::v1::Status;
use flowmesh_record::codec;
use futures::StreamExt;
use prost::Message;
use serde::Deserialize;

use crate::alert::Alert;
use crate::api::access::ApiConfig;
use crate::checks::Engine;
use crate::checks::blacklist::Blacklist;
use crate::cloud::{BroadcastCounters, CloudConfig};
use crate::policy::edit::{Applied, Edit};
use crate::policy::{self, Policy};
use crate::status::{Settings, Tracker};
use crate::store::{Commit, SeriesDelta, Store};

mod backend;
mod cloud_loop;
mod collector;
mod consume;
pub mod flow_store;
pub mod judge;
mod publish;
mod status_loop;

pub use collector::Collector;
use judge::{Judged, judge_batch};

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
const MAX_AGE_MICROS: u64 = crate::store::BATCH_IDS_KEPT_SECS as u64 * 1_000_000;

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
    /// `[retention]`: how long timeseries points are kept, per resolution.
    #[serde(default)]
    pub retention: Retention,
    /// `[api]`: the gRPC API the CLI uses (127.0.0.1:7701 by default).
    #[serde(default = "collector_api")]
    pub api: ApiConfig,
    /// `[assist]`: remote assistance (into the API by default).
    #[serde(default)]
    pub assist: crate::assist::AssistConfig,
    /// `[flows]`: the flow store (every record kept 7 days, at most 20 GB, by default).
    #[serde(default)]
    pub flows: flow_store::FlowsConfig,
    /// `[update]`: the pinned release key and the health deadline of software updates.
    #[serde(default)]
    pub update: flowmesh_update::UpdateConfig,
}

/// `[retention]`: days the timeseries points are kept, per resolution (ntopng keeps its RRDs
/// for similar spans).
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    /// 5-minute points (7).
    pub points_5m_days: u64,
    /// Hourly points (90).
    pub points_1h_days: u64,
    /// Daily points (1825).
    pub points_1d_days: u64,
}

impl Default for Retention {
    fn default() -> Self {
        let days = |r: crate::store::Resolution| (r.default_retention_secs() / 86_400) as u64;
        Retention {
            points_5m_days: days(crate::store::Resolution::FiveMinutes),
            points_1h_days: days(crate::store::Resolution::Hour),
            points_1d_days: days(crate::store::Resolution::Day),
        }
    }
}

impl Retention {
    /// Seconds points of `r` are kept.
    pub fn secs(&self, r: crate::store::Resolution) -> i64 {
        use crate::store::Resolution::*;
        let days = match r {
            FiveMinutes => self.points_5m_days,
            Hour => self.points_1h_days,
            Day => self.points_1d_days,
        };
        i64::try_from(days.saturating_mul(86_400)).unwrap_or(i64::MAX / 2)
    }
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
        c.assist.validate().map_err(err)?;
        c.flows.max_bytes().map_err(err)?;
        if let Some(d) = &c.flows.parquet_dir {
            c.flows.parquet_dir = Some(dir.join(d));
        }
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
    /// The records, for the flow store (when `[flows] store`).
    records: Option<crate::store::flows::FlowSet>,
}

pub use crate::policy::edit::PolicyEditError;

/// The wall clock, µs.
pub(crate) fn now_micros() -> i64 {
    flowmesh_link::envelope::now_micros() as i64
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
    tracing::info!(name = %config.name, store = %config.store.display(), version = flowmesh_update::stamp::current(), "collector starting");
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
    // The access file is removed when `_access` drops, at the end of this function.
    let (api_stop, _access) = {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let mut access = None;
        if let Some(addr) = config.api.address().map_err(CollectorError)? {
            let (bound, published) = crate::api::serve(c.clone(), &config.api, addr, async {
                let _ = rx.await;
            })
            .await
            .map_err(CollectorError)?;
            c.assist.default_service(bound);
            access = Some(published);
        }
        (tx, access)
    };
    // Remote assistance: its alerts published and stored like the others; a session kept
    // from before a restart served again.
    let assist_alerts = {
        let c = c.clone();
        let stop = stop.clone();
        let rx = c.take_assist_alerts();
        tokio::spawn(async move {
            let Some(mut rx) = rx else { return };
            while let Some(alert) = rx.recv().await {
                c.raise(alert, &stop).await;
            }
        })
    };
    c.assist.restore();
    let status = tokio::spawn(status_loop::status_loop(
        c.clone(),
        config.replicas,
        stop.clone(),
    ));
    let remote = {
        let (c, report) = (
            c.clone(),
            serde_json::to_string(&config).unwrap_or_default(),
        );
        tokio::spawn(flowmesh_proto::control::serve(
            c.client(),
            c.identity.clone(),
            c.opener.clone(),
            (config.name.clone(), config.update.clone()),
            stop.clone(),
            move |request| {
                let (c, report) = (c.clone(), report.clone());
                async move {
                    let answer = match request.action.as_str() {
                        "reload_policy" => c.reload_policy(),
                        "report_config" => Ok(report),
                        a if a.starts_with("assist_") => {
                            c.assist.action(a, &request.args, &request.from).await
                        }
                        other => Err(format!("{other}: not something a collector does")),
                    };
                    flowmesh_proto::control::answer(answer)
                }
            },
        ))
    };
    // The web console's requests (policies, stored alerts): sealed, over NATS.
    let console = tokio::spawn({
        let c: Arc<dyn crate::api::Backend> = c.clone();
        async move {
            if let Err(e) = crate::api::nats::serve(c).await {
                tracing::warn!(error = %e, "console requests not served");
            }
        }
    });
    let cloud_task = config.cloud.clone().map(|cloud| {
        let journal = config.store.with_extension("cloud-replay.redb");
        tokio::spawn(cloud_loop::follow_cloud(
            c.clone(),
            cloud,
            journal,
            stop.clone(),
        ))
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
    let pruning = tokio::spawn(consume::prune_loop(
        c.clone(),
        config.retention,
        stop.clone(),
    ));
    let upkeep = tokio::spawn(flow_store::upkeep_loop(
        c.clone(),
        config.flows.clone(),
        stop.clone(),
    ));
    let result = consume::consume(c.clone(), consumer_of(&config), stop.clone()).await;
    stop.store(true, Ordering::Relaxed);
    let _ = api_stop.send(());
    if let Some(t) = cloud_task {
        t.abort();
    }
    remote.abort();
    console.abort();
    assist_alerts.abort();
    // A task stuck on an unreachable broker must not hold the exit.
    pruning.abort();
    upkeep.abort();
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
