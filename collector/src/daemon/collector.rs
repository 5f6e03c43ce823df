//! The running collector: its shared parts, opening and judging batches, publishing and
//! storing their alerts.

use super::*;

/// The running collector's shared parts.
pub struct Collector {
    pub(super) name: String,
    pub(super) identity: Identity,
    pub(super) js: jetstream::Context,
    pub(super) sealer: Option<Sealer>,
    /// Heartbeats and remote actions: ±10 minutes, each id once, across restarts (journaled).
    pub(super) opener: Arc<Opener>,
    /// Flow batches (up to 7 days old, replays caught by the store's batch ids) and the status
    /// bucket's entries.
    pub(super) flows_opener: Opener,
    pub(super) store: Store,
    pub(super) policy_path: PathBuf,
    pub(super) policy: Mutex<Policy>,
    /// Edits are read-modify-write of the file: one at a time.
    pub(super) policy_edits: tokio::sync::Mutex<()>,
    pub(super) engines: Mutex<HashMap<String, Engine>>,
    pub(super) tracker: Mutex<Tracker>,
    /// The cloud's shared blacklist, as last received.
    pub(super) blacklist: Arc<std::sync::RwLock<Blacklist>>,
    /// What following the cloud's broadcasts counted.
    pub cloud_counters: Arc<BroadcastCounters>,
    /// Alert types whose flow's public address goes to the cloud, and where it is queued.
    pub(super) report_alerts: Vec<String>,
    pub(super) reports:
        Mutex<Option<tokio::sync::mpsc::Sender<(std::net::IpAddr, String, String)>>>,
    /// What it counted.
    pub counters: Counters,
    pub(super) alert_seq: AtomicU64,
    /// Remote assistance.
    pub assist: Arc<crate::assist::Assist>,
    /// Whether every flow record is stored (`[flows] store`).
    pub(super) keep_flows: bool,
    /// Its alerts, until the daemon takes them to publish.
    pub(super) assist_alerts: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<Alert>>>,
}

impl Collector {
    /// Opens the store and policy, and connects (in the background).
    pub async fn start(config: &CollectorConfig, seal: bool) -> Result<Arc<Self>, CollectorError> {
        let identity =
            Identity::load(&config.identity).map_err(|e| CollectorError(e.to_string()))?;
        let policy = load_policy(&config.policy)?;
        let store = Store::open(&config.store).map_err(|e| CollectorError(e.to_string()))?;
        let opener = Opener::new(&identity)
            .journaled(&journal_path(&config.store))
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
        let (assist_tx, assist_rx) = tokio::sync::mpsc::unbounded_channel();
        let assist = crate::assist::Assist::new(crate::assist::Parts {
            name: config.name.clone(),
            state_file: config.store.with_extension("assist.json"),
            config: config.assist.clone(),
            client: client.clone(),
            identity: identity.clone(),
            broker: config.broker.clone(),
            cloud: config.cloud.clone(),
            alerts: assist_tx,
        });
        Ok(Arc::new(Collector {
            assist,
            keep_flows: config.flows.store,
            assist_alerts: Mutex::new(Some(assist_rx)),
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

    /// Devices seen and not authorized, per instance: `(instance, MAC, last IP, last seen µs)`,
    /// the most recently active `limit` of each.
    pub fn unauthorized_devices(&self, limit: usize) -> Vec<(String, String, Option<String>, i64)> {
        let engines = self.engines.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for (instance, e) in engines.iter() {
            for (mac, ip, last) in e.unauthorized_devices(limit) {
                out.push((
                    instance.clone(),
                    mac.to_string(),
                    ip.map(|i| i.to_string()),
                    last,
                ));
            }
        }
        out
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
    pub(super) fn install_policy(&self, new: Policy) {
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
    pub(super) fn seal(
        &self,
        subject: &str,
        plain: &[u8],
    ) -> Result<Vec<u8>, flowmesh_link::SealError> {
        match &self.sealer {
            Some(s) => s.seal(subject, plain),
            None => Ok(plain.to_vec()),
        }
    }

    /// Opens a message received on `subject` (in the plaintext mode, takes it as it is).
    pub(super) fn open(
        &self,
        subject: &str,
        data: &[u8],
        how: Opening,
    ) -> Result<Vec<u8>, OpenError> {
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

    /// Opens (or takes as plaintext in bench mode) one flow message; a rejection's reason.
    fn open_flows(&self, subject: &str, data: &[u8]) -> Result<Vec<u8>, &'static str> {
        self.open(subject, data, Opening::Batch)
            .map_err(|e| reason(&e))
    }

    /// Opens one delivered flow message and runs the engine on it. `None`: nothing to store
    /// (rejected and counted, or a batch already stored); it can be acknowledged.
    /// `redelivered`: JetStream delivers this stream message again (its ack was lost or it was
    /// refused before); a batch already stored that comes as a *new* stream message is a replay.
    pub(super) fn prepare(
        &self,
        subject: &str,
        data: &[u8],
        redelivered: bool,
        seen: &mut std::collections::HashSet<String>,
    ) -> Result<Option<Prepared>, CollectorError> {
        let plain = self.open_flows(subject, data);
        let batch = plain.as_deref().map_err(|why| *why).and_then(|plain| {
            let batch = codec::read_batch(plain).map_err(|_| "malformed")?;
            // The subject is authenticated: a batch must be about the instance it was sent as.
            if instance_of(subject) != Some(batch.instance) {
                return Err("instance_mismatch");
            }
            Ok(batch)
        });
        let batch = match batch {
            Ok(b) => b,
            Err(why) => {
                self.counters.reject(why);
                tracing::warn!(%subject, reason = why, "rejected a flow message");
                return Ok(None);
            }
        };
        let boot = hex::encode(batch.boot_id);
        let batch_id = format!("{}/{boot}/{}", batch.instance, batch.sequence);
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
        let flow_count = batch.flow_count as u64;
        let Judged {
            alerts,
            series,
            records,
            bad,
        } = {
            let blacklist = self.blacklist.read().unwrap_or_else(|p| p.into_inner());
            let mut engines = self.engines.lock().unwrap_or_else(|p| p.into_inner());
            let engine = engines
                .entry(batch.instance.to_string())
                .or_insert_with(|| self.new_engine(batch.instance));
            judge_batch(
                &batch,
                &boot,
                engine,
                &blacklist,
                self.keep_flows,
                now_micros(),
            )
        };
        if bad > 0 {
            tracing::warn!(%batch_id, bad, "flows malformed or with impossible fields skipped");
        }
        tracing::debug!(%batch_id, flows = flow_count, watermark = batch.watermark_us, alerts = alerts.len(), "batch judged");
        Ok(Some(Prepared {
            batch_id,
            instance: batch.instance.to_string(),
            flows: flow_count,
            alerts,
            series,
            records,
        }))
    }

    /// An engine for `instance` with the policy running now, and the traffic rules' counts as
    /// they were stored with its last batch (a restart goes on where it stopped).
    pub(super) fn new_engine(&self, instance: &str) -> Engine {
        let policy = self.policy.lock().unwrap_or_else(|p| p.into_inner());
        let mut engine = Engine::new(&policy, instance);
        match self.store.engine_state(instance) {
            Ok(Some(state)) => {
                let rules = engine.restore(&state);
                tracing::info!(%instance, rules, "traffic-rule counts taken back from the store");
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(%instance, error = %e, "traffic-rule counts not read back"),
        }
        engine
    }

    /// The traffic rules' counts of these instances' engines, to store with their batches.
    pub(super) fn snapshots<'a>(
        &self,
        instances: impl IntoIterator<Item = &'a str>,
    ) -> Vec<(String, Vec<u8>)> {
        let engines = self.engines.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<(String, Vec<u8>)> = Vec::new();
        for i in instances {
            if out.iter().any(|(k, _)| k == i) {
                continue;
            }
            if let Some(state) = engines.get(i).and_then(Engine::snapshot) {
                out.push((i.to_string(), state));
            }
        }
        out
    }

    /// Publishes the alerts of prepared batches, then stores them all in one transaction,
    /// with their instances' traffic-rule counts.
    pub(super) async fn store_all(&self, group: &[Prepared]) -> Result<(), CollectorError> {
        for p in group {
            self.publish_alerts(&p.batch_id, &p.alerts).await?;
        }
        let states = self.snapshots(group.iter().map(|p| p.instance.as_str()));
        let states: Vec<(&str, &[u8])> = states
            .iter()
            .map(|(i, s)| (i.as_str(), s.as_slice()))
            .collect();
        let now = now_micros();
        let commits: Vec<Commit<'_>> = group
            .iter()
            .map(|p| Commit {
                batch_id: Some(&p.batch_id),
                instance: &p.instance,
                alerts: &p.alerts,
                series: &p.series,
                now_micros: now,
                flows: p.records.as_ref(),
            })
            .collect();
        let fresh = self
            .store
            .commit_all_with(&commits, &states)
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
    pub(super) fn report_to_cloud(&self, alerts: &[Alert]) {
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

    /// Judges time-based checks at the wall clock: device silence, and the traffic-rule periods
    /// of instances gone offline — those that ended by the last traffic they sent (unless an
    /// outbox backlog will bring their traffic later, with its own watermarks). The alerts
    /// they raise exist only here, so they are retried until published and stored.
    pub(super) async fn tick(&self, stop: &AtomicBool) {
        let now = now_micros();
        let silent: HashMap<String, ()> = self
            .tracker
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .known()
            .values()
            .filter(|k| k.status == "offline" && k.last.outbox_depth == 0)
            .map(|k| (k.last.instance.clone(), ()))
            .collect();
        let mut alerts = Vec::new();
        {
            let mut engines = self.engines.lock().unwrap_or_else(|p| p.into_inner());
            let wait = super::consume::MISSING_WAIT.as_micros() as i64;
            for (instance, e) in engines.iter_mut() {
                e.devices_at(now, &mut |a| alerts.push(a));
                let shared = e.batches_shared();
                let gone = e.give_up_missing(now, wait, &mut |a| alerts.push(a));
                if !shared && e.batches_shared() {
                    tracing::warn!(
                        %instance,
                        "this instance's batches also go to other collectors (one consumer shared by several): its traffic rules count only what reaches this collector; give each collector its own sensors with `instances`"
                    );
                } else if !gone.is_empty() {
                    tracing::warn!(
                        %instance,
                        missing = ?crate::checks::order::describe(&gone),
                        "batches of this instance never came (dropped from its full outbox, or refused): its traffic-rule periods are judged without them"
                    );
                }
                // A batch still to come (redelivered) may hold records of those periods.
                if silent.contains_key(instance) && !e.is_waiting() {
                    let last = e.event_time();
                    e.watermark(last, &mut |a| alerts.push(a));
                }
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
            flows: None,
        };
        let published = until_ok("publishing time-based alerts", stop, || {
            self.publish_alerts(&origin, &alerts)
        })
        .await;
        let states = self.snapshots(silent.keys().map(String::as_str));
        let states: Vec<(&str, &[u8])> = states
            .iter()
            .map(|(i, s)| (i.as_str(), s.as_slice()))
            .collect();
        let stored = until_ok("storing time-based alerts", stop, || async {
            self.store
                .commit_all_with(std::slice::from_ref(&commit), &states)
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

impl Collector {
    /// Publishes and stores a judged group, retrying with capped backoff until both succeed
    /// (alerts carry message ids, so a retried publish is de-duplicated by JetStream). Its
    /// messages are kept "in progress" meanwhile, so JetStream does not hand them to another
    /// collector. `false` only when asked to stop first.
    pub(super) async fn store_group(
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
