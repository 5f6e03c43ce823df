//! The browser talks to NATS itself: a page on the console's origin, in headless Chromium,
//! connects to a node's `wss` listener (TLS 1.3, `allowed_origins` = the console) with the
//! official NATS JavaScript client and a watch user's credentials, receives an alert a
//! collector sealed in Rust and opens it with the console's WebCrypto code; the same page from
//! another origin is refused by the node. Needs Node, the console's npm packages and its
//! bundle, and Debian's Chromium (`./deploy/test.sh` installs and builds them); fails without.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use flowmesh_link::envelope::Sealer;
use flowmesh_link::{Identity, IdentityKind};
use flowmesh_testkit::{Cluster, Collector, TestUser, Watch};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_on_the_console_origin_opens_alerts_from_nats_and_another_origin_is_refused() {
    let root = &flowmesh_testkit::package_dir();
    let console = root.join("console");
    assert!(
        console.join("dist/console.js").is_file(),
        "console/dist/console.js is missing: run ./deploy/test.sh (or `npm ci && npm run build` in console/)"
    );
    let secret = [7u8; 32];
    let alice = TestUser {
        identity: Identity::from_secret_bytes(IdentityKind::User, secret),
        ..TestUser::new("alice", &[("eu-collector", Collector), ("browser", Watch)])
    };
    let cluster = Cluster::start_regions(&[("eu", 2)], &[&alice], Duration::from_secs(60)).unwrap();
    let watch = cluster.broker_config("alice", "browser", None);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    let subject = "flowmesh.alerts.eu-collector";
    std::fs::write(
        &config,
        serde_json::json!({
            "ws_url": cluster.websocket_urls(None)[0],
            "creds": std::fs::read_to_string(&watch.creds_file).unwrap(),
            "inbox_prefix": flowmesh_link::connect::inbox_prefix("browser"),
            "secret": hex::encode(secret),
            "public": alice.identity.public().to_hex(),
            "subject": "flowmesh.alerts.*",
            "origin_port": cluster.console_port(),
            "cert": cluster.dir().join("nodes/console.pem"),
            "key": cluster.dir().join("secrets/console-key.pem"),
        })
        .to_string(),
    )
    .unwrap();
    let browser = Command::new("node")
        .current_dir(&console)
        .arg("test/nats.mjs")
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs (./deploy/test.sh installs it)");

    // The collector publishes a sealed alert until the browser has one (it subscribes when
    // its page has loaded and connected: no guessing when).
    let collector = flowmesh_link::connect::connect(
        &cluster.broker_config("alice", "eu-collector", None),
        "eu-collector",
    )
    .await
    .unwrap();
    let sealer = Sealer::new(&alice.identity, alice.identity.public());
    let payload = r#"{"type":"acl","instance":"eu-sensor"}"#;
    let deadline = Instant::now() + Duration::from_secs(60);
    let waiter = std::thread::spawn(move || browser.wait_with_output());
    while !waiter.is_finished() {
        assert!(
            Instant::now() < deadline,
            "the browser got no alert within 60 s"
        );
        let sealed = sealer.seal(subject, payload.as_bytes()).unwrap();
        collector.publish(subject, sealed.into()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let out = waiter.join().unwrap().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser run failed:\n{stdout}\n{stderr}"
    );
    let result: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("browser output is not JSON ({e}):\n{stdout}\n{stderr}"));
    eprintln!("browser: {result}");
    assert_eq!(result["opened"]["subject"], subject, "{result}");
    assert_eq!(result["opened"]["payload"], payload, "{result}");
    assert_eq!(
        result["opened"]["sender"],
        alice.identity.public().to_hex(),
        "{result}"
    );
    let foreign = result["foreign"].as_str().unwrap_or_default();
    assert!(
        foreign.starts_with("refused"),
        "a page from another origin reached the node: {foreign}"
    );
}
