//! The cloud side against real nats-server clusters: enrollment and revocation while the
//! cluster runs, the manager's registry, the cloud inbox and shared blacklists, remote actions.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use flowmesh_link::async_nats::jetstream;
use flowmesh_link::connect::{BrokerConfig, connect};
use flowmesh_link::streams;
use flowmesh_testkit::process::wait_for;
use flowmesh_testkit::{Cluster, Collector, Sensor, TestUser, die_with_parent};
use support::broker_toml;
use tokio::time::Instant;

const START: Duration = Duration::from_secs(90);

fn flowmesh(args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flowmesh"));
    die_with_parent(&mut cmd).args(args).output().unwrap()
}

fn ok(o: std::process::Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `instance`'s `[broker]` pointed at one node only, with its credentials at `creds`.
fn one_node(
    cluster: &Cluster,
    user: &str,
    instance: &str,
    url: &str,
    creds: &Path,
) -> BrokerConfig {
    let mut b = cluster.broker_config(user, instance, None);
    b.urls = vec![url.to_string()];
    b.creds_file = creds.to_path_buf();
    b.connect_timeout_secs = 5;
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_enrolled_while_the_cluster_runs_publishes_at_once_and_revocation_holds_everywhere()
{
    let alice = TestUser::new("alice", &[("alice-1", Sensor)]);
    let cluster = Cluster::start(&[&alice], START)
        .unwrap_or_else(|e| panic!("the test cluster did not start: {e:#}"));
    let dir = cluster.dir().to_str().unwrap().to_string();
    // Alice is connected throughout: enrolling others must not disturb her.
    let alice_client = connect(&cluster.broker_config("alice", "alice-1", None), "alice-1")
        .await
        .unwrap();
    let connects = || {
        alice_client
            .statistics()
            .connects
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let alice_connects = connects();

    let carol = flowmesh_link::Identity::generate(flowmesh_link::IdentityKind::User);
    let out = ok(flowmesh(&[
        "enroll",
        "--cluster",
        &dir,
        "--user",
        "carol",
        "--public-key",
        &carol.public().to_hex(),
        "--instance",
        "carol-1",
        "--role",
        "collector",
    ]));
    assert!(out.starts_with("carol-1\t"), "{out}");
    // The new account works at once, JetStream included, on every node.
    let seed = cluster.dir().join("creds/carol/carol-1.creds");
    let kept = tempfile::tempdir().unwrap();
    let seed_copy = kept.path().join("carol-1.creds");
    std::fs::copy(&seed, &seed_copy).unwrap();
    let urls = cluster.urls(None);
    for url in &urls {
        let c = connect(
            &one_node(&cluster, "carol", "carol-1", url, &seed),
            "carol-1",
        )
        .await
        .unwrap_or_else(|e| panic!("carol refused by {url} after enrollment: {e}"));
        c.flush().await.unwrap();
    }
    let carol_client = connect(&cluster.broker_config("carol", "carol-1", None), "carol-1")
        .await
        .unwrap();
    let js = jetstream::new(carol_client.clone());
    streams::ensure_streams(&js, 3).await.unwrap();
    let ack = js
        .publish("flowmesh.alerts.carol-1", "first".into())
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(ack.stream, streams::ALERTS);
    // A second instance for an existing user needs no key.
    ok(flowmesh(&[
        "enroll",
        "--cluster",
        &dir,
        "--user",
        "carol",
        "--instance",
        "carol-2",
    ]));
    // Enrolling the same instance twice is refused, saying why.
    let again = flowmesh(&[
        "enroll",
        "--cluster",
        &dir,
        "--user",
        "carol",
        "--instance",
        "carol-2",
    ]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already has an instance carol-2"));

    // Revoked: the live connection is closed and every node refuses the key.
    ok(flowmesh(&[
        "revoke",
        "--cluster",
        &dir,
        "--user",
        "carol",
        "--instance",
        "carol-1",
    ]));
    let deadline = Instant::now() + Duration::from_secs(20);
    while carol_client.connection_state() == flowmesh_link::async_nats::connection::State::Connected
    {
        assert!(
            Instant::now() < deadline,
            "carol-1's connection survived its revocation"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for url in &urls {
        let refused = connect(
            &one_node(&cluster, "carol", "carol-1", url, &seed_copy),
            "carol-1",
        )
        .await;
        assert!(refused.is_err(), "{url} still lets a revoked instance in");
    }
    assert!(!seed.exists(), "the revoked credentials are deleted");
    // Alice never noticed: same connection throughout.
    alice_client.flush().await.unwrap();
    assert_eq!(
        connects(),
        alice_connects,
        "alice was reconnected by the enrollments"
    );
}

fn spawn(args: &[&str], log: &Path) -> std::process::Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flowmesh"));
    die_with_parent(&mut cmd)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

fn terminate(child: &mut std::process::Child) {
    flowmesh_testkit::process::terminate(child);
}

/// A flow batch from `instance` with one TCP flow from 10.0.0.5 to `server`, sealed by `who`.
fn batch_to(who: &flowmesh_link::Identity, instance: &str, seq: u64, server: [u8; 4]) -> Vec<u8> {
    batch_with(who, instance, seq, server, true)
}

/// A sealed batch of one TLS flow from 10.0.0.5 to `server`; `handshake`: the TCP handshake
/// was seen from the client's side (otherwise only a SYN-ACK came back, as to a spoofed SYN).
fn batch_with(
    who: &flowmesh_link::Identity,
    instance: &str,
    seq: u64,
    server: [u8; 4],
    handshake: bool,
) -> Vec<u8> {
    use prost::Message;
    let now = flowmesh_link::envelope::now_micros() as i64;
    let batch = flowmesh_proto::v1::FlowBatch {
        instance: instance.into(),
        sequence: seq,
        boot_id: vec![7; 8],
        watermark_us: 0,
        flows: vec![flowmesh_proto::v1::Flow {
            l4: "TCP".into(),
            client_ip: vec![10, 0, 0, 5],
            client_port: 40000 + seq as u32,
            server_ip: server.to_vec(),
            server_port: 443,
            l7: "TLS".into(),
            c2s_packets: 3,
            c2s_bytes: 300,
            s2c_packets: 3,
            s2c_bytes: 3000,
            first_seen_us: now - 1_000_000,
            last_seen_us: now,
            c2s_tcp_flags: if handshake { 0x18 | 0x02 } else { 0x04 },
            s2c_tcp_flags: 0x12,
            ..Default::default()
        }],
    };
    let subject = format!("flowmesh.flows.{instance}");
    flowmesh_link::Sealer::new(who, who.public())
        .seal(&subject, &batch.encode_to_vec())
        .unwrap()
}

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

    // The manager restarts: the blacklist and what it knew of instances are still there.
    terminate(&mut manager);
    manager = spawn(
        &["manager", "--config", manager_cfg],
        &path("manager-2.log"),
    );
    wait_for(
        "the restarted manager's blacklist",
        Duration::from_secs(30),
        || {
            let o = flowmesh(&["cloud", "blacklist", "--config", manager_cfg]);
            let out = String::from_utf8_lossy(&o.stdout).into_owned();
            out.contains("185.220.101.1") && out.contains("185.220.101.77")
        },
    );
    // Alice's first report, captured on its way in, sent again: the restarted manager
    // remembers it and refuses it as a replay.
    let first_report = inbox_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the spy saw alice's report");
    rt.block_on(async {
        let answer = tokio::time::timeout(
            Duration::from_secs(10),
            inbox_spy.request(first_report.subject.clone(), first_report.payload.clone()),
        )
        .await;
        assert!(
            matches!(answer, Ok(Ok(_))),
            "the manager answers (a refusal)"
        );
    });
    wait_for(
        "the replayed report refused",
        Duration::from_secs(10),
        || {
            let log = std::fs::read_to_string(path("manager-2.log")).unwrap_or_default();
            log.contains("inbox message refused") && log.contains("replayed")
        },
    );
    let known = ok(flowmesh(&[
        "cloud",
        "instances",
        "--config",
        manager_cfg,
        "--user",
        "alice",
        "--json",
    ]));
    assert!(
        known.contains("\"alice-collector\""),
        "forgotten across the restart: {known}"
    );

    // A broadcast bob's collector applied, captured on its way, sent again after the
    // collector restarted: refused as a replay (its journal remembers it).
    let captured = rt.block_on(async {
        let client = connect(&cluster.insider_config("bob", "bob-cli", None), "bob-cli")
            .await
            .unwrap();
        let mut sub = client
            .subscribe("flowmesh.cloud.broadcast.>")
            .await
            .unwrap();
        client.flush().await.unwrap();
        let m = tokio::time::timeout(Duration::from_secs(30), futures::StreamExt::next(&mut sub))
            .await
            .expect("a broadcast within 30 s")
            .unwrap();
        (client, m)
    });
    // Applied by the running collector (it logs each issue it applies) before it stops.
    let issued = {
        use prost::Message;
        let mut opener = flowmesh_link::Opener::new(&bob.identity);
        opener.trust(cloud.public());
        let signed = flowmesh_proto::v1::CloudSigned::decode(
            opener
                .open_stored(&captured.1.subject, &captured.1.payload)
                .unwrap()
                .payload
                .as_slice(),
        )
        .unwrap();
        flowmesh_proto::v1::BlacklistBroadcast::decode(signed.body.as_slice())
            .unwrap()
            .issued_us
    };
    wait_for(
        "bob's collector to apply the captured broadcast",
        Duration::from_secs(30),
        || {
            std::fs::read_to_string(path("bob-collector.log"))
                .unwrap_or_default()
                .contains(&format!("issued_us={issued}"))
        },
    );
    terminate(&mut collectors[1]);
    let bob_toml = path("bob-collector.toml");
    collectors[1] = spawn(
        &["collector", "--config", bob_toml.to_str().unwrap()],
        &path("bob-collector-2.log"),
    );
    wait_for(
        "bob's collector following the cloud again",
        Duration::from_secs(30),
        || {
            std::fs::read_to_string(path("bob-collector-2.log"))
                .unwrap_or_default()
                .contains("following the cloud's blacklist")
        },
    );
    rt.block_on(async {
        let (client, m) = &captured;
        client
            .publish(m.subject.clone(), m.payload.clone())
            .await
            .unwrap();
        client.flush().await.unwrap();
    });
    wait_for(
        "the replayed broadcast refused",
        Duration::from_secs(30),
        || {
            let log = std::fs::read_to_string(path("bob-collector-2.log")).unwrap_or_default();
            log.contains("a blacklist broadcast refused") && log.contains("replayed message id")
        },
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
