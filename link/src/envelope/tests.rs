use super::*;
use crate::identity::IdentityKind;

fn user(seed: u8) -> Identity {
    Identity::from_secret_bytes(IdentityKind::User, [seed; 32])
}

const SUBJECT: &str = "flowmesh.flows.sensor-1";

#[test]
fn a_holder_of_the_recipients_key_can_claim_any_trusted_sender() {
    // Why cloud messages carry a signature: the envelope alone cannot tell them apart.
    let (bob, cloud) = (user(2), user(9));
    let mut opener = Opener::new(&bob);
    opener.trust(cloud.public());
    let forged = Sealer::impersonating(&bob, cloud.public())
        .seal(SUBJECT, b"forged")
        .unwrap();
    assert_eq!(
        opener.open(SUBJECT, &forged).unwrap().sender,
        cloud.public()
    );
}

#[test]
fn round_trip_to_self() {
    let alice = user(1);
    let sealed = Sealer::new(&alice, alice.public())
        .seal(SUBJECT, b"hello flows")
        .unwrap();
    assert_eq!(sealed.len(), OVERHEAD + 11);
    let opened = Opener::new(&alice).open(SUBJECT, &sealed).unwrap();
    assert_eq!(opened.payload, b"hello flows");
    assert_eq!(opened.sender, alice.public());
}

#[test]
fn stored_values_open_again_and_again_but_stay_authenticated() {
    let alice = user(1);
    let kv = "$KV.status.sensor-1";
    let sealed = Sealer::new(&alice, alice.public())
        .seal(kv, b"{\"status\":\"online\"}")
        .unwrap();
    let opener = Opener::new(&alice);
    assert!(opener.open(kv, &sealed).is_ok());
    assert!(matches!(
        opener.open(kv, &sealed),
        Err(OpenError::Replayed(_))
    ));
    for _ in 0..3 {
        assert_eq!(
            opener.open_stored(kv, &sealed).unwrap().payload,
            b"{\"status\":\"online\"}"
        );
    }
    // Still bound to its subject, its sender and its bytes.
    assert!(matches!(
        opener.open_stored("$KV.status.other", &sealed),
        Err(OpenError::Forged)
    ));
    let mut flipped = sealed.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert!(opener.open_stored(kv, &flipped).is_err());
    assert!(Opener::new(&user(2)).open_stored(kv, &sealed).is_err());
}

#[test]
fn round_trip_to_another_key_with_trust() {
    let alice = user(1);
    let cloud = Identity::from_secret_bytes(IdentityKind::Cloud, [9; 32]);
    let sealed = Sealer::new(&alice, cloud.public())
        .seal("cloud.inbox", b"ip 1.2.3.4")
        .unwrap();
    let untrusting = Opener::new(&cloud);
    assert!(matches!(
        untrusting.open("cloud.inbox", &sealed),
        Err(OpenError::UntrustedSender(_))
    ));
    let mut opener = Opener::new(&cloud);
    opener.trust(alice.public());
    assert_eq!(
        opener.open("cloud.inbox", &sealed).unwrap().payload,
        b"ip 1.2.3.4"
    );
}

#[test]
fn ciphertext_does_not_contain_the_plaintext_and_differs_each_time() {
    let alice = user(1);
    let sealer = Sealer::new(&alice, alice.public());
    let payload = b"secret-secret-secret-secret";
    let a = sealer.seal(SUBJECT, payload).unwrap();
    let b = sealer.seal(SUBJECT, payload).unwrap();
    assert_ne!(a, b);
    assert!(!a.windows(payload.len()).any(|w| w == payload));
}

#[test]
fn every_single_bit_flip_fails_to_open() {
    let alice = user(1);
    let sealed = Sealer::new(&alice, alice.public())
        .seal(SUBJECT, b"a flow batch of some length")
        .unwrap();
    for bit in 0..sealed.len() * 8 {
        let mut bad = sealed.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        // A fresh opener each time: the failure must come from the flip, not the replay cache.
        let r = Opener::new(&alice).open(SUBJECT, &bad);
        assert!(r.is_err(), "flipping bit {bit} still opened");
    }
}

#[test]
fn wrong_subject_fails() {
    let alice = user(1);
    let sealed = Sealer::new(&alice, alice.public())
        .seal(SUBJECT, b"x")
        .unwrap();
    let opener = Opener::new(&alice);
    assert_eq!(
        opener.open("flowmesh.flows.sensor-2", &sealed),
        Err(OpenError::Forged)
    );
    assert_eq!(opener.open("", &sealed), Err(OpenError::Forged));
    assert!(opener.open(SUBJECT, &sealed).is_ok());
}

#[test]
fn another_users_message_fails() {
    let alice = user(1);
    let bob = user(2);
    // Bob seals to himself: Alice is not the recipient.
    let to_bob = Sealer::new(&bob, bob.public()).seal(SUBJECT, b"x").unwrap();
    assert!(matches!(
        Opener::new(&alice).open(SUBJECT, &to_bob),
        Err(OpenError::WrongRecipient(_))
    ));
    // Bob seals to Alice's key: Alice does not trust Bob as a sender.
    let bob_to_alice = Sealer::new(&bob, alice.public())
        .seal(SUBJECT, b"x")
        .unwrap();
    assert!(matches!(
        Opener::new(&alice).open(SUBJECT, &bob_to_alice),
        Err(OpenError::UntrustedSender(_))
    ));
    // Bob seals to Alice but writes Alice's key as the sender: authentication fails,
    // because Bob cannot compute the static agreement of Alice's key.
    let mut forged = bob_to_alice.clone();
    forged[OFF_SENDER..OFF_SENDER + 32].copy_from_slice(&alice.public().0);
    assert_eq!(
        Opener::new(&alice).open(SUBJECT, &forged),
        Err(OpenError::Forged)
    );
}

#[test]
fn replayed_message_fails() {
    let alice = user(1);
    let sealed = Sealer::new(&alice, alice.public())
        .seal(SUBJECT, b"x")
        .unwrap();
    let opener = Opener::new(&alice);
    assert!(opener.open(SUBJECT, &sealed).is_ok());
    assert!(matches!(
        opener.open(SUBJECT, &sealed),
        Err(OpenError::Replayed(_))
    ));
}

#[test]
fn stale_and_future_messages_fail() {
    let alice = user(1);
    let sealed = Sealer::new(&alice, alice.public())
        .seal(SUBJECT, b"x")
        .unwrap();
    let t = peek_header(&sealed).unwrap().time_micros;
    let opener = Opener::with_window(&alice, 1_000_000, 16);
    assert_eq!(
        opener.open_at(SUBJECT, &sealed, t + 2_000_000),
        Err(OpenError::TooOld)
    );
    assert_eq!(
        opener.open_at(SUBJECT, &sealed, t - 2_000_000),
        Err(OpenError::FromTheFuture)
    );
    assert!(opener.open_at(SUBJECT, &sealed, t + 500_000).is_ok());
}

#[test]
fn truncated_and_random_input_fail_with_an_error() {
    let alice = user(1);
    let opener = Opener::new(&alice);
    let sealed = Sealer::new(&alice, alice.public())
        .seal(SUBJECT, b"payload")
        .unwrap();
    for len in 0..sealed.len() {
        assert!(
            opener.open(SUBJECT, &sealed[..len]).is_err(),
            "prefix of {len} bytes opened"
        );
    }
    let mut state = 0x9e3779b97f4a7c15u64;
    for len in [0usize, 1, 2, 151, 152, 153, 400, 4096] {
        let mut data = vec![0u8; len];
        for b in data.iter_mut() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *b = state as u8;
        }
        assert!(opener.open(SUBJECT, &data).is_err());
        // Random bytes behind a valid-looking header must fail too.
        if len >= OVERHEAD {
            data[..4].copy_from_slice(&[b'F', b'M', VERSION, SUITE]);
            data[OFF_SENDER..OFF_SENDER + 32].copy_from_slice(&alice.public().0);
            data[OFF_RECIPIENT..OFF_RECIPIENT + 32].copy_from_slice(&alice.public().0);
            assert!(opener.open(SUBJECT, &data).is_err());
        }
    }
}

#[test]
fn low_order_ephemeral_key_is_refused() {
    let alice = user(1);
    let mut sealed = Sealer::new(&alice, alice.public())
        .seal(SUBJECT, b"x")
        .unwrap();
    sealed[OFF_EPHEMERAL..OFF_EPHEMERAL + 32].fill(0);
    assert_eq!(
        Opener::new(&alice).open(SUBJECT, &sealed),
        Err(OpenError::BadEphemeralKey)
    );
}

#[test]
fn the_ephemeral_key_is_renewed_per_epoch_and_every_message_still_opens() {
    let alice = user(1);
    let sealer = Sealer::new(&alice, alice.public());
    let opener = Opener::new(&alice);
    let mut ephemerals = std::collections::HashSet::new();
    for i in 0..EPOCH_MAX_MESSAGES as usize + 2 {
        let m = sealer.seal(SUBJECT, &i.to_be_bytes()).unwrap();
        ephemerals.insert(m[OFF_EPHEMERAL..OFF_EPHEMERAL + 32].to_vec());
        assert_eq!(opener.open(SUBJECT, &m).unwrap().payload, i.to_be_bytes());
    }
    // Exactly one renewal by count (an age renewal on a slow machine may add one more).
    assert!(
        (2..=3).contains(&ephemerals.len()),
        "{} ephemeral keys",
        ephemerals.len()
    );
}

#[test]
fn a_forged_message_reusing_a_genuine_epoch_fails() {
    let alice = user(1);
    let bob = user(2);
    let sealer = Sealer::new(&alice, alice.public());
    let opener = Opener::new(&alice);
    let genuine = sealer.seal(SUBJECT, b"genuine").unwrap();
    opener.open(SUBJECT, &genuine).unwrap();
    // Bob copies the genuine header (sender, ephemeral key, cached on Alice's side) and
    // encrypts under a key of his own making: the tag cannot verify.
    let mut forged = Sealer::new(&bob, alice.public())
        .seal(SUBJECT, b"forged!")
        .unwrap();
    forged[..OFF_MSG_ID].copy_from_slice(&genuine[..OFF_MSG_ID]);
    assert_eq!(opener.open(SUBJECT, &forged), Err(OpenError::Forged));
}

#[test]
fn long_subjects_are_authenticated_too() {
    let alice = user(1);
    let subject = "s.".repeat(400);
    let sealed = Sealer::new(&alice, alice.public())
        .seal(&subject, b"x")
        .unwrap();
    assert!(Opener::new(&alice).open(&subject, &sealed).is_ok());
    assert_eq!(
        Opener::new(&alice).open(&subject[1..], &sealed),
        Err(OpenError::Forged)
    );
}
