//! The checks on captures built in test code: each alert triggered, and not triggered.

use flowmesh_collector::alert::Alert;
use flowmesh_collector::checks::Engine;
use flowmesh_collector::policy;
use flowmesh_sensor::capture::CaptureReader;
use flowmesh_sensor::offline;
use flowmesh_sensor::synth::*;

fn frame(src: [u8; 4], dst: [u8; 4], proto: u8, l4: Vec<u8>) -> Vec<u8> {
    eth(MAC_A, MAC_B, 0x0800, &ipv4(src, dst, proto, &l4))
}

fn alerts(policy_text: &str, frames: &[Vec<u8>]) -> Vec<Alert> {
    let (p, _) = policy::parse(policy_text).unwrap_or_else(|r| panic!("{:#?}", r.errors));
    let engine = Engine::new(&p, "test");
    let bytes = pcap(1, frames);
    let mut out = Vec::new();
    offline::run_reader(CaptureReader::new(&bytes[..]).unwrap(), &mut |r| {
        engine.flow(&r, &mut |a| out.push(a))
    })
    .unwrap();
    out
}

const CLIENT: [u8; 4] = [192, 168, 1, 20];

#[test]
fn acl_allows_what_its_rules_say_and_alerts_on_the_rest() {
    let policy = r#"[acl]
rules = """
UDP;192.168.1.0/24;8.8.8.8;53
TCP;192.168.1.20;10.0.0.5;HTTP
TCP;192.168.1.0/24;*;8000-8100
ICMP;192.168.1.20;192.168.1.1
"""
"#;
    let allowed = [
        frame(
            CLIENT,
            [8, 8, 8, 8],
            17,
            udp(40000, 53, &dns_query("a.example")),
        ),
        frame(
            CLIENT,
            [10, 0, 0, 5],
            6,
            tcp(
                50000,
                8080,
                1,
                PSH_ACK,
                b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
            ),
        ),
        frame(CLIENT, [1, 2, 3, 4], 6, tcp(50001, 8050, 1, SYN, &[])),
        frame(CLIENT, [192, 168, 1, 1], 1, vec![8, 0, 0, 0, 0, 1, 0, 1]),
    ];
    assert!(
        alerts(policy, &allowed).is_empty(),
        "{:#?}",
        alerts(policy, &allowed)
    );
    let denied = [
        frame(
            CLIENT,
            [9, 9, 9, 9],
            17,
            udp(40000, 53, &dns_query("a.example")),
        ),
        frame(
            CLIENT,
            [10, 0, 0, 5],
            6,
            tcp(50000, 22, 1, PSH_ACK, b"SSH-2.0-x\r\n"),
        ),
        frame(CLIENT, [192, 168, 1, 2], 1, vec![8, 0, 0, 0, 0, 1, 0, 1]),
    ];
    let got = alerts(policy, &denied);
    assert_eq!(got.len(), 3, "{got:#?}");
    assert!(
        got.iter()
            .all(|a| a.kind == "acl_violation" && a.instance == "test")
    );
    let json = serde_json::to_value(&got[0]).unwrap();
    assert_eq!(json["type"], "acl_violation");
    assert_eq!(json["flow"]["server_ip"], "9.9.9.9");
    assert!(json["time"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn an_empty_acl_alerts_on_every_flow_and_no_acl_on_none() {
    let f = [frame(
        CLIENT,
        [8, 8, 8, 8],
        17,
        udp(40000, 53, &dns_query("a.example")),
    )];
    assert_eq!(alerts("[acl]\nrules = \"\"\n", &f).len(), 1);
    assert!(alerts("", &f).is_empty());
}

#[test]
fn host_policy_reasons() {
    let policy = r#"[host_policy]
restricted = ["192.168.1.30"]
core = ["192.168.1.1"]
whitelisted = ["192.168.1.53", "8.8.8.8"]
"#;
    let restricted = [192, 168, 1, 30];
    let core = [192, 168, 1, 1];
    let reason = |frames: &[Vec<u8>]| -> Vec<String> {
        alerts(policy, frames)
            .iter()
            .map(|a| a.fields["reason"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        reason(&[frame(restricted, [9, 9, 9, 9], 17, udp(40000, 53, b"x"))]),
        ["restricted_to_public"]
    );
    assert_eq!(
        reason(&[frame(restricted, core, 17, udp(40000, 53, b"x"))]),
        ["restricted_to_core"]
    );
    assert_eq!(
        reason(&[frame(core, [1, 1, 1, 1], 17, udp(40000, 53, b"x"))]),
        ["core_to_not_whitelisted"]
    );
    // Not violations: whitelisted public server, a restricted host on the LAN, core to whitelisted.
    assert!(reason(&[frame(restricted, [8, 8, 8, 8], 17, udp(40000, 53, b"x"))]).is_empty());
    assert!(
        reason(&[frame(
            restricted,
            [192, 168, 1, 77],
            17,
            udp(40000, 53, b"x")
        )])
        .is_empty()
    );
    assert!(reason(&[frame(core, [192, 168, 1, 53], 17, udp(40000, 53, b"x"))]).is_empty());
}
