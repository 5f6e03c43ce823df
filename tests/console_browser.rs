//! The web console in a real browser (headless Debian Chromium, driven by console/test/e2e.mjs)
//! against a real cluster, the manager serving the console, a collector and a sensor: a new
//! user signs up (the browser makes the keys; only the public key is sent) and downloads the
//! identity file; a sensor started with that file appears online; a live alert arrives and
//! opens in the browser; the stopped sensor goes offline; a fresh browser profile signs in by
//! importing the file. Then: no request the browser sent, and nothing the manager stored or
//! logged, holds the private key; sessions (70 s here) renew themselves while the test runs. Screenshots of each page are left in the test's directory
//! (its path is printed). Needs Node, the console's npm packages and bundle, and Chromium
//! (`./deploy/test.sh` installs them); fails without.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use flowmesh_link::{Identity, IdentityKind};
use flowmesh_testkit::{Cluster, die_with_parent};
use support::{broker_toml, flowmesh, terminate};

fn spawn(dir: &Path, command: &str, config: &str) -> Child {
    flowmesh()
        .current_dir(dir)
        .args([command, "--config", &format!("{config}.toml")])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("{config}.log"))).unwrap())
        .spawn()
        .unwrap()
}

/// The next line the browser driver prints, within `secs`.
fn next(lines: &mpsc::Receiver<String>, secs: u64, what: &str, dir: &Path) -> String {
    lines
        .recv_timeout(Duration::from_secs(secs))
        .unwrap_or_else(|_| {
            let log = |n: &str| std::fs::read_to_string(dir.join(n)).unwrap_or_default();
            panic!(
                "the browser did not get to {what} within {secs} s\n--- e2e.log:\n{}\n--- manager.log:\n{}\n--- collector.log:\n{}\n--- eu-sensor.log:\n{}",
                log("e2e.log"),
                log("manager.log"),
                log("collector.log"),
                log("eu-sensor.log")
            )
        })
}

#[test]
fn a_new_user_signs_up_sees_a_sensor_and_its_alerts_and_signs_in_again_with_the_file() {
    let root = &flowmesh_testkit::package_dir();
    assert!(
        root.join("console/node_modules/playwright-core").is_dir(),
        "console/node_modules is missing: run ./deploy/test.sh (or `npm ci` in console/)"
    );
    let cluster = Cluster::start_regions(&[("eu", 2)], &[], Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("the test cluster did not start: {e:#}"));
    // Kept when the test fails (screenshots and logs to look at); removed when it passes.
    let dir = tempfile::Builder::new()
        .prefix("flowmesh-console-")
        .tempdir()
        .unwrap()
        .keep();
    let d = dir.as_path();
    eprintln!("screenshots and logs: {}", d.display());
    let cloud = Identity::generate(IdentityKind::Cloud);
    cloud.write(&d.join("cloud.id"), false).unwrap();
    let port = cluster.console_port();
    std::fs::write(
        d.join("manager.toml"),
        format!(
            "identity = \"cloud.id\"\ncluster = \"{}\"\n{}\n{}\n[api]\nlisten = \"127.0.0.1:0\"\n[console]\nlisten = \"127.0.0.1:{port}\"\nurl_file = \"console.url\"\nsession_secs = 70\n",
            cluster.dir().display(),
            broker_toml(&cluster, "CLOUD", "manager", "broker"),
            broker_toml(&cluster, "SYS", "manager", "system"),
        ),
    )
    .unwrap();
    let mut manager = spawn(d, "manager", "manager");
    let url_file = d.join("console.url");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !url_file.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the manager did not serve the console within 30 s:\n{}",
            std::fs::read_to_string(d.join("manager.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let url = std::fs::read_to_string(&url_file).unwrap();
    assert_eq!(url, format!("https://127.0.0.1:{port}/"));

    let mut browser = Command::new("node");
    die_with_parent(&mut browser);
    let mut browser = browser
        .current_dir(root.join("console"))
        .arg("test/e2e.mjs")
        .arg(&url)
        .arg(d)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(d.join("e2e.log")).unwrap())
        .spawn()
        .expect("node runs (./deploy/test.sh installs it)");
    let mut to_browser = browser.stdin.take().unwrap();
    let (tx, lines) = mpsc::channel();
    let stdout = browser.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });

    // Signed up in the browser: the identity file is on disk, as a user would save it.
    let line = next(&lines, 90, "sign-up", d);
    let identity = line
        .strip_prefix("IDENTITY ")
        .unwrap_or_else(|| panic!("unexpected line from the browser: {line}"));
    assert_eq!(Path::new(identity), d.join("carol.id"));
    std::fs::set_permissions(identity, std::fs::Permissions::from_mode(0o600)).unwrap();
    let carol = Identity::load(&d.join("carol.id")).expect("the downloaded identity loads");
    // The instances' configs are the ones the console wrote (Add instance): their [broker]
    // tables, .creds and ca.pem as downloaded; only what this test needs is set around them.
    let downloaded = |name: &str| {
        std::fs::read_to_string(d.join(format!("{name}.toml")))
            .unwrap_or_else(|e| panic!("the console's {name}.toml was not downloaded: {e}"))
    };
    for name in ["eu-sensor", "eu-sensor-2", "eu-collector"] {
        let creds = d.join(format!("{name}.creds"));
        assert!(creds.is_file(), "{name}.creds was not downloaded");
        std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    assert!(d.join("ca.pem").is_file(), "ca.pem was not downloaded");
    // The collector: an ACL allowing DNS and HTTPS only (the capture's HTTP flows alert), and
    // a traffic profile its stored flows carry (the Flows page's badges).
    std::fs::write(
        d.join("policy.toml"),
        "[acl]\nrules = \"\"\"\nUDP;*;*;53\nTCP;*;*;443\n\"\"\"\n[[profile]]\nname = \"dns\"\nbpf = \"udp port 53\"\n",
    )
    .unwrap();
    std::fs::write(
        d.join("collector.toml"),
        format!(
            "replicas = 1\noffline_after_secs = 5\n{}\n[cloud]\npinned = \"{}\"\npinned_signing = \"{}\"\n[api]\nlisten = \"127.0.0.1:0\"\n",
            downloaded("eu-collector"),
            cloud.public().to_hex(),
            flowmesh_link::cloud_sig::public_key(&cloud).to_hex(),
        ),
    )
    .unwrap();
    let mut capture =
        std::io::BufWriter::new(std::fs::File::create(d.join("traffic.pcap")).unwrap());
    flowmesh_sensor::synth::generate(300, 30, 60, &mut capture).unwrap();
    drop(capture);
    // eu-sensor loops over the capture; eu-sensor-2 replays it once, after the policy edit.
    for (name, looping) in [("eu-sensor", true), ("eu-sensor-2", false)] {
        let config = downloaded(name);
        let (head, _interface) = config
            .split_once("[capture]")
            .expect("a sensor's config has a [capture] table");
        std::fs::write(
            d.join(format!("{name}.toml")),
            format!(
                "{head}[capture]\nfile = \"traffic.pcap\"\nspeed = 5\nloop = {looping}\nactive_timeout_secs = 10\n[publish]\nheartbeat_secs = 1\nbatch_max_ms = 100\n"
            ),
        )
        .unwrap();
    }
    let mut collector = spawn(d, "collector", "collector");
    let mut sensor = spawn(d, "sensor", "eu-sensor");
    writeln!(to_browser, "GO").unwrap();

    let line = next(
        &lines,
        200,
        "the sensor online, a live alert and a policy edit",
        d,
    );
    assert_eq!(line, "EDITED");
    let mut second = spawn(d, "sensor", "eu-sensor-2");
    writeln!(to_browser, "GO2").unwrap();
    let line = next(&lines, 200, "the second sensor's alerts", d);
    assert_eq!(line, "LIVE");
    terminate(&mut second);
    terminate(&mut sensor);
    writeln!(to_browser, "STOPPED").unwrap();
    let line = next(&lines, 200, "the sensor offline and a second sign-in", d);
    let result: serde_json::Value = serde_json::from_str(
        line.strip_prefix("RESULT ")
            .unwrap_or_else(|| panic!("unexpected line from the browser: {line}")),
    )
    .unwrap();
    let status = browser.wait().unwrap();
    assert!(status.success(), "the browser run failed: {result}");
    // The Restart button restarted eu-sensor's process (in place: the same child).
    let sensor_log = std::fs::read_to_string(d.join("eu-sensor.log")).unwrap();
    assert!(
        sensor_log.contains("restarting (remote action)")
            && sensor_log.matches("sensor starting").count() >= 2,
        "{sensor_log}"
    );
    assert_eq!(result["who"], "carol", "{result}");
    assert_eq!(result["leaks"], serde_json::json!([]), "{result}");
    assert!(result["with_body"].as_u64().unwrap_or(0) >= 3, "{result}");
    terminate(&mut collector);
    terminate(&mut manager);
    // Sessions of 70 s are renewed 60 s before they expire: the browser signed in again and
    // again during the run without a user's action (and without losing what it showed).
    let log = std::fs::read_to_string(d.join("manager.log")).unwrap();
    let sign_ins = log.matches("console sign-in").count();
    assert!(sign_ins >= 3, "{sign_ins} sign-ins:\n{log}");

    // The manager knows carol by her public key only: nothing it wrote holds the private key.
    let private = std::fs::read_to_string(d.join("carol.id")).unwrap();
    let private = private
        .lines()
        .find_map(|l| l.strip_prefix("private_key = \""))
        .and_then(|l| l.strip_suffix('"'))
        .unwrap()
        .to_string();
    assert_eq!(private.len(), 64);
    let mut checked = 0;
    let mut places = vec![cluster.dir().to_path_buf()];
    places.extend(
        ["manager.log", "manager.state.json"]
            .iter()
            .map(|f| d.join(f)),
    );
    while let Some(p) = places.pop() {
        if p.is_dir() {
            places.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else if let Ok(bytes) = std::fs::read(&p) {
            checked += 1;
            let text = String::from_utf8_lossy(&bytes).to_lowercase();
            assert!(
                !text.contains(&private),
                "{} holds carol's private key",
                p.display()
            );
        }
    }
    assert!(checked > 10, "only {checked} files checked");
    let known = std::fs::read_to_string(cluster.dir().join("accounts/carol.json")).unwrap();
    assert!(known.contains(&carol.public().to_hex()), "{known}");

    // The credentials the console made work until revoked (eu-sensor-2 ran on them), and not
    // after: the broker refuses them.
    let mut revoked = cluster.broker_config("carol", "eu-sensor-2", None);
    revoked.creds_file = d.join("eu-sensor-2.creds");
    let mut alive = revoked.clone();
    alive.creds_file = d.join("eu-sensor.creds");
    support::rt().block_on(async {
        let ok = flowmesh_link::connect::connect(&alive, "eu-sensor").await;
        assert!(
            ok.is_ok(),
            "eu-sensor's console-made credentials: {:?}",
            ok.err()
        );
        let refused = flowmesh_link::connect::connect(&revoked, "eu-sensor-2").await;
        assert!(refused.is_err(), "a revoked instance logged in");
    });
    if std::env::var_os("FLOWMESH_KEEP_SCREENSHOTS").is_none() {
        let _ = std::fs::remove_dir_all(d);
    }
}
