//! The nearest region, with real delay: every node is reached through a relay the test runs on
//! loopback, which holds every chunk for as long as its region's delay says (150 ms or none);
//! an instance given both regions' URLs measures them and connects to the nearer region, fails
//! over inside it when its node dies, measures again on a reconnect (and follows a region that
//! became nearer), and goes where `region` pins it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use flowmesh_link::connect::connect;
use flowmesh_testkit::{Cluster, TestUser};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DELAY_MS: u64 = 150;

/// Copies `from` to `to`, holding each chunk for `delay` ms (read at each chunk).
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Arc<AtomicU64>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(delay.load(Ordering::Relaxed))).await;
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// A relay to `upstream` (`host:port`) on a free loopback port delaying by `delay` ms; its
/// `tls://` URL.
async fn relay(upstream: String, delay: Arc<AtomicU64>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("tls://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let (upstream, delay) = (upstream.clone(), delay.clone());
            tokio::spawn(async move {
                let Ok(outbound) = tokio::net::TcpStream::connect(&upstream).await else {
                    return;
                };
                let (ir, iw) = inbound.into_split();
                let (or, ow) = outbound.into_split();
                tokio::spawn(pump(ir, ow, delay.clone()));
                pump(or, iw, delay).await;
            });
        }
    });
    url
}

fn server_name(client: &flowmesh_link::async_nats::Client) -> String {
    client.server_info().server_name
}

/// Waits until `client` is connected again, to a node other than `from`; that node.
async fn reconnected(client: &flowmesh_link::async_nats::Client, from: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let now_on = server_name(client);
        if now_on != from
            && client.connection_state() == flowmesh_link::async_nats::connection::State::Connected
        {
            return now_on;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no reconnect from {from}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_picks_the_region_with_the_shortest_round_trip_and_fails_over_inside_it() {
    let alice = TestUser::new("alice", &[("s1", flowmesh_testkit::Sensor)]);
    // Three us nodes: after one failover, a third that never failed is left for the test of
    // measuring again on reconnect (a client prefers servers that failed least).
    let mut cluster =
        Cluster::start_regions(&[("eu", 3), ("us", 3)], &[&alice], Duration::from_secs(90))
            .unwrap_or_else(|e| panic!("the test cluster did not start: {e:#}"));
    let (eu_delay, us_delay) = (
        Arc::new(AtomicU64::new(DELAY_MS)),
        Arc::new(AtomicU64::new(0)),
    );
    let (mut eu, mut us) = (Vec::new(), Vec::new());
    for url in cluster.urls(Some("eu")) {
        eu.push(
            relay(
                url.trim_start_matches("tls://").to_string(),
                eu_delay.clone(),
            )
            .await,
        );
    }
    for url in cluster.urls(Some("us")) {
        us.push(
            relay(
                url.trim_start_matches("tls://").to_string(),
                us_delay.clone(),
            )
            .await,
        );
    }
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
    let second = reconnected(&client, &first).await;
    assert!(
        second.starts_with("us-"),
        "failed over to {second}, across regions"
    );

    // The regions trade places. When the second node dies, the reconnect measures again and
    // crosses to eu, although a us node that never failed is up (slow now).
    eu_delay.store(0, Ordering::Relaxed);
    us_delay.store(DELAY_MS, Ordering::Relaxed);
    cluster.kill(&second).unwrap();
    let third = reconnected(&client, &second).await;
    assert!(
        third.starts_with("eu-"),
        "reconnected to {third}: not measured again (eu is nearer now)"
    );

    // Pinned: eu, delay or not.
    eu_delay.store(DELAY_MS, Ordering::Relaxed);
    cfg.region = Some("eu".into());
    let pinned = connect(&cfg, "s1-pinned").await.unwrap();
    let on = server_name(&pinned);
    assert!(on.starts_with("eu-"), "pinned to eu, connected to {on}");
}
