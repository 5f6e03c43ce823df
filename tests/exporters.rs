//! Flows from a real exporter: Debian's softflowd reads a capture and exports it as NetFlow v5,
//! v9, IPFIX and IPFIX biflows to `flowmesh flows --netflow`; the records equal `flowmesh flows`
//! on the same capture in tuples, direction, packets and bytes.
//!
//! The rules that differ, by design: exporters count IP bytes, packet capture L2 frames (14
//! more per Ethernet packet); exported records carry no L7 (softflowd exports none) and no MACs
//! (softflowd's templates have none); softflowd's v5/v9 times are relative to its own uptime,
//! which it counts from its start, so they are compared only with absolute-time IPFIX.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flowmesh_testkit::die_with_parent;
use flowmesh_testkit::process::wait_until;
use support::{flowmesh, spawn_logged};

mod support;

fn softflowd_present() -> bool {
    Command::new("softflowd").arg("-h").output().is_ok()
}

/// `flowmesh flows --netflow` on a free port; the port it took.
fn receiver(out: &Path) -> (Child, u16) {
    let mut child = flowmesh()
        .args(["flows", "--netflow", "127.0.0.1:0"])
        .stdout(std::fs::File::create(out).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    // "receiving NetFlow v5/v9 and IPFIX on 127.0.0.1:PORT; Ctrl-C to stop"
    let port = first
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split(';').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {first:?}"));
    // The rest of its stderr is drained so it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, port)
}

/// softflowd reads `pcap` and exports it to `port`, then exits.
fn softflowd(dir: &Path, pcap: &Path, port: u16, args: &[&str]) {
    let ctl = dir.join("softflowd.ctl");
    let _ = std::fs::remove_file(&ctl);
    let mut cmd = Command::new("softflowd");
    die_with_parent(&mut cmd)
        .args([
            "-r",
            pcap.to_str().unwrap(),
            "-n",
            &format!("127.0.0.1:{port}"),
            "-d",
        ])
        .args(["-p", dir.join("softflowd.pid").to_str().unwrap()])
        .args(["-c", ctl.to_str().unwrap()])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    // softflowd 1.1.0 reading a file waits for a control connection before each round of
    // packets: knock (a harmless `statistics`) until it reaches the end and exits.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        assert!(Instant::now() < deadline, "softflowd did not finish");
        let _ = Command::new("softflowctl")
            .args(["-c", ctl.to_str().unwrap(), "statistics"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        std::thread::sleep(Duration::from_millis(100));
    }
}

type Endpoint = (String, u64);

/// Per connection (protocol and its two endpoints, ordered): the client, and each endpoint's
/// packets and bytes sent.
#[derive(Debug, Default, PartialEq, Eq)]
struct Seen {
    client: Vec<Endpoint>,
    sent: BTreeMap<Endpoint, (u64, u64)>,
    first_seen: Vec<String>,
}

fn connections(jsonl: &str, l2_bytes: bool) -> BTreeMap<(String, Endpoint, Endpoint), Seen> {
    let mut out: BTreeMap<_, Seen> = BTreeMap::new();
    for line in jsonl.lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        let c = (
            r["client_ip"].as_str().unwrap().to_string(),
            r["client_port"].as_u64().unwrap(),
        );
        let s = (
            r["server_ip"].as_str().unwrap().to_string(),
            r["server_port"].as_u64().unwrap(),
        );
        let (a, b) = if c <= s {
            (c.clone(), s.clone())
        } else {
            (s.clone(), c.clone())
        };
        let seen = out
            .entry((r["l4"].as_str().unwrap().to_string(), a, b))
            .or_default();
        seen.client.push(c.clone());
        seen.first_seen
            .push(r["first_seen"].as_str().unwrap().to_string());
        for (who, p, by) in [
            (c, "c2s_packets", "c2s_bytes"),
            (s, "s2c_packets", "s2c_bytes"),
        ] {
            let packets = r[p].as_u64().unwrap();
            // Ethernet frames: 14 bytes of header each, which exporters do not count.
            let bytes = r[by].as_u64().unwrap() - if l2_bytes { 14 * packets } else { 0 };
            let e = seen.sent.entry(who).or_default();
            e.0 += packets;
            e.1 += bytes;
        }
        if !l2_bytes {
            assert_eq!(r["exporter"], "127.0.0.1", "{line}");
            assert_eq!(r["sampling"], 1, "{line}");
        }
    }
    out
}

#[test]
fn softflowd_exports_equal_flows_of_the_same_capture_in_every_version() {
    assert!(
        softflowd_present(),
        "softflowd is not installed: ./deploy/test.sh installs it (apt install softflowd)"
    );
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("traffic.pcap");
    let o = flowmesh()
        .args([
            "gen",
            "--flows",
            "400",
            "--concurrent",
            "40",
            "--span",
            "30",
            "--out",
        ])
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = flowmesh()
        .args(["flows", "--threads", "1"])
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(o.status.success());
    let expected = connections(&String::from_utf8_lossy(&o.stdout), true);
    assert_eq!(expected.len(), 400);

    for (name, args) in [
        ("NetFlow v5", &["-v", "5"][..]),
        ("NetFlow v9", &["-v", "9"]),
        ("IPFIX", &["-v", "10", "-A", "milli"]),
        ("IPFIX biflows", &["-v", "10", "-b", "-A", "milli"]),
    ] {
        let out = dir.path().join("exported.jsonl");
        let (mut rx, port) = receiver(&out);
        softflowd(dir.path(), &pcap, port, args);
        // Everything softflowd sent is in the socket; the stop reads it and sends what is held.
        flowmesh_testkit::process::terminate(&mut rx);
        let got = connections(&std::fs::read_to_string(&out).unwrap(), false);
        assert_eq!(got.len(), expected.len(), "{name}: connections");
        for (k, want) in &expected {
            let have = got
                .get(k)
                .unwrap_or_else(|| panic!("{name}: {k:?} not exported"));
            assert_eq!(
                have.sent, want.sent,
                "{name}: {k:?} packets and bytes per side"
            );
            assert_eq!(have.client, want.client, "{name}: {k:?} client");
            if args.contains(&"milli") {
                // Absolute times in milliseconds: equal to the millisecond.
                assert_eq!(
                    have.first_seen[0][..23],
                    want.first_seen[0][..23],
                    "{name}: {k:?} start"
                );
            }
        }
    }
}

#[test]
fn exported_flows_reach_the_collector_s_checks_and_store_through_the_cluster() {
    use flowmesh_testkit::{Cluster, Collector, Sensor, TestUser};
    assert!(
        softflowd_present(),
        "softflowd is not installed: ./deploy/test.sh installs it (apt install softflowd)"
    );
    let alice = TestUser::new(
        "alice",
        &[("router-sensor", Sensor), ("alice-collector", Collector)],
    );
    let cluster = Cluster::start(&[&alice], Duration::from_secs(90))
        .unwrap_or_else(|e| panic!("the test cluster did not start: {e:#}"));
    let dir = tempfile::tempdir().unwrap();
    let path = |n: &str| dir.path().join(n);
    let p = |n: &str| path(n).to_str().unwrap().to_string();
    alice.identity.write(&path("alice.id"), false).unwrap();
    let o = flowmesh()
        .args([
            "gen",
            "--flows",
            "200",
            "--concurrent",
            "20",
            "--span",
            "20",
            "--out",
            &p("t.pcap"),
        ])
        .output()
        .unwrap();
    assert!(o.status.success());
    // DNS is allowed; everything else the exporter saw violates the ACL. A traffic rule on
    // the exporter, and one on an interface of another.
    std::fs::write(
        path("policy.toml"),
        "[acl]\nrules = \"\"\"\nUDP;*;*;53\n\"\"\"\n\n[[traffic_rule]]\ntarget = \"exporter:127.0.0.1\"\nmetric = \"total\"\nfrequency = \"5min\"\nkind = \"volume\"\nbound = \"above\"\nvalue = \"1KB\"\n\n[[traffic_rule]]\ntarget = \"exporter:192.0.2.1:3\"\nmetric = \"total\"\nfrequency = \"5min\"\nkind = \"volume\"\nbound = \"above\"\nvalue = \"1B\"\n",
    )
    .unwrap();
    std::fs::write(
        path("sensor.toml"),
        format!(
            "name = \"router-sensor\"\nidentity = \"alice.id\"\nstate_dir = \"state\"\n{}\n[capture]\nnetflow = \"127.0.0.1:0\"\nnetflow_lateness_secs = 1\n[publish]\nheartbeat_secs = 1\n",
            support::broker_toml(&cluster, "alice", "router-sensor", "broker")
        ),
    )
    .unwrap();
    std::fs::write(
        path("collector.toml"),
        format!(
            "name = \"alice-collector\"\nidentity = \"alice.id\"\nstore = \"c.redb\"\npolicy = \"policy.toml\"\n{}\n[api]\nlisten = \"127.0.0.1:0\"\naccess_file = \"api.json\"\n",
            support::broker_toml(&cluster, "alice", "alice-collector", "broker")
        ),
    )
    .unwrap();
    let exe = Path::new(env!("CARGO_BIN_EXE_flowmesh"));
    let mut collector = spawn_logged(
        exe,
        &["collector", "--config", &p("collector.toml")],
        &path("collector.log"),
    );
    let mut sensor = spawn_logged(
        exe,
        &["sensor", "--config", &p("sensor.toml")],
        &path("sensor.log"),
    );
    let log = |n: &str| std::fs::read_to_string(path(n)).unwrap_or_default();
    let mut port = None;
    flowmesh_testkit::process::wait_for(
        "the sensor's NetFlow socket",
        Duration::from_secs(30),
        || {
            port = log("sensor.log")
                .lines()
                .find(|l| l.contains("receiving NetFlow/IPFIX"))
                .and_then(|l| l.split("127.0.0.1:").nth(1))
                .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|p| p.parse::<u16>().ok());
            port.is_some()
        },
    );
    // The collector creates the stream; the sensor's batches wait in its outbox until then.
    softflowd(
        dir.path(),
        &path("t.pcap"),
        port.unwrap(),
        &["-v", "10", "-A", "milli"],
    );
    let alerts = |kind: &str| -> Vec<serde_json::Value> {
        let o = flowmesh()
            .args([
                "alerts",
                "--config",
                &p("collector.toml"),
                "--type",
                kind,
                "--limit",
                "0",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    let logs = || {
        format!(
            "sensor:\n{}\ncollector:\n{}",
            log("sensor.log"),
            log("collector.log")
        )
    };
    let seen = std::cell::Cell::new(0);
    let acl = wait_until(
        "100 ACL alerts on exported flows",
        Duration::from_secs(60),
        || {
            let acl = alerts("acl_violation");
            seen.set(acl.len());
            (acl.len() >= 100).then_some(acl)
        },
        || format!("{} so far\n{}", seen.get(), logs()),
    );
    let tcp = acl.iter().filter(|a| a["flow"]["l4"] == "TCP").count();
    assert!(tcp >= 100, "{tcp} TCP violations");
    for a in &acl {
        assert_eq!(a["flow"]["exporter"], "127.0.0.1", "{a}");
        assert_ne!(a["flow"]["server_port"], 53, "DNS is allowed: {a}");
    }
    let rules = wait_until(
        "the exporter's traffic-rule alert",
        Duration::from_secs(60),
        || Some(alerts("traffic_rule")).filter(|r| !r.is_empty()),
        logs,
    );
    assert!(
        rules.iter().all(|r| r["target"] == "exporter:127.0.0.1"),
        "{rules:?}"
    );
    // The flow store keeps where each flow came from.
    let o = flowmesh()
        .args([
            "flows-search",
            "--config",
            &p("collector.toml"),
            "--port",
            "443",
            "--limit",
            "5",
        ])
        .output()
        .unwrap();
    let found = String::from_utf8_lossy(&o.stdout);
    assert!(
        found.contains("\"exporter\":\"127.0.0.1\""),
        "{found}\n{}",
        log("collector.log")
    );
    // A sensor with only a NetFlow input runs until it is stopped.
    assert!(
        sensor.try_wait().unwrap().is_none() && !log("sensor.log").contains("sensor stopped"),
        "{}",
        log("sensor.log")
    );
    flowmesh_testkit::process::terminate(&mut sensor);
    flowmesh_testkit::process::terminate(&mut collector);
    assert!(
        log("sensor.log").contains("exporter totals"),
        "{}",
        log("sensor.log")
    );
}
