//! Software updates against a real cluster (eu: 3 nodes, us: 2) with the manager's release
//! service: a sensor in `us` is updated from a CLI in `eu` to a signed release and reports the
//! new version; a wrong signature, a tampered binary, a downgrade and another user's request
//! are refused and leave it running what it ran; a release that fails to start is rolled back
//! by itself and reported as an alert; a rollout stops at its first failure.
//!
//! The two builds are the test binary and a copy stamped with another version (`flowmesh
//! release stamp`), both stripped as a release would be (62 MB instead of 317).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use flowmesh_collector::store::{AlertQuery, Store};
use flowmesh_link::async_nats::jetstream;
use flowmesh_link::connect::connect;
use flowmesh_testkit::process::wait_for;
use flowmesh_testkit::{Cluster, Collector, Sensor, TestUser, die_with_parent};
use support::{broker_toml_in, spawn_logged};

const START: Duration = Duration::from_secs(90);

fn run(exe: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(exe);
    die_with_parent(&mut cmd).args(args).output().unwrap()
}

fn flowmesh(args: &[&str]) -> Output {
    run(Path::new(env!("CARGO_BIN_EXE_flowmesh")), args)
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Kills every process whose binary lives under `dir` (the updated sensor, its watchdogs, and
/// the restored sensor a watchdog started, which are not this test's children).
struct KillUnder(PathBuf);

impl Drop for KillUnder {
    fn drop(&mut self) {
        let Ok(procs) = std::fs::read_dir("/proc") else {
            return;
        };
        for p in procs.flatten() {
            let Ok(pid) = p.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if std::fs::read_link(p.path().join("exe")).is_ok_and(|e| e.starts_with(&self.0)) {
                // SAFETY: kill(2) on a pid read from /proc; at worst it is gone already.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

#[test]
fn a_sensor_in_another_region_updates_to_a_signed_release_and_bad_ones_never_stay() {
    let alice = TestUser::new(
        "alice",
        &[
            ("alice-sensor", Sensor),
            ("alice-collector", Collector),
            ("alice-cli", Collector),
        ],
    );
    let bob = TestUser::new("bob", &[("bob-cli", Collector)]);
    let cluster = Cluster::start(&[&alice, &bob], START)
        .unwrap_or_else(|e| panic!("the test cluster did not start: {e:#}"));
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let p = |name: &str| path(name).to_str().unwrap().to_string();
    let bin = path("bin");
    std::fs::create_dir(&bin).unwrap();
    let _cleanup = KillUnder(bin.clone());
    // The sensor runs from a binary of its own (the update replaces it), stripped.
    let exe = bin.join("flowmesh");
    std::fs::copy(env!("CARGO_BIN_EXE_flowmesh"), &exe).unwrap();
    let strip = Command::new("strip").arg(&exe).status().unwrap();
    assert!(strip.success(), "strip failed");
    let running = String::from_utf8_lossy(&run(&exe, &["--version"]).stdout)
        .trim()
        .trim_start_matches("flowmesh ")
        .to_string();
    assert_eq!(running, env!("CARGO_PKG_VERSION"));

    // Keys: the cloud's, the release key (pinned by the sensor) and a stranger's.
    let cloud = flowmesh_link::Identity::generate(flowmesh_link::IdentityKind::Cloud);
    cloud.write(&path("cloud.id"), false).unwrap();
    alice.identity.write(&path("alice.id"), false).unwrap();
    bob.identity.write(&path("bob.id"), false).unwrap();
    let pin = |out: String| out.split('"').nth(1).unwrap().to_string();
    let release_key = pin(ok(flowmesh(&[
        "release",
        "keygen",
        "--out",
        &p("release.key"),
    ])));
    let other_key = pin(ok(flowmesh(&[
        "release",
        "keygen",
        "--out",
        &p("other.key"),
    ])));
    assert_ne!(release_key, other_key);

    std::fs::write(
        path("manager.toml"),
        format!(
            "identity = \"cloud.id\"\ncluster = \"{}\"\n{}\n{}\n[api]\nlisten = \"off\"\n[console]\nlisten = \"off\"\n",
            cluster.dir().display(),
            broker_toml_in(&cluster, "CLOUD", "manager", Some("eu"), "broker"),
            support::broker_toml(&cluster, "SYS", "manager", "system"),
        ),
    )
    .unwrap();
    let mut f = std::io::BufWriter::new(std::fs::File::create(path("traffic.pcap")).unwrap());
    flowmesh_sensor::synth::generate(200, 20, 20, &mut f).unwrap();
    drop(f);
    std::fs::write(path("policy.toml"), "").unwrap();
    std::fs::write(
        path("alice-sensor.toml"),
        format!(
            "name = \"alice-sensor\"\nidentity = \"alice.id\"\nstate_dir = \"sensor-state\"\n{}\n[capture]\nfile = \"traffic.pcap\"\nspeed = 1\nloop = true\n[publish]\nheartbeat_secs = 1\n[update]\nrelease_key = \"{release_key}\"\nhealth_secs = 30\n",
            broker_toml_in(&cluster, "alice", "alice-sensor", Some("us"), "broker")
        ),
    )
    .unwrap();
    std::fs::write(
        path("alice-collector.toml"),
        format!(
            "name = \"alice-collector\"\nidentity = \"alice.id\"\nstore = \"c.redb\"\npolicy = \"policy.toml\"\n{}\n[api]\nlisten = \"127.0.0.1:0\"\naccess_file = \"c-api.json\"\n",
            broker_toml_in(&cluster, "alice", "alice-collector", Some("eu"), "broker")
        ),
    )
    .unwrap();
    for (file, user, id) in [
        ("alice-cli.toml", "alice", "alice.id"),
        ("bob-cli.toml", "bob", "bob.id"),
    ] {
        std::fs::write(
            path(file),
            format!(
                "identity = \"{id}\"\n{}",
                broker_toml_in(&cluster, user, &format!("{user}-cli"), Some("eu"), "broker")
            ),
        )
        .unwrap();
    }
    let flowmesh_exe = Path::new(env!("CARGO_BIN_EXE_flowmesh"));
    let mut manager = spawn_logged(
        flowmesh_exe,
        &["manager", "--config", &p("manager.toml")],
        &path("manager.log"),
    );
    let mut collector = spawn_logged(
        flowmesh_exe,
        &["collector", "--config", &p("alice-collector.toml")],
        &path("collector.log"),
    );
    let mut sensor = spawn_logged(
        &exe,
        &["sensor", "--config", &p("alice-sensor.toml")],
        &path("sensor.log"),
    );
    let sensor_log = || std::fs::read_to_string(path("sensor.log")).unwrap_or_default();
    let cli = p("alice-cli.toml");
    let control = |cfg: &str, args: &[&str]| {
        let mut all = vec!["control", "--config", cfg];
        all.extend_from_slice(args);
        flowmesh(&all)
    };
    let version = || {
        let o = control(&cli, &["--instance", "alice-sensor", "version"]);
        o.status.success().then(|| {
            let v: serde_json::Value =
                serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap();
            v["version"].as_str().unwrap().to_string()
        })
    };
    wait_for("alice-sensor answering", Duration::from_secs(60), || {
        version().is_some()
    });
    assert_eq!(version().unwrap(), running);

    // Releases: 0.1.0 (what runs), 0.2.0 and 0.2.1 signed with the release key, 0.3.0 with
    // another, 0.4.0 a "binary" that cannot start.
    let publish = |file: &Path, version: &str, key: &str| {
        ok(flowmesh(&[
            "release",
            "publish",
            file.to_str().unwrap(),
            "--version",
            version,
            "--key",
            &p(key),
            "--config",
            &p("manager.toml"),
            "--notes",
            "test",
        ]))
    };
    let stamped = |version: &str| {
        let out = path(&format!("flowmesh-{version}"));
        ok(flowmesh(&[
            "release",
            "stamp",
            exe.to_str().unwrap(),
            "--version",
            version,
            "--out",
            out.to_str().unwrap(),
        ]));
        out
    };
    publish(&exe, &running, "release.key");
    publish(&stamped("0.2.0"), "0.2.0", "release.key");
    publish(&stamped("0.2.1"), "0.2.1", "release.key");
    publish(&stamped("0.3.0"), "0.3.0", "other.key");
    let mut broken = b"#!/bin/sh\necho 'this release cannot start' >&2\nexit 3\n# ".to_vec();
    broken.extend(flowmesh_update::stamp::field_for("0.4.0").unwrap());
    std::fs::write(path("broken"), &broken).unwrap();
    publish(&path("broken"), "0.4.0", "release.key");
    // Publishing refuses a version the binary does not report.
    let wrong = flowmesh(&[
        "release",
        "publish",
        &p("broken"),
        "--version",
        "9.9.9",
        "--key",
        &p("release.key"),
        "--config",
        &p("manager.toml"),
    ]);
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("reports version 0.4.0"));
    // Users see the list, and which signatures hold.
    let listed = ok(flowmesh(&[
        "release",
        "list",
        "--config",
        &cli,
        "--release-key",
        &release_key,
    ]));
    let listed: Vec<serde_json::Value> = listed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 5, "{listed:?}");
    for r in &listed {
        let expect = if r["version"] == "0.3.0" {
            "INVALID"
        } else {
            "valid"
        };
        assert_eq!(r["signature"], expect, "{r}");
    }

    // The broker operator (or whoever holds the cloud's account) swaps 0.2.1's bytes.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = connect(
            &cluster.broker_config("CLOUD", "manager", Some("eu")),
            "attacker",
        )
        .await
        .unwrap();
        let store = jetstream::new(client)
            .get_object_store("releases")
            .await
            .unwrap();
        let name = format!("0.2.1/{}", flowmesh_update::manifest::platform());
        let info = store.info(&name).await.unwrap();
        let mut bytes = std::fs::read(path("flowmesh-0.2.1")).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        let meta = jetstream::object_store::ObjectMetadata {
            name: name.clone(),
            metadata: info.metadata.clone(),
            ..Default::default()
        };
        store.put(meta, &mut bytes.as_slice()).await.unwrap();
    });

    let refused = |args: &[&str], why: &str, runs: &str| {
        let mut all = vec!["--instance", "alice-sensor", "update"];
        all.extend_from_slice(args);
        let o = control(&cli, &all);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(!o.status.success(), "update {args:?} was accepted: {err}");
        assert!(err.contains(why), "update {args:?}: {err}");
        assert_eq!(version().as_deref(), Some(runs), "{}", sensor_log());
    };
    refused(
        &["--version", "0.3.0"],
        "signature does not verify",
        &running,
    );
    refused(
        &["--version", "0.2.1"],
        "does not match its signed SHA-256",
        &running,
    );
    refused(&["--version", "7.0.0"], "no release 7.0.0", &running);
    // Another user cannot even reach the sensor.
    let from_bob = control(
        &p("bob-cli.toml"),
        &["--instance", "alice-sensor", "update", "--version", "0.2.0"],
    );
    assert!(!from_bob.status.success());
    assert_eq!(version().as_deref(), Some(running.as_str()));

    // The update: installed beside the running binary, restarted into, reported healthy.
    let done = ok(control(
        &cli,
        &["--instance", "alice-sensor", "update", "--version", "0.2.0"],
    ));
    let done: serde_json::Value = serde_json::from_str(done.trim()).unwrap();
    assert_eq!(done["to"], "0.2.0");
    assert_eq!(done["from"], running.as_str());
    assert_eq!(version().as_deref(), Some("0.2.0"));
    assert!(
        sensor.try_wait().unwrap().is_none(),
        "the update ended the process"
    );
    let trial = bin.join("flowmesh.trial.json");
    wait_for("the watchdog's verdict", Duration::from_secs(60), || {
        !trial.exists()
    });
    assert!(
        sensor_log().contains("the new version is healthy"),
        "{}",
        sensor_log()
    );
    assert_eq!(
        flowmesh_update::stamp::read(&std::fs::read(bin.join("flowmesh.previous")).unwrap())
            .unwrap(),
        running
    );

    // A downgrade needs saying so.
    refused(&["--version", &running], "--allow-downgrade", "0.2.0");

    // A release that cannot start: installed, started, dead, rolled back by the watchdog.
    let o = control(
        &cli,
        &["--instance", "alice-sensor", "update", "--version", "0.4.0"],
    );
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("rolled back"), "{err}");
    assert_eq!(version().as_deref(), Some("0.2.0"));
    assert!(
        sensor_log().contains("this release cannot start"),
        "{}",
        sensor_log()
    );
    assert!(
        sensor_log().contains("update: rolling back"),
        "{}",
        sensor_log()
    );
    assert_eq!(
        flowmesh_update::stamp::read(&std::fs::read(&exe).unwrap()).unwrap(),
        "0.2.0"
    );
    assert_eq!(std::fs::read(bin.join("flowmesh.failed")).unwrap(), broken);

    // Rollouts: one at a time, stopping at the first failure.
    let o = control(&cli, &["--instances", "ghost,alice-sensor", "restart"]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success());
    assert!(
        err.contains("rollout stopped at ghost") && err.contains("not asked: alice-sensor"),
        "{err}"
    );
    let all = ok(control(&cli, &["--all", "version"]));
    assert!(all.contains("0.2.0"), "{all}");

    // The collector saw the new version come up, and raised the failure: wait for the
    // rollback's own alert (the refusals' came earlier).
    let collector_cfg = p("alice-collector.toml");
    wait_for(
        "the rollback's update_failed alert",
        Duration::from_secs(30),
        || {
            let o = flowmesh(&[
                "alerts",
                "--config",
                &collector_cfg,
                "--type",
                "update_failed",
            ]);
            o.status.success()
                && String::from_utf8_lossy(&o.stdout).contains("\"version\":\"0.4.0\"")
        },
    );
    flowmesh_testkit::process::terminate(&mut collector);
    flowmesh_testkit::process::terminate(&mut manager);
    let store = Store::open(&path("c.redb")).unwrap();
    let alerts = store.alerts(&AlertQuery::default()).unwrap();
    // Each failure the heartbeats carried, refusals included (those a second apart at least:
    // a heartbeat carries the latest).
    let failed = |version: &str| {
        alerts
            .iter()
            .find(|a| a["type"] == "update_failed" && a["version"] == version)
            .unwrap_or_else(|| panic!("no update_failed alert for {version}: {alerts:#?}"))
    };
    assert_eq!(failed("0.4.0")["running"], "0.2.0");
    assert!(
        failed("0.4.0")["error"]
            .as_str()
            .unwrap()
            .contains("exited before it reported healthy")
    );
    assert!(
        failed(&running)["error"]
            .as_str()
            .unwrap()
            .contains("--allow-downgrade")
    );
    assert!(
        alerts.iter().any(|a| a["type"] == "instance_status"
            && a["status"] == "restarted"
            && a["version"] == "0.2.0"),
        "{alerts:#?}"
    );
    let _ = sensor.kill();
}
