//! The console's envelope code (console/src/envelope.js, WebCrypto) in headless Chromium: the
//! committed test vectors seal to the same bytes and open, every refusal of ENVELOPE.md has
//! the same name, and messages the browser seals with its own randomness open here, in the
//! Rust opener. Needs Node, the console's npm packages and Debian's Chromium, which
//! `./deploy/test.sh` installs; without them this test fails, saying what to install.

use std::process::Command;

use flowmesh_link::{Identity, IdentityKind, Opener};

#[test]
fn browser_envelopes_match_the_vectors_and_open_in_rust() {
    let root = &flowmesh_testkit::package_dir();
    let console = root.join("console");
    assert!(
        console.join("node_modules/playwright-core").is_dir(),
        "console/node_modules is missing: run ./deploy/test.sh (or `npm ci` in console/)"
    );
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("fresh.json");
    let out = Command::new("node")
        .current_dir(&console)
        .arg("test/vectors.mjs")
        .arg(root.join("link/test-vectors/envelope-v1.json"))
        .arg(&fresh)
        .output()
        .expect("node runs (./deploy/test.sh installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the browser's envelope checks failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains(" passed, 0 failed; 3 vectors"),
        "unexpected summary:\n{stdout}"
    );

    let sealed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&fresh).unwrap()).unwrap();
    let secret: [u8; 32] = hex::decode(sealed["key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let me = Identity::from_secret_bytes(IdentityKind::User, secret);
    let opener = Opener::new(&me);
    let fresh = sealed["fresh"].as_array().unwrap();
    assert_eq!(fresh.len(), 3);
    for m in fresh {
        let subject = m["subject"].as_str().unwrap();
        let bytes = hex::decode(m["sealed"].as_str().unwrap()).unwrap();
        let opened = opener
            .open(subject, &bytes)
            .unwrap_or_else(|e| panic!("a browser-sealed message did not open in Rust: {e}"));
        assert_eq!(hex::encode(&opened.payload), m["payload"].as_str().unwrap());
        assert_eq!(opened.sender, me.public());
        // And the Rust opener refuses it on another subject, as the browser's does.
        assert!(opener.open("flowmesh.other", &bytes).is_err());
    }
}
