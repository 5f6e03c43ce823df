//! `flowmesh watch`: the user's alerts and status changes, opened, as JSON lines — and
//! optionally POSTed to a webhook ([`crate::webhook`]).

use std::path::{Path, PathBuf};

use flowmesh_link::async_nats;
use flowmesh_link::connect::{BrokerConfig, connect_in_background};
use flowmesh_link::retry::until_ok;
use flowmesh_link::subject::Channel;
use flowmesh_link::{Identity, Opener};
use futures::StreamExt;
use serde::Deserialize;

/// What `watch` needs from a config file; other tables are ignored, so a collector's or a
/// sensor's config works too.
#[derive(Debug, Clone, Deserialize)]
pub struct WatchConfig {
    /// The user's identity file.
    pub identity: PathBuf,
    /// The cluster.
    pub broker: BrokerConfig,
    /// `[watch]`: optional webhook.
    #[serde(default)]
    pub watch: WatchSection,
}

/// `[watch]`. `Debug` shows the webhook without its credentials or query.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchSection {
    /// POST every event here (`http://host:port/path` or `https://...`).
    pub webhook: Option<String>,
    /// For an https webhook with a private CA: its certificate (PEM), trusted besides the
    /// system's roots.
    pub webhook_ca_file: Option<PathBuf>,
    /// Attempts per event before giving up on it.
    #[serde(default = "three")]
    pub webhook_attempts: u32,
}

impl std::fmt::Debug for WatchSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchSection")
            .field(
                "webhook",
                &self.webhook.as_deref().map(crate::webhook::redact_url),
            )
            .field("webhook_ca_file", &self.webhook_ca_file)
            .field("webhook_attempts", &self.webhook_attempts)
            .finish()
    }
}

fn three() -> u32 {
    3
}

impl WatchConfig {
    /// Reads a config file; relative paths are resolved against its directory.
    pub fn load(path: &Path) -> Result<Self, String> {
        let (mut c, dir): (WatchConfig, _) = flowmesh_link::config::read_toml(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        c.identity = dir.join(&c.identity);
        c.broker = c.broker.relative_to(&dir);
        if let Some(ca) = &mut c.watch.webhook_ca_file {
            *ca = dir.join(&*ca);
        }
        Ok(c)
    }
}

/// Subscribes to alerts and status changes; every opened event goes to `out` as a JSON value.
/// Returns when the subscription ends or `out` returns false.
pub async fn watch(
    config: &WatchConfig,
    name: &str,
    out: impl FnMut(serde_json::Value) -> bool,
) -> Result<(), String> {
    let identity = Identity::load(&config.identity).map_err(|e| e.to_string())?;
    // A watcher outlives broker restarts: it waits for a node rather than failing, and the
    // client resubscribes by itself after a reconnect.
    let client = connect_in_background(&config.broker, name)
        .await
        .map_err(|e| e.to_string())?;
    let never = std::sync::atomic::AtomicBool::new(false);
    let events = until_ok("subscribing to alerts and status changes", &never, || {
        subscribe(&client)
    })
    .await
    .ok_or("stopped")?;
    follow(events, &Opener::new(&identity), out).await
}

/// The user's alerts and status changes, as they are published.
pub type Events = futures::stream::Select<async_nats::Subscriber, async_nats::Subscriber>;

/// Subscribes to the user's alerts and status changes; when it returns, the broker has the
/// subscriptions, so nothing published from then on is missed.
pub async fn subscribe(client: &async_nats::Client) -> Result<Events, String> {
    let alerts = client
        .subscribe(Channel::Alerts.all())
        .await
        .map_err(|e| e.to_string())?;
    let changes = client
        .subscribe(Channel::Changes.all())
        .await
        .map_err(|e| e.to_string())?;
    client.flush().await.map_err(|e| e.to_string())?;
    Ok(futures::stream::select(alerts, changes))
}

/// Opens each event with `opener` (its own: a replay window shared with other readers would
/// see every event twice) and hands it to `out` as a JSON value, until the subscription ends
/// or `out` returns false.
pub async fn follow(
    mut events: Events,
    opener: &Opener,
    mut out: impl FnMut(serde_json::Value) -> bool,
) -> Result<(), String> {
    tracing::info!("watching alerts and status changes");
    while let Some(m) = events.next().await {
        let opened = match opener.open(&m.subject, &m.payload) {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(subject = %m.subject, error = %e, "rejected an event");
                continue;
            }
        };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&opened.payload) else {
            tracing::warn!(subject = %m.subject, "an event that is not JSON");
            continue;
        };
        if !out(v) {
            break;
        }
    }
    Ok(())
}

/// A client name for the watch connection.
pub fn client_name() -> String {
    format!("watch-{}", std::process::id())
}
