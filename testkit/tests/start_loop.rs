//! Starts the reference cluster again and again: a rare start failure (a node refusing an
//! account it has stored) is only seen this way. Ignored by default; run with
//! `FLOWMESH_START_LOOP=200 FLOWMESH_TEST_NATS_LOG=debug cargo test -p flowmesh-testkit
//! --test start_loop -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use flowmesh_manager::broker::Role;
use flowmesh_testkit::{Cluster, TestUser};

#[test]
#[ignore = "a loop of cluster starts for rare failures; minutes long"]
fn the_cluster_starts_every_time() {
    let rounds: usize = std::env::var("FLOWMESH_START_LOOP")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    let alice = TestUser::new(
        "alice",
        &[("sensor-1", Role::Sensor), ("collector", Role::Collector)],
    );
    let bob = TestUser::new("bob", &[("bob-1", Role::Sensor)]);
    for round in 1..=rounds {
        let started = Instant::now();
        match Cluster::start(&[&alice, &bob], Duration::from_secs(30)) {
            Ok(cluster) => {
                eprintln!("start {round}/{rounds}: {:?}", started.elapsed());
                drop(cluster);
            }
            Err(e) => panic!("start {round}/{rounds} failed: {e:#}"),
        }
    }
}
