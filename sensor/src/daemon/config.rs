//! The sensor's config file, its instance id, and why it cannot start.

use std::path::{Path, PathBuf};

use flowmesh_link::connect::BrokerConfig;
use flowmesh_link::subject::validate_token;
use serde::Deserialize;

/// The sensor's config file.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SensorConfig {
    /// The instance name (a subject token). Without it an id is generated once and kept in
    /// the state directory.
    pub name: Option<String>,
    /// The user's identity file (mode 0600).
    pub identity: PathBuf,
    /// Where the instance id and the outbox live.
    pub state_dir: PathBuf,
    /// The cluster.
    pub broker: BrokerConfig,
    /// What to capture.
    pub capture: CaptureConfig,
    /// Batching, outbox, heartbeats.
    #[serde(default)]
    pub publish: PublishConfig,
    /// `[update]`: the pinned release key and the health deadline of software updates.
    #[serde(default)]
    pub update: flowmesh_update::UpdateConfig,
}

/// `[capture]`: an interface, or a file to replay.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureConfig {
    /// Live capture from this interface.
    pub interface: Option<String>,
    /// Replay this capture file instead.
    pub file: Option<PathBuf>,
    /// Receive NetFlow v5/v9 and IPFIX from exporters on this UDP address (e.g.
    /// `0.0.0.0:2055`), next to an interface or file, or instead of them.
    #[serde(default)]
    pub netflow: Option<String>,
    /// With `netflow` alone: the watermark trails the clock by this many seconds, so exported
    /// records up to this late still count in their traffic-rule period (routers export a
    /// long flow when it ends or at their active timeout).
    #[serde(default = "two_minutes")]
    pub netflow_lateness_secs: u64,
    /// A BPF filter (live capture).
    pub filter: Option<String>,
    /// Replay speed: 1 real time, 10 ten times faster, 0 as fast as it reads.
    #[serde(default = "one")]
    pub speed: f64,
    /// Replay the file again and again (timestamps keep moving forward).
    #[serde(default, rename = "loop")]
    pub looping: bool,
    /// Seconds after which a running flow sends an update record.
    #[serde(default = "sixty")]
    pub active_timeout_secs: u64,
    /// Milliseconds after a TCP connection ends (a FIN each way, or a RST) before its record
    /// goes out: long enough for the last ACK (a later packet becomes a small delta record),
    /// short enough that alerts on it come at once.
    #[serde(default = "half_a_second")]
    pub tcp_close_grace_ms: u64,
    /// Flow workers: packets are spread over them by a symmetric hash of their addresses.
    /// Default: every core; 1 runs capture and flows on one thread.
    #[serde(default)]
    pub threads: Option<usize>,
}

impl CaptureConfig {
    /// Flow workers to run: `threads`, or every core.
    pub fn workers(&self) -> usize {
        crate::parallel::workers(self.threads)
    }
}

fn half_a_second() -> u64 {
    (crate::flow::LIVE_TCP_CLOSE_GRACE_MICROS / 1000) as u64
}

fn two_minutes() -> u64 {
    120
}

fn one() -> f64 {
    1.0
}
fn sixty() -> u64 {
    60
}

/// `[publish]`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PublishConfig {
    /// Flow records per batch at most.
    pub batch_flows: usize,
    /// A batch waits at most this long for more records.
    pub batch_max_ms: u64,
    /// The outbox's bound.
    pub outbox_max_mb: u64,
    /// Heartbeat interval.
    pub heartbeat_secs: u64,
}

impl Default for PublishConfig {
    fn default() -> Self {
        PublishConfig {
            batch_flows: 1000,
            batch_max_ms: 500,
            outbox_max_mb: 256,
            heartbeat_secs: 5,
        }
    }
}

/// Why the sensor cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SensorError {
    /// The config file.
    #[error("{path}: {reason}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong, and what to do.
        reason: String,
    },
    /// Anything else, with context.
    #[error("{0}")]
    Other(String),
}

impl SensorConfig {
    /// Reads a config file; relative paths are resolved against its directory.
    pub fn load(path: &Path) -> Result<Self, SensorError> {
        let err = |reason: String| SensorError::Config {
            path: path.to_path_buf(),
            reason,
        };
        let (mut c, dir): (SensorConfig, _) =
            flowmesh_link::config::read_toml(path).map_err(err)?;
        c.identity = dir.join(&c.identity);
        c.state_dir = dir.join(&c.state_dir);
        c.broker = c.broker.relative_to(&dir);
        if let Some(f) = &c.capture.file {
            c.capture.file = Some(dir.join(f));
        }
        match (&c.capture.interface, &c.capture.file, &c.capture.netflow) {
            (Some(_), Some(_), _) | (None, None, None) => {
                return Err(err(
                    "[capture] needs one of `interface` (live) or `file` (replay), and/or \
                     `netflow` (an address exporters send to)"
                        .into(),
                ));
            }
            _ => {}
        }
        if let Some(n) = &c.name {
            validate_token(n).map_err(|e| err(e.to_string()))?;
        }
        if c.publish.batch_flows == 0 || c.publish.heartbeat_secs == 0 {
            return Err(err(
                "[publish] batch_flows and heartbeat_secs must be above 0".into(),
            ));
        }
        Ok(c)
    }
}

/// The instance id: the configured name, or the one generated on the first run and kept in
/// `state_dir/instance` (so it survives restarts and container rebuilds that keep the volume).
pub fn instance_id(config: &SensorConfig) -> Result<String, SensorError> {
    let file = config.state_dir.join("instance");
    if let Some(n) = &config.name {
        return Ok(n.clone());
    }
    if let Ok(id) = std::fs::read_to_string(&file) {
        let id = id.trim().to_string();
        validate_token(&id).map_err(|e| {
            SensorError::Other(format!(
                "{}: {e} (delete it to get a new id)",
                file.display()
            ))
        })?;
        return Ok(id);
    }
    let mut raw = [0u8; 6];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut raw);
    let id = format!("sensor-{}", hex::encode(raw));
    std::fs::write(&file, format!("{id}\n"))
        .map_err(|e| SensorError::Other(format!("{}: {e}", file.display())))?;
    Ok(id)
}
