//! Remote assistance on a collector: the user (by a sealed remote action) opens a session
//! that lets a support engineer reach this collector's API — and nothing else — through the
//! cloud's broker for at most 24 hours, optionally as admin. The session survives a restart
//! (its state is a 0600 file beside the store) until it is disabled or expires; every step
//! raises a `remote_assistance` alert.
//!
//! The session's broker credentials come from the manager (it holds the account's signing
//! key): a user JWT for a key pair made here, allowed only the session's subjects, expiring
//! with it. The key handed over carries them, the session secret and the cluster's URLs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use flowmesh_link::assist::key::KeyParts;
use flowmesh_link::assist::serve::{self, Counters, Session, Stopped};
use flowmesh_link::assist::{AssistKey, MAX_TTL_SECS, admin_token, new_id, now_secs};
use flowmesh_link::async_nats::Client;
use flowmesh_link::connect::BrokerConfig;
use flowmesh_link::time::rfc3339_secs;
use flowmesh_link::{Identity, secret_file};
use flowmesh_proto::v1::{AssistCredentials, AssistStatus, CloudRequest, cloud_request};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::{mpsc, watch};
use zeroize::Zeroizing;

use crate::alert::Alert;
use crate::cloud::CloudConfig;

/// `[assist]` in the collector's config.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AssistConfig {
    /// Whether the user may open sessions at all.
    pub allow: bool,
    /// The one service sessions reach (a loopback `IP:PORT`). Default: this collector's API.
    pub service: Option<SocketAddr>,
}

impl Default for AssistConfig {
    fn default() -> Self {
        AssistConfig {
            allow: true,
            service: None,
        }
    }
}

impl AssistConfig {
    /// Refuses a service that is not on loopback: a session must not become a way into the
    /// instance's network.
    pub fn validate(&self) -> Result<(), String> {
        match self.service {
            Some(s) if !s.ip().is_loopback() => Err(format!(
                "[assist] service = \"{s}\": only a loopback address may be assisted"
            )),
            _ => Ok(()),
        }
    }
}

/// What `assist_enable` takes (JSON).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnableArgs {
    #[serde(default)]
    admin: bool,
    #[serde(default = "day")]
    ttl_secs: i64,
}

fn day() -> i64 {
    MAX_TTL_SECS
}

/// The session as kept on disk (0600): enough to serve it again after a restart.
#[derive(Serialize, Deserialize)]
struct Saved {
    session: String,
    secret: String,
    expires: i64,
    admin: bool,
    started: i64,
    requested_by: String,
}

struct Active {
    saved: Saved,
    bearer: Zeroizing<String>,
    counters: Arc<Counters>,
    service: SocketAddr,
    cancel: watch::Sender<bool>,
}

/// What a collector needs to run sessions.
pub struct Parts {
    /// The collector's name (the instance sessions reach).
    pub name: String,
    /// Where the session is kept.
    pub state_file: PathBuf,
    /// `[assist]`.
    pub config: AssistConfig,
    /// The broker connection.
    pub client: Client,
    /// The user's identity (seals the request to the cloud).
    pub identity: Identity,
    /// The collector's broker settings (URLs and CA go into keys).
    pub broker: BrokerConfig,
    /// `[cloud]`: the manager issues the session's credentials.
    pub cloud: Option<CloudConfig>,
    /// Where `remote_assistance` alerts go (the daemon publishes and stores them).
    pub alerts: mpsc::UnboundedSender<Alert>,
}

/// The collector's remote assistance: at most one session at a time.
pub struct Assist {
    parts: Parts,
    service: Mutex<Option<SocketAddr>>,
    active: Mutex<Option<Active>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Assist {
    /// Remote assistance with these parts; nothing runs until [`Assist::restore`] or an enable.
    pub fn new(parts: Parts) -> Arc<Self> {
        let service = parts.config.service;
        Arc::new(Assist {
            parts,
            service: Mutex::new(service),
            active: Mutex::new(None),
        })
    }

    /// The service sessions reach when `[assist] service` is not set: the API, once bound.
    pub fn default_service(&self, api: SocketAddr) {
        let mut s = lock(&self.service);
        if s.is_none() {
            *s = Some(api);
        }
    }

    fn alert(&self, event: &str, saved: &Saved, reason: Option<&str>) {
        let severity = match event {
            "started" => "notice",
            "connected" => "warning",
            _ => "info",
        };
        let mut fields = json!({
            "event": event,
            "session": saved.session,
            "admin": saved.admin,
            "expires": rfc3339_secs(saved.expires),
        });
        if let Some(r) = reason {
            fields["reason"] = json!(r);
        }
        let a = Alert::new(
            "remote_assistance",
            severity,
            &self.parts.name,
            now_secs().saturating_mul(1_000_000),
            fields,
        );
        let _ = self.parts.alerts.send(a);
    }

    /// Serves the session kept on disk, if it has not expired (then it ends, with its alert).
    pub fn restore(self: &Arc<Self>) {
        let Ok(text) = secret_file::read(&self.parts.state_file) else {
            return;
        };
        let saved: Saved = match serde_json::from_str(&text) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(file = %self.parts.state_file.display(), error = %e, "remote-assistance state unreadable; the session is ended");
                let _ = std::fs::remove_file(&self.parts.state_file);
                return;
            }
        };
        let secret = flowmesh_link::assist::secret_from_hex(&saved.secret)
            .filter(|_| saved.expires > now_secs());
        let Some(secret) = secret else {
            self.alert("ended", &saved, Some("expired"));
            let _ = std::fs::remove_file(&self.parts.state_file);
            return;
        };
        tracing::info!(session = %saved.session, expires = %rfc3339_secs(saved.expires), "remote assistance resumed");
        if let Err(e) = self.start(saved, secret) {
            tracing::error!(error = %e, "remote assistance not resumed");
        }
    }

    /// Handles `assist_enable | assist_disable | assist_status`: the answer's JSON.
    pub async fn action(
        self: &Arc<Self>,
        action: &str,
        args: &str,
        from: &str,
    ) -> Result<String, String> {
        match action {
            "assist_enable" => self.enable(args, from).await,
            "assist_disable" => self.disable(),
            "assist_status" => Ok(match self.status() {
                Some(s) => status_json(&s).to_string(),
                None => json!({ "active": false }).to_string(),
            }),
            other => Err(format!("{other}: not a remote-assistance action")),
        }
    }

    async fn enable(self: &Arc<Self>, args: &str, from: &str) -> Result<String, String> {
        if !self.parts.config.allow {
            return Err(
                "remote assistance is off on this collector ([assist] allow = false)".into(),
            );
        }
        let args: EnableArgs = if args.trim().is_empty() {
            serde_json::from_str("{}")
        } else {
            serde_json::from_str(args)
        }
        .map_err(|e| format!("arguments: {e}"))?;
        if !(60..=MAX_TTL_SECS).contains(&args.ttl_secs) {
            return Err(format!(
                "ttl {} s: a session lasts from 60 s to 24 h",
                args.ttl_secs
            ));
        }
        if let Some(a) = lock(&self.active).as_ref() {
            return Err(format!(
                "a session is active until {}: disable it first (`flowmesh assist disable`)",
                rfc3339_secs(a.saved.expires)
            ));
        }
        let cloud = self.parts.cloud.as_ref().ok_or(
            "remote assistance needs [cloud] in the collector's config: the manager issues the \
             session's broker credentials",
        )?;
        let keys = cloud.keys().await?;
        let session = new_id();
        let mut secret = Zeroizing::new([0u8; 32]);
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, secret.as_mut());
        let expires = now_secs() + args.ttl_secs;
        let user = nkeys::KeyPair::new_user();
        let seed = Zeroizing::new(user.seed().map_err(|e| e.to_string())?);
        let request = CloudRequest {
            kind: Some(cloud_request::Kind::Assist(AssistCredentials {
                instance: self.parts.name.clone(),
                session: session.clone(),
                user_nkey: user.public_key(),
                expires_s: expires,
            })),
        };
        let reply =
            crate::cloud::ask(&self.parts.client, &self.parts.identity, &keys, &request).await?;
        if !reply.accepted {
            return Err(format!(
                "the cloud refused the session's credentials: {}",
                reply.error
            ));
        }
        let key = AssistKey::new(KeyParts {
            instance: &self.parts.name,
            session: &session,
            secret: &secret,
            expires,
            admin: args.admin,
            broker: &self.parts.broker,
            jwt: &reply.jwt,
            seed: &seed,
        })?;
        let saved = Saved {
            session: session.clone(),
            secret: hex::encode(secret.as_ref()),
            expires,
            admin: args.admin,
            started: now_secs(),
            requested_by: from.to_string(),
        };
        let text = Zeroizing::new(serde_json::to_string(&saved).map_err(|e| e.to_string())?);
        secret_file::write(&self.parts.state_file, text.as_bytes(), true)
            .map_err(|e| e.to_string())?;
        self.alert("started", &saved, None);
        tracing::info!(%session, admin = args.admin, expires = %rfc3339_secs(expires), by = %from, "remote assistance enabled");
        self.start(saved, secret)?;
        Ok(json!({
            "key": key.encode().as_str(),
            "session": session,
            "expires": rfc3339_secs(expires),
            "admin": args.admin,
        })
        .to_string())
    }

    fn start(self: &Arc<Self>, saved: Saved, secret: Zeroizing<[u8; 32]>) -> Result<(), String> {
        let service = (*lock(&self.service))
            .ok_or("no service to assist: the API is off and [assist] service is not set")?;
        let (cancel, cancelled) = watch::channel(false);
        let bearer = Zeroizing::new(format!("Bearer {}", admin_token(&secret, &saved.session)));
        let counters = Arc::new(Counters::default());
        let session = Arc::new(Session {
            id: saved.session.clone(),
            secret,
            expires: saved.expires,
            service,
        });
        *lock(&self.active) = Some(Active {
            saved,
            bearer,
            counters: counters.clone(),
            service,
            cancel,
        });
        let me = self.clone();
        tokio::spawn(async move { me.run(session, counters, cancelled).await });
        Ok(())
    }

    /// Serves the session until it ends; a broken subscription is served again.
    async fn run(
        self: Arc<Self>,
        session: Arc<Session>,
        counters: Arc<Counters>,
        cancelled: watch::Receiver<bool>,
    ) {
        let connected: Arc<dyn Fn() + Send + Sync> = {
            let me = Arc::downgrade(&self);
            let id = session.id.clone();
            Arc::new(move || {
                if let Some(me) = me.upgrade()
                    && let Some(a) = lock(&me.active).as_ref().filter(|a| a.saved.session == id)
                {
                    me.alert("connected", &a.saved, None);
                }
            })
        };
        loop {
            let served = serve::serve(
                self.parts.client.clone(),
                session.clone(),
                counters.clone(),
                cancelled.clone(),
                connected.clone(),
            )
            .await;
            match served {
                Ok(Stopped::Cancelled) => return,
                Ok(Stopped::Expired) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "remote assistance interrupted; serving again");
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                }
            }
        }
        let ended = {
            let mut active = lock(&self.active);
            match active.as_ref() {
                Some(a) if a.saved.session == session.id => active.take(),
                _ => None,
            }
        };
        if let Some(a) = ended {
            let _ = std::fs::remove_file(&self.parts.state_file);
            tracing::info!(session = %a.saved.session, "remote assistance expired");
            self.alert("ended", &a.saved, Some("expired"));
        }
    }

    fn disable(&self) -> Result<String, String> {
        let Some(a) = lock(&self.active).take() else {
            return Ok(json!({ "active": false, "ended": false }).to_string());
        };
        let _ = a.cancel.send(true);
        let _ = std::fs::remove_file(&self.parts.state_file);
        tracing::info!(session = %a.saved.session, "remote assistance disabled");
        self.alert("ended", &a.saved, Some("disabled"));
        Ok(json!({ "active": false, "ended": true, "session": a.saved.session }).to_string())
    }

    /// The active session, if any.
    pub fn status(&self) -> Option<AssistStatus> {
        let active = lock(&self.active);
        let a = active.as_ref()?;
        let c = &a.counters;
        Some(AssistStatus {
            session: a.saved.session.clone(),
            admin: a.saved.admin,
            started_s: a.saved.started,
            expires_s: a.saved.expires,
            requested_by: a.saved.requested_by.clone(),
            connections: c.connections.load(Ordering::Relaxed),
            open: c.open.load(Ordering::Relaxed),
            // This end writes to the service what it receives, and sends what it reads.
            bytes_to_service: c.traffic.received.load(Ordering::Relaxed),
            bytes_from_service: c.traffic.sent.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            service: a.service.to_string(),
        })
    }

    /// Whether `authorization` is the admin token of the active admin session (compared in
    /// time independent of where it differs).
    pub fn admits(&self, authorization: &[u8]) -> bool {
        let active = lock(&self.active);
        let Some(a) = active.as_ref() else {
            return false;
        };
        a.saved.admin
            && a.saved.expires > now_secs()
            && flowmesh_proto::auth::same(authorization, a.bearer.as_bytes())
    }
}

/// A session as the CLI prints it.
pub fn status_json(s: &AssistStatus) -> serde_json::Value {
    json!({
        "active": true,
        "session": s.session,
        "admin": s.admin,
        "requested_by": s.requested_by,
        "since": rfc3339_secs(s.started_s),
        "until": rfc3339_secs(s.expires_s),
        "service": s.service,
        "connections": s.connections,
        "open": s.open,
        "bytes_to_service": s.bytes_to_service,
        "bytes_from_service": s.bytes_from_service,
        "refused": s.refused,
    })
}
