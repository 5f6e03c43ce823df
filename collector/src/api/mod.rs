//! The collector's gRPC API (tonic): instances and their status, stored alerts, live alerts and
//! status changes, policy edits and stored flows. The `flowmesh instances`, `alerts`, `policy`
//! and `flows-search` commands use it. Every call carries the bearer token of the access file ([`access`]).

pub mod convert;
pub mod flows;
pub mod nats;

/// The access file and `[api]` settings (shared with the manager).
pub use flowmesh_link::access;

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use flowmesh_link::async_nats;
use flowmesh_link::{Identity, Opener};
use flowmesh_proto::v1::{self as pb, collector_server};
use futures::Stream;
use tonic::{Request, Response};

use crate::policy::edit::{Applied, Edit, EditError, PolicyEditError};
use crate::store::{AlertQuery, Store};

/// What the API serves: the running collector (`daemon::Collector`) implements it, so the API
/// does not import the daemon that starts it.
#[tonic::async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Every instance's status, as `flowmesh instances` shows it.
    fn instances(&self) -> Vec<pb::Status>;
    /// The alert store.
    fn store(&self) -> &Store;
    /// The broker connection (live alerts and changes are followed through it).
    fn client(&self) -> async_nats::Client;
    /// The user's identity (opens what is followed).
    fn identity(&self) -> &Identity;
    /// The policy file's text.
    fn policy_text(&self) -> Result<String, String>;
    /// Applies an edit to the policy file and the running engines.
    async fn edit_policy(&self, edit: &Edit) -> Result<Applied, PolicyEditError>;
    /// The collector's name (its subjects).
    fn name(&self) -> &str;
    /// Devices seen and not authorized: `(instance, MAC, last IP, last seen µs)`.
    fn unauthorized_devices(&self, limit: usize) -> Vec<(String, String, Option<String>, i64)>;
    /// The opener of requests: ±10 minutes, each id once, across restarts.
    fn opener(&self) -> Arc<Opener>;
    /// The remote-assistance session, if one is active.
    fn assist_status(&self) -> Option<pb::AssistStatus>;
    /// Whether an `authorization` header other than the access file's token is admitted:
    /// the admin token of an active remote-assistance session with admin access.
    fn admits(&self, authorization: &[u8]) -> bool;
}

/// The API's errors as gRPC statuses.
fn internal(e: impl std::fmt::Display) -> tonic::Status {
    tonic::Status::internal(e.to_string())
}

struct Api {
    c: Arc<dyn Backend>,
}

type AlertStream = Pin<Box<dyn Stream<Item = Result<pb::Alert, tonic::Status>> + Send>>;

/// Whether an alert passes a type/instance filter.
fn wanted(v: &serde_json::Value, kind: Option<&str>, instance: Option<&str>) -> bool {
    let field = |k: &str| v.get(k).and_then(|x| x.as_str());
    kind.is_none_or(|k| field("type") == Some(k))
        && instance.is_none_or(|i| field("instance") == Some(i))
}

#[tonic::async_trait]
impl collector_server::Collector for Api {
    async fn list_instances(
        &self,
        _: Request<pb::ListInstancesRequest>,
    ) -> Result<Response<pb::ListInstancesResponse>, tonic::Status> {
        Ok(Response::new(pb::ListInstancesResponse {
            instances: self.c.instances(),
            assist: self.c.assist_status(),
        }))
    }

    async fn query_alerts(
        &self,
        r: Request<pb::QueryAlertsRequest>,
    ) -> Result<Response<pb::QueryAlertsResponse>, tonic::Status> {
        let r = r.into_inner();
        let q = AlertQuery {
            kind: r.r#type,
            instance: r.instance,
            from_micros: r.from_us,
            to_micros: r.to_us,
            limit: r.limit as usize,
            newest: true,
        };
        let c = self.c.clone();
        let found = tokio::task::spawn_blocking(move || c.store().alerts(&q))
            .await
            .map_err(internal)?
            .map_err(internal)?;
        Ok(Response::new(pb::QueryAlertsResponse {
            alerts: found.iter().map(convert::alert_to_proto).collect(),
        }))
    }

    type WatchStream = AlertStream;

    async fn watch(
        &self,
        r: Request<pb::WatchRequest>,
    ) -> Result<Response<AlertStream>, tonic::Status> {
        let r = r.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<pb::Alert, tonic::Status>>(256);
        let events = crate::watch::subscribe(&self.c.client())
            .await
            .map_err(tonic::Status::unavailable)?;
        let opener = Opener::new(self.c.identity());
        tokio::spawn(async move {
            let closed = tx.clone();
            let follow = crate::watch::follow(events, &opener, |v| {
                if !wanted(&v, r.r#type.as_deref(), r.instance.as_deref()) {
                    return true;
                }
                // A reader too slow for 256 events loses the newest, not the collector's time.
                !matches!(
                    tx.try_send(Ok(convert::alert_to_proto(&v))),
                    Err(tokio::sync::mpsc::error::TrySendError::Closed(_))
                )
            });
            tokio::select! {
                r = follow => if let Err(e) = r {
                    let _ = closed.send(Err(tonic::Status::unavailable(e))).await;
                },
                _ = closed.closed() => {}
            }
        });
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_policy(
        &self,
        _: Request<pb::GetPolicyRequest>,
    ) -> Result<Response<pb::PolicyView>, tonic::Status> {
        let text = self.c.policy_text().map_err(internal)?;
        Ok(Response::new(convert::policy_view(&text)))
    }

    async fn edit_policy(
        &self,
        r: Request<pb::PolicyEdit>,
    ) -> Result<Response<pb::EditPolicyResponse>, tonic::Status> {
        let edit =
            convert::edit_from_proto(r.into_inner()).map_err(tonic::Status::invalid_argument)?;
        let response = edit_response(self.c.edit_policy(&edit).await).map_err(internal)?;
        Ok(Response::new(response))
    }

    async fn search_flows(
        &self,
        r: Request<pb::SearchFlowsRequest>,
    ) -> Result<Response<pb::SearchFlowsResponse>, tonic::Status> {
        let params = flows::SearchParams::from(r.into_inner());
        let c = self.c.clone();
        let found = tokio::task::spawn_blocking(move || params.run(c.store(), flows::MAX_FLOWS))
            .await
            .map_err(internal)?
            .map_err(|e| match e {
                Ok(why) => tonic::Status::invalid_argument(why),
                Err(e) => internal(e),
            })?;
        Ok(Response::new(flows::to_proto(found)))
    }
}

/// What an edit did, as the API answers it (gRPC, and the console's requests): applied with
/// the new policy and its warnings, or refused with the problems `policy validate` gives.
/// `Err` only when the policy file could not be read or written.
pub(crate) fn edit_response(
    result: Result<Applied, PolicyEditError>,
) -> Result<pb::EditPolicyResponse, String> {
    let refused = |errors: Vec<pb::PolicyProblem>, warnings| pb::EditPolicyResponse {
        applied: false,
        errors,
        warnings,
        policy: None,
    };
    Ok(match result {
        Ok(applied) => pb::EditPolicyResponse {
            applied: true,
            errors: vec![],
            warnings: convert::problems(&applied.warnings),
            policy: Some(convert::policy_view(&applied.text)),
        },
        Err(PolicyEditError::Edit(e)) => match e {
            EditError::Invalid(m) | EditError::Toml(m) => refused(
                vec![pb::PolicyProblem {
                    line: 0,
                    message: m,
                }],
                vec![],
            ),
            EditError::Rules(p) => refused(convert::problems(&p), vec![]),
            EditError::Policy(r) => {
                refused(convert::problems(&r.errors), convert::problems(&r.warnings))
            }
        },
        Err(PolicyEditError::Io(e)) => return Err(e),
    })
}

/// Serves the collector's API (see [`flowmesh_proto::serve::with_access`]).
pub async fn serve(
    c: Arc<dyn Backend>,
    api: &flowmesh_link::access::ApiConfig,
    addr: SocketAddr,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, access::Published), String> {
    flowmesh_proto::serve::with_access(api, addr, stop, |check| {
        let admits = {
            let c = c.clone();
            Arc::new(move |h: &[u8]| c.admits(h))
        };
        tonic::service::Routes::new(collector_server::CollectorServer::with_interceptor(
            Api { c },
            check.or(admits),
        ))
    })
    .await
}
