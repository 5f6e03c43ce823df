use super::*;

const BASE: &str = r#"# the office
[acl]
rules = """
UDP;192.168.1.0/24;8.8.8.8;53
TCP;192.168.1.0/24;*;443
"""

[host_policy]
restricted = ["192.168.1.30"]
"#;

fn ok(text: &str, e: Edit) -> Applied {
    match apply(text, &e) {
        Ok(a) => a,
        Err(err) => panic!("{e:?}: {err}"),
    }
}

#[test]
fn acl_rules_are_added_edited_deleted_by_position() {
    let a = ok(BASE, Edit::AclAdd("ICMP;192.168.1.20;192.168.1.1".into()));
    assert!(a.text.starts_with("# the office\n"), "comments kept");
    assert_eq!(acl_rules(&a.text).unwrap().len(), 3);
    assert_eq!(a.policy.acl.as_ref().unwrap().len(), 3);
    let a = ok(
        &a.text,
        Edit::AclEdit {
            id: 1,
            rule: "UDP;192.168.1.0/24;1.1.1.1;53".into(),
        },
    );
    assert_eq!(
        acl_rules(&a.text).unwrap()[0],
        "UDP;192.168.1.0/24;1.1.1.1;53"
    );
    let a = ok(&a.text, Edit::AclDelete(2));
    assert_eq!(
        acl_rules(&a.text).unwrap(),
        [
            "UDP;192.168.1.0/24;1.1.1.1;53",
            "ICMP;192.168.1.20;192.168.1.1"
        ]
    );
    let a = ok(&a.text, Edit::AclDeleteAll);
    assert_eq!(acl_rules(&a.text).unwrap(), Vec::<String>::new());
    assert_eq!(a.policy.acl, Some(vec![]), "the check stays on");
    assert!(!a.warnings.is_empty(), "an empty ACL is warned about");
}

#[test]
fn a_bad_rule_is_refused_with_the_line_it_would_have() {
    match apply(BASE, &Edit::AclAdd("TCP;nonsense;*;443".into())) {
        Err(EditError::Policy(r)) => {
            assert_eq!(r.errors.len(), 1);
            // Lines 4 and 5 hold the two rules; the new one is line 6.
            assert_eq!(r.errors[0].line, 6, "{:?}", r.errors);
            assert!(r.errors[0].message.contains("nonsense"));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        apply(BASE, &Edit::AclDelete(3)),
        Err(EditError::Invalid(m)) if m.contains("2 rule(s)")
    ));
    assert!(matches!(
        apply(BASE, &Edit::AclAdd("TCP;192.168.1.0/24;*;443".into())),
        Err(EditError::Invalid(m)) if m.contains("#2")
    ));
    assert!(matches!(
        apply(BASE, &Edit::AclAdd("TCP;*;*;1\nTCP;*;*;2".into())),
        Err(EditError::Invalid(_))
    ));
}

#[test]
fn import_appends_skipping_known_rules_or_replaces() {
    let a = ok(
        BASE,
        Edit::AclImport {
            text: "# new\nTCP;192.168.1.0/24;*;443\nTCP;*;*;22\n".into(),
            replace: false,
        },
    );
    assert_eq!(acl_rules(&a.text).unwrap().len(), 3);
    let a = ok(
        BASE,
        Edit::AclImport {
            text: "TCP;*;*;22\n".into(),
            replace: true,
        },
    );
    assert_eq!(acl_rules(&a.text).unwrap(), ["TCP;*;*;22"]);
    match apply(
        BASE,
        &Edit::AclImport {
            text: "TCP;*;*;443\nTCP;*;*;NOPE\n".into(),
            replace: false,
        },
    ) {
        Err(EditError::Rules(p)) => assert_eq!(p[0].line, 2),
        other => panic!("{other:?}"),
    }
}

#[test]
fn devices_types_and_apps() {
    let a = ok(
        BASE,
        Edit::DeviceSet {
            mac: "00:11:22:33:44:55".into(),
            name: Some("printer".into()),
            alert_on_disconnect: true,
        },
    );
    let d = a.policy.devices.as_ref().unwrap();
    assert_eq!(d.authorized.len(), 1);
    assert!(d.authorized[0].alert_on_disconnect);
    // The same MAC written differently updates the entry.
    let a = ok(
        &a.text,
        Edit::DeviceSet {
            mac: "00-11-22-33-44-55".into(),
            name: None,
            alert_on_disconnect: false,
        },
    );
    let d = a.policy.devices.as_ref().unwrap();
    assert_eq!(d.authorized.len(), 1);
    assert!(!d.authorized[0].alert_on_disconnect);
    let a = ok(&a.text, Edit::DeviceRemove("00:11:22:33:44:55".into()));
    assert!(a.policy.devices.unwrap().authorized.is_empty());
    assert!(matches!(
        apply(BASE, &Edit::DeviceRemove("00:11:22:33:44:55".into())),
        Err(EditError::Invalid(_))
    ));
    let bad = apply(
        BASE,
        &Edit::DeviceSet {
            mac: "not-a-mac".into(),
            name: None,
            alert_on_disconnect: false,
        },
    );
    assert!(matches!(bad, Err(EditError::Policy(_))), "{bad:?}");

    let a = ok(
        BASE,
        Edit::DeviceTypeSet {
            mac: "00:11:22:33:44:55".into(),
            device_type: "printer".into(),
        },
    );
    assert_eq!(a.policy.device_types.len(), 1);
    let a = ok(&a.text, Edit::DeviceTypeUnset("00:11:22:33:44:55".into()));
    assert!(a.policy.device_types.is_empty());
    assert!(matches!(
        apply(
            BASE,
            &Edit::DeviceTypeSet {
                mac: "00:11:22:33:44:55".into(),
                device_type: "toaster".into(),
            }
        ),
        Err(EditError::Policy(r)) if r.errors[0].message.contains("toaster")
    ));

    let a = ok(
        BASE,
        Edit::DeviceAppsSet {
            device_type: "Printer".into(),
            client: vec!["DNS".into()],
            server: vec!["HTTP".into(), "TLS".into()],
        },
    );
    let sets = &a.policy.device_apps["printer"];
    assert_eq!(sets.server.len(), 2);
    let a = ok(&a.text, Edit::DeviceAppsUnset("printer".into()));
    assert!(a.policy.device_apps.is_empty());
    assert!(matches!(
        apply(
            BASE,
            &Edit::DeviceAppsSet {
                device_type: "printer".into(),
                client: vec!["NoSuchApp".into()],
                server: vec![],
            }
        ),
        Err(EditError::Policy(_))
    ));
}

#[test]
fn host_policy_profiles_and_traffic_rules() {
    let a = ok(
        BASE,
        Edit::HostAdd {
            list: HostList::Whitelisted,
            cidr: "8.8.8.8".into(),
        },
    );
    assert_eq!(a.policy.host_policy.whitelisted.len(), 1);
    let a = ok(
        &a.text,
        Edit::HostRemove {
            list: HostList::Restricted,
            cidr: "192.168.1.30/32".into(),
        },
    );
    assert!(a.policy.host_policy.restricted.is_empty());
    assert!(matches!(
        apply(
            BASE,
            &Edit::HostAdd {
                list: HostList::Core,
                cidr: "300.1.1.1".into()
            }
        ),
        Err(EditError::Policy(_))
    ));

    let a = ok(
        BASE,
        Edit::ProfileSet {
            name: "web".into(),
            bpf: "tcp port 80".into(),
        },
    );
    let rule = RuleFields {
        target: "profile:web".into(),
        metric: "total".into(),
        frequency: "5min".into(),
        kind: "volume".into(),
        bound: "above".into(),
        value: "1MB".into(),
    };
    let a = ok(&a.text, Edit::TrafficRuleAdd(rule.clone()));
    assert_eq!(a.policy.traffic_rules.len(), 1);
    // The profile is in use: removing it would break the rule.
    assert!(matches!(
        apply(&a.text, &Edit::ProfileRemove("web".into())),
        Err(EditError::Policy(r)) if r.errors[0].message.contains("web")
    ));
    let a = ok(&a.text, Edit::TrafficRuleRemove(1));
    let a = ok(&a.text, Edit::ProfileRemove("web".into()));
    assert!(a.policy.profiles.is_empty());
    assert!(matches!(
        apply(
            BASE,
            &Edit::ProfileSet {
                name: "x".into(),
                bpf: "tcp port".into()
            }
        ),
        Err(EditError::Policy(r)) if r.errors[0].message.contains("BPF")
    ));
    assert!(matches!(
        apply(BASE, &Edit::TrafficRuleRemove(1)),
        Err(EditError::Invalid(_))
    ));
    let bad = RuleFields {
        target: "host:*".into(),
        frequency: "weekly".into(),
        ..rule
    };
    assert!(matches!(
        apply(BASE, &Edit::TrafficRuleAdd(bad)),
        Err(EditError::Policy(r)) if r.errors[0].message.contains("weekly")
    ));
}
