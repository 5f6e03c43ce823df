//! The federated cluster against real nats-server processes (eu: 3 nodes, us: 2, TLS 1.3 only,
//! one account per user): messages cross regions sealed, users are kept apart by the broker,
//! anything but TLS 1.3 is refused, and clients survive the loss of their node.

use std::sync::Arc;
use std::time::Duration;

use flowmesh_link::async_nats::{self, Client, Subscriber};
use flowmesh_link::connect::{BrokerConfig, connect};
use flowmesh_link::subject::Channel;
use flowmesh_link::{Opener, Sealer};
use flowmesh_testkit::{Cluster, TestUser};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, timeout};

const START: Duration = Duration::from_secs(90);
const WAIT: Duration = Duration::from_secs(30);

/// An unrestricted client inside `user`'s account: these tests are about what the broker keeps
/// apart between accounts and regions (each role's limits are tested in `operator_mode.rs`).
async fn client(cluster: &Cluster, user: &str, instance: &str, urls: Vec<String>) -> Client {
    let mut cfg: BrokerConfig = cluster.insider_config(user, instance, None);
    cfg.urls = urls;
    connect(&cfg, instance).await.expect("connect")
}

/// Publishes fresh sealed messages from `from` until `sub` receives one (interest crosses the
/// gateways a moment after subscribing), then returns what arrived, opened.
async fn publish_until_received(
    from: &Client,
    sealer: &Sealer,
    subject: &str,
    sub: &mut Subscriber,
    opener: &Opener,
) -> Vec<u8> {
    let deadline = Instant::now() + WAIT;
    let mut n = 0;
    loop {
        assert!(Instant::now() < deadline, "nothing arrived within {WAIT:?}");
        n += 1;
        let sealed = sealer
            .seal(subject, format!("batch-{n}").as_bytes())
            .unwrap();
        // While the client reconnects, publishing may fail; the loop tries again.
        if from
            .publish(subject.to_string(), sealed.into())
            .await
            .is_ok()
        {
            let _ = timeout(Duration::from_millis(500), from.flush()).await;
        }
        if let Ok(Some(msg)) = timeout(Duration::from_millis(250), sub.next()).await {
            return opener
                .open(msg.subject.as_str(), &msg.payload)
                .expect("opens")
                .payload;
        }
    }
}

/// Drains `sub` up to a message whose payload is `sentinel`; returns what came before it.
async fn before_sentinel(sub: &mut Subscriber, sentinel: &[u8]) -> Vec<async_nats::Message> {
    let mut seen = Vec::new();
    loop {
        let msg = timeout(WAIT, sub.next())
            .await
            .expect("sentinel within deadline")
            .expect("open subscription");
        if msg.payload.as_ref() == sentinel {
            return seen;
        }
        seen.push(msg);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_messages_cross_regions_and_users_stay_apart() {
    let alice = TestUser::new("alice", &[]);
    let bob = TestUser::new("bob", &[]);
    let cluster = Cluster::start(&[&alice, &bob], START).unwrap();
    let us1 = vec![cluster.url("us-1").unwrap()];

    let eu = client(&cluster, "alice", "eu-sensor", cluster.urls(Some("eu"))).await;
    let us = client(&cluster, "alice", "us-collector", us1.clone()).await;
    let witness = client(&cluster, "alice", "us-witness", us1.clone()).await;
    let bob_c = client(&cluster, "bob", "laptop", us1.clone()).await;
    assert!(eu.server_info().server_name.starts_with("eu-"));
    assert_eq!(us.server_info().server_name, "us-1");

    let sealer = Sealer::new(&alice.identity, alice.identity.public());
    let opener = Opener::new(&alice.identity);
    let subject = Channel::Flows.subject("eu-sensor").unwrap();

    let mut us_sub = us.subscribe(Channel::Flows.all()).await.unwrap();
    let mut bob_sub = bob_c.subscribe(">").await.unwrap();
    us.flush().await.unwrap();
    bob_c.flush().await.unwrap();

    // 1. Sealed in eu, opened in us.
    let got = publish_until_received(&eu, &sealer, &subject, &mut us_sub, &opener).await;
    assert!(got.starts_with(b"batch-"));

    // 2. Bob publishes on the very same subject name, even sealed to Alice's key: it stays in
    //    Bob's account. Alice's witness on the same node publishes a sentinel after Bob's
    //    messages were processed (flush), so anything leaked would arrive before it.
    let bob_sealer = Sealer::new(&bob.identity, alice.identity.public());
    for i in 0..20 {
        let forged = bob_sealer
            .seal(&subject, format!("bob-{i}").as_bytes())
            .unwrap();
        bob_c.publish(subject.clone(), forged.into()).await.unwrap();
    }
    bob_c.flush().await.unwrap();
    witness
        .publish(subject.clone(), "sentinel-a".into())
        .await
        .unwrap();
    witness.flush().await.unwrap();
    let leaked = before_sentinel(&mut us_sub, b"sentinel-a").await;
    for m in &leaked {
        // Only Alice's own retries from step 1 may precede the sentinel.
        let opened = opener.open(m.subject.as_str(), &m.payload);
        assert!(
            opened.is_ok_and(|o| o.sender == alice.identity.public()),
            "a message from outside Alice's account arrived"
        );
    }

    // 3. Bob, subscribed to everything in his account, receives nothing of Alice's.
    for i in 0..20 {
        let sealed = sealer
            .seal(&subject, format!("alice-{i}").as_bytes())
            .unwrap();
        witness
            .publish(subject.clone(), sealed.into())
            .await
            .unwrap();
    }
    witness.flush().await.unwrap();
    // Bob's own subject pattern `>` also matches his first publishes of step 2: skip those.
    bob_c
        .publish("bob.sentinel", "sentinel-b".into())
        .await
        .unwrap();
    bob_c.flush().await.unwrap();
    let seen = before_sentinel(&mut bob_sub, b"sentinel-b").await;
    for m in &seen {
        // The only thing Bob may see is his own step-2 messages, matched by his `>`.
        let header = flowmesh_link::envelope::peek_header(&m.payload).expect("a sealed message");
        assert_eq!(
            header.sender,
            bob.identity.public(),
            "Bob received a message of Alice's"
        );
    }

    // 4. Credentials the cluster does not know are refused: a user JWT naming Alice's account
    //    but signed by a key that is not one of its signing keys.
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("stranger.creds");
    let account = flowmesh_manager::broker::AccountRecord::load(cluster.dir(), "alice").unwrap();
    let forger = nkeys::KeyPair::new_account();
    let user = nkeys::KeyPair::new_user();
    let token = flowmesh_manager::broker::jwt::user(
        &forger,
        &account.account,
        &user.public_key(),
        &flowmesh_manager::broker::jwt::UserClaims {
            name: "stranger".into(),
            ..Default::default()
        },
        0,
    )
    .unwrap();
    flowmesh_link::secret_file::write(
        &creds,
        flowmesh_manager::broker::jwt::creds(&token, &user.seed().unwrap()).as_bytes(),
        true,
    )
    .unwrap();
    let mut stranger = cluster.insider_config("alice", "eu-sensor", Some("eu"));
    stranger.creds_file = creds;
    stranger.connect_timeout_secs = 5;
    assert!(
        connect(&stranger, "stranger").await.is_err(),
        "forged credentials were let in"
    );
}

fn tls_config(
    versions: &[&'static rustls::SupportedProtocolVersion],
    cluster: &Cluster,
) -> Arc<rustls::ClientConfig> {
    Arc::new(
        rustls::ClientConfig::builder_with_provider(flowmesh_link::tls::provider())
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(
                flowmesh_link::tls::root_store(&cluster.dir().join("ca.pem")).unwrap(),
            )
            .with_no_client_auth(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_tls_1_3_is_accepted_on_every_node() {
    let alice = TestUser::new("alice", &[("probe", flowmesh_testkit::Sensor)]);
    let cluster = Cluster::start(&[&alice], START).unwrap();
    let tls13 = tokio_rustls::TlsConnector::from(tls_config(&[&rustls::version::TLS13], &cluster));
    let tls12 = tokio_rustls::TlsConnector::from(tls_config(&[&rustls::version::TLS12], &cluster));
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();

    for url in cluster.urls(None) {
        let addr = url.trim_start_matches("tls://").to_string();

        // Control: TLS 1.3 handshakes (TLS first), so the refusals below mean something.
        let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let ok = timeout(WAIT, tls13.connect(name.clone(), tcp))
            .await
            .unwrap();
        let stream = ok.unwrap_or_else(|e| panic!("TLS 1.3 refused by {addr}: {e}"));
        assert_eq!(
            stream.get_ref().1.protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_3)
        );

        // A client that only speaks TLS 1.2 is refused during the handshake.
        let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let refused = timeout(WAIT, tls12.connect(name.clone(), tcp))
            .await
            .unwrap();
        assert!(refused.is_err(), "{addr} accepted TLS 1.2");

        // A plaintext client gets neither INFO nor PONG: the server wants a TLS handshake first
        // and closes the connection on anything else.
        let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        tcp.write_all(b"CONNECT {\"verbose\":false}\r\nPING\r\n")
            .await
            .unwrap();
        let mut got = Vec::new();
        // Whether the close comes as EOF or as a reset, it must come, and nothing NATS before it.
        let _ = timeout(WAIT, tcp.read_to_end(&mut got))
            .await
            .expect("server closes the plaintext connection");
        let text = String::from_utf8_lossy(&got);
        assert!(
            !text.contains("INFO") && !text.contains("PONG"),
            "{addr} spoke plaintext NATS: {text}"
        );
    }

    // The NATS client itself: plaintext and TLS 1.2 both fail to connect.
    let cfg = cluster.broker_config("alice", "probe", None);
    let creds = std::fs::read_to_string(&cfg.creds_file).unwrap();
    let plain_url = cluster.urls(None)[0].replace("tls://", "nats://");
    let plain = async_nats::ConnectOptions::with_credentials(&creds)
        .unwrap()
        .connection_timeout(Duration::from_secs(3))
        .connect(plain_url)
        .await;
    assert!(plain.is_err(), "a plaintext NATS client connected");
    let old = async_nats::ConnectOptions::with_credentials(&creds)
        .unwrap()
        .require_tls(true)
        .tls_first()
        .tls_client_config((*tls_config(&[&rustls::version::TLS12], &cluster)).clone())
        .connection_timeout(Duration::from_secs(3))
        .connect(cluster.urls(None)[0].clone())
        .await;
    assert!(old.is_err(), "a TLS 1.2 NATS client connected");
    // And our own client refuses a non-TLS URL before dialling.
    let mut insecure = cfg.clone();
    insecure.urls = vec!["nats://127.0.0.1:4222".into()];
    assert!(connect(&insecure, "probe").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_carries_on_through_another_node_when_its_node_dies() {
    let alice = TestUser::new("alice", &[]);
    let mut cluster = Cluster::start(&[&alice], START).unwrap();
    let eu = client(&cluster, "alice", "eu-sensor", cluster.urls(Some("eu"))).await;
    let us = client(
        &cluster,
        "alice",
        "us-collector",
        vec![cluster.url("us-1").unwrap()],
    )
    .await;
    let sealer = Sealer::new(&alice.identity, alice.identity.public());
    let opener = Opener::new(&alice.identity);
    let subject = Channel::Flows.subject("eu-sensor").unwrap();
    let mut sub = us.subscribe(subject.clone()).await.unwrap();
    us.flush().await.unwrap();

    publish_until_received(&eu, &sealer, &subject, &mut sub, &opener).await;
    let first = eu.server_info().server_name;
    cluster.kill(&first).unwrap();

    // Drain anything published before the kill, then require a message sealed after it,
    // and a client now attached to another eu node.
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(
            Instant::now() < deadline,
            "the client did not fail over within {WAIT:?}"
        );
        let got = publish_until_received(&eu, &sealer, &subject, &mut sub, &opener).await;
        let now = eu.server_info().server_name;
        if eu.connection_state() == async_nats::connection::State::Connected && now != first {
            assert!(
                now.starts_with("eu-"),
                "failed over to {now}, outside its region's seed list"
            );
            assert!(got.starts_with(b"batch-"));
            break;
        }
    }
}
