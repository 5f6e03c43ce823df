//! What each role may do, as user-JWT permissions the broker enforces (issue 13, groundwork:
//! not yet used by enrollment). A sensor publishes its own flows and status and the cloud
//! inbox, answers its own control subject, and has no JetStream API at all (publishing into
//! `FLOWS` needs none); a collector also owns the streams, its durable consumers and the
//! status bucket — but cannot delete a stream; a watch client reads alerts and changes.

use super::jwt::Permissions;

/// The role an instance's credentials carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Captures and publishes.
    Sensor,
    /// Consumes, judges, stores, announces.
    Collector,
    /// Follows alerts and status changes (CLI, console).
    Watch,
}

/// The JetStream API subjects a collector needs on a stream it owns (or reads): info, create
/// and update, its durable consumers, fetching and acknowledging — never delete or purge.
fn owned_stream(stream: &str) -> Vec<String> {
    [
        format!("$JS.API.STREAM.INFO.{stream}"),
        format!("$JS.API.STREAM.CREATE.{stream}"),
        format!("$JS.API.STREAM.UPDATE.{stream}"),
        format!("$JS.API.STREAM.MSG.GET.{stream}"),
        format!("$JS.API.DIRECT.GET.{stream}.>"),
        format!("$JS.API.CONSUMER.CREATE.{stream}.>"),
        format!("$JS.API.CONSUMER.CREATE.{stream}"),
        format!("$JS.API.CONSUMER.DURABLE.CREATE.{stream}.>"),
        format!("$JS.API.CONSUMER.INFO.{stream}.>"),
        format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.>"),
        format!("$JS.ACK.{stream}.>"),
    ]
    .into()
}

/// The permissions of `instance` in `role`.
pub fn permissions(role: Role, instance: &str) -> Permissions {
    let own = |channel: &str| format!("flowmesh.{channel}.{instance}");
    match role {
        Role::Sensor => Permissions {
            publish: vec![own("flows"), own("status"), "flowmesh.cloud.inbox".into()],
            subscribe: vec![own("control"), "_INBOX.>".into()],
            allow_responses: true,
        },
        Role::Collector => {
            let mut publish = vec![
                own("alerts"),
                "flowmesh.changes.*".into(),
                "flowmesh.control.*".into(),
                "flowmesh.cloud.inbox".into(),
                "$JS.API.INFO".into(),
                "$KV.status.>".into(),
            ];
            for stream in ["FLOWS", "ALERTS", "KV_status"] {
                publish.extend(owned_stream(stream));
            }
            Permissions {
                publish,
                subscribe: vec![
                    "flowmesh.status.*".into(),
                    own("control"),
                    own("api"),
                    "flowmesh.cloud.broadcast.>".into(),
                    "_INBOX.>".into(),
                ],
                allow_responses: true,
            }
        }
        Role::Watch => Permissions {
            publish: vec!["flowmesh.control.*".into(), "flowmesh.api.*".into()],
            subscribe: vec![
                "flowmesh.alerts.*".into(),
                "flowmesh.changes.*".into(),
                "_INBOX.>".into(),
            ],
            allow_responses: false,
        },
    }
}
