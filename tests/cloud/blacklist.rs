//! The cloud shares a blacklist between users and reads nothing of theirs.

use super::*;

#[test]
fn the_cloud_shares_a_blacklist_between_users_and_reads_nothing_of_theirs() {
    let alice = TestUser::new(
        "alice",
        &[("alice-collector", Collector), ("alice-cli", Collector)],
    );
    let bob = TestUser::new(
        "bob",
        &[("bob-collector", Collector), ("bob-cli", Collector)],
    );
    let cluster = Cluster::start(&[&alice, &bob], START)
        .unwrap_or_else(|e| panic!("the test cluster did not start: {e:#}"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let cloud = flowmesh_link::Identity::generate(flowmesh_link::IdentityKind::Cloud);
    cloud.write(&path("cloud.id"), false).unwrap();
    alice.identity.write(&path("alice.id"), false).unwrap();
    bob.identity.write(&path("bob.id"), false).unwrap();
    let cloud_hex = cloud.public().to_hex();
    let signing_hex = flowmesh_link::cloud_sig::public_key(&cloud).to_hex();
    // The cloud's keys in DNS.
    let (ns, _dns) = rt.block_on(flowmesh_testkit::dns::serve_txt(&[
        ("cloud._pubkey.cloud.test.", vec![cloud_hex.as_str()]),
        ("cloud._signkey.cloud.test.", vec![signing_hex.as_str()]),
    ]));
    let cloud_table = format!("[cloud]\ndomain = \"cloud.test\"\nname_server = \"{ns}\"\n");

    std::fs::write(
        path("manager.toml"),
        format!(
            "identity = \"cloud.id\"\ncluster = \"{}\"\nrebroadcast_secs = 1\n{}\n{}\n[api]\nlisten = \"127.0.0.1:0\"\ntls = true\naccess_file = \"manager-api.json\"\n",
            cluster.dir().display(),
            broker_toml(&cluster, "CLOUD", "manager", "broker"),
            broker_toml(&cluster, "SYS", "manager", "system"),
        ),
    )
    .unwrap();
    let mut manager = spawn(
        &[
            "manager",
            "--config",
            path("manager.toml").to_str().unwrap(),
        ],
        &path("manager.log"),
    );
    // Restricted hosts reaching the internet alert; alice's collector reports those addresses.
    std::fs::write(
        path("policy.toml"),
        "[host_policy]\nrestricted = [\"10.0.0.0/8\"]\n",
    )
    .unwrap();
    let mut collectors = Vec::new();
    for (user, id, extra) in [
        ("alice", "alice.id", "report_alerts = [\"host_policy\"]\n"),
        ("bob", "bob.id", ""),
    ] {
        let name = format!("{user}-collector");
        std::fs::write(
            path(&format!("{name}.toml")),
            format!(
                "name = \"{name}\"\nidentity = \"{id}\"\nstore = \"{name}.redb\"\npolicy = \"policy.toml\"\n{}\n{cloud_table}{extra}\n[api]\nlisten = \"127.0.0.1:0\"\naccess_file = \"{name}-api.json\"\n",
                broker_toml(&cluster, user, &name, "broker"),
            ),
        )
        .unwrap();
        collectors.push(spawn(
            &[
                "collector",
                "--config",
                path(&format!("{name}.toml")).to_str().unwrap(),
            ],
            &path(&format!("{name}.log")),
        ));
    }
    let manager_cfg = path("manager.toml");
    let manager_cfg = manager_cfg.to_str().unwrap();

    // The registry: both users' collectors, online, with their region and node.
    wait_for(
        "both collectors in the registry",
        Duration::from_secs(30),
        || {
            let o = flowmesh(&["cloud", "instances", "--config", manager_cfg, "--json"]);
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            let rows: Vec<serde_json::Value> = text
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            ["alice", "bob"].iter().all(|u| {
                rows.iter().any(|r| {
                    r["user"] == *u
                        && r["instance"] == format!("{u}-collector")
                        && r["online"] == true
                        && r["region"].as_str().is_some_and(|s| s == "eu" || s == "us")
                        && r["node"].as_str().is_some_and(|s| !s.is_empty())
                })
            })
        },
    );

    // The manager's API is served over TLS with a certificate it made itself (key 0600).
    let access: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path("manager-api.json")).unwrap()).unwrap();
    assert!(
        access["url"]
            .as_str()
            .unwrap()
            .starts_with("https://127.0.0.1:")
    );
    use std::os::unix::fs::PermissionsExt;
    let key_mode = std::fs::metadata(path("manager.api-key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600);

    // The enrolled users, with their keys and instances.
    let users = ok(flowmesh(&["cloud", "users", "--config", manager_cfg]));
    let users: Vec<serde_json::Value> = users
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(users.len(), 2);
    assert_eq!(users[0]["user"], "alice");
    assert_eq!(users[0]["public_key"], alice.identity.public().to_hex());
    assert_eq!(
        users[0]["enrolled"],
        serde_json::json!(["alice-cli", "alice-collector"])
    );
    assert!(users[0]["online"].as_u64().unwrap() >= 1);

    // Everything the manager's inbox receives, as the CLOUD account sees it (to replay later).
    let (inbox_tx, inbox_rx) = std::sync::mpsc::channel();
    let inbox_spy = rt.block_on(async {
        let spy = connect(
            &cluster.broker_config("CLOUD", "manager", None),
            "inbox-spy",
        )
        .await
        .unwrap();
        let mut sub = spy.subscribe("flowmesh.cloud.inbox.>").await.unwrap();
        spy.flush().await.unwrap();
        tokio::spawn(async move {
            while let Some(m) = futures::StreamExt::next(&mut sub).await {
                let _ = inbox_tx.send(m);
            }
        });
        spy
    });

    // Alice reports an attacker by hand; a private address is refused.
    std::fs::write(
        path("alice-cli.toml"),
        format!(
            "name = \"alice-cli\"\nidentity = \"alice.id\"\n{}\n{cloud_table}",
            broker_toml(&cluster, "alice", "alice-cli", "broker")
        ),
    )
    .unwrap();
    let cli = path("alice-cli.toml");
    let cli = cli.to_str().unwrap();
    let accepted = flowmesh(&[
        "report-ip",
        "--config",
        cli,
        "185.220.101.1",
        "--reason",
        "ssh scanner",
    ]);
    assert!(
        accepted.status.success(),
        "{}",
        String::from_utf8_lossy(&accepted.stderr)
    );
    let private = flowmesh(&["report-ip", "--config", cli, "192.168.1.9"]);
    assert!(!private.status.success());
    assert!(String::from_utf8_lossy(&private.stderr).contains("not a public address"));
    let listed = ok(flowmesh(&["cloud", "blacklist", "--config", manager_cfg]));
    assert!(
        listed.contains("185.220.101.1") && !listed.contains("192.168.1.9"),
        "{listed}"
    );

    // Alice's collector reports on its own: a restricted host reaches 185.220.101.77.
    rt.block_on(async {
        // Batches as if from alice's sensor: injected by an unrestricted client of her account.
        let client = connect(
            &cluster.insider_config("alice", "alice-cli", None),
            "alice-cli",
        )
        .await
        .unwrap();
        let js = jetstream::new(client);
        let deadline = Instant::now() + Duration::from_secs(30);
        while js.get_stream(streams::FLOWS).await.is_err() {
            assert!(Instant::now() < deadline, "no FLOWS stream for alice");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // First a flow whose "server" only answered a SYN-ACK (a spoofed SYN could cause
        // it): never reported. Then one with a whole handshake: reported.
        let spoofed = batch_with(
            &alice.identity,
            "alice-sensor",
            1,
            [185, 220, 101, 99],
            false,
        );
        let proven = batch_to(&alice.identity, "alice-sensor", 2, [185, 220, 101, 77]);
        for body in [spoofed, proven] {
            js.publish("flowmesh.flows.alice-sensor", body.into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
    });
    wait_for(
        "the collector's own report in the blacklist",
        Duration::from_secs(30),
        || {
            let o = flowmesh(&["cloud", "blacklist", "--config", manager_cfg]);
            String::from_utf8_lossy(&o.stdout).contains("185.220.101.77")
        },
    );
    let listed = ok(flowmesh(&["cloud", "blacklist", "--config", manager_cfg]));
    assert!(
        !listed.contains("185.220.101.99"),
        "an address without a handshake was reported: {listed}"
    );
    // The operator lists one more address itself: that reaches every user at once.
    let added = flowmesh(&[
        "cloud",
        "blacklist",
        "add",
        "198.51.99.250",
        "--reason",
        "operator's word",
        "--config",
        manager_cfg,
    ]);
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    assert!(
        !flowmesh(&[
            "cloud",
            "blacklist",
            "add",
            "10.1.1.1",
            "--config",
            manager_cfg
        ])
        .status
        .success(),
        "a private address listed"
    );

    // Bob's side: forged "cloud" broadcasts naming 9.9.9.9 — sealed by bob's own key, by a
    // stranger's, and by someone holding bob's key who claims to be the cloud (with a bogus
    // signature, and with none) — then traffic to 9.9.9.9, to the operator's address and to
    // alice's attacker. Only the operator's alerts: alice alone cannot list for bob, and no
    // forgery is applied.
    let bob_cfg = path("bob-collector.toml");
    let bob_cfg = bob_cfg.to_str().unwrap().to_string();
    let bob_alerts = || {
        let o = flowmesh(&[
            "alerts",
            "--config",
            &bob_cfg,
            "--type",
            "blacklisted_host",
            "--limit",
            "0",
        ]);
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    rt.block_on(async {
        use prost::Message;
        let client = connect(&cluster.insider_config("bob", "bob-cli", None), "bob-cli")
            .await
            .unwrap();
        let forged = flowmesh_proto::v1::BlacklistBroadcast {
            entries: vec![flowmesh_proto::v1::BlacklistEntry {
                ip: "9.9.9.9".into(),
                reason: "forged".into(),
                expires_us: i64::MAX,
                reporters: 1,
            }],
            issued_us: i64::MAX - 1,
            ..Default::default()
        }
        .encode_to_vec();
        let subject = flowmesh_link::subject::cloud::broadcast_to("bob");
        let stranger = flowmesh_link::Identity::generate(flowmesh_link::IdentityKind::Cloud);
        let signed_badly = flowmesh_proto::v1::CloudSigned {
            body: forged.clone(),
            signature: flowmesh_link::cloud_sig::sign(&stranger, &subject, &forged).to_vec(),
        }
        .encode_to_vec();
        let kci = flowmesh_link::Sealer::impersonating(&bob.identity, cloud.public());
        let forgeries = [
            flowmesh_link::Sealer::new(&bob.identity, bob.identity.public())
                .seal(&subject, &signed_badly)
                .unwrap(),
            flowmesh_link::Sealer::new(&stranger, bob.identity.public())
                .seal(&subject, &signed_badly)
                .unwrap(),
            kci.seal(&subject, &signed_badly).unwrap(),
            kci.seal(&subject, &forged).unwrap(),
        ];
        for sealed in forgeries {
            client
                .publish(subject.clone(), sealed.into())
                .await
                .unwrap();
        }
        client.flush().await.unwrap();
        let js = jetstream::new(client);
        // The collector creates the streams; wait for them.
        let deadline = Instant::now() + Duration::from_secs(30);
        while js.get_stream(streams::FLOWS).await.is_err() {
            assert!(Instant::now() < deadline, "no FLOWS stream for bob");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Until bob's collector has the cloud's list, its alert does not come: send a batch to
        // each address each round.
        let mut seq = 0;
        let mut send_round = async |servers: &[[u8; 4]]| {
            for server in servers {
                seq += 1;
                let body = batch_to(&bob.identity, "bob-sensor", seq, *server);
                js.publish("flowmesh.flows.bob-sensor", body.into())
                    .await
                    .unwrap()
                    .await
                    .unwrap();
            }
        };
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            send_round(&[[9, 9, 9, 9], [185, 220, 101, 1], [198, 51, 99, 250]]).await;
            let found = bob_alerts();
            if found.contains("198.51.99.250") {
                assert!(
                    !found.contains("9.9.9.9"),
                    "a forged broadcast was applied: {found}"
                );
                assert!(
                    !found.contains("185.220.101.1"),
                    "one user's report reached another user: {found}"
                );
                let a: serde_json::Value =
                    serde_json::from_str(found.lines().next().unwrap()).unwrap();
                assert_eq!(a["source"], "cloud");
                assert_eq!(a["side"], "server");
                assert_eq!(a["reason"], "operator's word");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "bob's collector never applied the cloud's blacklist"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        // The manager's account sees none of bob's traffic, and a stored batch does not open
        // with the cloud's key.
        let spy = connect(&cluster.broker_config("CLOUD", "manager", None), "spy")
            .await
            .unwrap();
        let mut all = spy.subscribe(">").await.unwrap();
        spy.flush().await.unwrap();
        let body = batch_to(&bob.identity, "bob-sensor", 1000, [1, 1, 1, 1]);
        js.publish("flowmesh.flows.bob-sensor", body.clone().into())
            .await
            .unwrap()
            .await
            .unwrap();
        // Three seconds of everything the cloud account can see (its own broadcasts go on).
        let until = Instant::now() + Duration::from_secs(3);
        while let Ok(Some(m)) =
            tokio::time::timeout_at(until, futures::StreamExt::next(&mut all)).await
        {
            assert!(
                m.subject.starts_with("flowmesh.cloud."),
                "the cloud account saw {}",
                m.subject
            );
        }
        assert!(
            flowmesh_link::Opener::new(&cloud)
                .open("flowmesh.flows.bob-sensor", &body)
                .is_err()
        );
    });

    // Bob reports alice's attacker too: two users agree, so it reaches bob's collector, with
    // the first reporter's reason.
    std::fs::write(
        path("bob-cli.toml"),
        format!(
            "name = \"bob-cli\"\nidentity = \"bob.id\"\n{}\n{cloud_table}",
            broker_toml(&cluster, "bob", "bob-cli", "broker")
        ),
    )
    .unwrap();
    let bob_cli = path("bob-cli.toml");
    let seconded = flowmesh(&[
        "report-ip",
        "--config",
        bob_cli.to_str().unwrap(),
        "185.220.101.1",
        "--reason",
        "mine",
    ]);
    assert!(
        seconded.status.success(),
        "{}",
        String::from_utf8_lossy(&seconded.stderr)
    );
    rt.block_on(async {
        let client = connect(&cluster.insider_config("bob", "bob-cli", None), "bob-cli")
            .await
            .unwrap();
        let js = jetstream::new(client);
        let deadline = Instant::now() + Duration::from_secs(40);
        for seq in 5000.. {
            let body = batch_to(&bob.identity, "bob-sensor", seq, [185, 220, 101, 1]);
            js.publish("flowmesh.flows.bob-sensor", body.into())
                .await
                .unwrap()
                .await
                .unwrap();
            let found = bob_alerts();
            if let Some(line) = found.lines().find(|l| l.contains("185.220.101.1")) {
                let a: serde_json::Value = serde_json::from_str(line).unwrap();
                assert_eq!(a["reason"], "ssh scanner");
                assert_eq!(a["reporters"], 2);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "two users' report never reached bob"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });

    replays::the_restarted_manager_keeps_its_state_and_refuses_a_replayed_report(
        &rt,
        &mut manager,
        dir.path(),
        manager_cfg,
        &inbox_rx,
        &inbox_spy,
    );
    replays::a_restarted_collector_refuses_a_replayed_broadcast(
        &rt,
        &cluster,
        &bob,
        &cloud,
        dir.path(),
        &mut collectors[1],
    );

    // Bob's collector goes away: the registry says so.
    terminate(&mut collectors[1]);
    wait_for(
        "bob-collector offline in the registry",
        Duration::from_secs(30),
        || {
            let o = flowmesh(&[
                "cloud",
                "instances",
                "--config",
                manager_cfg,
                "--user",
                "bob",
                "--json",
            ]);
            String::from_utf8_lossy(&o.stdout).lines().any(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap_or_default();
                v["instance"] == "bob-collector" && v["online"] == false
            })
        },
    );
    // Revoked: it leaves the registry. Tools that borrowed credentials (alice-cli's report-ip,
    // bob-cli's insider connections) were never instances.
    ok(flowmesh(&[
        "revoke",
        "--cluster",
        cluster.dir().to_str().unwrap(),
        "--user",
        "bob",
        "--instance",
        "bob-collector",
    ]));
    wait_for(
        "bob-collector gone from the registry",
        Duration::from_secs(30),
        || {
            let o = ok(flowmesh(&[
                "cloud",
                "instances",
                "--config",
                manager_cfg,
                "--json",
            ]));
            !o.contains("\"bob-collector\"") && o.contains("\"alice-collector\"")
        },
    );
    let listed = ok(flowmesh(&[
        "cloud",
        "instances",
        "--config",
        manager_cfg,
        "--json",
    ]));
    assert!(
        !listed.contains("-cli\"") && !listed.contains("tester"),
        "a tool listed as an instance: {listed}"
    );
    let bob_log = std::fs::read_to_string(path("bob-collector.log")).unwrap();
    let bob_log = bob_log + &std::fs::read_to_string(path("bob-collector-2.log")).unwrap();
    // Each forgery refused for its own reason: bob's key, a stranger's, and the cloud claimed
    // by a holder of bob's key (a signature by the wrong key, and none at all).
    for reason in [
        "not sealed by the cloud",
        "is not trusted here",
        "the cloud signature does not verify",
        "not a signed message",
    ] {
        assert!(bob_log.contains(reason), "no {reason:?} in:\n{bob_log}");
    }
    terminate(&mut collectors[0]);
    terminate(&mut manager);
}
