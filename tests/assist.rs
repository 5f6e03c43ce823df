//! Remote assistance end to end, through the CLI, against a real cluster, manager and
//! collector: the owner enables a session, a support engineer with only the key reaches the
//! collector's API from the other region (as admin, or refused without it), the session shows
//! in status, alerts and `instances`, survives a restart of the collector, and ends at once
//! when disabled. Another user cannot open one.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use flowmesh_testkit::process::wait_for;
use flowmesh_testkit::{Cluster, Collector, TestUser, die_with_parent};

fn flowmesh() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flowmesh"));
    die_with_parent(&mut cmd);
    cmd
}

fn run(args: &[&str]) -> std::process::Output {
    flowmesh().args(args).output().unwrap()
}

fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(
        o.status.success(),
        "flowmesh {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn spawn(args: &[&str], log: &Path) -> Child {
    flowmesh()
        .args(args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

/// `flowmesh assist connect -` with `key` on stdin; the child and the address it listens on.
/// Its temporary directory (where the session's credentials go) is `log` with `.tmp`.
fn connect(key: &str, access: &Path, brokers: &[String], log: &Path) -> (Child, String) {
    let tmp = log.with_extension("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut args = vec![
        "assist".to_string(),
        "connect".into(),
        "-".into(),
        "--access-file".into(),
        access.display().to_string(),
    ];
    for b in brokers {
        args.extend(["--broker".into(), b.clone()]);
    }
    let mut child = flowmesh()
        .args(&args)
        .env("TMPDIR", &tmp)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(key.as_bytes()).unwrap();
    drop(stdin);
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| {
            panic!(
                "assist connect said {line:?}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            )
        })
        .to_string();
    (child, addr)
}

fn stop(child: &mut Child) {
    assert!(flowmesh_testkit::process::terminate(child), "did not stop");
}

/// Stops an `assist connect` started with `log` (SIGTERM): it leaves no credentials behind.
fn stop_connect(child: &mut Child, log: &Path) {
    stop(child);
    let tmp = log.with_extension("tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "assist connect left {left:?} behind");
}

#[test]
fn a_support_engineer_with_only_the_key_reaches_the_api_for_the_session_only() {
    let alice = TestUser::new(
        "alice",
        &[("alice-collector", Collector), ("alice-cli", Collector)],
    );
    let bob = TestUser::new("bob", &[("bob-cli", Collector)]);
    let cluster = Cluster::start(&[&alice, &bob], Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("the test cluster did not start: {e:#}"));
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let p = |name: &str| path(name).display().to_string();
    let cloud = flowmesh_link::Identity::generate(flowmesh_link::IdentityKind::Cloud);
    cloud.write(&path("cloud.id"), false).unwrap();
    alice.identity.write(&path("alice.id"), false).unwrap();
    bob.identity.write(&path("bob.id"), false).unwrap();
    let broker = |user: &str, name: &str, table: &str, region: Option<&str>| {
        let b = cluster.broker_config(user, name, region);
        toml::to_string(&toml::Table::from_iter([(
            table.to_string(),
            toml::Value::try_from(b).unwrap(),
        )]))
        .unwrap()
    };
    std::fs::write(
        path("manager.toml"),
        format!(
            "identity = \"cloud.id\"\ncluster = \"{}\"\n{}\n{}\n[api]\nlisten = \"127.0.0.1:0\"\naccess_file = \"manager-api.json\"\n",
            cluster.dir().display(),
            broker("CLOUD", "manager", "broker", None),
            broker("SYS", "manager", "system", None),
        ),
    )
    .unwrap();
    let mut manager = spawn(
        &["manager", "--config", &p("manager.toml")],
        &path("manager.log"),
    );
    std::fs::write(path("policy.toml"), "[acl]\nrules = \"\"\n").unwrap();
    // The collector runs in eu; the cloud's keys are pinned (no DNS in this test).
    let collector_toml = format!(
        "name = \"alice-collector\"\nidentity = \"alice.id\"\nstore = \"collector.redb\"\npolicy = \"policy.toml\"\n{}\n[cloud]\npinned = \"{}\"\npinned_signing = \"{}\"\n[api]\nlisten = \"127.0.0.1:0\"\naccess_file = \"collector-api.json\"\n",
        broker("alice", "alice-collector", "broker", Some("eu")),
        cloud.public().to_hex(),
        flowmesh_link::cloud_sig::public_key(&cloud).to_hex(),
    );
    std::fs::write(path("collector.toml"), &collector_toml).unwrap();
    let start_collector = || {
        spawn(
            &["collector", "--config", &p("collector.toml")],
            &path("collector.log"),
        )
    };
    let mut collector = start_collector();
    for (user, name, id) in [
        ("alice", "alice-cli", "alice.id"),
        ("bob", "bob-cli", "bob.id"),
    ] {
        std::fs::write(
            path(&format!("{name}.toml")),
            format!(
                "name = \"{name}\"\nidentity = \"{id}\"\n{}",
                broker(user, name, "broker", Some("us"))
            ),
        )
        .unwrap();
    }
    let (alice_cli, bob_cli) = (p("alice-cli.toml"), p("bob-cli.toml"));
    let owner = |action: &str, extra: &[&str]| {
        let mut args = vec![
            "assist",
            action,
            "--config",
            &alice_cli,
            "--instance",
            "alice-collector",
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    wait_for("the collector's API", Duration::from_secs(60), || {
        run(&["instances", "--config", &p("collector.toml")])
            .status
            .success()
    });

    // Another user cannot open a session on alice's collector: the request stays in bob's
    // account, where no such instance listens.
    let o = run(&[
        "assist",
        "enable",
        "--config",
        &bob_cli,
        "--instance",
        "alice-collector",
    ]);
    assert!(
        !o.status.success(),
        "bob opened a session on alice's collector"
    );

    // Enabled as admin: one key.
    let o = owner("enable", &["--admin", "--ttl", "1h"]);
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stderr),
        std::fs::read_to_string(path("manager.log")).unwrap_or_default()
    );
    let key = String::from_utf8(o.stdout).unwrap().trim().to_string();
    assert!(key.starts_with("fmassist1_"), "{key}");
    // The support engineer, from the other region, with nothing but the key.
    let us = cluster.urls(Some("us"));
    let (mut support, _addr) = connect(&key, &path("support.json"), &us, &path("support.log"));
    let tunnelled = p("support.json");
    let listed = ok(&["instances", "--access", &tunnelled, "--json"]);
    assert!(listed.contains("\"remote_assistance\""), "{listed}");
    let status: serde_json::Value = serde_json::from_str(&ok(&[
        "assist",
        "status",
        "--config",
        &alice_cli,
        "--instance",
        "alice-collector",
    ]))
    .unwrap();
    assert_eq!(status["active"], true);
    assert_eq!(status["admin"], true);
    assert_eq!(status["requested_by"], "alice-cli");
    assert!(status["connections"].as_u64().unwrap() >= 1, "{status}");
    assert!(status["bytes_to_service"].as_u64().unwrap() > 0, "{status}");
    // A second session cannot be opened over the first.
    assert!(!owner("enable", &[]).status.success());

    // The collector restarts: the session goes on, the same key still works.
    stop(&mut collector);
    collector = start_collector();
    wait_for(
        "the API through the tunnel again",
        Duration::from_secs(60),
        || run(&["instances", "--access", &tunnelled]).status.success(),
    );
    assert!(
        std::fs::read_to_string(path("collector.log"))
            .unwrap()
            .contains("remote assistance resumed")
    );

    // A damaged key is refused with a reason, before anything is tried.
    let damaged = &key[..key.len() - 9];
    let o = run(&["assist", "connect", damaged]);
    assert!(!o.status.success());
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(
        said.contains("damaged") || said.contains("does not"),
        "{said}"
    );

    // Disabled: the tunnelled API stops answering at once.
    let o = owner("disable", &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run(&["instances", "--access", &tunnelled]);
    assert!(
        !o.status.success(),
        "the API answered after the session was disabled"
    );
    stop_connect(&mut support, &path("support.log"));

    // Without admin: the API answers through the tunnel, and asks for credentials.
    let o = owner("enable", &["--ttl", "10m"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let key = String::from_utf8(o.stdout).unwrap().trim().to_string();
    let (mut support, _) = connect(&key, &path("support2.json"), &us, &path("support2.log"));
    let o = run(&["instances", "--access", &p("support2.json")]);
    assert!(!o.status.success());
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(said.contains("API token"), "{said}");
    assert!(owner("disable", &[]).status.success());
    stop_connect(&mut support, &path("support2.log"));

    // Every step is an alert, stored and published like the others.
    let alerts = ok(&[
        "alerts",
        "--config",
        &p("collector.toml"),
        "--type",
        "remote_assistance",
        "--limit",
        "0",
    ]);
    let events: Vec<(String, String)> = alerts
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|a| {
            (
                a["event"].as_str().unwrap_or_default().to_string(),
                a["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let seen = |e: &str, r: &str| events.iter().filter(|(x, y)| x == e && y == r).count();
    assert_eq!(seen("started", ""), 2, "{alerts}");
    assert!(seen("connected", "") >= 2, "{alerts}");
    assert_eq!(seen("ended", "disabled"), 2, "{alerts}");
    assert!(alerts.contains("\"admin\":true") && alerts.contains("\"expires\""));
    stop(&mut collector);
    stop(&mut manager);
}
