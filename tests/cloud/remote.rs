//! Remote actions reach only their own user's instances.

use super::*;

#[test]
fn remote_actions_reach_only_their_own_user_s_instances() {
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
    alice.identity.write(&path("alice.id"), false).unwrap();
    bob.identity.write(&path("bob.id"), false).unwrap();
    let mut f = std::io::BufWriter::new(std::fs::File::create(path("traffic.pcap")).unwrap());
    flowmesh_sensor::synth::generate(200, 20, 20, &mut f).unwrap();
    drop(f);
    std::fs::write(path("policy.toml"), "").unwrap();
    std::fs::write(
        path("alice-sensor.toml"),
        format!(
            "name = \"alice-sensor\"\nidentity = \"alice.id\"\nstate_dir = \"sensor-state\"\n{}\n[capture]\nfile = \"traffic.pcap\"\nspeed = 1\nloop = true\n",
            broker_toml(&cluster, "alice", "alice-sensor", "broker")
        ),
    )
    .unwrap();
    std::fs::write(
        path("alice-collector.toml"),
        format!(
            "name = \"alice-collector\"\nidentity = \"alice.id\"\nstore = \"c.redb\"\npolicy = \"policy.toml\"\n{}\n[api]\nlisten = \"off\"\n",
            broker_toml(&cluster, "alice", "alice-collector", "broker")
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
                broker_toml(&cluster, user, &format!("{user}-cli"), "broker")
            ),
        )
        .unwrap();
    }
    let mut sensor = spawn(
        &[
            "sensor",
            "--config",
            path("alice-sensor.toml").to_str().unwrap(),
        ],
        &path("sensor.log"),
    );
    let mut collector = spawn(
        &[
            "collector",
            "--config",
            path("alice-collector.toml").to_str().unwrap(),
        ],
        &path("collector.log"),
    );
    let alice_cli = path("alice-cli.toml");
    let alice_cli = alice_cli.to_str().unwrap();
    let control = |cfg: &str, instance: &str, action: &str| {
        flowmesh(&["control", "--config", cfg, "--instance", instance, action])
    };

    // The sensor reports its configuration once it is up.
    let mut report = None;
    wait_for("alice-sensor answering", Duration::from_secs(30), || {
        let o = control(alice_cli, "alice-sensor", "report_config");
        if o.status.success() {
            report = Some(String::from_utf8_lossy(&o.stdout).into_owned());
        }
        report.is_some()
    });
    let report: serde_json::Value = serde_json::from_str(report.unwrap().trim()).unwrap();
    assert_eq!(report["name"], "alice-sensor");
    assert!(
        report["capture"]["file"]
            .as_str()
            .unwrap()
            .ends_with("traffic.pcap")
    );
    // Restart its capture.
    ok(control(alice_cli, "alice-sensor", "restart_capture"));
    wait_for("the capture restarted", Duration::from_secs(15), || {
        std::fs::read_to_string(path("sensor.log"))
            .unwrap_or_default()
            .contains("capture restarted")
    });
    // Restart the process: a clean stop (outbox kept, `stopping` said), then the same program
    // again in the same process.
    let log = || std::fs::read_to_string(path("sensor.log")).unwrap_or_default();
    let starts = log().matches("sensor starting").count();
    ok(control(alice_cli, "alice-sensor", "restart"));
    wait_for("the sensor started again", Duration::from_secs(30), || {
        log().matches("sensor starting").count() > starts
    });
    assert!(log().contains("sensor stopped") && log().contains("restarting (remote action)"));
    assert!(
        sensor.try_wait().unwrap().is_none(),
        "the restart ended the process:\n{}",
        log()
    );
    wait_for(
        "alice-sensor answering again",
        Duration::from_secs(30),
        || {
            control(alice_cli, "alice-sensor", "report_config")
                .status
                .success()
        },
    );
    let wrong = control(alice_cli, "alice-sensor", "reload_policy");
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("not something a sensor does"));
    // The collector reloads its policy: a broken one is refused with its line, a good one taken.
    wait_for("alice-collector answering", Duration::from_secs(30), || {
        control(alice_cli, "alice-collector", "report_config")
            .status
            .success()
    });
    std::fs::write(
        path("policy.toml"),
        "[acl]\nrules = \"\"\"\nTCP;*;*;NOPE\n\"\"\"\n",
    )
    .unwrap();
    let broken = control(alice_cli, "alice-collector", "reload_policy");
    assert!(!broken.status.success());
    let err = String::from_utf8_lossy(&broken.stderr);
    assert!(
        err.contains("policy.toml:3") && err.contains("NOPE"),
        "{err}"
    );
    std::fs::write(
        path("policy.toml"),
        "[acl]\nrules = \"\"\"\nTCP;*;*;443\n\"\"\"\n",
    )
    .unwrap();
    ok(control(alice_cli, "alice-collector", "reload_policy"));
    assert!(
        std::fs::read_to_string(path("collector.log"))
            .unwrap()
            .contains("policy reloaded")
    );

    // Bob cannot reach alice's instances: his account has no such subject.
    let from_bob = control(
        path("bob-cli.toml").to_str().unwrap(),
        "alice-sensor",
        "report_config",
    );
    assert!(!from_bob.status.success());
    // Nor can the cloud's account.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let cloud = connect(&cluster.broker_config("CLOUD", "manager", None), "manager")
            .await
            .unwrap();
        let fake = flowmesh_link::Identity::generate(flowmesh_link::IdentityKind::Cloud);
        let report = || flowmesh_proto::control::Ask {
            action: "report_config",
            args: "",
            from: "test",
        };
        let r = flowmesh_proto::control::request(&cloud, &fake, "alice-sensor", report()).await;
        assert!(r.is_err(), "the cloud reached alice's sensor");
        // A request that does reach the sensor (alice's own credentials) but is sealed by
        // bob's key is refused without an answer.
        let inside = connect(
            &cluster.broker_config("alice", "alice-cli", None),
            "alice-cli",
        )
        .await
        .unwrap();
        let r = flowmesh_proto::control::request(&inside, &bob.identity, "alice-sensor", report())
            .await;
        assert!(r.is_err(), "a request sealed by another user was answered");
    });
    let log = std::fs::read_to_string(path("sensor.log")).unwrap();
    assert!(log.contains("a remote action refused"), "{log}");
    terminate(&mut sensor);
    terminate(&mut collector);
}
