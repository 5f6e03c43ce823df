//! What a signed-in console asks the manager, each request sealed with the user's key to the
//! cloud (subject [`CALL_SUBJECT`]): opening it proves the user, and the journaled opener
//! accepts each once. JSON in (`{"op": ...}`), JSON out.
//!
//! - `instances`: where each of the user's instances is connected (region, node), from the
//!   registry — metadata the broker gives the manager, never what the instances say;
//! - `add_instance` (`instance`, `role`, `user_nkey`): credentials for a new instance, for an
//!   nkey the browser made (the seed stays there): its JWT, the nodes' client URLs and the CA,
//!   from which the page writes a ready config;
//! - `revoke` (`instance`): the instance's key joins the account's revocations, pushed to the
//!   nodes at once (its connections close, it cannot log in again); the answer says which
//!   nodes stored it (`pushed`, and `missing`: those down, which get it when they are back).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use flowmesh_link::subject::validate_token;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Console, Peer, Reply, refuse};
use crate::broker::{self, AccountRecord, AccountsLock, Authority, Role};

/// The subject console calls are sealed for.
pub const CALL_SUBJECT: &str = "flowmesh.console.call";

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
enum Call {
    Instances,
    AddInstance {
        instance: String,
        role: String,
        user_nkey: String,
    },
    Revoke {
        instance: String,
    },
}

/// `POST /api/call`: a sealed request from a signed-in user.
pub(super) async fn call(
    State(c): State<Arc<Console>>,
    axum::Extension(peer): axum::Extension<Peer>,
    body: Bytes,
) -> Reply {
    let (user, call): (String, Call) = match c.sealed_request(peer, CALL_SUBJECT, &body, "call") {
        Ok(r) => r,
        Err(refused) => return refused,
    };
    match call {
        Call::Instances => {
            let list: Vec<Value> = c
                .manager
                .instances_of(&user)
                .into_iter()
                .map(|i| {
                    json!({
                        "instance": i.instance, "role": i.role, "online": i.online,
                        "region": i.region, "node": i.node, "last_seen_us": i.last_seen_us,
                    })
                })
                .collect();
            (StatusCode::OK, Json(Value::Array(list)))
        }
        Call::AddInstance {
            instance,
            role,
            user_nkey,
        } => add_instance(&c, &user, &instance, &role, &user_nkey).await,
        Call::Revoke { instance } => revoke(&c, &user, &instance).await,
    }
}

async fn add_instance(
    c: &Console,
    user: &str,
    instance: &str,
    role: &str,
    user_nkey: &str,
) -> Reply {
    let role = match Role::parse(role) {
        Some(r @ (Role::Sensor | Role::Collector | Role::Watch)) => r,
        _ => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("role {role:?}: sensor, collector or watch"),
            );
        }
    };
    if let Err(e) = validate_token(instance) {
        return refuse(StatusCode::BAD_REQUEST, format!("instance name: {e}"));
    }
    let cluster = c.manager.cluster_dir();
    // One change to an account record at a time (sign-ups, revocations, the command line).
    let _held = match AccountsLock::acquire_async(cluster).await {
        Ok(h) => h,
        Err(e) => return refuse(StatusCode::SERVICE_UNAVAILABLE, e),
    };
    let issued = (|| {
        let authority = Authority::load(cluster)?;
        let mut record = AccountRecord::load(cluster, user)?;
        if record.instances.contains_key(instance) {
            return Err(broker::invalid(format!(
                "{user} already has an instance {instance}: revoke it first, or choose another name"
            )));
        }
        let jwt = authority.issue_for_key(&mut record, instance, role, user_nkey, None)?;
        record.save(cluster, &AccountRecord::jwt(cluster, user)?)?;
        let nodes = broker::read_summary(cluster)?;
        Ok::<_, broker::BrokerError>((jwt, nodes))
    })();
    let (jwt, nodes) = match issued {
        Ok(i) => i,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e),
    };
    let ca = std::fs::read_to_string(cluster.join("ca.pem")).unwrap_or_default();
    c.manager.reload_users();
    tracing::info!(%user, %instance, %role, "console: instance added");
    let urls: Vec<Value> = nodes
        .iter()
        .map(|n| json!({ "region": n.region, "url": n.client_url }))
        .collect();
    (
        StatusCode::CREATED,
        Json(
            json!({ "instance": instance, "role": role.name(), "jwt": jwt, "nodes": urls, "ca_pem": ca }),
        ),
    )
}

async fn revoke(c: &Console, user: &str, instance: &str) -> Reply {
    let cluster = c.manager.cluster_dir();
    let held = match AccountsLock::acquire_async(cluster).await {
        Ok(h) => h,
        Err(e) => return refuse(StatusCode::SERVICE_UNAVAILABLE, e),
    };
    let account_jwt =
        Authority::load(cluster).and_then(|a| broker::revoke(&a, &held, user, instance));
    let account_jwt = match account_jwt {
        Ok(j) => j,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e),
    };
    let pushed = match broker::push_change(&c.system, &held, &account_jwt).await {
        Ok(p) => p,
        Err(e) => return refuse(StatusCode::SERVICE_UNAVAILABLE, e),
    };
    c.manager.reload_users();
    tracing::info!(%user, %instance, %pushed, "console: instance revoked");
    // Where the revocation landed: a node that did not answer (down) refuses the instance once
    // it is back, when the manager pushes to it again.
    (
        StatusCode::OK,
        Json(json!({
            "revoked": instance,
            "pushed": pushed.to_string(),
            "missing": pushed.missing,
        })),
    )
}
