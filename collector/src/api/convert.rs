//! Between the API's protobuf messages and the collector's own types.

use flowmesh_proto::v1::{self as pb, policy_edit::Edit as E};

use crate::policy::edit::{Edit, HostList, RuleFields};
use crate::policy::{Problem, edit};

/// A policy edit as sent over the API.
pub fn edit_to_proto(e: &Edit) -> pb::PolicyEdit {
    let edit = match e.clone() {
        Edit::AclAdd(rule) => E::AclAdd(pb::AclAdd { rule }),
        Edit::AclEdit { id, rule } => E::AclEdit(pb::AclEdit {
            id: id as u32,
            rule,
        }),
        Edit::AclDelete(id) => E::AclDelete(pb::AclDelete { id: id as u32 }),
        Edit::AclDeleteAll => E::AclDeleteAll(pb::AclDeleteAll {}),
        Edit::AclImport { text, replace } => E::AclImport(pb::AclImport { text, replace }),
        Edit::DeviceSet {
            mac,
            name,
            alert_on_disconnect,
        } => E::DeviceSet(pb::DeviceSet {
            mac,
            name,
            alert_on_disconnect,
        }),
        Edit::DeviceRemove(mac) => E::DeviceRemove(pb::DeviceRemove { mac }),
        Edit::DeviceTypeSet { mac, device_type } => {
            E::DeviceTypeSet(pb::DeviceTypeSet { mac, device_type })
        }
        Edit::DeviceTypeUnset(mac) => E::DeviceTypeUnset(pb::DeviceTypeUnset { mac }),
        Edit::DeviceAppsSet {
            device_type,
            client,
            server,
        } => E::DeviceAppsSet(pb::DeviceAppsSet {
            device_type,
            client,
            server,
        }),
        Edit::DeviceAppsUnset(device_type) => {
            E::DeviceAppsUnset(pb::DeviceAppsUnset { device_type })
        }
        Edit::HostAdd { list, cidr } => E::HostAdd(pb::HostAdd {
            list: list.key().into(),
            cidr,
        }),
        Edit::HostRemove { list, cidr } => E::HostRemove(pb::HostRemove {
            list: list.key().into(),
            cidr,
        }),
        Edit::ProfileSet { name, bpf } => E::ProfileSet(pb::ProfileSet { name, bpf }),
        Edit::ProfileRemove(name) => E::ProfileRemove(pb::ProfileRemove { name }),
        Edit::TrafficRuleAdd(r) => E::TrafficRuleAdd(pb::TrafficRuleAdd {
            target: r.target,
            metric: r.metric,
            frequency: r.frequency,
            kind: r.kind,
            bound: r.bound,
            value: r.value,
        }),
        Edit::TrafficRuleRemove(id) => {
            E::TrafficRuleRemove(pb::TrafficRuleRemove { id: id as u32 })
        }
    };
    pb::PolicyEdit { edit: Some(edit) }
}

/// A policy edit received over the API.
pub fn edit_from_proto(e: pb::PolicyEdit) -> Result<Edit, String> {
    let list = |l: &str| l.parse::<HostList>();
    Ok(match e.edit.ok_or("an empty policy edit")? {
        E::AclAdd(a) => Edit::AclAdd(a.rule),
        E::AclEdit(a) => Edit::AclEdit {
            id: a.id as usize,
            rule: a.rule,
        },
        E::AclDelete(a) => Edit::AclDelete(a.id as usize),
        E::AclDeleteAll(_) => Edit::AclDeleteAll,
        E::AclImport(a) => Edit::AclImport {
            text: a.text,
            replace: a.replace,
        },
        E::DeviceSet(d) => Edit::DeviceSet {
            mac: d.mac,
            name: d.name,
            alert_on_disconnect: d.alert_on_disconnect,
        },
        E::DeviceRemove(d) => Edit::DeviceRemove(d.mac),
        E::DeviceTypeSet(d) => Edit::DeviceTypeSet {
            mac: d.mac,
            device_type: d.device_type,
        },
        E::DeviceTypeUnset(d) => Edit::DeviceTypeUnset(d.mac),
        E::DeviceAppsSet(d) => Edit::DeviceAppsSet {
            device_type: d.device_type,
            client: d.client,
            server: d.server,
        },
        E::DeviceAppsUnset(d) => Edit::DeviceAppsUnset(d.device_type),
        E::HostAdd(h) => Edit::HostAdd {
            list: list(&h.list)?,
            cidr: h.cidr,
        },
        E::HostRemove(h) => Edit::HostRemove {
            list: list(&h.list)?,
            cidr: h.cidr,
        },
        E::ProfileSet(p) => Edit::ProfileSet {
            name: p.name,
            bpf: p.bpf,
        },
        E::ProfileRemove(p) => Edit::ProfileRemove(p.name),
        E::TrafficRuleAdd(r) => Edit::TrafficRuleAdd(RuleFields {
            target: r.target,
            metric: r.metric,
            frequency: r.frequency,
            kind: r.kind,
            bound: r.bound,
            value: r.value,
        }),
        E::TrafficRuleRemove(r) => Edit::TrafficRuleRemove(r.id as usize),
    })
}

/// Problems as sent over the API.
pub fn problems(p: &[Problem]) -> Vec<pb::PolicyProblem> {
    p.iter()
        .map(|p| pb::PolicyProblem {
            line: p.line as u32,
            message: p.message.clone(),
        })
        .collect()
}

/// What the API shows of a policy file.
pub fn policy_view(text: &str) -> pb::PolicyView {
    let rules = edit::acl_rules(text);
    pb::PolicyView {
        toml: text.to_string(),
        acl_on: rules.is_some(),
        acl_rules: rules.unwrap_or_default(),
    }
}

/// A stored or live alert (DESIGN.md JSON) as an API message.
pub fn alert_to_proto(v: &serde_json::Value) -> pb::Alert {
    let field = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    let mut details = v.clone();
    if let Some(m) = details.as_object_mut() {
        for k in ["type", "severity", "time", "instance"] {
            m.remove(k);
        }
    }
    pb::Alert {
        r#type: field("type"),
        severity: field("severity"),
        time_us: flowmesh_record::parse_rfc3339_micros(&field("time")).unwrap_or(0),
        instance: field("instance"),
        details_json: details.to_string(),
        json: v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_edit_survives_the_wire() {
        let edits = [
            Edit::AclAdd("TCP;*;*;443".into()),
            Edit::AclEdit {
                id: 2,
                rule: "UDP;*;*;53".into(),
            },
            Edit::AclDelete(3),
            Edit::AclDeleteAll,
            Edit::AclImport {
                text: "ICMP;*;*".into(),
                replace: true,
            },
            Edit::DeviceSet {
                mac: "00:11:22:33:44:55".into(),
                name: Some("p".into()),
                alert_on_disconnect: true,
            },
            Edit::DeviceRemove("00:11:22:33:44:55".into()),
            Edit::DeviceTypeSet {
                mac: "00:11:22:33:44:55".into(),
                device_type: "printer".into(),
            },
            Edit::DeviceTypeUnset("00:11:22:33:44:55".into()),
            Edit::DeviceAppsSet {
                device_type: "printer".into(),
                client: vec!["DNS".into()],
                server: vec!["HTTP".into()],
            },
            Edit::DeviceAppsUnset("printer".into()),
            Edit::HostAdd {
                list: HostList::Core,
                cidr: "10.0.0.1".into(),
            },
            Edit::HostRemove {
                list: HostList::Whitelisted,
                cidr: "8.8.8.8".into(),
            },
            Edit::ProfileSet {
                name: "web".into(),
                bpf: "tcp port 80".into(),
            },
            Edit::ProfileRemove("web".into()),
            Edit::TrafficRuleAdd(RuleFields {
                target: "host:*".into(),
                metric: "total".into(),
                frequency: "hour".into(),
                kind: "volume".into(),
                bound: "above".into(),
                value: "1GB".into(),
            }),
            Edit::TrafficRuleRemove(1),
        ];
        for e in edits {
            assert_eq!(edit_from_proto(edit_to_proto(&e)).unwrap(), e);
        }
        assert!(edit_from_proto(pb::PolicyEdit { edit: None }).is_err());
        let bad = pb::PolicyEdit {
            edit: Some(E::HostAdd(pb::HostAdd {
                list: "vip".into(),
                cidr: "1.1.1.1".into(),
            })),
        };
        assert!(edit_from_proto(bad).unwrap_err().contains("restricted"));
    }
}
