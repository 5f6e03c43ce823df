//! Remote actions: a user's CLI asks one of its instances to do something (restart the
//! process or its capture, reload the policy, report its configuration). The request travels on
//! `flowmesh.control.<instance>` inside the user's account, sealed to the user's key; the
//! answer comes back sealed the same way. Other users cannot reach the subject (the broker
//! keeps accounts apart) and the manager holds no user key, so neither can ask — and a request
//! sealed by any key but the user's own is refused unanswered.

use std::time::Duration;

use crate::v1::{Control, ControlReply};
use flowmesh_link::async_nats::Client;
use flowmesh_link::subject::Channel;
use flowmesh_link::{Identity, Opener, Sealer};
use futures::StreamExt;
use prost::Message;

/// The subject answers are sealed to (reply subjects are random inboxes).
pub fn reply_subject(instance: &str) -> String {
    format!(
        "{}.reply",
        Channel::Control.subject(instance).unwrap_or_default()
    )
}

/// Actions an instance may be asked to do.
pub const ACTIONS: &[&str] = &[
    "restart",
    "update",
    "version",
    "restart_capture",
    "reload_policy",
    "report_config",
    "assist_enable",
    "assist_disable",
    "assist_status",
];

/// Set once a `restart` was answered: the daemon stops as on SIGTERM, then the command that
/// ran it starts the same program again in the same process ([`restart_requested`]).
static RESTART: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether a remote `restart` was asked and answered: the daemon has stopped for it and should
/// be started again.
pub fn restart_requested() -> bool {
    RESTART.load(std::sync::atomic::Ordering::SeqCst)
}

/// The release an `update` installed, which the restart starts (on trial) instead of the
/// binary that ran.
static STAGED: std::sync::Mutex<Option<flowmesh_update::Staged>> = std::sync::Mutex::new(None);

/// The release installed by an answered `update`, if any.
pub fn staged_update() -> Option<flowmesh_update::Staged> {
    STAGED.lock().ok().and_then(|s| s.clone())
}

/// `update`: the release installed (and the restart due), or why not — a refusal is also
/// recorded for the heartbeats, so the user's collector raises an alert.
async fn update(
    client: &Client,
    config: &flowmesh_update::UpdateConfig,
    args: &str,
) -> Result<flowmesh_update::Staged, String> {
    let staged = flowmesh_update::prepare(client, config, args).await;
    if let Err(reason) = &staged {
        tracing::error!(%reason, "update refused");
        let version = serde_json::from_str::<flowmesh_update::UpdateArgs>(args)
            .ok()
            .and_then(|a| a.version)
            .unwrap_or_default();
        flowmesh_update::record_failure(flowmesh_update::trial::Failure {
            version,
            reason: reason.clone(),
            time_us: flowmesh_link::envelope::now_micros() as i64,
        });
    }
    staged
}

/// A random id of this program image, drawn once: it changes when the process restarts (even
/// in place, by exec), so a requester can tell a restarted instance from one that never went.
fn image_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let mut id = [0u8; 8];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut id);
        hex::encode(id)
    })
}

/// `version`: what runs, as JSON.
fn version_json() -> String {
    serde_json::json!({
        "version": flowmesh_update::stamp::current(),
        "platform": flowmesh_update::manifest::platform(),
        "image": image_id(),
    })
    .to_string()
}

/// Answers `action` with this, from a daemon's handler.
pub fn answer(ok: Result<String, String>) -> ControlReply {
    match ok {
        Ok(json) => ControlReply {
            ok: true,
            json,
            ..Default::default()
        },
        Err(error) => ControlReply {
            ok: false,
            error,
            ..Default::default()
        },
    }
}

/// Serves remote actions for `instance` until the subscription ends: each request that opens
/// and was sealed by the user's own key goes to `handle`, and its answer back, sealed.
/// `opener` should keep its replay window in a journal, so a request captured before a restart
/// is refused after it. `restart`, `update` and `version` are answered here: once a restart's
/// (or a successful update's) answer is sent, `stop` is set (the daemon stops cleanly, as on
/// SIGTERM) and [`restart_requested`] becomes true. Once subscribed, a new version on trial
/// reports healthy (it can be reached, and updated again).
pub async fn serve<F, Fut>(
    client: Client,
    identity: Identity,
    opener: std::sync::Arc<Opener>,
    (instance, updates): (String, flowmesh_update::UpdateConfig),
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: F,
) -> Result<(), String>
where
    F: Fn(Control) -> Fut,
    Fut: std::future::Future<Output = ControlReply>,
{
    let subject = Channel::Control
        .subject(&instance)
        .map_err(|e| e.to_string())?;
    let mut sub = client
        .subscribe(subject.clone())
        .await
        .map_err(|e| e.to_string())?;
    image_id();
    if client.flush().await.is_ok() {
        flowmesh_update::trial::confirm_healthy();
    }
    let sealer = Sealer::new(&identity, identity.public());
    let reply_to = reply_subject(&instance);
    while let Some(m) = sub.next().await {
        let request = match opener.open(&subject, &m.payload) {
            Ok(o) if o.sender == identity.public() => {
                Control::decode(o.payload.as_slice()).map_err(|e| e.to_string())
            }
            Ok(_) => Err("not sealed by this user".to_string()),
            Err(e) => Err(e.to_string()),
        };
        let request = match request {
            Ok(r) => r,
            Err(why) => {
                tracing::warn!(%subject, reason = %why, "a remote action refused");
                continue;
            }
        };
        let request_id = request.request_id.clone();
        let mut restart = request.action == "restart";
        let mut reply = if restart {
            tracing::warn!(from = %request.from, "remote action: restart; stopping cleanly, then starting again");
            answer(Ok(String::new()))
        } else if request.action == "update" {
            tracing::warn!(from = %request.from, args = %request.args, "remote action: update");
            match update(&client, &updates, &request.args).await {
                Ok(staged) => {
                    let json = serde_json::json!({"from": staged.from, "to": staged.to});
                    if let Ok(mut s) = STAGED.lock() {
                        *s = Some(staged);
                    }
                    restart = true;
                    answer(Ok(json.to_string()))
                }
                Err(e) => answer(Err(e)),
            }
        } else if request.action == "version" {
            answer(Ok(version_json()))
        } else if ACTIONS.contains(&request.action.as_str()) {
            tracing::info!(action = %request.action, from = %request.from, "remote action");
            handle(request).await
        } else {
            answer(Err(format!(
                "unknown action {:?} (one of {})",
                request.action,
                ACTIONS.join(", ")
            )))
        };
        reply.request_id = request_id;
        if let (Some(to), Ok(sealed)) = (m.reply, sealer.seal(&reply_to, &reply.encode_to_vec())) {
            let _ = client.publish(to, sealed.into()).await;
        }
        if restart {
            // The answer first (it says the restart is under way), then the clean stop.
            let _ = tokio::time::timeout(Duration::from_secs(5), client.flush()).await;
            RESTART.store(true, std::sync::atomic::Ordering::SeqCst);
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
            return Ok(());
        }
    }
    Ok(())
}

/// What a remote action asks: the action, its arguments (JSON, or empty) and the name the
/// requester gives.
pub struct Ask<'a> {
    /// One of [`ACTIONS`].
    pub action: &'a str,
    /// Its arguments.
    pub args: &'a str,
    /// Who asks (shown by the instance, not trusted).
    pub from: &'a str,
}

/// Asks `instance` to do `ask`; its answer, verified as the user's.
pub async fn request(
    client: &Client,
    identity: &Identity,
    instance: &str,
    ask: Ask<'_>,
) -> Result<ControlReply, String> {
    let subject = Channel::Control
        .subject(instance)
        .map_err(|e| e.to_string())?;
    let mut id = [0u8; 8];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut id);
    let request_id = hex::encode(id);
    let body = Control {
        action: ask.action.to_string(),
        request_id: request_id.clone(),
        args: ask.args.to_string(),
        from: ask.from.to_string(),
    }
    .encode_to_vec();
    let sealed = Sealer::new(identity, identity.public())
        .seal(&subject, &body)
        .map_err(|e| e.to_string())?;
    let answer = tokio::time::timeout(
        Duration::from_secs(10),
        client.request(subject, sealed.into()),
    )
    .await
    .map_err(|_| format!("{instance} did not answer in 10 s"))?
    .map_err(|e| format!("{instance}: {e} (is it running and connected?)"))?;
    let opened = Opener::new(identity)
        .open(&reply_subject(instance), &answer.payload)
        .map_err(|e| format!("the answer does not open: {e}"))?;
    let reply = ControlReply::decode(opened.payload.as_slice()).map_err(|e| e.to_string())?;
    if reply.request_id != request_id {
        return Err("the answer is not to this request".into());
    }
    Ok(reply)
}
