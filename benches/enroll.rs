//! Enrollment at scale in operator mode: `cargo bench --bench enroll` (needs nats-server:
//! `./deploy/test.sh` installs it; `FLOWMESH_BENCH_USERS` changes the 1,000 users).
//!
//! Starts the reference cluster (eu: 3 nodes, us: 2; TLS 1.3, JetStream, full resolvers) on
//! free loopback ports, then enrolls N users with 2 instances each (a sensor and a collector)
//! exactly as `flowmesh enroll` does — sign the account, write the credentials, push the account
//! through the system account — and prints:
//! - time per enrollment at the 1st, 100th and Nth user, and the median and 99th percentile of
//!   each tenth of the run (flat in N is the goal);
//! - time from the push of a new user until its instance publishes on a node of the other
//!   region;
//! - time from a revocation's push until the instance's connections in both regions are closed;
//! - the nodes' memory (RSS from `/varz`) before and after.

use std::time::{Duration, Instant};

use flowmesh_link::async_nats::{self, Event};
use flowmesh_link::connect::connect;
use flowmesh_link::{Identity, IdentityKind};
use flowmesh_manager::broker::{self, Authority, Enrollment, Role};
use flowmesh_testkit::Cluster;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn enrollment(user: &str) -> Enrollment {
    Enrollment {
        user: user.into(),
        public_key: Some(Identity::generate(IdentityKind::User).public().to_hex()),
        instances: vec![
            ("sensor".into(), Role::Sensor),
            ("collector".into(), Role::Collector),
        ],
        expires_in: None,
    }
}

fn rss_mb(cluster: &Cluster) -> f64 {
    cluster
        .node_names()
        .iter()
        .filter_map(|n| cluster.varz(n))
        .map(|v| v["mem"].as_f64().unwrap_or(0.0))
        .sum::<f64>()
        / 1e6
}

async fn connect_events(
    cluster: &Cluster,
    user: &str,
    node: &str,
) -> Option<(async_nats::Client, tokio::sync::mpsc::UnboundedReceiver<()>)> {
    let mut cfg = cluster.broker_config(user, "sensor", None);
    cfg.urls = vec![cluster.url(node)?];
    cfg.connect_timeout_secs = 2;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let opts = flowmesh_link::connect::options(&cfg, "sensor")
        .ok()?
        .max_reconnects(Some(0))
        .event_callback(move |e| {
            let tx = tx.clone();
            async move {
                if matches!(e, Event::Disconnected | Event::Closed) {
                    let _ = tx.send(());
                }
            }
        });
    let client = opts.connect(cfg.urls.clone()).await.ok()?;
    Some((client, rx))
}

fn main() {
    let n: usize = std::env::var("FLOWMESH_BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let cluster = Cluster::start(&[], Duration::from_secs(90))
        .expect("cluster (run ./deploy/test.sh once to install nats-server)");
    let dir = cluster.dir().to_path_buf();
    let authority = Authority::load(&dir).unwrap();
    let held = broker::AccountsLock::acquire(&dir).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let system = broker::system_client(&dir).await.unwrap();
        let mem_before = rss_mb(&cluster);
        println!(
            "enroll {n} users x 2 instances into the 3+2 cluster (sign, write creds, push), 2-core machine"
        );
        let mut times = Vec::with_capacity(n);
        for i in 0..n {
            let started = Instant::now();
            let done = broker::enroll(&authority, &held, &enrollment(&format!("u{i}"))).unwrap();
            broker::push(&system, &held, done.account_jwt.as_deref().unwrap())
                .await
                .unwrap();
            times.push(started.elapsed().as_secs_f64() * 1e3);
        }
        let ms = |i: usize| times[i.min(n - 1)];
        println!(
            "per enrollment: 1st {:.1} ms, 100th {:.1} ms, {n}th {:.1} ms",
            ms(0),
            ms(99),
            ms(n - 1)
        );
        let tenth = (n / 10).max(1);
        for (k, chunk) in times.chunks(tenth).enumerate() {
            let mut c = chunk.to_vec();
            println!(
                "  users {:>5}..{:<5} median {:.1} ms, p99 {:.1} ms",
                k * tenth + 1,
                k * tenth + c.len(),
                median(&mut c),
                pct(&mut c, 0.99)
            );
        }

        // A new user's instance, logging into the other region.
        let mut reach = Vec::new();
        for k in 0..5 {
            let user = format!("fresh{k}");
            let started = Instant::now();
            let done = broker::enroll(&authority, &held, &enrollment(&user)).unwrap();
            broker::push(&system, &held, done.account_jwt.as_deref().unwrap())
                .await
                .unwrap();
            loop {
                let mut cfg = cluster.broker_config(&user, "sensor", None);
                cfg.urls = vec![cluster.url("us-2").unwrap()];
                cfg.connect_timeout_secs = 1;
                if let Ok(c) = connect(&cfg, "sensor").await
                    && c.publish("flowmesh.status.sensor", "hb".into()).await.is_ok()
                    && c.flush().await.is_ok()
                {
                    break;
                }
                assert!(started.elapsed() < Duration::from_secs(30), "never admitted");
            }
            reach.push(started.elapsed().as_secs_f64() * 1e3);
        }
        println!(
            "new user until its sensor publishes on us-2: median {:.1} ms, max {:.1} ms (5 users)",
            median(&mut reach.clone()),
            reach.iter().copied().fold(0.0, f64::max)
        );

        // A revocation, until both regions closed the instance's connections.
        let mut revoked = Vec::new();
        for k in 0..5 {
            let user = format!("fresh{k}");
            let (_eu, mut eu_rx) = connect_events(&cluster, &user, "eu-2").await.unwrap();
            let (_us, mut us_rx) = connect_events(&cluster, &user, "us-1").await.unwrap();
            let started = Instant::now();
            let jwt = broker::revoke(&authority, &held, &user, "sensor").unwrap();
            broker::push(&system, &held, &jwt).await.unwrap();
            let wait = Duration::from_secs(10);
            tokio::time::timeout(wait, eu_rx.recv()).await.expect("eu-2 closed it");
            tokio::time::timeout(wait, us_rx.recv()).await.expect("us-1 closed it");
            revoked.push(started.elapsed().as_secs_f64() * 1e3);
        }
        println!(
            "revocation until closed in both regions: median {:.1} ms, max {:.1} ms (5 instances)",
            median(&mut revoked.clone()),
            revoked.iter().copied().fold(0.0, f64::max)
        );
        let mem_after = rss_mb(&cluster);
        println!(
            "node memory (RSS, 5 nodes together): {mem_before:.0} MB before, {mem_after:.0} MB after {n} users ({:.1} KB per user per node)",
            (mem_after - mem_before) * 1e3 / n as f64 / 5.0
        );
    });
}
