//! The systemd units in deploy/systemd/ pass `systemd-analyze verify` and carry the hardening
//! the README promises: least capabilities, no new privileges, a read-only system, state only
//! in their StateDirectory.

use std::process::Command;

const UNITS: &[&str] = &[
    "flowmesh-sensor.service",
    "flowmesh-collector.service",
    "flowmesh-manager.service",
    "flowmesh-nats@.service",
];

fn unit(name: &str) -> String {
    let path = flowmesh_testkit::package_dir()
        .join("deploy/systemd")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The values of `key=` lines.
fn values<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .collect()
}

#[test]
fn units_verify_and_are_hardened() {
    let dir = tempfile::tempdir().unwrap();
    let nats = flowmesh_testkit::nats_server_binary().expect("nats-server for the node unit");
    let mut paths = Vec::new();
    for name in UNITS {
        let text = unit(name);
        for key in [
            "NoNewPrivileges",
            "ProtectSystem",
            "ProtectHome",
            "PrivateTmp",
        ] {
            assert!(!values(&text, key).is_empty(), "{name}: no {key}");
        }
        assert_eq!(values(&text, "NoNewPrivileges"), ["yes"], "{name}");
        assert_eq!(values(&text, "ProtectSystem"), ["strict"], "{name}");
        assert_eq!(values(&text, "Restart"), ["on-failure"], "{name}");
        assert_eq!(values(&text, "StateDirectory").len(), 1, "{name}");
        let caps = values(&text, "CapabilityBoundingSet");
        if *name == "flowmesh-sensor.service" {
            assert_eq!(caps, ["CAP_NET_RAW CAP_NET_ADMIN"], "{name}");
            assert_eq!(
                values(&text, "AmbientCapabilities"),
                ["CAP_NET_RAW CAP_NET_ADMIN"]
            );
        } else {
            assert_eq!(caps, [""], "{name}: no capabilities at all");
        }
        // Verify against the binaries this build made (systemd checks they are executable).
        let text = text
            .replace("/usr/local/bin/flowmesh", env!("CARGO_BIN_EXE_flowmesh"))
            .replace("/usr/local/bin/nats-server", &nats.display().to_string());
        let file = dir.path().join(name.replace("@.", "@eu-1."));
        std::fs::write(&file, text).unwrap();
        paths.push(file);
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(&paths)
        .output()
        .expect("systemd-analyze runs (apt install systemd)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {}\n{stderr}",
        out.status
    );
}
