//! Status notifications against a real cluster: a sensor frozen (SIGSTOP) and thawed (SIGCONT)
//! again and again is reported once as `flapping` and once more when it is stable, not at every
//! freeze.

mod support;

use std::time::Duration;

use flowmesh_collector::store::{AlertQuery, Store};
use flowmesh_testkit::process::wait_for;
use support::*;

/// The tracked status of `instance` as `flowmesh instances` shows it (it follows every
/// heartbeat, also while changes are kept quiet).
fn tracked(config: &str, instance: &str) -> Option<String> {
    let o = cli(&["instances", "--config", config, "--json"]);
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["instance"] == instance)
        .and_then(|v| v["status"].as_str().map(String::from))
}

fn signal(child: &std::process::Child, sig: i32) {
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

#[test]
fn a_sensor_frozen_and_thawed_again_and_again_is_flapping_once_then_stable_once() {
    let p = Pipeline::start(5);
    let cfg = p.path("collector-1.toml");
    std::fs::write(
        &cfg,
        format!(
            "name = \"collector-1\"\nidentity = \"alice.id\"\nstore = \"collector-1.redb\"\npolicy = \"policy.toml\"\nreplicas = 3\n\
             offline_after_missed = 2\noffline_after_secs = 0\nonline_after = 1\n\
             flapping_transitions = 4\nflapping_window_secs = 300\nflapping_stable_secs = 15\n{}\n[api]\nlisten = \"127.0.0.1:0\"\naccess_file = \"collector-1-api.json\"\n",
            p.broker_toml("collector-1", Some("us"))
        ),
    )
    .unwrap();
    let mut collector = p.spawn("collector", &cfg, "collector-1");
    let sensor_cfg = p.path("sensor.toml");
    std::fs::write(
        &sensor_cfg,
        format!(
            "name = \"sensor-1\"\nidentity = \"alice.id\"\nstate_dir = \"sensor-state\"\n[capture]\nfile = \"{}\"\nspeed = 1.0\nloop = true\n[publish]\nheartbeat_secs = 1\n{}",
            p.capture.display(),
            p.broker_toml("sensor-1", Some("eu"))
        ),
    )
    .unwrap();
    let mut sensor = p.spawn("sensor", &sensor_cfg, "sensor");
    let config = cfg.to_str().unwrap();
    let status = || tracked(config, "sensor-1");
    wait_for("sensor-1 online", Duration::from_secs(60), || {
        status().as_deref() == Some("online")
    });
    // Six freezes: each long enough to be offline, each thaw long enough to be back online.
    for _ in 0..6 {
        signal(&sensor, libc::SIGSTOP);
        wait_for("sensor-1 offline", Duration::from_secs(30), || {
            status().as_deref() == Some("offline")
        });
        signal(&sensor, libc::SIGCONT);
        wait_for("sensor-1 online again", Duration::from_secs(30), || {
            status().as_deref() == Some("online")
        });
    }
    // Stable now: the collector says so once, `previous` "flapping".
    let changes = |store: &Store| -> Vec<(String, String)> {
        store
            .alerts(&AlertQuery {
                kind: Some("instance_status".into()),
                instance: Some("sensor-1".into()),
                ..AlertQuery::default()
            })
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["previous"].as_str().unwrap_or("").to_string(),
                    a["status"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    wait_for("the stable report", Duration::from_secs(60), || {
        p.log("collector-1").contains("previous=\"flapping\"")
            || p.log("collector-1").contains("previous=flapping")
    });
    terminate(&mut sensor);
    terminate(&mut collector);
    let store = Store::open(&p.path("collector-1.redb")).unwrap();
    let got = changes(&store);
    let pairs: Vec<(&str, &str)> = got.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert_eq!(
        pairs[..6],
        [
            ("unknown", "online"),
            ("online", "offline"),
            ("offline", "online"),
            ("online", "offline"),
            ("offline", "flapping"),
            ("flapping", "online"),
        ],
        "twelve transitions, six notifications at most; log:\n{}",
        p.log("collector-1")
    );
    // Whatever follows is the sensor's own stop (SIGTERM above), not the freezes.
    assert!(
        pairs[6..]
            .iter()
            .all(|(_, s)| *s == "stopping" || *s == "offline"),
        "{pairs:?}"
    );
}
