//! A cluster start that fails stops its nodes and keeps their files for a post-mortem.

use std::time::Duration;

use flowmesh_manager::broker::Role;
use flowmesh_testkit::{Cluster, TestUser};

#[test]
fn a_failed_start_keeps_the_logs_and_leaves_no_node_running() {
    let user = TestUser::new("alice", &[("s1", Role::Sensor)]);
    // No time at all to become healthy: the start must fail, after spawning every node.
    let error = match Cluster::start(&[&user], Duration::ZERO) {
        Ok(_) => panic!("a cluster cannot be healthy in no time"),
        Err(e) => format!("{e:#}"),
    };
    let kept = error
        .split("kept in ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("the error names no kept directory: {error}"));
    let logs = std::path::Path::new(kept).join("logs");
    for node in ["eu-1", "eu-2", "eu-3", "us-1", "us-2"] {
        assert!(
            error.contains(&format!("--- {node} ")),
            "no log tail of {node}: {error}"
        );
        let pid: u32 = std::fs::read_to_string(logs.join(format!("{node}.pid")))
            .expect("the pid file is kept")
            .trim()
            .parse()
            .expect("a pid");
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "node {node} (pid {pid}) still runs after the failed start"
        );
    }
    std::fs::remove_dir_all(kept).expect("removing the kept directory");
}

/// What a failed start prints about an account a node refuses: each node's view of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_node_says_which_jwt_it_holds_for_an_account() {
    let user = TestUser::new("alice", &[("s1", Role::Sensor)]);
    let cluster = Cluster::start(&[&user], Duration::from_secs(60)).expect("cluster");
    let record = flowmesh_manager::broker::AccountRecord::load(cluster.dir(), "alice").unwrap();
    // The start's readiness check logged alice into every node.
    let held = cluster.account_held(&record.account).await;
    for node in ["eu-1", "eu-2", "eu-3", "us-1", "us-2"] {
        assert!(
            held.contains(&format!(
                "  {node}: loaded from the stored JWT; expired false"
            )),
            "{held}"
        );
    }
}
