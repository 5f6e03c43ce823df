//! Publish throughput of 4 KiB messages through the federated TLS cluster, sealed vs. plain.
//!
//! `cargo bench --bench publish` (needs nats-server: `./deploy/test.sh` installs it). Starts the
//! reference cluster (eu: 3, us: 2) on free ports; a publisher on eu-1 sends N messages to a
//! subscriber on us-1 (client → eu-1 → gateway → us-1 → client, TLS on every hop). "sealed"
//! seals each message before publishing and opens each on receipt; "plain" sends the same bytes
//! unsealed. Prints messages/s and MB/s for both and the cost of end-to-end encryption.

use std::time::{Duration, Instant};

use flowmesh_link::connect::connect;
use flowmesh_link::subject::Channel;
use flowmesh_link::{Opener, Sealer};
use flowmesh_testkit::{Cluster, TestUser};
use futures::StreamExt;

const SIZE: usize = 4096;

struct Run {
    secs: f64,
    received: usize,
}

async fn run(cluster: &Cluster, alice: &TestUser, n: usize, sealed: bool, round: usize) -> Run {
    let mut pc = cluster.insider_config("alice", "pub", None);
    pc.urls = vec![cluster.url("eu-1").unwrap()];
    let mut sc = cluster.insider_config("alice", "sub", None);
    sc.urls = vec![cluster.url("us-1").unwrap()];
    let publisher = connect(&pc, "pub").await.unwrap();
    let subscriber = connect(&sc, "sub").await.unwrap();
    let subject = Channel::Flows.subject(&format!("bench-{round}")).unwrap();
    let mut sub = subscriber.subscribe(subject.clone()).await.unwrap();
    subscriber.flush().await.unwrap();

    let sealer = Sealer::new(&alice.identity, alice.identity.public());
    let opener = Opener::new(&alice.identity);
    let payload = vec![0x42u8; SIZE];

    // Wait for interest to cross the gateway: probes until one arrives.
    loop {
        publisher
            .publish(subject.clone(), "probe".into())
            .await
            .unwrap();
        publisher.flush().await.unwrap();
        if tokio::time::timeout(Duration::from_millis(200), sub.next())
            .await
            .is_ok()
        {
            break;
        }
    }
    // Drain further probes.
    while tokio::time::timeout(Duration::from_millis(300), sub.next())
        .await
        .is_ok()
    {}

    let receiver = tokio::spawn(async move {
        let mut got = 0usize;
        let mut last = Instant::now();
        while got < n {
            match tokio::time::timeout(Duration::from_secs(5), sub.next()).await {
                Ok(Some(m)) => {
                    if sealed {
                        opener.open(m.subject.as_str(), &m.payload).expect("opens");
                    }
                    got += 1;
                    last = Instant::now();
                }
                _ => break,
            }
        }
        (got, last)
    });
    let start = Instant::now();
    for _ in 0..n {
        // One allocation per message either way: the sealed buffer, or a copy of the payload.
        let body = if sealed {
            sealer.seal(&subject, &payload).unwrap()
        } else {
            payload.clone()
        };
        publisher
            .publish(subject.clone(), body.into())
            .await
            .unwrap();
    }
    publisher.flush().await.unwrap();
    let (received, last) = receiver.await.unwrap();
    Run {
        secs: last.duration_since(start).as_secs_f64(),
        received,
    }
}

fn main() {
    let n: usize = std::env::var("FLOWMESH_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let alice = TestUser::new("alice", &[]);
    let cluster = Cluster::start(&[&alice], Duration::from_secs(90))
        .expect("cluster (run ./deploy/test.sh once to install nats-server)");
    rt.block_on(async {
        println!("publish through the TLS cluster (eu-1 -> gateway -> us-1), {n} messages of {SIZE} B, best of 3");
        let mut results = Vec::new();
        for (i, sealed) in [false, true].into_iter().enumerate() {
            let mut best: Option<Run> = None;
            for round in 0..3 {
                let r = run(&cluster, &alice, n, sealed, i * 10 + round).await;
                if best.as_ref().is_none_or(|b| r.received as f64 / r.secs > b.received as f64 / b.secs) {
                    best = Some(r);
                }
            }
            let b = best.unwrap();
            let rate = b.received as f64 / b.secs;
            println!(
                "  {:<6} {:>9.0} msg/s {:>8.1} MB/s  ({} of {n} received in {:.3}s)",
                if sealed { "sealed" } else { "plain" },
                rate,
                rate * SIZE as f64 / 1e6,
                b.received,
                b.secs
            );
            results.push(rate);
        }
        println!("  sealing cost: {:.1}% of plain throughput", (1.0 - results[1] / results[0]) * 100.0);
    });
}
