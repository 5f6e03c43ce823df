//! Alerts in DESIGN.md's JSON form.

use flowmesh_record::{FlowRecord, rfc3339_micros};
use serde::Serialize;
use serde_json::{Map, Value};

/// One alert: the fields every alert has, and those of its type.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// `acl_violation`, `host_policy`, ...
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// info | notice | warning | error | critical.
    pub severity: &'static str,
    /// Event time, RFC 3339.
    pub time: String,
    /// The instance that saw it.
    pub instance: String,
    /// The flow, for alerts about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow: Option<FlowRecord>,
    /// The type's own fields.
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

impl Alert {
    /// An alert with only its own fields.
    pub fn new(
        kind: &'static str,
        severity: &'static str,
        instance: &str,
        time_micros: i64,
        extra: Value,
    ) -> Self {
        Alert {
            kind,
            severity,
            time: rfc3339_micros(time_micros),
            instance: instance.to_string(),
            flow: None,
            fields: match extra {
                Value::Object(m) => m,
                _ => Map::new(),
            },
        }
    }

    /// An alert about `flow`, at the flow's last packet, with extra fields.
    pub fn about_flow(
        kind: &'static str,
        severity: &'static str,
        instance: &str,
        flow: &FlowRecord,
        time_micros: i64,
        extra: Value,
    ) -> Self {
        let mut a = Alert::new(kind, severity, instance, time_micros, extra);
        a.flow = Some(flow.clone());
        a
    }
}

/// Builds the `extra` object of an alert.
pub fn extra(pairs: &[(&str, Value)]) -> Value {
    let mut m = Map::new();
    for (k, v) in pairs {
        m.insert((*k).to_string(), v.clone());
    }
    Value::Object(m)
}
