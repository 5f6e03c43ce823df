//! The NATS connection every component uses: TLS 1.3 only (TLS first, before any plaintext),
//! the cluster's CA, per-instance credentials (a NATS user JWT and its nkey seed, in a
//! `.creds` file), every seed URL of the cluster, reconnection forever.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_nats::{Client, ConnectOptions, Event};
use serde::{Deserialize, Serialize};

use crate::secret_file::{self, SecretFileError};
use crate::tls::{self, TlsError};

/// Where and how to reach the broker; the `[broker]` table of every component's config.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    /// Every seed URL of the cluster (`tls://host:port`); the client tries them all and learns
    /// the rest of its cluster from the servers.
    pub urls: Vec<String>,
    /// The cluster CA certificate (PEM).
    pub ca_file: PathBuf,
    /// This instance's credentials (mode 0600): the user JWT the cluster's operator signed and
    /// its nkey seed, written by `flowmesh broker init` or `flowmesh enroll`.
    pub creds_file: PathBuf,
    /// Seconds to wait for the first connection.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// Seed URLs by region (`[broker.regions] eu = ["tls://...", ...]`): the client measures
    /// each region's round trip at start and tries the nearest region's nodes first.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub regions: std::collections::BTreeMap<String, Vec<String>>,
    /// Pins a region of `regions` instead of measuring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

fn default_connect_timeout() -> u64 {
    10
}

/// Why the connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// No URL given.
    #[error("no broker URL configured: set [broker] urls = [\"tls://host:port\", ...]")]
    NoUrls,
    /// A URL is not `tls://`.
    #[error("broker URL {0} is not tls://: flowmesh only talks TLS 1.3 to the broker")]
    NotTls(String),
    /// TLS configuration.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The credentials file.
    #[error("credentials: {0}")]
    Creds(#[from] SecretFileError),
    /// The credentials file's contents.
    #[error(
        "credentials file {0} does not hold a NATS user JWT and nkey seed (as `flowmesh enroll` writes them): {1}"
    )]
    BadCreds(PathBuf, String),
    /// No server answered, or the handshake or authentication failed.
    #[error(
        "could not connect to any of {urls:?}: {reason}. Is the cluster up (`deploy/cluster.sh status DIR`), and are ca_file and creds_file from the same cluster, and the instance not revoked?"
    )]
    Unreachable {
        /// The URLs tried.
        urls: Vec<String>,
        /// The last error.
        reason: String,
    },
}

/// The inbox prefix of `instance`: every reply to its requests (JetStream acks included) comes
/// under `<prefix>.>`, the only inboxes its credentials may subscribe to.
pub fn inbox_prefix(instance: &str) -> String {
    format!("_INBOX_{instance}")
}

/// The claims of a NATS JWT (`header.claims.signature`, base64url), not verified: what a
/// client reads of its own credentials. `None` if it does not decode.
pub fn unverified_claims(jwt: &str) -> Option<serde_json::Value> {
    let body = jwt.split('.').nth(1)?;
    let bytes = data_encoding::BASE64URL_NOPAD
        .decode(body.trim_end_matches('=').as_bytes())
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The connection name of a tool (`flowmesh control`, `report-ip`, `hello`) using `instance`'s
/// credentials: not the instance's own name, so the cloud's registry does not count the tool
/// as the instance.
pub fn tool_name(instance: &str, tool: &str) -> String {
    format!("{instance}:{tool}")
}

/// A credentials file, read: its text and the instance name its JWT carries.
pub struct Creds {
    text: zeroize::Zeroizing<String>,
    /// The `name` claim of the user JWT: the instance.
    pub name: String,
}

impl std::fmt::Debug for Creds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Creds")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Reads a credentials file (it must be mode 0600) and the instance name its JWT carries.
pub fn read_creds(path: &Path) -> Result<Creds, ConnectError> {
    let bad = |why: &str| ConnectError::BadCreds(path.to_path_buf(), why.to_string());
    let text = secret_file::read(path)?;
    let jwt = text
        .lines()
        .map(str::trim)
        .skip_while(|l| !l.starts_with("-----BEGIN NATS USER JWT"))
        .nth(1)
        .ok_or_else(|| bad("no user JWT"))?;
    if !text.lines().any(|l| l.trim().starts_with("SU")) {
        return Err(bad("no user nkey seed"));
    }
    let claims = unverified_claims(jwt).ok_or_else(|| bad("the JWT does not decode"))?;
    let name = claims["name"].as_str().unwrap_or_default().to_string();
    crate::subject::validate_token(&name).map_err(|e| bad(&e.to_string()))?;
    Ok(Creds { text, name })
}

/// The connect options for `config`, named `name` on the server side.
pub fn options(config: &BrokerConfig, name: &str) -> Result<ConnectOptions, ConnectError> {
    if config.urls.is_empty() {
        return Err(ConnectError::NoUrls);
    }
    if let Some(bad) = config.urls.iter().find(|u| !u.starts_with("tls://")) {
        return Err(ConnectError::NotTls(bad.clone()));
    }
    let creds = read_creds(&config.creds_file)?;
    let tls = tls::client_config(&config.ca_file)?;
    let who = name.to_string();
    let bad = |e: std::io::Error| ConnectError::BadCreds(config.creds_file.clone(), e.to_string());
    Ok(ConnectOptions::with_credentials(&creds.text)
        .map_err(bad)?
        .custom_inbox_prefix(inbox_prefix(&creds.name))
        .name(name)
        .require_tls(true)
        .tls_first()
        .tls_client_config(tls)
        .connection_timeout(Duration::from_secs(config.connect_timeout_secs.max(1)))
        .max_reconnects(None)
        .event_callback(move |event| {
            let who = who.clone();
            async move {
                match event {
                    Event::Connected => tracing::info!(client = %who, "connected to broker"),
                    Event::Disconnected => {
                        tracing::warn!(client = %who, "disconnected from broker; reconnecting")
                    }
                    Event::ServerError(e) => {
                        tracing::warn!(client = %who, error = %e, "broker error")
                    }
                    Event::ClientError(e) => {
                        tracing::warn!(client = %who, error = %e, "client error")
                    }
                    other => tracing::debug!(client = %who, event = %other, "broker event"),
                }
            }
        }))
}

/// Connects to the cluster. Fails fast when no server answers at first; once connected, the
/// client reconnects to any node of the cluster by itself.
pub async fn connect(config: &BrokerConfig, name: &str) -> Result<Client, ConnectError> {
    let (opts, urls) = ordered(config, name).await?;
    opts.connect(urls)
        .await
        .map_err(|e| ConnectError::Unreachable {
            urls: config.urls.clone(),
            reason: e.to_string(),
        })
}

/// Connects in the background: returns at once, and the client keeps trying every URL until
/// one answers (daemons start, and spool, while the cluster is down).
pub async fn connect_in_background(
    config: &BrokerConfig,
    name: &str,
) -> Result<Client, ConnectError> {
    let (opts, urls) = ordered(config, name).await?;
    opts.retry_on_initial_connect()
        .connect(urls)
        .await
        .map_err(|e| ConnectError::Unreachable {
            urls: config.urls.clone(),
            reason: e.to_string(),
        })
}

/// The options and the URLs in the order to try them: with `regions`, the nearest (or pinned)
/// region's first, kept in that order by the client.
async fn ordered(
    config: &BrokerConfig,
    name: &str,
) -> Result<(ConnectOptions, Vec<String>), ConnectError> {
    let opts = options(config, name)?;
    if config.regions.is_empty() {
        return Ok((opts, config.urls.clone()));
    }
    if let Some(bad) = config
        .regions
        .values()
        .flatten()
        .find(|u| !u.starts_with("tls://"))
    {
        return Err(ConnectError::NotTls(bad.clone()));
    }
    let tls = std::sync::Arc::new(tls::client_config(&config.ca_file)?);
    let (urls, _) = crate::nearest::order(
        &config.urls,
        &config.regions,
        config.region.as_deref(),
        tls.clone(),
    )
    .await;
    // On every reconnect the regions are measured again: the nearest may have changed.
    let (all, regions, pinned) = (
        config.urls.clone(),
        config.regions.clone(),
        config.region.clone(),
    );
    let opts = opts
        .retain_servers_order()
        .reconnect_to_server_callback(move |pool, _info| {
            let (all, regions, pinned, tls) =
                (all.clone(), regions.clone(), pinned.clone(), tls.clone());
            // Measured on a task of its own: the callback's future must be Sync.
            let measured = tokio::spawn(async move {
                crate::nearest::order(&all, &regions, pinned.as_deref(), tls)
                    .await
                    .0
            });
            async move { next_server(&measured.await.ok()?, &pool) }
        });
    Ok((opts, urls))
}

/// The first server of `preferred` (URLs, nearest region first) that the client's pool holds
/// and that has not failed since it last connected; `None` leaves the choice to the client.
fn next_server(
    preferred: &[String],
    pool: &[async_nats::Server],
) -> Option<async_nats::ReconnectToServer> {
    let server = preferred.iter().find_map(|url| {
        let addr = url.strip_prefix("tls://")?;
        pool.iter().find(|s| {
            s.failed_attempts == 0 && format!("{}:{}", s.addr.host(), s.addr.port()) == addr
        })
    })?;
    tracing::debug!(server = %server.addr.as_url_str(), "reconnecting to the nearest node");
    Some(async_nats::ReconnectToServer {
        addr: server.addr.clone(),
        delay: Some(Duration::ZERO),
    })
}

impl BrokerConfig {
    /// Resolves relative paths against `dir` (the config file's directory).
    pub fn relative_to(mut self, dir: &Path) -> Self {
        self.ca_file = dir.join(&self.ca_file);
        self.creds_file = dir.join(&self.creds_file);
        self
    }
}

/// A config file's `[broker]` table; other tables are left to their components.
#[derive(Deserialize)]
struct BrokerTable {
    broker: BrokerConfig,
}

/// Why a config file's `[broker]` table could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct BrokerConfigError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub reason: String,
}

impl BrokerConfig {
    /// Reads the `[broker]` table of a TOML config file. Relative paths in it are resolved
    /// against the file's directory.
    pub fn load(path: &Path) -> Result<Self, BrokerConfigError> {
        let err = |reason: String| BrokerConfigError {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let mut cfg = toml::from_str::<BrokerTable>(&text)
            .map_err(|e| err(e.message().to_string()))?
            .broker;
        let dir = path.parent().unwrap_or(Path::new("."));
        cfg = cfg.relative_to(dir);
        Ok(cfg)
    }
}
