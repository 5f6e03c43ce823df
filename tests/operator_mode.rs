//! The JWTs flowmesh writes, against a real nats-server in operator mode (issue 13's
//! groundwork): a `full` resolver that knows only the system account at start takes a user's
//! account pushed with `$SYS.REQ.CLAIMS.UPDATE` (no config change, no reload); that account's
//! user, signed by an account signing key, logs in with a `.creds` file and may do what its
//! JWT allows and nothing else; a revocation pushed the same way closes its connection.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flowmesh_link::async_nats::{self, ConnectOptions, Event};
use flowmesh_manager::broker::jwt::{self, AccountClaims, Permissions};
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
    let op = KeyPair::new_operator();
    let sys = KeyPair::new_account();
    let alice = KeyPair::new_account();
    let alice_signer = KeyPair::new_account();
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
    let binary = flowmesh_testkit::nats_server_binary().expect("nats-server");
    let log = std::fs::File::create(dir.path().join("node.log")).unwrap();
    let mut cmd = Command::new(binary);
    cmd.arg("-c").arg(&conf).stdout(Stdio::null()).stderr(log);
    flowmesh_testkit::die_with_parent(&mut cmd);
    let _server = Server(cmd.spawn().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", ports[0])).is_err() {
        assert!(
            Instant::now() < deadline,
            "nats-server did not start in operator mode: {}",
            std::fs::read_to_string(dir.path().join("node.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The system account's user pushes alice's account: the node takes it at once.
    let (sys_creds, _) = user_creds(&sys, &sys.public_key(), "manager", &Permissions::default());
    let (sys_client, _) = connect(&url, &sys_creds).await;
    let push = |account_jwt: String| {
        let c = sys_client.clone();
        async move {
            let answer = c
                .request("$SYS.REQ.CLAIMS.UPDATE", account_jwt.into())
                .await
                .unwrap();
            String::from_utf8_lossy(&answer.payload).into_owned()
        }
    };
    let mut claims = AccountClaims {
        jetstream: true,
        signing_keys: vec![alice_signer.public_key()],
        ..AccountClaims::default()
    };
    let answer =
        push(jwt::account(&op, &alice.public_key(), "alice", &claims, now()).unwrap()).await;
    assert!(answer.contains("\"code\":200"), "{answer}");

    // A sensor-like user: publishes its flows only, subscribes to its inbox only.
    let perms = Permissions {
        publish: vec!["flowmesh.flows.s1".into()],
        subscribe: vec!["_INBOX.>".into()],
        allow_responses: false,
    };
    let (creds, user_key) = user_creds(&alice_signer, &alice.public_key(), "s1", &perms);
    let (client, mut events) = connect(&url, &creds).await;
    // Allowed: its own subject, seen by an unrestricted user of the same account.
    let (watch_creds, _) = user_creds(
        &alice_signer,
        &alice.public_key(),
        "watch",
        &Permissions::default(),
    );
    let (watcher, _) = connect(&url, &watch_creds).await;
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
    claims.revocations = vec![(user_key, now())];
    let answer =
        push(jwt::account(&op, &alice.public_key(), "alice", &claims, now()).unwrap()).await;
    assert!(answer.contains("\"code\":200"), "{answer}");
    wait_event(&mut events, "disconnected").await;
    let again = ConnectOptions::with_credentials(&creds)
        .unwrap()
        .connect(&url)
        .await;
    assert!(again.is_err(), "a revoked user logged in again");
}
