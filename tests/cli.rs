//! The `flowmesh` binary as a user runs it: keygen, broker init, and a sealed hello between two
//! instances of one user in different regions of a real cluster.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use flowmesh_link::Identity;
use flowmesh_testkit::{Cluster, TestUser};

fn flowmesh() -> Command {
    Command::new(env!("CARGO_BIN_EXE_flowmesh"))
}

#[test]
fn keygen_writes_0600_refuses_overwrite_and_prints_the_user_id() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("me.id");
    let out = flowmesh()
        .args(["-q", "keygen", "--out"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        printed.trim(),
        Identity::load(&path).unwrap().public().to_hex()
    );
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let again = flowmesh()
        .args(["-q", "keygen", "--out"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));

    let cloud = dir.path().join("cloud.id");
    let out = flowmesh()
        .args([
            "-q",
            "keygen",
            "--cloud",
            "--domain",
            "example.org",
            "--out",
        ])
        .arg(&cloud)
        .output()
        .unwrap();
    let lines = String::from_utf8(out.stdout).unwrap();
    let id = Identity::load(&cloud).unwrap();
    let key = id.public().to_hex();
    let signing = flowmesh_link::cloud_sig::public_key(&id).to_hex();
    assert_eq!(
        lines.trim(),
        format!(
            "cloud._pubkey.example.org. IN TXT \"{key}\"\ncloud._signkey.example.org. IN TXT \"{signing}\""
        )
    );
}

#[test]
fn broker_init_writes_a_cluster_and_refuses_to_overwrite_it() {
    let dir = tempfile::tempdir().unwrap();
    let topo = dir.path().join("topology.toml");
    std::fs::copy(
        flowmesh_testkit::package_dir().join("broker-config/topology.toml"),
        &topo,
    )
    .unwrap();
    for u in ["alice", "bob"] {
        assert!(
            flowmesh()
                .args(["-q", "keygen", "--out"])
                .arg(dir.path().join(format!("{u}.id")))
                .status()
                .unwrap()
                .success()
        );
    }
    let out_dir = dir.path().join("cluster");
    let init = |extra: &[&str]| {
        flowmesh()
            .args(["-q", "broker", "init", "--topology"])
            .arg(&topo)
            .arg("--out")
            .arg(&out_dir)
            .args(extra)
            .output()
            .unwrap()
    };
    let out = init(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 5);
    let conf = std::fs::read_to_string(out_dir.join("nodes/us-2.conf")).unwrap();
    assert_eq!(
        conf.matches("min_version: \"1.3\"").count(),
        4,
        "client, route, gateway and WebSocket TLS"
    );
    // Browsers only from the console's origin.
    assert!(
        conf.contains("websocket {")
            && conf.contains("allowed_origins: [\"https://127.0.0.1:9443\"]"),
        "{conf}"
    );
    assert!(conf.contains("handshake_first: true"));
    // Operator mode: the node trusts the operator and its resolver; no user is listed.
    assert!(conf.contains("operator: \"") && conf.contains("type: full"));
    assert!(!conf.contains("users") && !conf.contains("alice"));
    let alice = Identity::load(&dir.path().join("alice.id")).unwrap();
    let record = std::fs::read_to_string(out_dir.join("accounts/alice.json")).unwrap();
    assert!(record.contains(&alice.public().to_hex()), "{record}");
    assert!(record.contains("\"role\": \"collector\""), "{record}");
    for secret in [
        "secrets/ca-key.pem",
        "secrets/eu-1-key.pem",
        "secrets/operator.nk",
        "secrets/accounts/alice.nk",
        "creds/alice/eu-sensor.creds",
    ] {
        let mode = std::fs::metadata(out_dir.join(secret))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{secret}");
    }
    assert!(
        !init(&[]).status.success(),
        "overwrote a generated cluster without --force"
    );
    assert!(init(&["--force"]).status.success());
}

#[test]
fn hello_crosses_regions_sealed_through_the_cli() {
    let alice = TestUser::new(
        "alice",
        &[
            ("eu-sensor", flowmesh_testkit::Sensor),
            ("us-collector", flowmesh_testkit::Collector),
        ],
    );
    let cluster = Cluster::start(&[&alice], Duration::from_secs(90)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let id = dir.path().join("alice.id");
    alice.identity.write(&id, false).unwrap();
    let creds = |i: &str| cluster.dir().join(format!("creds/alice/{i}.toml"));
    let urls = |r: &str| {
        cluster
            .urls(Some(r))
            .into_iter()
            .flat_map(|u| ["--url".to_string(), u])
            .collect::<Vec<_>>()
    };

    let listener = flowmesh()
        .args([
            "-q",
            "hello",
            "listen",
            "--instance",
            "us-collector",
            "--timeout",
            "60",
            "--identity",
        ])
        .arg(&id)
        .arg("--broker")
        .arg(creds("us-collector"))
        .args(urls("us"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let sent = flowmesh()
        .args([
            "-q",
            "hello",
            "send",
            "--instance",
            "eu-sensor",
            "--timeout",
            "60",
            "--text",
            "hi",
            "--identity",
        ])
        .arg(&id)
        .arg("--broker")
        .arg(creds("eu-sensor"))
        .args(urls("eu"))
        .output()
        .unwrap();
    let received = listener.wait_with_output().unwrap();
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    assert!(received.status.success());
    let got: serde_json::Value = serde_json::from_slice(&received.stdout).unwrap();
    assert_eq!(got["text"], "hi");
    assert!(got["sent_via"].as_str().unwrap().starts_with("eu-"));
    assert!(got["received_via"].as_str().unwrap().starts_with("us-"));
    assert_eq!(got["sender_user"], alice.identity.public().to_hex());
    let answer: serde_json::Value = serde_json::from_slice(&sent.stdout).unwrap();
    assert_eq!(answer["answered_by"], "us-collector");
}

#[test]
fn an_unreachable_broker_gets_a_clear_error_saying_what_to_check() {
    let dir = tempfile::tempdir().unwrap();
    let topo = dir.path().join("topology.toml");
    let port = flowmesh_testkit::free_ports(1).unwrap()[0];
    let key = Identity::generate(flowmesh_link::IdentityKind::User)
        .public()
        .to_hex();
    std::fs::write(
        &topo,
        format!("base_port = {port}\n[[region]]\nname = \"eu\"\nnodes = 1\n[[user]]\nname = \"alice\"\npublic_key = \"{key}\"\nsensors = [\"a\"]\n"),
    )
    .unwrap();
    let out_dir = dir.path().join("cluster");
    let init = flowmesh()
        .args(["-q", "broker", "init", "--topology"])
        .arg(&topo)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(init.status.success());
    let id = dir.path().join("alice.id");
    assert!(
        flowmesh()
            .args(["-q", "keygen", "--out"])
            .arg(&id)
            .status()
            .unwrap()
            .success()
    );
    // The cluster was generated but never started: nothing listens on its port.
    let out = flowmesh()
        .args([
            "-q",
            "hello",
            "send",
            "--instance",
            "a",
            "--timeout",
            "5",
            "--identity",
        ])
        .arg(&id)
        .arg("--broker")
        .arg(out_dir.join("creds/alice/a.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("could not connect to any of"), "{err}");
    assert!(err.contains("cluster.sh status"), "{err}");
}

#[test]
fn policy_validate_exits_1_with_every_error_and_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = flowmesh_testkit::package_dir().join("collector/tests/design_example.toml");
    let good = good.to_str().unwrap();
    let ok = flowmesh()
        .args(["policy", "validate", good])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[acl]\nrules = \"\"\"\nTCP;*;*;NOPE\nICMP;*\n\"\"\"\n[[profile]]\nname = \"x\"\nbpf = \"tcp port eighty\"\n").unwrap();
    let out = flowmesh()
        .args(["policy", "validate"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for line in [":3: error:", ":4: error:", ":8: error:"] {
        assert!(err.contains(line), "missing {line} in {err}");
    }
    assert!(!err.contains("warning"), "{err}");
}

#[test]
fn check_store_keeps_timeseries_once_and_series_reads_them() {
    use flowmesh_sensor::synth::*;
    let dir = tempfile::tempdir().unwrap();
    // Two DNS exchanges 10 minutes apart, and an ACL that allows none of it.
    let capture = dir.path().join("c.pcap");
    let q = eth_udp(40000, 53, &dns_query("a.example"));
    let r = eth_udp_back(53, 40000, &dns_response("a.example"));
    let q2 = eth_udp(40001, 53, &dns_query("b.example"));
    let bytes = (q.len() + r.len()) as u64;
    std::fs::write(&capture, pcap_at(1, &[(0, q), (0, r), (600, q2)])).unwrap();
    let policy = dir.path().join("p.toml");
    std::fs::write(&policy, "[acl]\nrules = \"\"\"\nTCP;*;*;443\n\"\"\"\n").unwrap();
    let store = dir.path().join("s.redb");
    let check = || {
        let out = flowmesh()
            .args(["check", "--instance", "lab", "--policy"])
            .arg(&policy)
            .arg("--store")
            .arg(&store)
            .arg(&capture)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().lines().count()
    };
    assert_eq!(check(), 2, "two flows, two acl_violation alerts");
    assert_eq!(check(), 2, "printed again");
    let series = |args: &[&str]| {
        let out = flowmesh()
            .args(["series", "--instance", "lab", "--store"])
            .arg(&store)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let names = series(&[]);
    assert_eq!(
        names.lines().collect::<Vec<_>>(),
        ["host:10.0.0.5", "host:192.168.1.20", "l7:DNS", "total"]
    );
    let five: Vec<serde_json::Value> = series(&["--series", "total"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(five.len(), 2, "two 5-minute buckets");
    assert_eq!(
        five[0]["bytes"], bytes,
        "stored once although checked twice"
    );
    assert_eq!(five[0]["start"], "2023-11-14T22:10:00.000000Z");
    let hour = series(&["--series", "l7:DNS", "--resolution", "1h"]);
    assert_eq!(hour.lines().count(), 1, "{hour}");
    let bad = flowmesh()
        .args(["series", "--store"])
        .arg(dir.path().join("missing.redb"))
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("check --store"));
}
