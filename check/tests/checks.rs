//! The checks on captures built in test code: each alert triggered, and not triggered.

use flowmesh_collector::alert::Alert;
use flowmesh_collector::policy;
use flowmesh_sensor::capture::CaptureReader;
use flowmesh_sensor::synth::*;

fn frame(src: [u8; 4], dst: [u8; 4], proto: u8, l4: Vec<u8>) -> Vec<u8> {
    eth(MAC_A, MAC_B, 0x0800, &ipv4(src, dst, proto, &l4))
}

fn alerts(policy_text: &str, frames: &[Vec<u8>]) -> Vec<Alert> {
    let timed: Vec<(u32, Vec<u8>)> = frames
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, f)| (i as u32, f))
        .collect();
    alerts_at(policy_text, &timed)
}

fn alerts_at(policy_text: &str, frames: &[(u32, Vec<u8>)]) -> Vec<Alert> {
    let (p, _) = policy::parse(policy_text).unwrap_or_else(|r| panic!("{:#?}", r.errors));
    let bytes = pcap_at(1, frames);
    let mut out = Vec::new();
    flowmesh_check::check(|| CaptureReader::new(&bytes[..]), &p, "test", &mut |a| {
        out.push(a)
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
    assert_eq!(
        json.as_object().unwrap().keys().take(5).collect::<Vec<_>>(),
        ["type", "severity", "time", "instance", "flow"]
    );
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

const MAC_C: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0c];

fn from(mac: [u8; 6], ip: [u8; 4], port: u16) -> Vec<u8> {
    eth(
        mac,
        [0xff; 6],
        0x0800,
        &ipv4(ip, [192, 168, 1, 255], 17, &udp(port, 9999, b"hello")),
    )
}

#[test]
fn unknown_macs_alert_once_per_appearance_and_authorized_ones_on_disconnect() {
    let policy = r#"[devices]
idle_timeout = "10s"
learning_period = "0s"
[[devices.authorized]]
mac = "02:00:00:00:00:0a"
name = "printer"
alert_on_disconnect = true
"#;
    let frames = [
        (0, from(MAC_A, [192, 168, 1, 20], 1000)),
        (1, from(MAC_C, [192, 168, 1, 66], 1001)),
        (2, from(MAC_C, [192, 168, 1, 66], 1002)), // same appearance: no second alert
        (40, from(MAC_C, [192, 168, 1, 66], 1003)), // back after being gone: a new appearance
    ];
    let got = alerts_at(policy, &frames);
    let kinds: Vec<&str> = got.iter().map(|a| a.kind).collect();
    assert_eq!(
        kinds,
        [
            "unexpected_device_connected",
            "device_disconnected",
            "unexpected_device_connected"
        ],
        "{got:#?}"
    );
    assert_eq!(got[0].fields["mac"], "02:00:00:00:00:0c");
    assert_eq!(got[0].fields["ip"], "192.168.1.66");
    assert_eq!(got[1].fields["name"], "printer");
    assert_eq!(
        got[1].time, "2023-11-14T22:13:30.000000Z",
        "silent for idle_timeout after its last frame"
    );
}

#[test]
fn the_learning_period_authorizes_and_broadcast_is_ignored() {
    let policy = "[devices]\nidle_timeout = \"1m\"\nlearning_period = \"5s\"\n";
    let frames = [
        (0, from(MAC_A, [192, 168, 1, 20], 1000)),
        (3, from(MAC_C, [192, 168, 1, 66], 1001)),
        (10, from(MAC_B, [192, 168, 1, 77], 1002)),
        (11, from([0xff; 6], [192, 168, 1, 78], 1003)),
    ];
    let got = alerts_at(policy, &frames);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].fields["mac"], "02:00:00:00:00:0b");
}

#[test]
fn device_apps_judge_the_client_and_the_answering_server() {
    let policy = r#"[device_types]
"02:00:00:00:00:0a" = "printer"
"#;
    let printer = |l4: Vec<u8>, to: [u8; 4]| eth(MAC_A, MAC_B, 0x0800, &ipv4(IP_A, to, 17, &l4));
    // The printer as client: NTP is in the preset, BitTorrent DHT is not; DNS always allowed.
    let mut ntp = vec![0x23];
    ntp.extend_from_slice(&[0; 47]);
    let ok = [
        printer(udp(40000, 123, &ntp), IP_B),
        printer(udp(40001, 53, &dns_query("x.example")), IP_B),
    ];
    assert!(alerts(policy, &ok).is_empty(), "{:#?}", alerts(policy, &ok));
    let dht = printer(
        udp(
            40002,
            6881,
            b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe",
        ),
        IP_B,
    );
    let got = alerts(policy, &[dht]);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(
        (
            got[0].kind,
            got[0].fields["peer"].as_str(),
            got[0].fields["app"].as_str()
        ),
        ("device_app_not_allowed", Some("client"), Some("BitTorrent"))
    );
    assert_eq!(got[0].fields["device_type"], "printer");
    // The printer as server of SSH: judged only once it answers.
    let ssh_req = eth(
        MAC_B,
        MAC_A,
        0x0800,
        &ipv4(
            IP_B,
            IP_A,
            6,
            &tcp(50000, 22, 1, PSH_ACK, b"SSH-2.0-client\r\n"),
        ),
    );
    assert!(
        alerts(policy, std::slice::from_ref(&ssh_req)).is_empty(),
        "no answer, not judged"
    );
    let ssh_ans = eth(
        MAC_A,
        MAC_B,
        0x0800,
        &ipv4(
            IP_A,
            IP_B,
            6,
            &tcp(22, 50000, 1, PSH_ACK, b"SSH-2.0-printer\r\n"),
        ),
    );
    let got = alerts(policy, &[ssh_req, ssh_ans]);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].fields["peer"], "server");
}

fn bulk(to_port: u16, size: usize) -> Vec<u8> {
    eth(
        MAC_A,
        MAC_B,
        0x0800,
        &ipv4(
            IP_A,
            IP_B,
            6,
            &tcp(
                50000 + (size % 1000) as u16,
                to_port,
                1,
                PSH_ACK,
                &vec![b'x'; size],
            ),
        ),
    )
}

fn dns_at() -> Vec<u8> {
    eth(
        MAC_A,
        MAC_B,
        0x0800,
        &ipv4(
            IP_A,
            [8, 8, 8, 8],
            17,
            &udp(40000, 53, &dns_query("tick.example")),
        ),
    )
}

#[test]
fn a_volume_rule_on_a_profile_fires_when_its_period_closes() {
    let policy = r#"[[profile]]
name = "web"
bpf = "tcp port 80 or tcp port 443"

[[traffic_rule]]
target = "profile:web"
metric = "total"
frequency = "5min"
kind = "volume"
bound = "above"
value = "1KB"
"#;
    // 22:13:20 and 22:13:21: 3 KB of web traffic in the 22:10-22:15 period; at 22:16 a DNS
    // packet shows the period is over.
    let frames = [(0, bulk(80, 1500)), (1, bulk(80, 1500)), (160, dns_at())];
    let got = alerts_at(policy, &frames);
    assert_eq!(got.len(), 1, "{got:#?}");
    let a = &got[0];
    assert_eq!(
        (
            a.kind,
            a.fields["target"].as_str(),
            a.fields["kind"].as_str()
        ),
        ("traffic_rule", Some("profile:web"), Some("volume"))
    );
    assert_eq!(a.fields["period_start"], "2023-11-14T22:10:00.000000Z");
    assert_eq!(a.time, "2023-11-14T22:15:00.000000Z");
    assert!(a.fields["value"].as_u64().unwrap() > 3000);
    // Not web traffic: no alert.
    let not_web = [
        (0, bulk(8080, 1500)),
        (1, bulk(8080, 1500)),
        (160, dns_at()),
    ];
    assert!(alerts_at(policy, &not_web).is_empty());
    // The period has not closed yet: no alert either.
    assert!(alerts_at(policy, &frames[..2]).is_empty());
}

#[test]
fn below_throughput_percentage_and_daily_rules() {
    let rule = |target: &str, frequency: &str, kind: &str, bound: &str, value: &str| {
        format!(
            "[[traffic_rule]]\ntarget = \"{target}\"\nmetric = \"total\"\nfrequency = \"{frequency}\"\nkind = \"{kind}\"\nbound = \"{bound}\"\nvalue = \"{value}\"\n"
        )
    };
    // Below: a host that moved almost nothing in its hour.
    let below = rule("host:192.168.1.20", "hour", "volume", "below", "100KB");
    let got = alerts_at(&below, &[(0, dns_at()), (3700, dns_at())]);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].fields["bound"], "below");
    // Throughput: 3 KB in 5 minutes is 80 bit/s, above 50bps.
    let tput = rule(
        "network:192.168.1.0/24",
        "5min",
        "throughput",
        "above",
        "50bps",
    );
    let got = alerts_at(
        &tput,
        &[(0, bulk(80, 1500)), (1, bulk(80, 1500)), (160, dns_at())],
    );
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].fields["kind"], "throughput");
    // Percentage: the second period moved 3x the first.
    let pct = rule("host:*", "5min", "percentage", "above", "50");
    let frames = [
        (0, bulk(443, 1000)),
        (100, bulk(443, 1003)),
        (101, bulk(443, 1001)),
        (102, bulk(443, 1002)),
        (500, dns_at()),
    ];
    let got = alerts_at(&pct, &frames);
    assert!(
        got.iter().any(|a| a.fields["target"] == "host:192.168.1.20"
            && a.fields["value"].as_f64().unwrap() > 100.0),
        "{got:#?}"
    );
    // Daily: judged at UTC midnight, over the previous day (22:13 + 2 h = past midnight).
    let daily = rule("interface:eth0", "day", "volume", "above", "1KB");
    let got = alerts_at(&daily, &[(0, bulk(80, 1500)), (7200, dns_at())]);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].fields["period_start"], "2023-11-14T00:00:00.000000Z");
    assert_eq!(got[0].time, "2023-11-15T00:00:00.000000Z");
    // With a time zone, the day ends at local midnight: in Tokyo (UTC+9) 22:13 UTC is already
    // 07:13 on the 15th, so two hours later the day is not over and nothing is judged...
    let tokyo = format!("[settings]\ntimezone = \"Asia/Tokyo\"\n\n{daily}");
    assert!(alerts_at(&tokyo, &[(0, bulk(80, 1500)), (7200, dns_at())]).is_empty());
    // ...until 15:00 UTC, Tokyo's midnight.
    let got = alerts_at(&tokyo, &[(0, bulk(80, 1500)), (17 * 3600, dns_at())]);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].fields["period_start"], "2023-11-14T15:00:00.000000Z");
    assert_eq!(got[0].time, "2023-11-15T15:00:00.000000Z");
}

#[test]
fn device_apps_judge_detected_types_too() {
    // The device announces a printer service over mDNS: detected as a printer. The policy
    // narrows printers to NTP and mDNS as clients (an override replaces the preset); its
    // BitTorrent DHT traffic then violates.
    let policy = "[device_apps.printer]\nclient = [\"NTP\", \"MDNS\"]\n";
    let mdns = mdns_announcement(MAC_A, IP_A, "office._ipp._tcp.local");
    let dht = eth(
        MAC_A,
        MAC_B,
        0x0800,
        &ipv4(
            IP_A,
            IP_B,
            17,
            &udp(
                40002,
                6881,
                b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe",
            ),
        ),
    );
    let got = alerts(policy, &[mdns.clone(), dht.clone()]);
    let app_alerts: Vec<_> = got
        .iter()
        .filter(|a| a.kind == "device_app_not_allowed")
        .collect();
    assert_eq!(app_alerts.len(), 1, "{got:#?}");
    assert_eq!(app_alerts[0].fields["device_type"], "printer");
    // Without the announcement the device's type is unknown, which allows everything.
    assert!(alerts(policy, &[dht]).is_empty());
}

#[test]
fn arp_outside_the_acl_alerts_once_per_mac() {
    let arp_from = |mac: [u8; 6], ip: [u8; 4]| arp(mac, ip, [192, 168, 1, 1], 1);
    let policy = "[acl]\nrules = \"\"\"\nARP;02:00:00:00:00:0a\nUDP;*;*;53\n\"\"\"\n";
    let got = alerts(
        policy,
        &[
            arp_from(MAC_A, IP_A),
            arp_from(MAC_C, [192, 168, 1, 66]),
            arp_from(MAC_C, [192, 168, 1, 66]),
        ],
    );
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].kind, "acl_violation_arp");
    assert_eq!(
        (got[0].fields["mac"].as_str(), got[0].fields["ip"].as_str()),
        (Some("02:00:00:00:00:0c"), Some("192.168.1.66"))
    );
    // No ACL: no ARP check.
    assert!(alerts("", &[arp_from(MAC_C, [192, 168, 1, 66])]).is_empty());
}
