//! Remote-assistance tunnels against a real cluster: the instance's side (`assist::serve`) on a
//! collector's credentials in one region, the support side (`assist::support`) on a session
//! JWT the account signed, in the other; a loopback TCP service behind. What goes through,
//! and what does not: another secret, another session, a session ended or expired.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use flowmesh_link::assist::key::KeyParts;
use flowmesh_link::assist::serve::{self, Counters, Session, Stopped};
use flowmesh_link::assist::{AssistKey, new_id, now_secs, support};
use flowmesh_link::async_nats::Client;
use flowmesh_link::connect::connect;
use flowmesh_manager::broker::{AccountRecord, Authority};
use flowmesh_testkit::{Cluster, Collector, TestUser};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use zeroize::Zeroizing;

/// A loopback echo service that counts the connections it accepted.
async fn echo() -> (SocketAddr, Arc<AtomicU64>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let accepted = Arc::new(AtomicU64::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    (addr, accepted)
}

struct Setup {
    cluster: Cluster,
    instance: Client,
    dir: tempfile::TempDir,
}

impl Setup {
    async fn start() -> Setup {
        let alice = TestUser::new("alice", &[("col", Collector)]);
        let cluster =
            Cluster::start_regions(&[("eu", 2), ("us", 2)], &[&alice], Duration::from_secs(60))
                .unwrap_or_else(|e| panic!("the test cluster did not start: {e:#}"));
        let instance = connect(&cluster.broker_config("alice", "col", Some("eu")), "col")
            .await
            .unwrap();
        Setup {
            cluster,
            instance,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A support-side client of `session` on the other region, with the JWT the account
    /// signs for it (the manager's job in a deployment), built through an assistance key.
    async fn support_client(&self, session: &str, secret: &[u8; 32], expires: i64) -> Client {
        let dir = self.cluster.dir();
        let user = nkeys::KeyPair::new_user();
        let jwt = Authority::load(dir)
            .unwrap()
            .assist_jwt(
                &AccountRecord::load(dir, "alice").unwrap(),
                session,
                &user.public_key(),
                expires,
            )
            .unwrap();
        let seed = user.seed().unwrap();
        let broker = self.cluster.broker_config("alice", "col", Some("us"));
        let key = AssistKey::new(KeyParts {
            instance: "col",
            session,
            secret,
            expires,
            admin: false,
            broker: &broker,
            jwt: &jwt,
            seed: &seed,
        })
        .unwrap();
        let key = AssistKey::parse(&key.encode(), now_secs()).unwrap();
        let sub = self.dir.path().join(new_id());
        std::fs::create_dir(&sub).unwrap();
        connect(&key.broker_config(&sub).unwrap(), "support")
            .await
            .unwrap()
    }
}

/// Serves `session` on the instance's client until the returned sender says stop.
fn serve_session(
    client: &Client,
    session: Session,
) -> (
    watch::Sender<bool>,
    Arc<Counters>,
    tokio::task::JoinHandle<Result<Stopped, String>>,
) {
    let (tx, rx) = watch::channel(false);
    let counters = Arc::new(Counters::default());
    let task = tokio::spawn(serve::serve(
        client.clone(),
        Arc::new(session),
        counters.clone(),
        rx,
        Arc::new(|| {}),
    ));
    (tx, counters, task)
}

/// A local port of the support side for `session` with `secret`.
async fn support_port(
    client: Client,
    session: &str,
    secret: [u8; 32],
    expires: i64,
) -> (SocketAddr, watch::Sender<bool>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = watch::channel(false);
    tokio::spawn(support::listen(
        client,
        session.to_string(),
        Zeroizing::new(secret),
        expires,
        l,
        Arc::new(Counters::default()),
        rx,
    ));
    (addr, tx)
}

/// Reads until EOF or an error; the bytes read. Fails the test if it takes over `secs`.
async fn read_to_end(s: &mut TcpStream, secs: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(secs), s.read_to_end(&mut out)).await;
    assert!(r.is_ok(), "the connection did not end within {secs} s");
    out
}

fn session(secret: [u8; 32], expires: i64, service: SocketAddr) -> Session {
    Session {
        id: new_id(),
        secret: Zeroizing::new(secret),
        expires,
        service,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn megabytes_go_through_both_ways_across_regions_and_end_with_the_connection() {
    let s = Setup::start().await;
    let (service, accepted) = echo().await;
    let expires = now_secs() + 3600;
    let sess = session([7; 32], expires, service);
    let id = sess.id.clone();
    let (_stop, counters, _task) = serve_session(&s.instance, sess);
    let support = s.support_client(&id, &[7; 32], expires).await;
    let (port, _end) = support_port(support, &id, [7; 32], expires).await;

    // 8 MiB through an echo: four times the flow-control window each way.
    let data: Vec<u8> = (0..8 * 1024 * 1024u32)
        .map(|i| (i * 7 + i / 251) as u8)
        .collect();
    let mut c = TcpStream::connect(port).await.unwrap();
    let (mut r, mut w) = c.split();
    let send = async {
        w.write_all(&data).await.unwrap();
        w.shutdown().await.unwrap();
    };
    let mut back = Vec::new();
    let recv = tokio::time::timeout(Duration::from_secs(60), r.read_to_end(&mut back));
    let (_, got) = tokio::join!(send, recv);
    assert!(got.is_ok(), "the echo did not come back within 60 s");
    assert_eq!(back.len(), data.len());
    assert!(back == data, "the bytes came back altered");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    assert_eq!(counters.connections.load(Ordering::SeqCst), 1);
    assert_eq!(
        counters.traffic.received.load(Ordering::SeqCst),
        data.len() as u64
    );
    // Several connections at once, each its own stream.
    let mut tasks = Vec::new();
    for i in 0..5u8 {
        tasks.push(tokio::spawn(async move {
            let mut c = TcpStream::connect(port).await.unwrap();
            let msg = vec![i; 100_000];
            c.write_all(&msg).await.unwrap();
            c.shutdown().await.unwrap();
            let back = read_to_end(&mut c, 30).await;
            assert_eq!(back, msg);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_secret_or_another_session_reaches_nothing_and_nothing_names_a_destination() {
    let s = Setup::start().await;
    let (service, accepted) = echo().await;
    // Something else on the instance's loopback that no connection may reach.
    let (elsewhere, elsewhere_accepted) = echo().await;
    let expires = now_secs() + 3600;
    let sess = session([1; 32], expires, service);
    let id = sess.id.clone();
    let (_stop, counters, _task) = serve_session(&s.instance, sess);

    // The right session id, the wrong secret: the first frame does not authenticate.
    let support = s.support_client(&id, &[2; 32], expires).await;
    let (port, _end) = support_port(support, &id, [2; 32], expires).await;
    let mut c = TcpStream::connect(port).await.unwrap();
    let _ = c.write_all(b"GET / HTTP/1.1\r\n\r\n").await;
    assert!(read_to_end(&mut c, 30).await.is_empty());
    flowmesh_testkit::process::wait_for("the refusal counted", Duration::from_secs(10), || {
        counters.refused.load(Ordering::SeqCst) >= 1
    });
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        0,
        "the service was reached"
    );

    // Another session's credentials and id (same secret even): no answer at all.
    let other = new_id();
    let support = s.support_client(&other, &[1; 32], expires).await;
    let (port, _end2) = support_port(support, &other, [1; 32], expires).await;
    let mut c = TcpStream::connect(port).await.unwrap();
    assert!(read_to_end(&mut c, 30).await.is_empty());
    assert_eq!(accepted.load(Ordering::SeqCst), 0);

    // The right key: whatever the bytes say, they reach the one service.
    let support = s.support_client(&id, &[1; 32], expires).await;
    let (port, _end3) = support_port(support, &id, [1; 32], expires).await;
    let mut c = TcpStream::connect(port).await.unwrap();
    let ask = format!("CONNECT {elsewhere} HTTP/1.1\r\nHost: {elsewhere}\r\n\r\n");
    c.write_all(ask.as_bytes()).await.unwrap();
    c.shutdown().await.unwrap();
    assert_eq!(read_to_end(&mut c, 30).await, ask.as_bytes());
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    assert_eq!(elsewhere_accepted.load(Ordering::SeqCst), 0);
}

/// Publishes `probe` then `marker` from `from` until `marker` reaches `to` (interest crosses
/// the gateway between regions asynchronously); then whether `probe` reached `watch` — it was
/// sent before the marker that arrived, on the same connection, so it would have.
async fn probe_then_marker(
    from: &Client,
    probe: &str,
    marker: &str,
    to: &mut flowmesh_link::async_nats::Subscriber,
    watch: &mut flowmesh_link::async_nats::Subscriber,
) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let _ = from.publish(probe.to_string(), "probe".into()).await;
        from.publish(marker.to_string(), "marker".into())
            .await
            .unwrap();
        from.flush().await.unwrap();
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(300), to.next()).await {
            assert_eq!(&m.payload[..], b"marker");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the marker never arrived"
        );
    }
    tokio::time::timeout(Duration::from_millis(1), watch.next())
        .await
        .is_ok_and(|m| m.is_some())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_jwt_may_use_its_own_session_only() {
    let s = Setup::start().await;
    let (mine, theirs) = (new_id(), new_id());
    let support = s.support_client(&mine, &[3; 32], now_secs() + 600).await;
    // Subscribing to another session's frames: refused by the broker (no message comes).
    let mut foreign = support
        .subscribe(format!("flowmesh.assist.{theirs}.*.s"))
        .await
        .unwrap();
    let mut own = support
        .subscribe(format!("flowmesh.assist.{mine}.*.s"))
        .await
        .unwrap();
    support.flush().await.unwrap();
    let conn = new_id();
    use flowmesh_link::assist::{to_instance, to_support};
    // Another session's frames do not reach this session's user.
    let leaked = probe_then_marker(
        &s.instance,
        &to_support(&theirs, &conn),
        &to_support(&mine, &conn),
        &mut own,
        &mut foreign,
    )
    .await;
    assert!(
        !leaked,
        "another session's frames reached this session's user"
    );
    // It publishes nowhere but its session: not to the instances' control subjects.
    let mut control = s.instance.subscribe("flowmesh.control.col").await.unwrap();
    let mut own_i = s
        .instance
        .subscribe(format!("flowmesh.assist.{mine}.*.i"))
        .await
        .unwrap();
    s.instance.flush().await.unwrap();
    let leaked = probe_then_marker(
        &support,
        "flowmesh.control.col",
        &to_instance(&mine, &conn),
        &mut own_i,
        &mut control,
    )
    .await;
    assert!(!leaked, "a session's user published outside its session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_or_expiring_the_session_closes_open_connections_and_refuses_new_ones() {
    let s = Setup::start().await;
    let (service, accepted) = echo().await;
    let expires = now_secs() + 3600;
    let sess = session([9; 32], expires, service);
    let id = sess.id.clone();
    let (stop, _counters, task) = serve_session(&s.instance, sess);
    let support = s.support_client(&id, &[9; 32], expires).await;
    let (port, _end) = support_port(support, &id, [9; 32], expires).await;
    let mut open = TcpStream::connect(port).await.unwrap();
    open.write_all(b"ping").await.unwrap();
    let mut four = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(30), open.read_exact(&mut four))
        .await
        .expect("the echo answers")
        .unwrap();
    assert_eq!(&four, b"ping");
    // Disabled: the open connection ends (the instance resets it), a new one gets nothing.
    stop.send(true).unwrap();
    assert_eq!(task.await.unwrap(), Ok(Stopped::Cancelled));
    assert!(read_to_end(&mut open, 30).await.is_empty());
    let mut late = TcpStream::connect(port).await.unwrap();
    let _ = late.write_all(b"hello").await;
    assert!(read_to_end(&mut late, 30).await.is_empty());
    assert_eq!(accepted.load(Ordering::SeqCst), 1);

    // A session that expires soon: the instance ends it by itself. (Soon, but not so soon
    // that a loaded machine could not set the connection up first.)
    let expires = now_secs() + 20;
    let sess = session([10; 32], expires, service);
    let id = sess.id.clone();
    let (_stop, _counters, task) = serve_session(&s.instance, sess);
    let support = s.support_client(&id, &[10; 32], expires + 60).await;
    // The support side believes it has a minute more: the instance's clock decides.
    let (port, _end) = support_port(support, &id, [10; 32], expires + 60).await;
    let mut open = TcpStream::connect(port).await.unwrap();
    open.write_all(b"ping").await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), open.read_exact(&mut four))
        .await
        .expect("the echo answers")
        .unwrap();
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("the session expires")
            .unwrap(),
        Ok(Stopped::Expired)
    );
    assert!(read_to_end(&mut open, 30).await.is_empty());
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_disconnects_a_session_user_when_its_jwt_expires() {
    use flowmesh_link::async_nats::connection::State;
    let s = Setup::start().await;
    let id = new_id();
    // Ten seconds: time to connect on a loaded machine, then the JWT runs out.
    let support = s.support_client(&id, &[4; 32], now_secs() + 10).await;
    assert_eq!(support.connection_state(), State::Connected);
    // Expiry is enforced by the broker too, whatever the support side's clock or code says.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    while support.connection_state() == State::Connected {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the broker kept an expired session user connected"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // And it does not let it back in.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_ne!(support.connection_state(), State::Connected);
}
