//! What each role may do, as user-JWT permissions the broker enforces.
//!
//! | role      | publishes                                                   | subscribes                         |
//! |-----------|-------------------------------------------------------------|------------------------------------|
//! | sensor    | its own `flows`, `status`, `hello`; the cloud inbox and release service | its own `control`; its own inboxes |
//! | collector | its own `alerts`, `hello`; `changes.*`, `control.*`; the cloud inbox and release service; JetStream API on `FLOWS`, `ALERTS`, `KV_status` (no delete, no purge) | `status.*`, `alerts.*`, `changes.*`, `hello.*`, its own `control` and `api`, `api`, its broadcast, its own inboxes |
//! | watch     | JetStream reads of the `status` bucket                       | `alerts.*`, `changes.*`, its own inboxes |
//! | console   | as watch, requests to collectors (`api`, `api.*`), remote actions (`control.*`); short-lived | as watch, and `status.*` (heartbeats) |
//!
//! A sensor has no JetStream API at all: publishing into `FLOWS` needs none (the stream's ack
//! comes to its inbox). The collector creates the streams, its durable consumer and the bucket
//! — decided once, so no other client needs that right. Inboxes are per instance
//! (`_INBOX_<instance>.>`, see `link::connect`), so no client reads another's replies.

use super::jwt::Permissions;

/// The role an instance's credentials carry.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Captures and publishes.
    Sensor,
    /// Consumes, judges, stores, announces, asks instances to act.
    Collector,
    /// Follows alerts and status changes (CLI).
    Watch,
    /// A browser signed in to the web console: what watch reads, and heartbeats; its
    /// credentials are issued at each sign-in and expire within hours.
    Console,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [Role::Sensor, Role::Collector, Role::Watch, Role::Console];

    /// Its name: `sensor`, `collector` or `watch`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Sensor => "sensor",
            Role::Collector => "collector",
            Role::Watch => "watch",
            Role::Console => "console",
        }
    }

    /// The role named `name`.
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == name)
    }

    /// The tag its user JWT carries (`role:sensor`), which the broker reports in connection
    /// events: the manager tells instances from watch clients by it.
    pub fn tag(self) -> String {
        format!("role:{}", self.name())
    }

    /// The role a list of JWT tags names.
    pub fn from_tags<'a>(tags: impl IntoIterator<Item = &'a str>) -> Option<Role> {
        tags.into_iter()
            .find_map(|t| t.strip_prefix("role:").and_then(Role::parse))
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Role::parse(s)
            .ok_or_else(|| format!("{s:?} is not a role: sensor, collector, watch or console"))
    }
}

/// The tag naming the instance in its user JWT (`instance:eu-sensor`): the broker reports a
/// connection's tags, but the account's name, not the user's, as its `name_tag`.
pub fn instance_tag(instance: &str) -> String {
    format!("instance:{instance}")
}

/// The instance a list of JWT tags names.
pub fn instance_from_tags<'a>(tags: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    tags.into_iter().find_map(|t| t.strip_prefix("instance:"))
}

/// Reading a stream or bucket: its info and single messages.
fn read_stream(stream: &str) -> Vec<String> {
    vec![
        format!("$JS.API.STREAM.INFO.{stream}"),
        format!("$JS.API.STREAM.MSG.GET.{stream}"),
        format!("$JS.API.DIRECT.GET.{stream}"),
        format!("$JS.API.DIRECT.GET.{stream}.>"),
    ]
}

/// Following a stream with ephemeral consumers (a bucket's watch), with flow control.
fn follow_stream(stream: &str) -> Vec<String> {
    vec![
        format!("$JS.API.CONSUMER.CREATE.{stream}"),
        format!("$JS.API.CONSUMER.CREATE.{stream}.>"),
        format!("$JS.API.CONSUMER.INFO.{stream}.>"),
        format!("$JS.FC.{stream}.>"),
    ]
}

/// The JetStream API subjects a collector needs on a stream it owns: create and update, its
/// durable consumers, fetching and acknowledging — never delete or purge.
fn owned_stream(stream: &str) -> Vec<String> {
    let mut s = read_stream(stream);
    s.extend(follow_stream(stream));
    s.extend([
        format!("$JS.API.STREAM.CREATE.{stream}"),
        format!("$JS.API.STREAM.UPDATE.{stream}"),
        format!("$JS.API.CONSUMER.DURABLE.CREATE.{stream}.>"),
        format!("$JS.API.CONSUMER.NAMES.{stream}"),
        format!("$JS.API.CONSUMER.LIST.{stream}"),
        format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.>"),
        format!("$JS.ACK.{stream}.>"),
    ]);
    s
}

/// The permissions of `instance` in `role`.
pub fn permissions(role: Role, instance: &str) -> Permissions {
    let own = |channel: &str| format!("flowmesh.{channel}.{instance}");
    let inbox = format!("{}.>", flowmesh_link::connect::inbox_prefix(instance));
    match role {
        Role::Sensor => Permissions {
            publish: vec![
                own("flows"),
                own("status"),
                own("hello"),
                "flowmesh.cloud.inbox".into(),
                "flowmesh.cloud.release".into(),
            ],
            subscribe: vec![own("control"), inbox],
            allow_responses: true,
        },
        Role::Collector => {
            let mut publish = vec![
                own("alerts"),
                own("hello"),
                "flowmesh.changes.*".into(),
                "flowmesh.control.*".into(),
                "flowmesh.cloud.inbox".into(),
                "flowmesh.cloud.release".into(),
                "$JS.API.INFO".into(),
                "$KV.status.>".into(),
                "flowmesh.assist.*.*.s".into(),
            ];
            for stream in ["FLOWS", "ALERTS", "KV_status"] {
                publish.extend(owned_stream(stream));
            }
            Permissions {
                publish,
                // Alerts and changes: its API follows every collector's (`alerts --follow`).
                subscribe: vec![
                    "flowmesh.status.*".into(),
                    "flowmesh.alerts.*".into(),
                    "flowmesh.changes.*".into(),
                    "flowmesh.hello.*".into(),
                    own("control"),
                    // Remote assistance: the support side's frames of any session the user
                    // opens on this collector (ciphertext; the session's secret opens them).
                    "flowmesh.assist.*.*.i".into(),
                    // The web console's requests: to it by name, and to every collector.
                    own("api"),
                    "flowmesh.api".into(),
                    "flowmesh.cloud.broadcast.>".into(),
                    inbox,
                ],
                allow_responses: true,
            }
        }
        Role::Watch | Role::Console => {
            let mut publish = vec!["$JS.API.INFO".into()];
            if role == Role::Console {
                // Requests to the user's collectors (policies, stored alerts) and remote
                // actions to its instances, all sealed with the user's key.
                publish.extend([
                    "flowmesh.api".into(),
                    "flowmesh.api.*".into(),
                    "flowmesh.control.*".into(),
                ]);
            }
            publish.extend(read_stream("KV_status"));
            publish.extend(follow_stream("KV_status"));
            let mut subscribe = vec![
                "flowmesh.alerts.*".into(),
                "flowmesh.changes.*".into(),
                inbox,
            ];
            if role == Role::Console {
                // The Instances page shows each heartbeat's counters (sealed to the user).
                subscribe.push("flowmesh.status.*".into());
            }
            Permissions {
                publish,
                subscribe,
                allow_responses: false,
            }
        }
    }
}

/// The permissions of a remote-assistance session's user (the support engineer): its own
/// session's subjects, one direction each, and nothing else — no inbox, no JetStream.
pub fn assist_permissions(session: &str) -> Permissions {
    Permissions {
        publish: vec![format!("flowmesh.assist.{session}.*.i")],
        subscribe: vec![format!("flowmesh.assist.{session}.*.s")],
        allow_responses: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_names_and_tags() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.name()), Some(r));
            assert_eq!(Role::from_tags(["x", r.tag().as_str()]), Some(r));
        }
        assert_eq!(Role::parse("admin"), None);
        assert_eq!(Role::from_tags(["role:admin"]), None);
    }

    #[test]
    fn no_role_may_delete_or_purge_and_a_sensor_has_no_jetstream_api() {
        for r in Role::ALL {
            let p = permissions(r, "x");
            assert!(
                !p.publish
                    .iter()
                    .any(|s| s.contains("DELETE") || s.contains("PURGE") || s == ">"),
                "{r}"
            );
            assert!(
                !p.subscribe.iter().any(|s| s == ">" || s == "_INBOX.>"),
                "{r}"
            );
        }
        let s = permissions(Role::Sensor, "x");
        assert!(!s.publish.iter().any(|p| p.starts_with("$JS")));
    }
}
