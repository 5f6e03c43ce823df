//! The web console, served by the manager over HTTPS (TLS 1.3 only): static files built into
//! the binary, and three calls — the cluster's WebSocket addresses and cloud key, sign-up
//! (enrolls a user by its public key only) and sign-in (a sealed request proves the browser
//! holds the user's key; the answer is a short-lived NATS user JWT for an nkey the browser
//! generated). Everything else the browser does over NATS itself: the manager never sees a
//! user's private key, nor reads the user's traffic.

mod account;
mod assets;
mod calls;
mod limits;

pub use account::LOGIN_SUBJECT;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use flowmesh_link::async_nats::Client;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::daemon::Manager;

/// `[console]` in the manager's config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// `IP:PORT` to serve on (port 0 picks a free one), or `off`.
    pub listen: String,
    /// Certificate (PEM). Default: `nodes/console.pem` of the cluster directory, which
    /// `flowmesh broker init` issues from the cluster's CA.
    pub cert_file: Option<PathBuf>,
    /// Its key (PEM, 0600). Default: `secrets/console-key.pem` of the cluster directory.
    pub key_file: Option<PathBuf>,
    /// Whether anyone who reaches the console may sign up (enroll a new user). Off, users are
    /// enrolled by the operator (`flowmesh enroll`) and only sign in here.
    pub signup: bool,
    /// How long a browser's NATS credentials last, seconds (it signs in again after).
    pub session_secs: u64,
    /// Where the URL is written once listening (for scripts and tests). Default: none.
    pub url_file: Option<PathBuf>,
    /// Sign-ups one address may make per hour.
    pub signups_per_hour: u32,
    /// Sign-ins and calls one address may make per minute.
    pub requests_per_minute: u32,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            listen: format!("127.0.0.1:{}", crate::broker::DEFAULT_CONSOLE_PORT),
            cert_file: None,
            key_file: None,
            signup: true,
            session_secs: 3600,
            url_file: None,
            signups_per_hour: 5,
            requests_per_minute: 120,
        }
    }
}

impl ConsoleConfig {
    /// Resolves relative paths against the directory of the config file.
    pub fn resolve(&mut self, dir: &Path) {
        for p in [&mut self.cert_file, &mut self.key_file, &mut self.url_file]
            .into_iter()
            .flatten()
        {
            *p = dir.join(&*p);
        }
    }
}

/// What the handlers share.
pub(crate) struct Console {
    manager: Arc<Manager>,
    system: Client,
    config: ConsoleConfig,
    signup_limit: limits::Limit,
    request_limit: limits::Limit,
}

/// The address a request came from (set per connection).
#[derive(Clone, Copy)]
pub(crate) struct Peer(pub std::net::IpAddr);

/// An answer: a status and a JSON body.
pub(crate) type Reply = (StatusCode, Json<Value>);

/// A refusal saying why, as `{"error": ...}`.
pub(crate) fn refuse(status: StatusCode, error: impl std::fmt::Display) -> Reply {
    (
        status,
        Json(serde_json::json!({ "error": error.to_string() })),
    )
}

impl Console {
    /// A request a signed-in user sealed to the cloud on `subject` (a sign-in, a call):
    /// within the address's limit, opened (the user whose key sealed it), its JSON read.
    /// `what` names it in the refusals.
    fn sealed_request<T: DeserializeOwned>(
        &self,
        Peer(ip): Peer,
        subject: &str,
        body: &[u8],
        what: &str,
    ) -> Result<(String, T), Reply> {
        if !self.request_limit.allow(ip) {
            return Err(refuse(
                StatusCode::TOO_MANY_REQUESTS,
                "too many requests: wait a minute",
            ));
        }
        let (user, payload) = self.manager.open_sealed(subject, body).map_err(|e| {
            tracing::info!(error = %e, what, "console request refused");
            refuse(StatusCode::UNAUTHORIZED, format!("{what} refused: {e}"))
        })?;
        let request = serde_json::from_slice(&payload)
            .map_err(|e| refuse(StatusCode::BAD_REQUEST, format!("{what} request: {e}")))?;
        Ok((user, request))
    }
}

/// Serves the console until `stop` resolves; returns its URL once it listens (`None`: off).
pub async fn serve(
    manager: Arc<Manager>,
    system: Client,
    config: &ConsoleConfig,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<Option<String>, String> {
    if config.listen == "off" {
        return Ok(None);
    }
    let addr: SocketAddr = config
        .listen
        .parse()
        .map_err(|_| format!("[console] listen = {:?}: IP:PORT or \"off\"", config.listen))?;
    let cluster = manager.cluster_dir().to_path_buf();
    let cert = config
        .cert_file
        .clone()
        .unwrap_or_else(|| cluster.join("nodes/console.pem"));
    let key = config
        .key_file
        .clone()
        .unwrap_or_else(|| cluster.join("secrets/console-key.pem"));
    if !cert.exists() {
        return Err(format!(
            "console certificate {} not found: a cluster made by an older `flowmesh broker init` has none; set [console] cert_file and key_file, or listen = \"off\"",
            cert.display()
        ));
    }
    let tls = flowmesh_proto::serve::acceptor(&cert, &key, addr, &[b"h2", b"http/1.1"])?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("console: cannot listen on {addr}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let host = if bound.ip().is_unspecified() {
        "localhost".to_string()
    } else {
        bound.ip().to_string()
    };
    let url = format!("https://{host}:{}/", bound.port());
    if let Some(f) = &config.url_file {
        std::fs::write(f, &url).map_err(|e| format!("{}: {e}", f.display()))?;
    }
    let state = Arc::new(Console {
        manager,
        system,
        config: config.clone(),
        signup_limit: limits::Limit::new(config.signups_per_hour, Duration::from_secs(3600)),
        request_limit: limits::Limit::new(config.requests_per_minute, Duration::from_secs(60)),
    });
    let app = Router::new()
        .route("/", get(assets::index))
        .route("/console.js", get(assets::bundle))
        .route("/style.css", get(assets::style))
        .route(
            "/favicon.ico",
            get(|| async { axum::http::StatusCode::NO_CONTENT }),
        )
        .route("/api/config", get(account::config))
        .route("/api/signup", post(account::signup))
        .route("/api/login", post(account::login))
        .route("/api/call", post(calls::call))
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .with_state(state);
    tokio::spawn(accept_loop(listener, tls, app, stop));
    tracing::info!(%url, "web console listening");
    Ok(Some(url))
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    tls: tokio_rustls::TlsAcceptor,
    app: Router,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) {
    tokio::pin!(stop);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut stop => return,
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "console: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (tls, app) = (tls.clone(), app.clone());
        // Each connection on its own: a slow handshake holds up nobody else.
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(Duration::from_secs(10), tls.accept(tcp)).await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "console: TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let app = app.layer(axum::Extension(Peer(peer.ip())));
            let service = hyper_util::service::TowerToHyperService::new(app);
            let served =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "console: connection ended");
            }
        });
    }
}
