//! Enrollment and revocation while the cluster runs.

use super::*;

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
    let carol_2 = [
        "enroll",
        "--cluster",
        &dir,
        "--user",
        "carol",
        "--instance",
        "carol-2",
    ];
    ok(flowmesh(&carol_2));
    // Enrolling the same instance twice is refused, saying why.
    let again = flowmesh(&carol_2);
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
