//! Tenancy the NATS way, against a real federated cluster in operator mode (eu: 3 nodes, us:
//! 2): accounts enrolled live reach every node without a config change or a reload; each role's
//! credentials may do their job and the broker refuses everything else (permission
//! violations), including deleting `FLOWS`; a revocation closes the instance's connections in
//! both regions and it cannot log in again.

use std::path::Path;
use std::time::Duration;

use flowmesh_link::async_nats;
use flowmesh_link::async_nats::jetstream;
use flowmesh_link::streams;
use flowmesh_manager::broker::{self, Authority, Enrollment, Role};
use flowmesh_testkit::{Cluster, Collector, Sensor, TestUser, Watch};
use futures::StreamExt;

const START: Duration = Duration::from_secs(90);

#[path = "operator/login.rs"]
mod login;
use login::{Events, login, try_login};

/// Waits for an event containing `what`.
async fn wait_event(rx: &mut Events, what: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(e)) if e.to_lowercase().contains(&what.to_lowercase()) => return e,
            Ok(Some(_)) => continue,
            _ => panic!("no event with {what:?} within 10 s"),
        }
    }
}

fn js(client: &async_nats::Client) -> jetstream::Context {
    let mut js = jetstream::new(client.clone());
    // A request the broker refuses gets no answer: do not wait long for it.
    js.set_timeout(Duration::from_secs(1));
    js
}

/// Every node config's bytes, to show nothing was rewritten.
fn configs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut all: Vec<_> = std::fs::read_dir(dir.join("nodes"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "conf"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    all.sort();
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrollment_and_revocation_are_live_in_every_region_without_touching_a_node() {
    let alice = TestUser::new("alice", &[("c1", Collector)]);
    let cluster = Cluster::start(&[&alice], START).expect("cluster");
    let dir = cluster.dir().to_path_buf();
    for (_, text) in configs(&dir) {
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("type: full") && text.contains("operator:"));
        assert!(!text.contains("users") && !text.contains("nkey"), "{text}");
    }
    let before = configs(&dir);
    let (eu, us) = (cluster.url("eu-1").unwrap(), cluster.url("us-2").unwrap());

    // Bob is new: his account is signed and pushed, his sensor's credentials written.
    let bob = flowmesh_link::Identity::generate(flowmesh_link::IdentityKind::User);
    let authority = Authority::load(&dir).unwrap();
    let held = broker::AccountsLock::acquire(&dir).unwrap();
    let done = broker::enroll(
        &authority,
        &held,
        &Enrollment {
            user: "bob".into(),
            public_key: Some(bob.public().to_hex()),
            instances: vec![("laptop".into(), Role::Sensor)],
            expires_in: None,
        },
    )
    .unwrap();
    assert!(done.new_account());
    let creds = dir.join("creds/bob/laptop.creds");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&creds).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let system = broker::system_client(&dir).await.unwrap();
    let pushed = broker::push(&system, &held, done.account_jwt.as_deref().unwrap())
        .await
        .unwrap();
    assert!(pushed.complete(), "{pushed}");
    assert_eq!(pushed.stored.len(), 5, "{pushed}");
    // It logs in on a node of either region at once.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let (on_us, mut us_events) = loop {
        match try_login(&dir, "bob", "laptop", &us).await {
            Ok(c) => break c,
            Err(e) => assert!(
                tokio::time::Instant::now() < deadline,
                "bob's laptop cannot log into us-2: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (on_eu, mut eu_events) = login(&dir, "bob", "laptop", &eu).await;
    on_us
        .publish("flowmesh.status.laptop", "hb".into())
        .await
        .unwrap();
    on_us.flush().await.unwrap();
    // A second instance of a known user needs no push at all.
    let more = broker::enroll(
        &authority,
        &held,
        &Enrollment {
            user: "bob".into(),
            public_key: None,
            instances: vec![("desk".into(), Role::Watch)],
            expires_in: Some(Duration::from_secs(3600)),
        },
    )
    .unwrap();
    assert!(!more.new_account());
    let (desk, _) = login(&dir, "bob", "desk", &us).await;
    let claims = broker::jwt::claims(
        std::fs::read_to_string(dir.join("creds/bob/desk.creds"))
            .unwrap()
            .lines()
            .nth(1)
            .unwrap(),
    )
    .unwrap();
    assert!(claims["exp"].as_i64().unwrap() > claims["iat"].as_i64().unwrap());
    drop(desk);

    // The nodes where bob logged in hold his account as pushed; asked about another JWT, they
    // say they hold other claims (what a revocation's push checks: see the next step).
    let key = broker::jwt::claims(done.account_jwt.as_deref().unwrap()).unwrap()["sub"]
        .as_str()
        .unwrap()
        .to_string();
    let as_pushed = done.account_jwt.as_deref().unwrap();
    let other = broker::holding_other_claims(&system, &key, as_pushed, 5).await;
    assert!(other.is_empty(), "{other:?}");
    let mut other = broker::holding_other_claims(&system, &key, "another.jwt.x", 5).await;
    other.sort();
    assert!(
        other.contains(&"eu-1".to_string()) && other.contains(&"us-2".to_string()),
        "the nodes bob logged into must name other claims: {other:?}"
    );

    // Revoked: both connections close, in both regions, and logging in again fails. Every
    // node applies the change (none holds the account's older claims).
    let jwt = broker::revoke(&authority, &held, "bob", "laptop").unwrap();
    assert!(!creds.exists(), "the revoked credentials are deleted");
    let pushed = broker::push_change(&system, &held, &jwt).await.unwrap();
    assert!(pushed.complete() && pushed.stale.is_empty(), "{pushed}");
    let other = broker::holding_other_claims(&system, &key, &jwt, 5).await;
    assert!(other.is_empty(), "{other:?}");
    wait_event(&mut us_events, "disconnected").await;
    wait_event(&mut eu_events, "disconnected").await;
    drop((on_us, on_eu));
    // Its [broker] file goes with the credentials.
    let kept = done.instances[0].1.clone();
    assert!(!kept.exists());
    assert_eq!(before, configs(&dir), "no node config was rewritten");
}

/// An attacker keeps a copy of an instance's credentials; the instance is revoked while a node
/// is down. The push says which node did not store the revocation, the others refuse the copy
/// at once, and the node refuses it too soon after it is back: the manager's node follower
/// (run here as the manager runs it) pushes the accounts to a node over its own connection as
/// soon as it accepts clients again, instead of leaving it to the resolver's periodic sync
/// (without it, measured: still admitted 60 s after the restart).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_down_during_a_revocation_refuses_the_instance_when_back() {
    revoked_while_a_node_is_down(true, Duration::from_secs(10)).await;
}

/// Without the manager, the resolvers' own sync (every 15 s) is what catches the node up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_manager_down_too_the_node_refuses_the_instance_within_its_resolver_sync() {
    revoked_while_a_node_is_down(false, Duration::from_secs(45)).await;
}

/// Revokes an instance while eu-2 is down, then restarts eu-2 and counts how long it admits
/// the revoked credentials: with the manager's node follower running (`follow`) or without it.
async fn revoked_while_a_node_is_down(follow: bool, bound: Duration) {
    // The follower's pushes, shown if the test fails.
    let _ = tracing_subscriber::fmt()
        .with_env_filter("flowmesh_manager=debug")
        .with_test_writer()
        .try_init();
    let carol = TestUser::new("carol", &[("laptop", Sensor)]);
    let mut cluster = Cluster::start(&[&carol], START).expect("cluster");
    let dir = cluster.dir().to_path_buf();
    let system = broker::system_client(&dir).await.unwrap();
    let follower = follow.then(|| tokio::spawn(broker::follow_nodes(dir.clone())));
    let creds = dir.join("creds/carol/laptop.creds");
    let stolen = std::fs::read(&creds).unwrap();
    let eu2 = cluster.url("eu-2").unwrap();
    let us1 = cluster.url("us-1").unwrap();
    drop(login(&dir, "carol", "laptop", &eu2).await);

    cluster.kill("eu-2").unwrap();
    let held = broker::AccountsLock::acquire(&dir).unwrap();
    let authority = Authority::load(&dir).unwrap();
    let jwt = broker::revoke(&authority, &held, "carol", "laptop").unwrap();
    let pushed = broker::push(&system, &held, &jwt).await.unwrap();
    drop(held); // the follower takes it when eu-2 is back
    assert_eq!(pushed.missing, ["eu-2"], "{pushed}");
    assert_eq!(pushed.stored.len(), 4, "{pushed}");
    std::fs::write(&creds, &stolen).unwrap();
    let refused = try_login(&dir, "carol", "laptop", &us1).await.err();
    assert!(
        refused
            .as_deref()
            .is_some_and(|e| e.contains("authorization")),
        "us-1 must refuse the revoked instance: {refused:?}"
    );

    cluster.restart("eu-2").unwrap();
    let back = tokio::time::Instant::now();
    let deadline = back + bound;
    let mut admitted = 0;
    loop {
        match try_login(&dir, "carol", "laptop", &eu2).await {
            Err(e) if e.contains("authorization") => break,
            Err(_) => {} // still starting
            Ok(_) => admitted += 1,
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "eu-2 still admits the revoked instance {bound:?} after it came back ({admitted} logins); its log:\n{}",
            cluster.log_tail("eu-2")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "eu-2 refused the revoked instance {:?} after its restart ({admitted} logins before)",
        back.elapsed()
    );
    if let Some(f) = follower {
        f.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_does_its_job_and_the_broker_refuses_the_rest() {
    let alice = TestUser::new(
        "alice",
        &[
            ("s1", Sensor),
            ("s2", Sensor),
            ("c1", Collector),
            ("w1", Watch),
        ],
    );
    let cluster = Cluster::start_regions(&[("eu", 3)], &[&alice], START).expect("cluster");
    let dir = cluster.dir().to_path_buf();
    let url = cluster.url("eu-1").unwrap();
    let (collector, mut collector_events) = login(&dir, "alice", "c1", &url).await;
    let (sensor, mut sensor_events) = login(&dir, "alice", "s1", &url).await;
    let (watch, mut watch_events) = login(&dir, "alice", "w1", &url).await;
    let (cjs, sjs, wjs) = (js(&collector), js(&sensor), js(&watch));

    // Before any collector ran, a sensor's batch has no stream to go to, and it may not make one.
    assert!(
        sjs.publish("flowmesh.flows.s1", "early".into())
            .await
            .unwrap()
            .await
            .is_err()
    );
    // The collector owns the streams, the bucket and its durable consumer.
    streams::ensure_streams(&cjs, 1)
        .await
        .expect("a collector creates FLOWS and ALERTS");
    let kv = streams::status_bucket(&cjs, 1)
        .await
        .expect("a collector creates the status bucket");
    // The bucket's stream was just made: a node that has not heard of it yet answers "not
    // found" for a moment. Permission is what this checks, so that moment is waited out.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match kv.put("s1", "online".into()).await {
            Ok(_) => break,
            Err(e)
                if format!("{e:?}").contains("StreamNotFound")
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("and writes it: {e:?}"),
        }
    }
    let stream = cjs.get_stream(streams::FLOWS).await.unwrap();
    let consumer: jetstream::consumer::PullConsumer = stream
        .get_or_create_consumer(
            "collectors",
            jetstream::consumer::pull::Config {
                durable_name: Some("collectors".into()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ..Default::default()
            },
        )
        .await
        .expect("a collector creates its durable consumer");

    // The sensor publishes into FLOWS and gets JetStream's ack (no API needed).
    sjs.publish("flowmesh.flows.s1", "batch".into())
        .await
        .unwrap()
        .await
        .expect("the sensor's batch is stored");
    // It cannot look at the stream, list its consumers, create or delete streams.
    assert!(
        sjs.get_stream("FLOWS").await.is_err(),
        "a sensor read FLOWS"
    );
    let sensor_stream_names = sjs.stream_names().next().await;
    assert!(
        !matches!(sensor_stream_names, Some(Ok(_))),
        "a sensor listed streams"
    );
    assert!(
        sjs.delete_stream("FLOWS").await.is_err(),
        "a sensor deleted FLOWS"
    );
    assert!(
        sjs.create_stream(jetstream::stream::Config {
            name: "MINE".into(),
            subjects: vec!["flowmesh.flows.s1".into()],
            ..Default::default()
        })
        .await
        .is_err(),
        "a sensor created a stream"
    );
    wait_event(
        &mut sensor_events,
        "permissions violation for publish to \"$JS.API",
    )
    .await;
    // Nor publish as another instance, on another's status, or read everything.
    for subject in [
        "flowmesh.flows.s2",
        "flowmesh.status.s2",
        "flowmesh.alerts.s1",
    ] {
        sensor.publish(subject, "x".into()).await.unwrap();
        sensor.flush().await.unwrap();
        wait_event(&mut sensor_events, subject).await;
    }
    let _all = sensor.subscribe("flowmesh.>").await.unwrap();
    sensor.flush().await.unwrap();
    wait_event(
        &mut sensor_events,
        "permissions violation for subscription to \"flowmesh.>\"",
    )
    .await;
    // Another instance's replies are not its to read.
    let _theirs = sensor.subscribe("_INBOX_c1.>").await.unwrap();
    sensor.flush().await.unwrap();
    wait_event(&mut sensor_events, "_INBOX_c1").await;
    // The other sensor's control requests are not its to answer.
    let _control = sensor.subscribe("flowmesh.control.s2").await.unwrap();
    sensor.flush().await.unwrap();
    wait_event(&mut sensor_events, "flowmesh.control.s2").await;

    // The collector fetches and acknowledges; it cannot delete or purge the stream either.
    let mut batch = consumer.fetch().max_messages(1).messages().await.unwrap();
    let m = batch.next().await.expect("the batch").unwrap();
    assert_eq!(&m.payload[..], b"batch");
    m.ack().await.expect("a collector acknowledges");
    assert!(
        cjs.delete_stream("FLOWS").await.is_err(),
        "a collector deleted FLOWS"
    );
    wait_event(&mut collector_events, "$JS.API.STREAM.DELETE.FLOWS").await;
    assert!(
        stream.clone().purge().await.is_err(),
        "a collector purged FLOWS"
    );

    // A watch client reads alerts, changes and the bucket, and nothing else.
    let mut alerts = watch.subscribe("flowmesh.alerts.*").await.unwrap();
    watch.flush().await.unwrap();
    // The watch client's interest reaches the collector's node a moment after its own node
    // has it: publish until it arrives (a permission refusal would never arrive).
    let a = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            collector
                .publish("flowmesh.alerts.c1", "alert".into())
                .await
                .unwrap();
            collector.flush().await.unwrap();
            if let Ok(m) = tokio::time::timeout(Duration::from_millis(250), alerts.next()).await {
                break m;
            }
        }
    })
    .await
    .expect("the watch client gets the alert")
    .unwrap();
    assert_eq!(&a.payload[..], b"alert");
    let bucket = wjs
        .get_key_value(streams::STATUS_BUCKET)
        .await
        .expect("a watch client opens the bucket");
    let entry = bucket.get("s1").await.expect("and reads it");
    assert_eq!(entry.as_deref(), Some(&b"online"[..]));
    assert!(
        bucket.put("s1", "forged".into()).await.is_err(),
        "a watch client wrote the bucket"
    );
    for subject in ["flowmesh.flows.s1", "flowmesh.control.s1"] {
        watch.publish(subject, "x".into()).await.unwrap();
        watch.flush().await.unwrap();
        wait_event(&mut watch_events, subject).await;
    }
    assert!(
        wjs.delete_stream("FLOWS").await.is_err(),
        "a watch client deleted FLOWS"
    );
    // Still there, with the one batch.
    let info = cjs
        .get_stream("FLOWS")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .clone();
    assert_eq!(info.state.messages, 1);
}
