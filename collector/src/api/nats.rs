//! The collector's API for the web console, over NATS: requests on `flowmesh.api.<collector>`
//! (and `flowmesh.api`, which every collector answers, so a console finds them all), sealed to
//! the user's key by the user's key; answers sealed the same way to [`REPLY_SUBJECT`]. The
//! broker lets only the console role publish there (and only collectors hear it); the
//! envelope makes sure the request is the user's own, fresh and new (the collector's journaled
//! opener: a request captured before a restart is refused after it).
//!
//! Requests and answers are JSON (the browser reads them): `{"id": "...", "op": "...", ...}`
//! → `{"id": "...", "collector": "...", "ok": true, "result": ...}` or `"ok": false, "error"`.
//! Operations: `hello`, `instances`, `alerts` (`type`, `instance`, `from_us`, `to_us`,
//! `limit`), `policy`, `edit` (`edit`: a [`crate::policy::edit::Edit`] as JSON), `series`
//! (`instance`, `resolution` 5m/1h/1d, `from_s`, `to_s`), `devices` (seen, not authorized),
//! `presets` (built-in applications per device type), `flows` (`search`: stored flows or their
//! top-N, as [`super::flows::SearchParams`]).

use std::sync::Arc;

use flowmesh_link::Sealer;
use flowmesh_link::async_nats::{self, Message};
use flowmesh_link::subject::{Channel, PREFIX};
use flowmesh_proto::v1 as pb;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Backend, convert, edit_response};
use crate::policy::edit::Edit;
use crate::store::{AlertQuery, Resolution};

/// The subject every answer is sealed to (requests come with random reply inboxes).
pub const REPLY_SUBJECT: &str = "flowmesh.api.reply";
/// Alerts one answer carries at most (a NATS message is bounded; ask again with `to_us`).
const MAX_ALERTS: usize = 500;
/// Flows one answer carries at most.
const MAX_FLOWS: usize = 500;
/// Unauthorized devices one answer lists at most, per instance.
const MAX_DEVICES: usize = 200;
/// Series of one kind (protocols, hosts, ...) one answer carries the points of at most.
const MAX_PER_KIND: usize = 10;

/// The subject every collector answers (discovery).
pub fn all_subject() -> String {
    format!("{PREFIX}.api")
}

#[derive(Deserialize)]
struct Request {
    id: String,
    #[serde(flatten)]
    op: Op,
}

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Op {
    Hello,
    Instances,
    Alerts {
        #[serde(rename = "type")]
        kind: Option<String>,
        instance: Option<String>,
        from_us: Option<i64>,
        to_us: Option<i64>,
        #[serde(default)]
        limit: usize,
    },
    Policy,
    Edit {
        edit: Edit,
    },
    /// Devices seen and not authorized, to authorize from the page.
    Devices,
    /// The built-in applications per device type (what `device_apps` overrides).
    Presets,
    Series {
        instance: String,
        resolution: String,
        from_s: Option<i64>,
        to_s: Option<i64>,
    },
    /// Stored flows, or their top-N (see [`super::flows::SearchParams`]).
    Flows {
        search: super::flows::SearchParams,
    },
}

/// Serves console requests until the subscriptions end.
pub async fn serve(c: Arc<dyn Backend>) -> Result<(), String> {
    let client = c.client();
    let own = Channel::Api.subject(c.name()).map_err(|e| e.to_string())?;
    let mine = client
        .subscribe(own.clone())
        .await
        .map_err(|e| e.to_string())?;
    let all = client
        .subscribe(all_subject())
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(subject = %own, "console requests");
    let mut requests = futures::stream::select(mine, all);
    while let Some(m) = requests.next().await {
        let c = c.clone();
        let client = client.clone();
        // Each on its own: a long alert query holds up no policy edit.
        tokio::spawn(async move { answer(c, client, m).await });
    }
    Ok(())
}

async fn answer(c: Arc<dyn Backend>, client: async_nats::Client, m: Message) {
    let Some(reply_to) = m.reply.clone() else {
        return;
    };
    let me = c.identity().public();
    let request = match c.opener().open(m.subject.as_str(), &m.payload) {
        Ok(o) if o.sender == me => {
            serde_json::from_slice::<Request>(&o.payload).map_err(|e| format!("request: {e}"))
        }
        Ok(_) => Err("not sealed by this user".to_string()),
        Err(e) => {
            // Forged, replayed or another's: no answer at all, as remote actions.
            tracing::warn!(subject = %m.subject, reason = %e, "a console request refused");
            return;
        }
    };
    let (id, body) = match request {
        Ok(r) => {
            let result = handle(&*c, r.op).await;
            (r.id, result)
        }
        Err(e) => (String::new(), Err(e)),
    };
    let body = match body {
        Ok(result) => json!({ "id": id, "collector": c.name(), "ok": true, "result": result }),
        Err(error) => json!({ "id": id, "collector": c.name(), "ok": false, "error": error }),
    };
    let sealer = Sealer::new(c.identity(), me);
    match sealer.seal(REPLY_SUBJECT, body.to_string().as_bytes()) {
        Ok(sealed) => {
            if let Err(e) = client.publish(reply_to, sealed.into()).await {
                tracing::warn!(error = %e, "console answer not sent");
            }
        }
        Err(e) => tracing::warn!(error = %e, "console answer not sealed"),
    }
}

async fn handle(c: &dyn Backend, op: Op) -> Result<Value, String> {
    match op {
        Op::Hello => Ok(json!({ "collector": c.name() })),
        Op::Instances => Ok(Value::Array(c.instances().iter().map(status).collect())),
        Op::Alerts {
            kind,
            instance,
            from_us,
            to_us,
            limit,
        } => {
            let q = AlertQuery {
                kind,
                instance,
                from_micros: from_us,
                to_micros: to_us,
                limit: if limit == 0 {
                    MAX_ALERTS
                } else {
                    limit.min(MAX_ALERTS)
                },
                newest: true,
            };
            let alerts = c.store().alerts(&q).map_err(|e| e.to_string())?;
            Ok(Value::Array(alerts))
        }
        Op::Policy => policy(&c.policy_text()?),
        Op::Devices => Ok(c
            .unauthorized_devices(MAX_DEVICES)
            .into_iter()
            .map(|(instance, mac, ip, last)| {
                json!({ "instance": instance, "mac": mac, "ip": ip, "last_seen_us": last })
            })
            .collect()),
        Op::Presets => Ok(flowmesh_record::DeviceType::ALL
            .into_iter()
            .map(|t| match crate::checks::device_apps::preset(t) {
                Some(p) => json!({ "type": t.name(), "client": p.client, "server": p.server }),
                None => json!({ "type": t.name(), "client": null, "server": null }),
            })
            .collect()),
        Op::Series {
            instance,
            resolution,
            from_s,
            to_s,
        } => series(c, &instance, &resolution, from_s, to_s),
        Op::Flows { search } => match search.run(c.store(), MAX_FLOWS) {
            Ok(super::flows::Found::Flows(flows, truncated)) => {
                Ok(json!({ "flows": flows, "truncated": truncated }))
            }
            Ok(super::flows::Found::Top(top)) => Ok(json!({ "top": top })),
            Err(Ok(why)) => Err(why),
            Err(Err(e)) => Err(e.to_string()),
        },
        Op::Edit { edit } => {
            tracing::info!(?edit, "policy edit from the console");
            let r = edit_response(c.edit_policy(&edit).await)?;
            let problems = |p: &[pb::PolicyProblem]| -> Value {
                p.iter()
                    .map(|p| json!({ "line": p.line, "message": p.message }))
                    .collect()
            };
            Ok(json!({
                "applied": r.applied,
                "errors": problems(&r.errors),
                "warnings": problems(&r.warnings),
                "policy": match &r.policy {
                    Some(v) => policy(&v.toml)?,
                    None => Value::Null,
                },
            }))
        }
    }
}

/// The series of `instance` at `resolution` within [from, to) (seconds): how many, and the
/// points of `total` and of the [`MAX_PER_KIND`] busiest of each kind (a message is bounded).
fn series(
    c: &dyn Backend,
    instance: &str,
    resolution: &str,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<Value, String> {
    let r = Resolution::parse(resolution)
        .ok_or_else(|| format!("resolution {resolution:?}: 5m, 1h or 1d"))?;
    let (from, to) = (from.unwrap_or(i64::MIN), to.unwrap_or(i64::MAX));
    let store = c.store();
    let names = store.series_names(instance).map_err(|e| e.to_string())?;
    let mut all = Vec::with_capacity(names.len());
    for name in &names {
        let points = store
            .points(instance, name, r, from, to)
            .map_err(|e| e.to_string())?;
        let bytes: u64 = points.iter().map(|p| p.counters.bytes).sum();
        all.push((name, bytes, points));
    }
    // `total` always; then the busiest of each kind (`l7:`, `app:`, `host:`, ...).
    all.sort_by_key(|(name, bytes, _)| (name.as_str() != "total", std::cmp::Reverse(*bytes)));
    let mut per_kind = std::collections::HashMap::<&str, usize>::new();
    let points: serde_json::Map<String, Value> = all
        .into_iter()
        .filter(|(name, bytes, _)| {
            let kind = name.split_once(':').map_or(name.as_str(), |(k, _)| k);
            let n = per_kind.entry(kind).or_default();
            *n += 1;
            *bytes > 0 && *n <= MAX_PER_KIND
        })
        .map(|(name, _, points)| {
            let ps: Vec<Value> = points
                .iter()
                .map(|p| json!({ "start": p.start, "bytes": p.counters.bytes, "packets": p.counters.packets }))
                .collect();
            (name.clone(), Value::Array(ps))
        })
        .collect();
    // How many there are, not their names: one name per local host can outgrow a message.
    Ok(json!({ "count": names.len(), "points": points }))
}

/// The policy for the pages: its text, the ACL's rules, and every section as JSON.
fn policy(text: &str) -> Result<Value, String> {
    let view = convert::policy_view(text);
    let parsed: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    Ok(json!({
        "toml": view.toml,
        "acl_on": view.acl_on,
        "acl_rules": view.acl_rules,
        "sections": serde_json::to_value(parsed).map_err(|e| e.to_string())?,
    }))
}

fn status(s: &pb::Status) -> Value {
    json!({
        "instance": s.instance,
        "status": s.status,
        "time_us": s.time_us,
        "version": s.version,
        "uptime_s": s.uptime_s,
        "packets_captured": s.packets_captured,
        "packets_dropped": s.packets_dropped,
        "flows_published": s.flows_published,
        "outbox_depth": s.outbox_depth,
        "devices_tracked": s.devices_tracked,
        "watermark_us": s.watermark_us,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_read_as_the_console_writes_them() {
        let r: Request = serde_json::from_str(
            r#"{"id":"a1","op":"edit","edit":{"acl_edit":{"id":2,"rule":"TCP;*;*;443"}}}"#,
        )
        .unwrap();
        assert_eq!(r.id, "a1");
        assert!(matches!(
            r.op,
            Op::Edit { edit: Edit::AclEdit { id: 2, ref rule } } if rule == "TCP;*;*;443"
        ));
        for (json, want) in [
            (r#""acl_delete_all""#, Edit::AclDeleteAll),
            (
                r#"{"acl_add":"UDP;*;*;53"}"#,
                Edit::AclAdd("UDP;*;*;53".into()),
            ),
            (r#"{"traffic_rule_remove":3}"#, Edit::TrafficRuleRemove(3)),
            (
                r#"{"host_add":{"list":"core","cidr":"10.0.0.1"}}"#,
                Edit::HostAdd {
                    list: crate::policy::edit::HostList::Core,
                    cidr: "10.0.0.1".into(),
                },
            ),
        ] {
            assert_eq!(serde_json::from_str::<Edit>(json).unwrap(), want, "{json}");
        }
        let q: Request =
            serde_json::from_str(r#"{"id":"b","op":"alerts","type":"acl_violation","limit":5}"#)
                .unwrap();
        assert!(
            matches!(q.op, Op::Alerts { limit: 5, kind: Some(ref k), .. } if k == "acl_violation")
        );
        let d: Request = serde_json::from_str(
            r#"{"id":"d","op":"edit","edit":{"device_set":{"mac":"02:00:00:00:00:0a","name":null,"alert_on_disconnect":false}}}"#,
        )
        .unwrap();
        assert!(matches!(
            d.op,
            Op::Edit {
                edit: Edit::DeviceSet { .. }
            }
        ));
        // Unknown operations and edits are refused, not guessed at.
        assert!(serde_json::from_str::<Request>(r#"{"id":"c","op":"drop_tables"}"#).is_err());
        assert!(serde_json::from_str::<Edit>(r#"{"acl_add":"x","extra":1}"#).is_err());
    }

    #[test]
    fn the_policy_answer_has_every_section() {
        // Read where the tests run (cargo runs them in the package's directory), not at a path
        // compiled in: test executables are shared between clones through one target dir.
        let text = std::fs::read_to_string("tests/design_example.toml").unwrap();
        let p = policy(&text).unwrap();
        assert_eq!(p["acl_on"], true);
        assert_eq!(p["acl_rules"].as_array().unwrap().len(), 5);
        assert_eq!(p["sections"]["profile"][0]["name"], "web");
        assert_eq!(p["sections"]["host_policy"]["core"][0], "192.168.1.1");
    }
}
