//! The JWTs flowmesh writes, against a real nats-server in operator mode (issue 13's
//! groundwork): a `full` resolver that knows only the system account at start takes a user's
//! account pushed with `$SYS.REQ.CLAIMS.UPDATE` (no config change, no reload); that account's
//! user, signed by an account signing key, logs in with a `.creds` file and may do what its
//! JWT allows and nothing else; a revocation pushed the same way closes its connection.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flowmesh_link::async_nats::jetstream;
use flowmesh_link::async_nats::{self, ConnectOptions, Event};
use flowmesh_manager::broker::jwt::{self, AccountClaims, Permissions};
use flowmesh_manager::broker::roles::{self, Role};
use nkeys::KeyPair;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn user_creds(signer: &KeyPair, account: &str, name: &str, p: &Permissions) -> (String, String) {
    let u = KeyPair::new_user();
    let token = jwt::user(signer, account, &u.public_key(), name, p, now(), None).unwrap();
    (jwt::creds(&token, &u.seed().unwrap()), u.public_key())
}

type Events = tokio::sync::mpsc::UnboundedReceiver<String>;

async fn connect(url: &str, creds: &str) -> (async_nats::Client, Events) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let client = ConnectOptions::with_credentials(creds)
        .unwrap()
        .max_reconnects(Some(1))
        .event_callback(move |e| {
            let tx = tx.clone();
            async move {
                let text = match e {
                    Event::ServerError(e) => format!("server error: {e}"),
                    other => format!("{other}"),
                };
                let _ = tx.send(text);
            }
        })
        .connect(url)
        .await
        .unwrap();
    (client, rx)
}

/// Waits for an event containing `what`.
async fn wait_event(rx: &mut Events, what: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(e)) if e.to_lowercase().contains(&what.to_lowercase()) => return e,
            Ok(Some(_)) => continue,
            _ => panic!("no event with {what:?} within 10 s"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_pushed_live_admit_their_users_within_their_permissions_until_revoked() {
    // The account was pushed by `operator_node` (code 200 asserted there).
    let node = operator_node().await;
    // A sensor-like user: publishes its flows only, subscribes to its inbox only.
    let perms = Permissions {
        publish: vec!["flowmesh.flows.s1".into()],
        subscribe: vec!["_INBOX.>".into()],
        allow_responses: false,
    };
    let (creds, user_key) = user_creds(&node.signer, &node.account.public_key(), "s1", &perms);
    let (client, mut events) = connect(&node.url, &creds).await;
    // Allowed: its own subject, seen by an unrestricted user of the same account.
    let (watch_creds, _) = user_creds(
        &node.signer,
        &node.account.public_key(),
        "watch",
        &Permissions::default(),
    );
    let (watcher, _) = connect(&node.url, &watch_creds).await;
    let mut seen = watcher.subscribe("flowmesh.>").await.unwrap();
    watcher.flush().await.unwrap();
    client
        .publish("flowmesh.flows.s1", "ok".into())
        .await
        .unwrap();
    client.flush().await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(5), futures::StreamExt::next(&mut seen))
        .await
        .expect("the allowed publish arrives")
        .unwrap();
    assert_eq!(m.subject.as_str(), "flowmesh.flows.s1");
    // Refused by the broker: another instance's subject, and subscribing to everything.
    client
        .publish("flowmesh.status.s2", "no".into())
        .await
        .unwrap();
    client.flush().await.unwrap();
    wait_event(&mut events, "permissions violation for publish").await;
    let _sub = client.subscribe("flowmesh.>").await.unwrap();
    client.flush().await.unwrap();
    wait_event(&mut events, "permissions violation for subscription").await;
    assert!(
        tokio::time::timeout(
            Duration::from_millis(500),
            futures::StreamExt::next(&mut seen)
        )
        .await
        .is_err(),
        "a forbidden publish was delivered"
    );

    // Revoked: pushed like the account; the live connection is closed and cannot return.
    let answer = node.push(vec![(user_key, now())]).await;
    assert!(answer.contains("\"code\":200"), "{answer}");
    wait_event(&mut events, "disconnected").await;
    let again = ConnectOptions::with_credentials(&creds)
        .unwrap()
        .connect(&node.url)
        .await;
    assert!(again.is_err(), "a revoked user logged in again");
}

/// A node in operator mode with one account (JetStream on, one signing key) pushed live.
struct OperatorNode {
    _server: Server,
    _dir: tempfile::TempDir,
    url: String,
    op: KeyPair,
    system: async_nats::Client,
    account: KeyPair,
    signer: KeyPair,
}

async fn operator_node() -> OperatorNode {
    let op = KeyPair::new_operator();
    let sys = KeyPair::new_account();
    let (account, signer) = (KeyPair::new_account(), KeyPair::new_account());
    let t = now();
    let op_jwt = jwt::operator(&op, "flowmesh-test", &sys.public_key(), t).unwrap();
    let sys_jwt =
        jwt::account(&op, &sys.public_key(), "SYS", &AccountClaims::default(), t).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ports = flowmesh_testkit::free_ports(2).unwrap();
    let url = format!("nats://127.0.0.1:{}", ports[0]);
    let conf = dir.path().join("node.conf");
    std::fs::write(
        &conf,
        format!(
            "listen: 127.0.0.1:{}\nhttp: 127.0.0.1:{}\njetstream {{ store_dir: \"{}\" }}\n\
             operator: \"{op_jwt}\"\nsystem_account: {}\n\
             resolver: {{ type: full, dir: \"{}\", allow_delete: true, interval: \"2m\", limit: 1000000 }}\n\
             resolver_preload: {{ {}: \"{sys_jwt}\" }}\n",
            ports[0],
            ports[1],
            dir.path().join("js").display(),
            sys.public_key(),
            dir.path().join("jwt").display(),
            sys.public_key(),
        ),
    )
    .unwrap();
    let mut cmd = Command::new(flowmesh_testkit::nats_server_binary().expect("nats-server"));
    cmd.arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    flowmesh_testkit::die_with_parent(&mut cmd);
    let server = Server(cmd.spawn().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", ports[0])).is_err() {
        assert!(
            Instant::now() < deadline,
            "nats-server did not start in operator mode"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (sys_creds, _) = user_creds(&sys, &sys.public_key(), "manager", &Permissions::default());
    let (system, _) = connect(&url, &sys_creds).await;
    let node = OperatorNode {
        _server: server,
        _dir: dir,
        url,
        op,
        system,
        account,
        signer,
    };
    let answer = node.push(Vec::new()).await;
    assert!(answer.contains("\"code\":200"), "{answer}");
    node
}

impl OperatorNode {
    /// Signs the account again (JetStream on, its signing key, these revocations) and pushes
    /// it through the system account; the node's answer.
    async fn push(&self, revocations: Vec<(String, i64)>) -> String {
        let claims = AccountClaims {
            jetstream: true,
            signing_keys: vec![self.signer.public_key()],
            revocations,
            ..AccountClaims::default()
        };
        let token = jwt::account(
            &self.op,
            &self.account.public_key(),
            "alice",
            &claims,
            now(),
        )
        .unwrap();
        let answer = self
            .system
            .request("$SYS.REQ.CLAIMS.UPDATE", token.into())
            .await
            .unwrap();
        String::from_utf8_lossy(&answer.payload).into_owned()
    }

    async fn login(&self, role: Role, instance: &str) -> (async_nats::Client, Events) {
        let (creds, _) = user_creds(
            &self.signer,
            &self.account.public_key(),
            instance,
            &roles::permissions(role, instance),
        );
        connect(&self.url, &creds).await
    }
}

fn js(client: &async_nats::Client) -> jetstream::Context {
    let mut js = jetstream::new(client.clone());
    // A request the broker refuses gets no answer: do not wait long for it.
    js.set_timeout(Duration::from_secs(1));
    js
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_does_its_job_in_jetstream_and_the_broker_refuses_the_rest() {
    let node = operator_node().await;
    let (collector, _) = node.login(Role::Collector, "c1").await;
    let (sensor, mut sensor_events) = node.login(Role::Sensor, "s1").await;
    let (watch, mut watch_events) = node.login(Role::Watch, "w1").await;
    let (cjs, sjs) = (js(&collector), js(&sensor));

    // The collector owns the stream and its durable consumer.
    let stream = cjs
        .get_or_create_stream(jetstream::stream::Config {
            name: "FLOWS".into(),
            subjects: vec!["flowmesh.flows.*".into()],
            ..Default::default()
        })
        .await
        .expect("a collector creates FLOWS");
    let consumer: jetstream::consumer::PullConsumer = stream
        .get_or_create_consumer(
            "collectors",
            jetstream::consumer::pull::Config {
                durable_name: Some("collectors".into()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ..Default::default()
            },
        )
        .await
        .expect("a collector creates its durable consumer");

    // The sensor publishes into FLOWS and gets JetStream's ack: no API needed.
    sjs.publish("flowmesh.flows.s1", "batch".into())
        .await
        .unwrap()
        .await
        .expect("the sensor's batch is stored");
    // It cannot look at the stream, list consumers, create or delete streams.
    assert!(
        sjs.get_stream("FLOWS").await.is_err(),
        "a sensor read FLOWS' info"
    );
    assert!(
        sjs.delete_stream("FLOWS").await.is_err(),
        "a sensor deleted FLOWS"
    );
    assert!(
        sjs.create_stream(jetstream::stream::Config {
            name: "MINE".into(),
            subjects: vec!["flowmesh.flows.s1".into()],
            ..Default::default()
        })
        .await
        .is_err(),
        "a sensor created a stream"
    );
    wait_event(
        &mut sensor_events,
        "permissions violation for publish to \"$JS.API",
    )
    .await;
    // Nor publish as another instance.
    sensor
        .publish("flowmesh.flows.s2", "x".into())
        .await
        .unwrap();
    sensor.flush().await.unwrap();
    wait_event(&mut sensor_events, "flowmesh.flows.s2").await;

    // The collector fetches and acknowledges the batch; it cannot delete the stream either.
    let mut batch = consumer.fetch().max_messages(1).messages().await.unwrap();
    let m = futures::StreamExt::next(&mut batch)
        .await
        .expect("the batch")
        .unwrap();
    assert_eq!(&m.payload[..], b"batch");
    m.ack().await.expect("a collector acknowledges");
    assert!(
        cjs.delete_stream("FLOWS").await.is_err(),
        "a collector deleted FLOWS"
    );

    // A watch client reads alerts and may not publish flows.
    let mut alerts = watch.subscribe("flowmesh.alerts.*").await.unwrap();
    watch.flush().await.unwrap();
    collector
        .publish("flowmesh.alerts.c1", "alert".into())
        .await
        .unwrap();
    collector.flush().await.unwrap();
    let a = tokio::time::timeout(
        Duration::from_secs(5),
        futures::StreamExt::next(&mut alerts),
    )
    .await
    .expect("the watch client gets the alert")
    .unwrap();
    assert_eq!(&a.payload[..], b"alert");
    watch
        .publish("flowmesh.flows.s1", "x".into())
        .await
        .unwrap();
    watch.flush().await.unwrap();
    wait_event(&mut watch_events, "permissions violation for publish").await;
}
