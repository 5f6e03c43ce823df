//! Sign-up and sign-in. The browser sends only public keys: its user key at sign-up, and at
//! each sign-in an nkey it generated, inside an envelope sealed with the user's key — opening
//! it proves the browser holds that key. The answer is a NATS user JWT in the console role for
//! that nkey, expiring after `session_secs`; the JWT is no secret (useless without the nkey's
//! seed, which never leaves the browser).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use flowmesh_link::PublicKey;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Console, Peer, Reply, refuse};
use crate::broker::{self, AccountRecord, AccountsLock, Authority, Enrollment, Role, Topology};

/// The subject a sign-in request is sealed for (bound into the envelope's AAD): a sealed
/// message meant for anything else does not open as a sign-in.
pub const LOGIN_SUBJECT: &str = "flowmesh.console.login";

/// `wss://` URLs of every node, region by region, from the cluster's topology.
fn websocket_urls(cluster: &std::path::Path) -> Vec<Value> {
    let Ok(t) = Topology::load(&cluster.join("topology.toml")) else {
        return Vec::new();
    };
    t.nodes()
        .iter()
        .filter_map(|n| {
            let port = n.ports.websocket?;
            Some(json!({ "region": n.region, "node": n.name, "url": format!("wss://{}:{port}", t.host) }))
        })
        .collect()
}

/// What the page needs before anything else: the cloud's key, the nodes, whether sign-up is on.
pub(super) async fn config(State(c): State<Arc<Console>>) -> Json<Value> {
    Json(json!({
        "cloud_public_key": c.manager.public_key().to_hex(),
        "login_subject": LOGIN_SUBJECT,
        "nodes": websocket_urls(c.manager.cluster_dir()),
        "signup": c.config.signup,
    }))
}

#[derive(Deserialize)]
pub(super) struct Signup {
    name: String,
    public_key: String,
}

/// Enrolls a new user by name and public key (a new NATS account, pushed to the nodes).
pub(super) async fn signup(
    State(c): State<Arc<Console>>,
    axum::Extension(Peer(ip)): axum::Extension<Peer>,
    Json(s): Json<Signup>,
) -> Reply {
    if !c.signup_limit.allow(ip) {
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "too many sign-ups from this address: try again in an hour",
        );
    }
    if !c.config.signup {
        return refuse(
            StatusCode::FORBIDDEN,
            "sign-up is off here: ask the operator to enroll you (flowmesh enroll)",
        );
    }
    let key = match PublicKey::from_hex(&s.public_key) {
        Ok(k) => k,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("public_key: {e}")),
    };
    if let Err(e) = broker::accounts::check_user_name(&s.name) {
        return refuse(StatusCode::BAD_REQUEST, e);
    }
    // One sign-up at a time: two browsers racing for one name must not both get it.
    let cluster = c.manager.cluster_dir();
    let held = match AccountsLock::acquire_async(cluster).await {
        Ok(h) => h,
        Err(e) => return refuse(StatusCode::SERVICE_UNAVAILABLE, e),
    };
    match AccountRecord::all_users(cluster) {
        Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, e),
        Ok(users) => {
            let hex = key.to_hex();
            if let Some(u) = users.iter().find(|u| u.user_id.as_deref() == Some(&hex)) {
                if u.name == s.name {
                    // The same user again (a reload during sign-up): nothing to do.
                    return (
                        StatusCode::OK,
                        Json(json!({ "user": s.name, "new": false })),
                    );
                }
                return refuse(StatusCode::CONFLICT, "this key is already enrolled");
            }
            if users.iter().any(|u| u.name == s.name) {
                return refuse(
                    StatusCode::CONFLICT,
                    format!("the name {} is taken: choose another", s.name),
                );
            }
        }
    }
    let enrolled = Authority::load(cluster).and_then(|a| {
        broker::enroll(
            &a,
            &held,
            &Enrollment {
                user: s.name.clone(),
                public_key: Some(key.to_hex()),
                instances: Vec::new(),
                expires_in: None,
            },
        )
    });
    let enrolled = match enrolled {
        Ok(e) => e,
        Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    if let Some(jwt) = &enrolled.account_jwt
        && let Err(e) = broker::push(&c.system, &held, jwt).await
    {
        tracing::warn!(user = %s.name, error = %e, "console sign-up: account not pushed yet");
        return refuse(StatusCode::SERVICE_UNAVAILABLE, e);
    }
    c.manager.reload_users();
    tracing::info!(user = %s.name, key = %key.short(), "console sign-up");
    (
        StatusCode::CREATED,
        Json(json!({ "user": s.name, "new": true })),
    )
}

#[derive(Deserialize)]
struct Login {
    /// The nkey the browser generated (public, `U…`).
    user_nkey: String,
}

/// A sealed sign-in request → console credentials (a JWT) for the browser's nkey.
pub(super) async fn login(
    State(c): State<Arc<Console>>,
    axum::Extension(peer): axum::Extension<Peer>,
    body: Bytes,
) -> Reply {
    let (user, login): (String, Login) =
        match c.sealed_request(peer, LOGIN_SUBJECT, &body, "sign-in") {
            Ok(r) => r,
            Err(refused) => return refused,
        };
    let cluster = c.manager.cluster_dir();
    let mut tag = [0u8; 4];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut tag);
    let name = format!("console-{}", hex::encode(tag));
    let expires = broker::authority::now_secs().saturating_add(c.config.session_secs as i64);
    let jwt = AccountRecord::load(cluster, &user).and_then(|record| {
        Authority::load(cluster)?.session_jwt(
            &record,
            &name,
            Role::Console,
            &login.user_nkey,
            expires,
        )
    });
    match jwt {
        Ok(jwt) => {
            tracing::info!(%user, session = %name, "console sign-in");
            (
                StatusCode::OK,
                Json(json!({
                    "user": user,
                    "name": name,
                    "jwt": jwt,
                    "inbox_prefix": flowmesh_link::connect::inbox_prefix(&name),
                    "expires": expires,
                })),
            )
        }
        Err(e) => refuse(StatusCode::BAD_REQUEST, e),
    }
}
