//! The published test vectors (`test-vectors/envelope-v1.json`): fixed keys, randomness and time
//! must give exactly the committed bytes, and those bytes must open. Another implementation of
//! ENVELOPE.md can check itself against the same file.
//!
//! To regenerate after an intended layout change: `FLOWMESH_BLESS=1 cargo test -p flowmesh-link
//! --test vectors` (and bump the version).

use flowmesh_link::envelope::{SealRandomness, Sealer};
use flowmesh_link::{Identity, IdentityKind, Opener};
use serde_json::{Value, json};

struct Case {
    name: &'static str,
    sender: [u8; 32],
    recipient: [u8; 32],
    ephemeral: [u8; 32],
    message_id: [u8; 16],
    nonce: [u8; 12],
    time_micros: u64,
    subject: &'static str,
    payload: &'static [u8],
}

fn cases() -> Vec<Case> {
    let mut seq = [0u8; 32];
    for (i, b) in seq.iter_mut().enumerate() {
        *b = i as u8;
    }
    vec![
        Case {
            name: "to-self, short payload",
            sender: [0x11; 32],
            recipient: [0x11; 32],
            ephemeral: [0x22; 32],
            message_id: [0x33; 16],
            nonce: [0x44; 12],
            time_micros: 1_767_225_600_000_000,
            subject: "flowmesh.flows.eu-sensor-1",
            payload: b"hello, flowmesh",
        },
        Case {
            name: "to-self, empty payload",
            sender: [0x11; 32],
            recipient: [0x11; 32],
            ephemeral: seq,
            message_id: [0; 16],
            nonce: [0; 12],
            time_micros: 0,
            subject: "flowmesh.status.a",
            payload: b"",
        },
        Case {
            name: "user to cloud",
            sender: [0x11; 32],
            recipient: [0x99; 32],
            ephemeral: [0x55; 32],
            message_id: [0xaa; 16],
            nonce: [0xbb; 12],
            time_micros: 1_800_000_000_123_456,
            subject: "cloud.inbox",
            payload: b"{\"report_ip\":\"203.0.113.7\"}",
        },
    ]
}

fn kind(secret: [u8; 32]) -> IdentityKind {
    if secret == [0x99; 32] {
        IdentityKind::Cloud
    } else {
        IdentityKind::User
    }
}

fn seal(c: &Case) -> Vec<u8> {
    let sender = Identity::from_secret_bytes(kind(c.sender), c.sender);
    let recipient = Identity::from_secret_bytes(kind(c.recipient), c.recipient);
    let r = SealRandomness {
        ephemeral_secret: c.ephemeral,
        message_id: c.message_id,
        nonce: c.nonce,
    };
    let mut out = Vec::new();
    Sealer::new(&sender, recipient.public())
        .seal_with(c.subject, c.payload, &r, c.time_micros, &mut out)
        .unwrap();
    out
}

fn to_json(c: &Case, sealed: &[u8]) -> Value {
    let pubkey = |s: [u8; 32]| Identity::from_secret_bytes(kind(s), s).public().to_hex();
    json!({
        "name": c.name,
        "sender_private": hex::encode(c.sender),
        "sender_public": pubkey(c.sender),
        "recipient_private": hex::encode(c.recipient),
        "recipient_public": pubkey(c.recipient),
        "ephemeral_private": hex::encode(c.ephemeral),
        "message_id": hex::encode(c.message_id),
        "nonce": hex::encode(c.nonce),
        "time_micros": c.time_micros,
        "subject": c.subject,
        "payload": hex::encode(c.payload),
        "sealed": hex::encode(sealed),
    })
}

/// The committed vectors (in this clone: see `flowmesh_testkit::package_dir`).
fn vectors_path() -> std::path::PathBuf {
    flowmesh_testkit::package_dir().join("test-vectors/envelope-v1.json")
}

#[test]
fn sealing_reproduces_the_committed_vectors_and_they_open() {
    let generated: Vec<Value> = cases().iter().map(|c| to_json(c, &seal(c))).collect();
    if std::env::var_os("FLOWMESH_BLESS").is_some() {
        let text = serde_json::to_string_pretty(&json!({
            "description": "flowmesh envelope v1 test vectors: see link/ENVELOPE.md. All byte strings are hex.",
            "vectors": generated,
        }))
        .unwrap();
        std::fs::write(vectors_path(), text + "\n").unwrap();
    }
    let committed: Value =
        serde_json::from_str(&std::fs::read_to_string(vectors_path()).unwrap()).unwrap();
    let committed = committed["vectors"].as_array().unwrap();
    assert_eq!(committed.len(), generated.len());
    for (want, got) in committed.iter().zip(&generated) {
        assert_eq!(want, got, "vector {} changed", want["name"]);
    }
    for (c, v) in cases().iter().zip(committed) {
        let recipient = Identity::from_secret_bytes(kind(c.recipient), c.recipient);
        let sender = Identity::from_secret_bytes(kind(c.sender), c.sender);
        let sealed = hex::decode(v["sealed"].as_str().unwrap()).unwrap();
        let mut opener = Opener::with_window(&recipient, u64::MAX / 2, 16);
        opener.trust(sender.public());
        let opened = opener.open_at(c.subject, &sealed, c.time_micros).unwrap();
        assert_eq!(opened.payload, c.payload);
        assert_eq!(opened.message_id, c.message_id);
        assert_eq!(opened.time_micros, c.time_micros);
    }
}
