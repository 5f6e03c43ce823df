//! The nearest region, with real delay: one region's nodes are reached through a relay the
//! test runs on loopback that holds every chunk for 150 ms; an instance given both regions'
//! URLs measures them and connects to the other region, fails over inside it when its node
//! dies, and goes where `region` pins it.

use std::collections::BTreeMap;
use std::time::Duration;

use flowmesh_link::connect::connect;
use flowmesh_testkit::{Cluster, TestUser};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DELAY: Duration = Duration::from_millis(150);

/// Copies `from` to `to`, holding each chunk for `DELAY`.
async fn pump(mut from: tokio::net::tcp::OwnedReadHalf, mut to: tokio::net::tcp::OwnedWriteHalf) {
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 {
            break;
        }
        tokio::time::sleep(DELAY).await;
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// A delaying relay to `upstream` (`host:port`) on a free loopback port; its `tls://` URL.
async fn relay(upstream: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("tls://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let Ok(outbound) = tokio::net::TcpStream::connect(&upstream).await else {
                    return;
                };
                let (ir, iw) = inbound.into_split();
                let (or, ow) = outbound.into_split();
                tokio::spawn(pump(ir, ow));
                pump(or, iw).await;
            });
        }
    });
    url
}

fn server_name(client: &flowmesh_link::async_nats::Client) -> String {
    client.server_info().server_name
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_picks_the_region_with_the_shortest_round_trip_and_fails_over_inside_it() {
    let alice = TestUser::new("alice", &[("s1", flowmesh_testkit::Sensor)]);
    let mut cluster = Cluster::start(&[&alice], Duration::from_secs(90))
        .unwrap_or_else(|e| panic!("the test cluster did not start: {e:#}"));
    let mut eu = Vec::new();
    for url in cluster.urls(Some("eu")) {
        eu.push(relay(url.trim_start_matches("tls://").to_string()).await);
    }
    let us = cluster.urls(Some("us"));
    let mut cfg = cluster.broker_config("alice", "s1", None);
    // eu listed first: without measuring, the client would go there.
    cfg.urls = eu.iter().chain(us.iter()).cloned().collect();
    cfg.regions = BTreeMap::from([
        ("eu".to_string(), eu.clone()),
        ("us".to_string(), us.clone()),
    ]);

    let client = connect(&cfg, "s1").await.unwrap();
    let first = server_name(&client);
    assert!(
        first.starts_with("us-"),
        "connected to {first}, behind the delay is eu"
    );

    // Its node dies: the other node of the same region takes over, not the far region.
    cluster.kill(&first).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let now_on = server_name(&client);
        if now_on != first
            && client.connection_state() == flowmesh_link::async_nats::connection::State::Connected
        {
            assert!(
                now_on.starts_with("us-"),
                "failed over to {now_on}, across regions"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no failover from {first}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Pinned: eu, delay or not.
    cfg.region = Some("eu".into());
    let pinned = connect(&cfg, "s1-pinned").await.unwrap();
    let on = server_name(&pinned);
    assert!(on.starts_with("eu-"), "pinned to eu, connected to {on}");
}
