//! The support engineer's side: a local listener whose every TCP connection is opened
//! through the session to the instance's service, until the session ends.

use std::sync::Arc;
use std::time::Duration;

use async_nats::Client;
use bytes::Bytes;
use futures::StreamExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use zeroize::Zeroizing;

use super::pipe::{self, Done, Link, Mux};
use super::serve::Counters;
use super::{
    ACCEPT, OPEN, conn_bytes, conn_of, handshake_message, handshake_peer, new_id, to_instance,
};
use crate::tunnel::{Handshake, Kind, Role};

/// How long the instance may take to answer an opening.
const ANSWER: Duration = Duration::from_secs(10);
/// How often an unanswered opening is sent again.
const REPEAT: Duration = Duration::from_secs(1);

/// Why [`listen`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// The session's time is up.
    Expired,
    /// `stop` turned true.
    Stopped,
}

/// Accepts connections on `listener` and opens each through session `session` (its id and
/// secret) until `expires` (Unix seconds) or `stop`.
pub async fn listen(
    client: Client,
    session: String,
    secret: Zeroizing<[u8; 32]>,
    expires: i64,
    listener: TcpListener,
    counters: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
) -> Result<Finished, String> {
    let subject = format!("flowmesh.assist.{session}.*.s");
    let mut sub = client
        .subscribe(subject.clone())
        .await
        .map_err(|e| format!("subscribing to {subject}: {e}"))?;
    let secret = Arc::new(secret);
    let session = Arc::new(session);
    let (end_tx, end_rx) = watch::channel(false);
    let mut mux = Mux::default();
    let expiry = super::expiry(expires);
    tokio::pin!(expiry);
    let finished = loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, from) = accepted.map_err(|e| format!("accepting: {e}"))?;
                let conn = new_id();
                let Some((incoming, done)) = mux.add(&conn) else {
                    tracing::warn!(%from, "too many connections through the session; refused");
                    continue;
                };
                tracing::info!(%from, conn = %conn, "opening a connection through the session");
                let open = Open {
                    client: client.clone(),
                    session: session.clone(),
                    secret: secret.clone(),
                    conn,
                    counters: counters.clone(),
                };
                tokio::spawn(open.run(tcp, incoming, end_rx.clone(), done));
            }
            m = sub.next() => {
                let Some(m) = m else { break Err("the subscription ended".to_string()) };
                if let Some(conn) = conn_of(&m.subject, &session) {
                    mux.route(conn, m.payload);
                }
            }
            () = mux.finished() => {}
            () = &mut expiry => break Ok(Finished::Expired),
            r = stop.changed() => if r.is_err() || *stop.borrow() {
                break Ok(Finished::Stopped);
            }
        }
    };
    let _ = end_tx.send(true);
    finished
}

/// One connection being opened.
struct Open {
    client: Client,
    session: Arc<String>,
    secret: Arc<Zeroizing<[u8; 32]>>,
    conn: String,
    counters: Arc<Counters>,
}

impl Open {
    async fn run(
        self,
        tcp: TcpStream,
        incoming: mpsc::Receiver<Bytes>,
        end: watch::Receiver<bool>,
        _done: Done,
    ) {
        let conn = self.conn.clone();
        match self.open(tcp, incoming, end).await {
            Ok(ended) => tracing::info!(conn = %conn, ?ended, "connection closed"),
            Err(e) => tracing::warn!(conn = %conn, error = %e, "connection ended"),
        }
    }

    async fn open(
        self,
        tcp: TcpStream,
        mut incoming: mpsc::Receiver<Bytes>,
        end: watch::Receiver<bool>,
    ) -> Result<pipe::Ended, String> {
        let conn_id = conn_bytes(&self.conn)?;
        let hs = Handshake::new();
        let out: async_nats::Subject = to_instance(&self.session, &self.conn).into();
        let opening = handshake_message(OPEN, hs.public());
        // The opening is said again each second until answered: the first may cross the
        // gateway between regions before the instance's interest in the session has (or be
        // lost with a broker node). The instance ignores the repeats of a connection it has.
        let deadline = tokio::time::Instant::now() + ANSWER;
        let answer = loop {
            self.client
                .publish(out.clone(), opening.clone())
                .await
                .map_err(|e| e.to_string())?;
            let wait = REPEAT.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
            match tokio::time::timeout(wait, incoming.recv()).await {
                Ok(Some(answer)) => break answer,
                Ok(None) => return Err("the session's subscription ended".into()),
                Err(_) if tokio::time::Instant::now() >= deadline => {
                    return Err(
                        "the instance did not answer within 10 s: the session ended, \
                                or the instance is offline"
                            .into(),
                    );
                }
                Err(_) => {}
            }
        };
        let peer = handshake_peer(ACCEPT, &answer).ok_or("the instance's answer is malformed")?;
        let (tx, rx) = hs
            .finish(&self.secret, &conn_id, Role::Initiator, peer)
            .map_err(|e| e.to_string())?;
        let mut link = Link {
            client: self.client.clone(),
            out,
            tx,
        };
        // The first frame proves the secret to the instance.
        link.send(Kind::Data, &[])
            .await
            .map_err(|e| e.to_string())?;
        self.counters
            .connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        pipe::carry(tcp, link, rx, incoming, end, &self.counters.traffic)
            .await
            .map_err(|e| e.to_string())
    }
}
