//! The distributed pipeline against a real federated cluster: sensor → JetStream → collector,
//! with faults. "Lost" is counted flow by flow: the policy's empty ACL makes every flow record
//! raise exactly one `acl_violation`, so the collector's stored alerts are the flows it stored,
//! compared with what the same capture yields offline.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use flowmesh_collector::store::Store;
use flowmesh_link::{Identity, Sealer, streams};
use flowmesh_testkit::process::{wait_exit, wait_for};
use support::*;

#[test]
fn every_flow_arrives_once_even_when_a_broker_node_dies_mid_stream() {
    let mut p = Pipeline::start(20);
    // Sensor and collector both start on eu-1 (they learn the other nodes from it).
    p.seed = p.cluster.url("eu-1");
    let mut collector = p.collector("collector-1");
    p.wait_consumers(&["collectors"]);
    // 20 s of traffic at 4x: about 5 s of publishing, into which eu-1 dies.
    let mut sensor = p.sensor(4.0, 20);
    wait_for(
        "sensor and collector on eu-1",
        Duration::from_secs(30),
        || {
            node_of(&p.cluster, "sensor-1").as_deref() == Some("eu-1")
                && node_of(&p.cluster, "collector-1").as_deref() == Some("eu-1")
        },
    );
    let paused = p.wait_mid_stream(&mut sensor);
    p.cluster.kill("eu-1").unwrap();
    drop(paused);
    // Both reconnect, to another node of their region.
    wait_for(
        "sensor and collector reconnected",
        Duration::from_secs(30),
        || {
            let (s, c) = (
                node_of(&p.cluster, "sensor-1"),
                node_of(&p.cluster, "collector-1"),
            );
            s.is_some_and(|n| n != "eu-1") && c.is_some_and(|n| n != "eu-1")
        },
    );
    assert!(
        wait_exit(&mut sensor, Duration::from_secs(120)),
        "sensor: {}",
        p.log("sensor")
    );
    p.wait_drained(Duration::from_secs(60));
    assert!(
        collector.try_wait().unwrap().is_none(),
        "the collector exited:\n{}",
        p.log("collector-1")
    );
    terminate(&mut collector);
    let (lost, dup) = p.compare_alerts(&["sensor-1"], &p.alerted(&["collector-1"]));
    assert_eq!(
        (lost, dup),
        (0, 0),
        "alerts: of {} flows; collector log:\n{}",
        p.flows.len(),
        p.log("collector-1")
    );
    let kept = p.compare(&p.stored_flows(&["collector-1"]));
    assert_eq!(kept, (0, 0), "the flow store: (lost, duplicated)");
}

#[test]
fn the_outbox_holds_everything_while_the_whole_cluster_is_down() {
    let mut p = Pipeline::start(5);
    let mut collector = p.collector("collector-1");
    // Make sure the streams and the collector's consumer exist before the outage (the
    // collector creates them).
    p.wait_consumers(&["collectors"]);
    let nodes = p.cluster.node_names();
    for n in &nodes {
        p.cluster.kill(n).unwrap();
    }
    let mut sensor = p.sensor(0.0, 50);
    // The sensor reads the whole capture into its outbox while nothing answers.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !p
        .log("sensor")
        .contains("input done; waiting for the broker")
    {
        assert!(
            Instant::now() < deadline,
            "sensor never spooled: {}",
            p.log("sensor")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for n in &nodes {
        p.cluster.restart(n).unwrap();
    }
    p.cluster.wait_serving(Duration::from_secs(60)).unwrap();
    assert!(
        wait_exit(&mut sensor, Duration::from_secs(120)),
        "sensor: {}",
        p.log("sensor")
    );
    p.wait_drained(Duration::from_secs(90));
    terminate(&mut collector);
    let (lost, dup) = p.compare_alerts(&["sensor-1"], &p.alerted(&["collector-1"]));
    assert_eq!(
        (lost, dup),
        (0, 0),
        "alerts; sensor log:\n{}\ncollector log:\n{}",
        p.log("sensor"),
        p.log("collector-1")
    );
    assert!(p.log("sensor").contains("outbox batches published"));
    let kept = p.compare(&p.stored_flows(&["collector-1"]));
    assert_eq!(kept, (0, 0), "the flow store: (lost, duplicated)");
}

#[test]
fn a_collector_killed_mid_stream_resumes_without_loss_or_duplicates() {
    let p = Pipeline::start(20);
    let mut first = p.collector("collector-1");
    p.wait_consumers(&["collectors"]);
    let mut sensor = p.sensor(4.0, 20);
    // Let it store some batches, then SIGKILL it while the sensor is still sending.
    let paused = p.wait_mid_stream(&mut sensor);
    first.kill().unwrap();
    first.wait().unwrap();
    drop(paused);
    let mut again = p.collector("collector-1");
    assert!(
        wait_exit(&mut sensor, Duration::from_secs(120)),
        "sensor: {}",
        p.log("sensor")
    );
    p.wait_drained(Duration::from_secs(60));
    terminate(&mut again);
    let (lost, dup) = p.compare_alerts(&["sensor-1"], &p.alerted(&["collector-1"]));
    assert_eq!(
        (lost, dup),
        (0, 0),
        "alerts; collector log:\n{}",
        p.log("collector-1")
    );
    let kept = p.compare(&p.stored_flows(&["collector-1"]));
    assert_eq!(
        kept,
        (0, 0),
        "the flow store after a SIGKILL: (lost, duplicated)"
    );
}

#[test]
fn two_collectors_share_the_work_and_injected_messages_are_rejected_and_counted() {
    let p = Pipeline::start(5);
    // Each collector serves its own sensor: every batch, and every replay of it, meets the
    // same store.
    let mut a = p.collector_of("collector-1", Some(&["sensor-1"]));
    let mut b = p.collector_of("collector-2", Some(&["sensor-2"]));
    // "Drained" looks only at consumers that exist: both must, before anything is sent.
    p.wait_consumers(&["collector-collector-1", "collector-collector-2"]);
    let mut s1 = p.sensor_named("sensor-1", 0.0, 50);
    let mut s2 = p.sensor_named("sensor-2", 0.0, 50);
    for (s, log) in [(&mut s1, "sensor"), (&mut s2, "sensor-2")] {
        assert!(
            wait_exit(s, Duration::from_secs(120)),
            "{log}: {}",
            p.log(log)
        );
    }
    // Inject: garbage, a batch sealed by another user's key, a genuine message replayed under a
    // new message id, and a genuine sensor-1 message moved to sensor-2's subject.
    rt().block_on(async {
        let js = p.js().await;
        let mut stream = js.get_stream(streams::FLOWS).await.unwrap();
        let genuine = stream.get_raw_message(1).await.unwrap();
        let bob = Identity::load(&p.path("bob.id")).unwrap();
        let forged = Sealer::new(&bob, p.user.identity.public())
            .seal("flowmesh.flows.sensor-1", b"\x0a\x08sensor-1")
            .unwrap();
        let publish = |subject: &str, body: Vec<u8>, id: &str| {
            let js = js.clone();
            let subject = subject.to_string();
            let id = id.to_string();
            async move {
                let mut h = flowmesh_link::async_nats::HeaderMap::new();
                h.insert("Nats-Msg-Id", id.as_str());
                js.publish_with_headers(subject, h, body.into())
                    .await
                    .unwrap()
                    .await
                    .unwrap();
            }
        };
        publish(
            "flowmesh.flows.sensor-1",
            b"not an envelope".to_vec(),
            "junk",
        )
        .await;
        publish("flowmesh.flows.sensor-1", forged, "forged").await;
        publish(
            "flowmesh.flows.sensor-1",
            genuine.payload.to_vec(),
            "replay",
        )
        .await;
        publish("flowmesh.flows.sensor-2", genuine.payload.to_vec(), "moved").await;
        let _ = &mut stream;
    });
    p.wait_drained(Duration::from_secs(60));
    terminate(&mut a);
    terminate(&mut b);
    let alerted = p.alerted(&["collector-1", "collector-2"]);
    let (lost, dup) = p.compare_alerts(&["sensor-1", "sensor-2"], &alerted);
    assert_eq!((lost, dup), (0, 0), "alerts: (lost, duplicated)");
    let kept = p.stored_flows(&["collector-1", "collector-2"]);
    assert_eq!(
        p.compare_for(&["sensor-1", "sensor-2"], &kept),
        (0, 0),
        "the flow store, replays and injections included: (lost, duplicated)"
    );
    // Both worked, and every injected message was rejected with its reason.
    let logs = p.log("collector-1") + &p.log("collector-2");
    let per = |n: &str| {
        Store::open(&p.path(&format!("{n}.redb")))
            .unwrap()
            .alert_count()
            .unwrap()
    };
    assert!(
        per("collector-1") > 0 && per("collector-2") > 0,
        "one collector did all the work"
    );
    for reason in ["malformed", "foreign", "forged", "replayed"] {
        assert!(
            logs.contains(&format!("reason=\"{reason}\""))
                || logs.contains(&format!("reason={reason}")),
            "no {reason} rejection in:\n{logs}"
        );
    }
    // The replayed copy is refused as a replay (its batch is stored already, and it came as a
    // new stream message, not a redelivery): never stored twice, which `dup == 0` shows.
}

#[test]
fn the_api_lists_instances_serves_and_streams_alerts_and_edits_the_policy_for_good() {
    let p = Pipeline::start(5);
    let config = p.path("collector-1.toml");
    let config = config.to_str().unwrap();
    let access = p.path("collector-1-api.json");
    let mut collector = p.collector("collector-1");
    wait_for("the API's access file", Duration::from_secs(30), || {
        access.exists()
    });
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&access).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // A follower of live status changes, started before the sensor.
    let mut follow = flowmesh()
        .args([
            "alerts",
            "--config",
            config,
            "--follow",
            "--type",
            "instance_status",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, followed) = std::sync::mpsc::channel::<String>();
    let out = follow.stdout.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // It says on stderr when it is subscribed.
    let mut err = std::io::BufReader::new(follow.stderr.take().unwrap());
    let mut said = String::new();
    std::io::BufRead::read_line(&mut err, &mut said).unwrap();
    assert!(said.contains("following"), "{said}");

    // Real time: 5 s of traffic, long enough to be seen online.
    let mut sensor = p.sensor(1.0, 50);
    // The instance shows up online.
    wait_for(
        "sensor-1 online in `instances`",
        Duration::from_secs(30),
        || {
            let o = cli(&["instances", "--config", config, "--json"]);
            o.status.success()
                && String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                    .any(|v| v["instance"] == "sensor-1" && v["status"] == "online")
        },
    );
    assert!(wait_exit(&mut sensor, Duration::from_secs(120)));
    p.wait_drained(Duration::from_secs(60));

    // Stored alerts: the newest five, oldest first; and all of them, one per flow.
    let five = stdout_of(&cli(&[
        "alerts",
        "--config",
        config,
        "--type",
        "acl_violation",
        "--limit",
        "5",
    ]));
    let five: Vec<serde_json::Value> = five
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(five.len(), 5);
    assert!(five.iter().all(|a| a["type"] == "acl_violation"));
    assert!(
        five.windows(2)
            .all(|w| w[0]["time"].as_str() <= w[1]["time"].as_str())
    );
    let all = stdout_of(&cli(&[
        "alerts",
        "--config",
        config,
        "--type",
        "acl_violation",
        "--instance",
        "sensor-1",
        "--limit",
        "0",
    ]));
    // Every flow, in one alert per record (a flow active at a 5-minute boundary has two).
    let flows: std::collections::BTreeSet<FlowKey> = all
        .lines()
        .map(|l| key_of(&serde_json::from_str::<serde_json::Value>(l).unwrap()["flow"]))
        .collect();
    assert_eq!(flows.len(), p.flows.len());
    assert!(all.lines().count() >= p.flows.len());

    // Stored flows through the API: every flow, newest first; one host's; the top protocols.
    let search = |args: &[&str]| -> Vec<serde_json::Value> {
        let mut all = vec!["flows-search", "--config", config];
        all.extend_from_slice(args);
        stdout_of(&cli(&all))
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let stored = search(&["--limit", "0", "--instance", "sensor-1"]);
    let keys: std::collections::BTreeSet<FlowKey> = stored.iter().map(key_of).collect();
    assert_eq!(keys, p.flows.keys().cloned().collect());
    assert!(
        stored
            .windows(2)
            .all(|w| w[0]["last_seen"].as_str() >= w[1]["last_seen"].as_str())
    );
    let host = stored[0]["client_ip"].as_str().unwrap().to_string();
    let of_host = search(&["--host", &host, "--limit", "0"]);
    let want = stored
        .iter()
        .filter(|f| f["client_ip"] == host.as_str() || f["server_ip"] == host.as_str())
        .count();
    assert_eq!(of_host.len(), want);
    let top = search(&["--top", "l7", "--by", "flows"]);
    let total: u64 = top.iter().map(|t| t["flows"].as_u64().unwrap()).sum();
    assert_eq!(total as usize, stored.len(), "{top:?}");

    // The follower saw sensor-1 come online, live.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.contains("\"online\"")) {
        let left = deadline.saturating_duration_since(Instant::now());
        match followed.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("no live status change; got {seen:?}"),
        }
    }
    let _ = follow.kill();
    let _ = follow.wait();

    // Policy edits through the API: a bad rule is refused with its line in the file it would
    // have made, and nothing changes.
    let before = std::fs::read_to_string(p.path("policy.toml")).unwrap();
    let bad = cli(&[
        "policy",
        "acl",
        "add",
        "TCP;nonsense;*;443",
        "--config",
        config,
    ]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("policy.toml:3: error:") && err.contains("nonsense"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(p.path("policy.toml")).unwrap(),
        before
    );
    // Good edits apply at once: all TCP is allowed now.
    stdout_of(&cli(&[
        "policy",
        "acl",
        "add",
        "TCP;*;*;*",
        "--config",
        config,
    ]));
    stdout_of(&cli(&[
        "policy",
        "host",
        "add",
        "restricted",
        "10.99.0.0/16",
        "--config",
        config,
    ]));
    stdout_of(&cli(&[
        "policy",
        "rule",
        "add",
        "--target",
        "host:*",
        "--frequency",
        "hour",
        "--kind",
        "volume",
        "--value",
        "10GB",
        "--config",
        config,
    ]));
    let file = std::fs::read_to_string(p.path("policy.toml")).unwrap();
    assert!(file.contains("TCP;*;*;*") && file.contains("10.99.0.0/16") && file.contains("10GB"));
    let mut s2 = p.sensor_named("sensor-2", 0.0, 50);
    assert!(wait_exit(&mut s2, Duration::from_secs(120)));
    p.wait_drained(Duration::from_secs(60));
    let from_s2 = stdout_of(&cli(&[
        "alerts",
        "--config",
        config,
        "--type",
        "acl_violation",
        "--instance",
        "sensor-2",
        "--limit",
        "0",
    ]));
    let l4s: std::collections::BTreeSet<String> = from_s2
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["flow"]["l4"].to_string())
        .collect();
    assert!(!l4s.is_empty(), "non-TCP flows still violate the ACL");
    assert!(!l4s.contains("\"TCP\""), "TCP is allowed now: {l4s:?}");

    // The edits outlive the collector.
    terminate(&mut collector);
    assert!(!access.exists(), "a clean stop removes the access file");
    let mut again = p.collector("collector-1");
    wait_for("the restarted API", Duration::from_secs(30), || {
        access.exists()
    });
    let listed = stdout_of(&cli(&["policy", "acl", "list", "--config", config]));
    assert!(listed.contains("1  TCP;*;*;*"), "{listed}");
    let rules = stdout_of(&cli(&["policy", "rule", "list", "--config", config]));
    assert!(
        rules.contains("host:* total every hour volume above 10GB"),
        "{rules}"
    );

    // Without the token, nothing.
    rt().block_on(async {
        let a: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&access).unwrap()).unwrap();
        let mut client = flowmesh_proto::v1::collector_client::CollectorClient::connect(
            a["url"].as_str().unwrap().to_string(),
        )
        .await
        .unwrap();
        let refused = client
            .list_instances(flowmesh_proto::v1::ListInstancesRequest {})
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    });
    terminate(&mut again);
}
