//! The policy file: DESIGN.md's example accepted exactly as written; every broken line
//! reported with its line number; nothing half-applied.

use flowmesh_collector::policy::{self, AclRule, Frequency, Service, Target, Threshold};

const DESIGN_EXAMPLE: &str = include_str!("design_example.toml");

#[test]
fn the_design_example_is_accepted_as_written() {
    let (p, report) = policy::parse(DESIGN_EXAMPLE).unwrap_or_else(|r| panic!("{:#?}", r.errors));
    assert!(report.warnings.is_empty());
    let acl = p.acl.as_ref().unwrap();
    assert_eq!(acl.len(), 5);
    assert!(matches!(&acl[2], AclRule::Transport { service: Service::App(a), .. } if a == "HTTP"));
    let d = p.devices.as_ref().unwrap();
    assert_eq!((d.idle_timeout_secs, d.learning_period_secs), (300, 0));
    assert_eq!(d.authorized[0].name.as_deref(), Some("printer-2nd-floor"));
    assert!(d.authorized[0].alert_on_disconnect);
    assert_eq!(p.device_types.len(), 1);
    assert!(p.device_apps["printer"].server.contains("SNMP"));
    assert_eq!(p.host_policy.whitelisted.len(), 2);
    assert_eq!(p.pools[0].members.len(), 2);
    assert_eq!(p.profiles[0].bpf, "tcp port 80 or tcp port 443");
    let r = &p.traffic_rules[0];
    assert_eq!(r.target, Target::Profile("web".into()));
    assert_eq!(
        (r.frequency, r.threshold, r.above),
        (Frequency::FiveMin, Threshold::Volume(1 << 20), true)
    );
}

#[test]
fn every_error_is_reported_with_its_line() {
    let text = r#"[acl]
rules = """
UDP;192.168.1.0/24;8.8.8.8;53
TCP;*;*;NOTANAPP
ICMP;*
"""

[devices]
idle_timeout = "5 weeks"
[[devices.authorized]]
mac = "00:11:22"

[device_types]
"00:11:22:33:44:55" = "toaster"

[host_policy]
restricted = ["192.168.1.300"]

[[profile]]
name = "broken"
bpf = "tcp port eighty"

[[traffic_rule]]
target = "pool:nosuch"
metric = "total"
frequency = "weekly"
kind = "volume"
bound = "above"
value = "1TB"

[settings]
timezone = "Mars/Olympus_Mons"
"#;
    let report = policy::parse(text).unwrap_err();
    let lines: Vec<usize> = report.errors.iter().map(|e| e.line).collect();
    assert_eq!(
        lines,
        vec![4, 5, 9, 11, 14, 17, 21, 24, 26, 29, 32],
        "{:#?}",
        report.errors
    );
    let text_of = |line: usize| {
        report
            .errors
            .iter()
            .find(|e| e.line == line)
            .unwrap()
            .message
            .clone()
    };
    assert!(text_of(4).contains("unknown application"));
    assert!(text_of(21).contains("libpcap"), "{}", text_of(21));
    assert!(text_of(29).contains("B, KB, MB, GB"));
    assert!(text_of(32).contains("IANA time zone"), "{}", text_of(32));
}

#[test]
fn a_time_zone_is_accepted_by_its_iana_name() {
    let (p, _) = policy::parse("[settings]\ntimezone = \"Europe/Rome\"\n").unwrap();
    assert_eq!(p.timezone.as_deref(), Some("Europe/Rome"));
    assert_eq!(policy::parse("").unwrap().0.timezone, None, "UTC");
}

#[test]
fn syntax_errors_and_unknown_keys_have_lines_too() {
    let e = policy::parse(
        "[acl]\nrules = \"TCP;*;*;443\"\n[host_policy]\nrestricted = [\"10.0.0.1\"\n",
    )
    .unwrap_err();
    assert_eq!(e.errors.len(), 1);
    assert!(e.errors[0].line >= 4, "{:?}", e.errors);
    let e = policy::parse("[acl]\nrules = \"\"\n\n[nonsense]\nx = 1\n").unwrap_err();
    assert_eq!(e.errors[0].line, 4, "{:?}", e.errors);
}

#[test]
fn an_empty_acl_is_a_warning_because_every_flow_violates_it() {
    let (p, report) = policy::parse("[acl]\nrules = \"\"\n").unwrap();
    assert_eq!(p.acl, Some(vec![]));
    assert_eq!(report.warnings.len(), 1);
    assert!(report.warnings[0].message.contains("every flow violates"));
    let (p, _) = policy::parse("").unwrap();
    assert_eq!(p.acl, None, "no [acl]: the check is off");
}

#[test]
fn acl_import_appends_or_replaces_and_keeps_the_rest() {
    let base = "# office policy\n[acl]\nrules = \"\"\"\nUDP;*;*;53\n\"\"\"\n\n[host_policy]\ncore = [\"192.168.1.1\"] # the router\n";
    let merged = policy::import_acl(
        base,
        "# from ntopng\nTCP;192.168.1.0/24;*;443\nUDP;*;*;53\n",
        false,
    )
    .unwrap();
    assert!(merged.contains("# the router") && merged.contains("# office policy"));
    let (p, _) = policy::parse(&merged).unwrap();
    assert_eq!(
        p.acl.unwrap().len(),
        2,
        "appended, without duplicating UDP;*;*;53"
    );
    let replaced = policy::import_acl(base, "TCP;*;*;22\n", true).unwrap();
    assert_eq!(policy::parse(&replaced).unwrap().0.acl.unwrap().len(), 1);
    match policy::import_acl(base, "TCP;*;*;443\nTCP;*;*;NOPE\n", false) {
        Err(policy::EditError::Rules(p)) => assert_eq!(p[0].line, 2),
        other => panic!("{other:?}"),
    }
    // A policy without [acl] gets one.
    let fresh = policy::import_acl("", "ICMP;*;*\n", false).unwrap();
    assert_eq!(policy::parse(&fresh).unwrap().0.acl.unwrap().len(), 1);
}
