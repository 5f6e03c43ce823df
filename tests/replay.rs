//! Replays after a restart: a heartbeat and a remote-action request that a collector accepted
//! are refused as replays by the same collector after it restarted (its replay window is kept
//! on disk), while new ones are accepted.

mod support;

use std::time::Duration;

use flowmesh_link::Sealer;
use flowmesh_link::async_nats::Client;
use flowmesh_proto::v1::Control;
use flowmesh_testkit::process::{wait_exit, wait_for};
use futures::StreamExt;
use prost::Message;
use support::*;

/// Sends a sealed request and waits at most `wait` for an answer.
async fn ask(client: &Client, subject: &str, sealed: Vec<u8>, wait: Duration) -> bool {
    matches!(
        tokio::time::timeout(wait, client.request(subject.to_string(), sealed.into())).await,
        Ok(Ok(_))
    )
}

#[test]
fn a_heartbeat_and_a_remote_action_accepted_before_a_restart_are_refused_after_it() {
    let p = Pipeline::start(2);
    let rt = rt();
    let tester = rt.block_on(p.insider());
    let mut heartbeats = rt.block_on(async {
        let sub = tester.subscribe("flowmesh.status.sensor-1").await.unwrap();
        tester.flush().await.unwrap();
        sub
    });
    let mut collector = p.collector("collector-1");
    p.wait_consumers(&["collectors"]);
    let mut sensor = p.sensor(0.0, 50);
    // A heartbeat the collector takes: sensor-1 shows up in `instances`.
    let captured = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), heartbeats.next())
            .await
            .expect("a heartbeat within 30 s")
            .expect("the subscription is open")
    });
    let config = p.path("collector-1.toml");
    let config = config.to_str().unwrap();
    wait_for("sensor-1 tracked", Duration::from_secs(30), || {
        stdout_of(&cli(&["instances", "--config", config, "--json"])).contains("sensor-1")
    });
    // A remote action, answered.
    let control = "flowmesh.control.collector-1";
    let request = Sealer::new(&p.user.identity, p.user.identity.public())
        .seal(
            control,
            &Control {
                action: "report_config".into(),
                request_id: "r1".into(),
                ..Default::default()
            }
            .encode_to_vec(),
        )
        .unwrap();
    assert!(
        rt.block_on(ask(
            &tester,
            control,
            request.clone(),
            Duration::from_secs(10)
        )),
        "the collector did not answer the first request"
    );
    assert!(
        wait_exit(&mut sensor, Duration::from_secs(120)),
        "{}",
        p.log("sensor")
    );
    terminate(&mut collector);

    // The same collector again (its log starts afresh), the same bytes again.
    let mut collector = p.collector("collector-1");
    wait_for("the collector's API again", Duration::from_secs(30), || {
        cli(&["instances", "--config", config]).status.success()
    });
    rt.block_on(async {
        tester
            .publish(captured.subject.clone(), captured.payload.clone())
            .await
            .unwrap();
        tester.flush().await.unwrap();
    });
    assert!(
        !rt.block_on(ask(&tester, control, request, Duration::from_secs(3))),
        "a replayed remote action was answered after the restart"
    );
    let second_run = || p.log("collector-1");
    wait_for("both replays refused", Duration::from_secs(30), || {
        let log = second_run();
        log.contains("heartbeat refused") && log.contains("a remote action refused")
    });
    let log = second_run();
    assert!(log.contains("replayed message id"), "{log}");
    // A new request is answered: the collector refuses replays, not its user.
    let fresh = Sealer::new(&p.user.identity, p.user.identity.public())
        .seal(
            control,
            &Control {
                action: "report_config".into(),
                request_id: "r2".into(),
                ..Default::default()
            }
            .encode_to_vec(),
        )
        .unwrap();
    assert!(rt.block_on(ask(&tester, control, fresh, Duration::from_secs(10))));
    terminate(&mut collector);
}
