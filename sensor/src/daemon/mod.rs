//! `flowmesh sensor`: capture (live or replayed) → flow records → protobuf batches → sealed →
//! the user's JetStream stream, with a disk outbox while no broker answers, heartbeats, and a
//! graceful stop that publishes what it has and says `stopping`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use flowmesh_link::async_nats::{self, jetstream};
use flowmesh_link::connect::connect_in_background;
use flowmesh_link::subject::Channel;
use flowmesh_link::{Identity, Opener, Sealer};
use flowmesh_proto::v1::Status;
use prost::Message;
use tokio::sync::mpsc;

use crate::capture::LiveCapture;
use crate::flow::{FlowRecord, TableConfig};
use crate::offline::{self, RunStats};
use crate::parallel;
use crate::publish::{Batch, Outbox, PublishCounters, Publisher, codec};
use crate::source::{CaptureCounters, CountedLive, Replay};

mod batcher;
mod config;
mod exporters;
use batcher::{Captured, batch};
pub use config::{CaptureConfig, PublishConfig, SensorConfig, SensorError, instance_id};

fn now_micros() -> i64 {
    flowmesh_link::envelope::now_micros() as i64
}

/// Shared state the tasks report from.
struct Shared {
    instance: String,
    boot_id: [u8; 8],
    started: Instant,
    interfaces: Vec<String>,
    capture: Arc<CaptureCounters>,
    published: Arc<PublishCounters>,
    heartbeat_ms: u32,
    /// The latest watermark put in a batch, µs.
    watermark: std::sync::atomic::AtomicI64,
}

impl Shared {
    fn status(&self, status: &str, depth: crate::publish::Depth) -> Status {
        let failure = flowmesh_update::last_failure();
        Status {
            instance: self.instance.clone(),
            status: status.into(),
            previous: String::new(),
            time_us: now_micros(),
            version: flowmesh_update::stamp::current().into(),
            uptime_s: self.started.elapsed().as_secs(),
            boot_id: self.boot_id.to_vec(),
            interfaces: self.interfaces.clone(),
            packets_captured: self.capture.packets.load(Ordering::Relaxed),
            packets_dropped: self.capture.dropped.load(Ordering::Relaxed),
            outbox_depth: depth.batches,
            outbox_dropped: depth.dropped_batches,
            flows_published: self.published.flows.load(Ordering::Relaxed),
            heartbeat_ms: self.heartbeat_ms,
            outbox_bytes: depth.bytes,
            watermark_us: self.watermark.load(Ordering::Relaxed),
            update_error_us: failure.as_ref().map_or(0, |f| f.time_us),
            update_error_version: failure
                .as_ref()
                .map(|f| f.version.clone())
                .unwrap_or_default(),
            update_error: failure.map(|f| f.reason).unwrap_or_default(),
            // The collector's own counters: not the sensor's to say.
            ..Status::default()
        }
    }
}

/// Runs the sensor until `stop` is set (SIGINT/SIGTERM in the CLI) or a replayed file ends.
/// `seal` is false only in the bench-only plaintext mode.
pub async fn run(
    config: SensorConfig,
    stop: Arc<AtomicBool>,
    seal: bool,
) -> Result<RunStats, SensorError> {
    std::fs::create_dir_all(&config.state_dir)
        .map_err(|e| SensorError::Other(format!("{}: {e}", config.state_dir.display())))?;
    let instance = instance_id(&config)?;
    let identity =
        Identity::load(&config.identity).map_err(|e| SensorError::Other(e.to_string()))?;
    let sealer = seal.then(|| Arc::new(Sealer::new(&identity, identity.public())));
    if !seal {
        tracing::warn!("BENCH-ONLY MODE: flow batches are published in plaintext");
    }
    let outbox = Outbox::open(
        &config.state_dir.join("outbox.redb"),
        config.publish.outbox_max_mb.saturating_mul(1 << 20),
    )
    .map_err(|e| {
        SensorError::Other(format!(
            "{e} (is another sensor using {}?)",
            config.state_dir.display()
        ))
    })?;
    // Remote actions are accepted once each, across restarts too.
    let control_opener = Opener::new(&identity)
        .journaled(&config.state_dir.join("replay.redb"))
        .map(Arc::new)
        .map_err(|e| SensorError::Other(e.to_string()))?;
    let client = connect_in_background(&config.broker, &instance)
        .await
        .map_err(|e| SensorError::Other(e.to_string()))?;
    let js = jetstream::new(client.clone());
    let mut boot_id = [0u8; 8];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut boot_id);
    let shared = Arc::new(Shared {
        instance: instance.clone(),
        boot_id,
        started: Instant::now(),
        interfaces: config.capture.interface.iter().cloned().collect(),
        capture: Arc::new(CaptureCounters::default()),
        published: Arc::new(PublishCounters::default()),
        heartbeat_ms: (config.publish.heartbeat_secs * 1000) as u32,
        watermark: Default::default(),
    });
    let subject = Channel::Flows
        .subject(&instance)
        .map_err(|e| SensorError::Other(e.to_string()))?;
    let publisher = Arc::new(
        Publisher::new(
            js.clone(),
            sealer.clone(),
            &identity,
            subject,
            outbox,
            shared.published.clone(),
        )
        .map_err(|e| SensorError::Other(e.to_string()))?,
    );
    tracing::info!(%instance, boot = %hex::encode(boot_id), version = flowmesh_update::stamp::current(), "sensor starting");

    let (rec_tx, rec_rx) = mpsc::channel::<Captured>(65_536);
    let control = Arc::new(CaptureControl::default());
    let packets = config.capture.file.is_some() || config.capture.interface.is_some();
    let exported = match &config.capture.netflow {
        Some(addr) => Some(exporters::spawn(
            addr,
            stop.clone(),
            rec_tx.clone(),
            // Alone, it says how far time has gone; next to packets, the capture does.
            (!packets).then_some(config.capture.netflow_lateness_secs),
        )?),
        None => None,
    };
    let capture = if packets {
        Some(spawn_capture(
            &config,
            stop.clone(),
            control.clone(),
            shared.capture.clone(),
            rec_tx,
        )?)
    } else {
        drop(rec_tx);
        None
    };
    // A signal stops the capture that is running now, whichever run it is.
    let stopper = {
        let (stop, control) = (stop.clone(), control.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            control.stop_current();
        })
    };
    let remote = {
        let control = control.clone();
        let report = serde_json::to_string(&config).unwrap_or_default();
        tokio::spawn(flowmesh_proto::control::serve(
            client.clone(),
            identity.clone(),
            control_opener,
            (instance.clone(), config.update.clone()),
            stop.clone(),
            move |request| {
                let answer = match request.action.as_str() {
                    "restart_capture" => {
                        control.restart();
                        Ok(String::new())
                    }
                    "report_config" => Ok(report.clone()),
                    a if a.starts_with("assist_") => Err(format!(
                        "{a}: a sensor has no service to assist; remote assistance reaches a \
                         collector's API (ask the collector)"
                    )),
                    other => Err(format!("{other}: not something a sensor does")),
                };
                std::future::ready(flowmesh_proto::control::answer(answer))
            },
        ))
    };
    let (batch_tx, batch_rx) = mpsc::channel::<Batch>(64);
    let batcher = tokio::spawn(batch(
        rec_rx,
        batch_tx,
        shared.clone(),
        config.publish.batch_flows,
        Duration::from_millis(config.publish.batch_max_ms.max(1)),
    ));
    let heart_stop = Arc::new(tokio::sync::Notify::new());
    let heartbeat = tokio::spawn(heartbeats(
        client.clone(),
        sealer.clone(),
        shared.clone(),
        publisher.clone(),
        heart_stop.clone(),
    ));
    let sending = tokio::spawn(send_loop(batch_rx, publisher.clone(), stop.clone()));

    let stats = tokio::task::spawn_blocking(move || match capture {
        // Exporters are heard until the packet source ends (a replayed file) or the stop.
        Some(c) => {
            let stats = c.join();
            if let Some(e) = exported {
                exporters::stop_with(e);
            }
            stats
        }
        // Alone, until the stop.
        None => {
            if let Some(e) = exported {
                exporters::wait(e);
            }
            Ok(Ok(RunStats::default()))
        }
    })
    .await
    .map_err(|e| SensorError::Other(e.to_string()))?
    .map_err(|_| SensorError::Other("the capture thread panicked".into()))?;
    stopper.abort();
    remote.abort();
    let _ = batcher.await;
    let _ = sending.await;
    heart_stop.notify_one();
    let _ = heartbeat.await;
    // The last word: stopping, with what is left in the outbox.
    publish_status(
        &client,
        sealer.as_deref(),
        &shared.status("stopping", publisher.depth()),
    )
    .await;
    let _ = tokio::time::timeout(Duration::from_secs(5), client.flush()).await;
    let depth = publisher.depth();
    tracing::info!(
        batches = shared.published.batches.load(Ordering::Relaxed),
        flows = shared.published.flows.load(Ordering::Relaxed),
        outbox_batches = depth.batches,
        outbox_dropped = depth.dropped_batches,
        "sensor stopped"
    );
    match stats {
        Ok(s) => Ok(s),
        Err((s, e)) => {
            tracing::error!(error = %e, "capture ended with an error");
            Ok(s)
        }
    }
}

type CaptureResult = Result<RunStats, (RunStats, crate::capture::CaptureError)>;

/// Lets a remote action restart the capture: the running capture is told to stop (its open
/// flows are emitted) and the capture loop opens its source again.
#[derive(Debug, Default)]
pub struct CaptureControl {
    restart: AtomicBool,
    current: std::sync::Mutex<Arc<AtomicBool>>,
}

impl CaptureControl {
    /// Asks for a restart.
    pub fn restart(&self) {
        self.restart.store(true, Ordering::Relaxed);
        self.stop_current();
    }

    fn stop_current(&self) {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .store(true, Ordering::Relaxed);
    }

    /// A fresh stop flag for the next run.
    fn next_run(&self, stopped: bool) -> Arc<AtomicBool> {
        let flag = Arc::new(AtomicBool::new(stopped));
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = flag.clone();
        flag
    }
}

/// The configured packet source, opened.
enum Source {
    Replay(Box<Replay>),
    Live(CountedLive),
}

fn open_source(
    c: &CaptureConfig,
    stop: Arc<AtomicBool>,
    counters: Arc<CaptureCounters>,
) -> Result<Source, crate::capture::CaptureError> {
    Ok(match &c.file {
        Some(file) => {
            let src = Replay::open(file, c.speed, c.looping, stop, counters)?;
            tracing::info!(file = %file.display(), speed = c.speed, looping = c.looping, "replaying");
            Source::Replay(Box::new(src))
        }
        None => {
            let iface = c.interface.clone().unwrap_or_default();
            let cap = LiveCapture::open(&iface, c.filter.as_deref())?;
            tracing::info!(%iface, "capturing");
            Source::Live(CountedLive::new(cap, counters))
        }
    })
}

fn spawn_capture(
    config: &SensorConfig,
    stop: Arc<AtomicBool>,
    control: Arc<CaptureControl>,
    counters: Arc<CaptureCounters>,
    tx: mpsc::Sender<Captured>,
) -> Result<std::thread::JoinHandle<CaptureResult>, SensorError> {
    let table = TableConfig {
        active_micros: (config.capture.active_timeout_secs as i64).saturating_mul(1_000_000),
        // Closed connections are reported soon after the close: alerts do not wait minutes.
        tcp_closed_micros: (config.capture.tcp_close_grace_ms.max(1) as i64).saturating_mul(1000),
        // Each record within one 5-minute period, and a watermark for the collector.
        period_micros: crate::flow::PERIOD_MICROS,
        ..TableConfig::default()
    };
    let marks_tx = tx.clone();
    // Blocks the capture while the publisher is behind: back-pressure, not loss.
    let mut send = move |entries: Vec<u8>| {
        let _ = tx.blocking_send(Captured::Flows(entries));
    };
    let mut marks = move |w: i64| {
        let _ = marks_tx.blocking_send(Captured::Watermark(w));
    };
    let c = config.capture.clone();
    let workers = c.workers();
    tracing::info!(workers, "flow workers");
    // The first open happens here, so a wrong interface or file fails the start.
    let flag = control.next_run(stop.load(Ordering::Relaxed));
    let first = open_source(&c, flag.clone(), counters.clone())
        .map_err(|e| SensorError::Other(e.to_string()))?;
    Ok(std::thread::spawn(move || {
        let mut next = Some((first, flag));
        loop {
            let (src, flag) = match next.take() {
                Some(opened) => opened,
                None => {
                    let flag = control.next_run(stop.load(Ordering::Relaxed));
                    match open_source(&c, flag.clone(), counters.clone()) {
                        Ok(src) => (src, flag),
                        Err(e) => return Err((RunStats::default(), e)),
                    }
                }
            };
            let mut src = src;
            let source: &mut dyn offline::PacketSource = match &mut src {
                Source::Replay(s) => &mut **s,
                Source::Live(s) => s,
            };
            // Records become protobuf where they are made: on the flow workers, each worker's
            // records handed on together (one worker: the reader keeps the only table).
            let finish =
                |r: FlowRecord, out: &mut Vec<u8>| codec::write_batch_entry(&r, false, out);
            let result = parallel::run_with(
                source, &flag, table, workers, &finish, &mut marks, &mut send,
            );
            if control.restart.swap(false, Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
                tracing::info!("capture restarted (remote action)");
                continue;
            }
            return result;
        }
    }))
}

/// Publishes batches as they come and replays the outbox when the broker (or the stream,
/// which the user's collector creates) is back.
async fn send_loop(
    mut rx: mpsc::Receiver<Batch>,
    publisher: Arc<Publisher>,
    stop: Arc<AtomicBool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let first = tokio::select! {
            b = rx.recv() => match b {
                Some(b) => Some(b),
                None => break,
            },
            _ = tick.tick() => None,
        };
        let mut batches: Vec<Batch> = first.into_iter().collect();
        while batches.len() < 256 {
            match rx.try_recv() {
                Ok(b) => batches.push(b),
                Err(_) => break,
            }
        }
        if let Err(e) = publisher.send(batches).await {
            tracing::error!(error = %e, "outbox write failed: batches lost");
        }
        if publisher.depth().batches > 0
            && let Err(e) = publisher.drain().await
        {
            tracing::error!(error = %e, "outbox read failed");
        }
    }
    // Input is over. Stopped by a signal: one bounded attempt, then the outbox waits on disk
    // for the next start. The file simply ended: wait for the broker until everything is out
    // (a signal still ends the wait).
    if stop.load(Ordering::Relaxed) {
        let _ = tokio::time::timeout(Duration::from_secs(10), publisher.drain()).await;
        return;
    }
    let mut said = false;
    loop {
        if let Ok(true) = publisher.drain().await {
            return;
        }
        if stop.load(Ordering::Relaxed) {
            return;
        }
        if !said {
            said = true;
            tracing::warn!(
                batches = publisher.depth().batches,
                "input done; waiting for the broker to take the outbox (Ctrl-C leaves it on disk for the next start)"
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn publish_status(client: &async_nats::Client, sealer: Option<&Sealer>, status: &Status) {
    let Ok(subject) = Channel::Status.subject(&status.instance) else {
        return;
    };
    let body = status.encode_to_vec();
    let payload = match sealer {
        Some(s) => match s.seal(&subject, &body) {
            Ok(p) => p,
            Err(_) => return,
        },
        None => body,
    };
    if let Err(e) = client.publish(subject, payload.into()).await {
        tracing::debug!(error = %e, "heartbeat not sent");
    }
}

async fn heartbeats(
    client: async_nats::Client,
    sealer: Option<Arc<Sealer>>,
    shared: Arc<Shared>,
    publisher: Arc<Publisher>,
    stop: Arc<tokio::sync::Notify>,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(u64::from(shared.heartbeat_ms)));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.notified() => return,
        }
        // A disconnected client would queue stale heartbeats: skip them instead.
        if client.connection_state() != async_nats::connection::State::Connected {
            continue;
        }
        publish_status(
            &client,
            sealer.as_deref(),
            &shared.status("online", publisher.depth()),
        )
        .await;
    }
}
