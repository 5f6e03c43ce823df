//! Replays after restarts: the manager's inbox and a collector's broadcast journal remember
//! what they accepted.

use super::*;

/// The manager restarts: the blacklist and what it knew of instances are still there, and
/// alice's first report, captured on its way in, sent again is refused as a replay.
pub(super) fn the_restarted_manager_keeps_its_state_and_refuses_a_replayed_report(
    rt: &tokio::runtime::Runtime,
    manager: &mut std::process::Child,
    dir: &Path,
    manager_cfg: &str,
    inbox_rx: &std::sync::mpsc::Receiver<flowmesh_link::async_nats::Message>,
    inbox_spy: &flowmesh_link::async_nats::Client,
) {
    let path = |name: &str| dir.join(name);
    terminate(manager);
    *manager = spawn(
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
}

/// A broadcast bob's collector applied, captured on its way, sent again after the collector
/// restarted: refused as a replay (its journal remembers it).
pub(super) fn a_restarted_collector_refuses_a_replayed_broadcast(
    rt: &tokio::runtime::Runtime,
    cluster: &Cluster,
    bob: &TestUser,
    cloud: &flowmesh_link::Identity,
    dir: &Path,
    collector: &mut std::process::Child,
) {
    let path = |name: &str| dir.join(name);
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
    terminate(collector);
    let bob_toml = path("bob-collector.toml");
    *collector = spawn(
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
}
