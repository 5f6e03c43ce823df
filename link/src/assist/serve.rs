//! The instance's side of a session: accepts the support engineer's connections on the
//! session's subjects and carries each into the one service the instance configured. A
//! connection reaches the service only after its first frame authenticates (its opener holds
//! the session secret); when the session expires or is ended, every connection is reset.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::Client;
use bytes::Bytes;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use zeroize::Zeroizing;

use super::pipe::{self, Done, Link, Mux, Traffic};
use super::{ACCEPT, OPEN, conn_bytes, conn_of, handshake_message, handshake_peer, to_support};
use crate::tunnel::{Handshake, Kind, Role};

/// How long an opened connection may take to send its first, authenticating frame.
const FIRST_FRAME: Duration = Duration::from_secs(10);
/// How long the service may take to accept.
const SERVICE_CONNECT: Duration = Duration::from_secs(5);

/// A session as the instance holds it.
pub struct Session {
    /// Its id.
    pub id: String,
    /// Its secret.
    pub secret: Zeroizing<[u8; 32]>,
    /// When it ends, Unix seconds.
    pub expires: i64,
    /// The one service its connections reach (loopback).
    pub service: SocketAddr,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("expires", &self.expires)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

/// What a session counted.
#[derive(Debug, Default)]
pub struct Counters {
    /// Bytes each way.
    pub traffic: Traffic,
    /// Connections open now.
    pub open: AtomicU64,
    /// Connections that authenticated, ever.
    pub connections: AtomicU64,
    /// Messages and connections refused (not an opening, too many, failed to authenticate).
    pub refused: AtomicU64,
}

/// Why serving stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// The session's time is up.
    Expired,
    /// `cancel` turned true (disabled, or the instance stops).
    Cancelled,
}

/// Serves `session` until it expires or `cancel` turns true; every open connection is reset
/// then. `connected` is called when a connection authenticates while none was open (a support
/// engineer starts using the session). An error: the subscription failed or ended (the
/// caller may serve again).
pub async fn serve(
    client: Client,
    session: Arc<Session>,
    counters: Arc<Counters>,
    mut cancel: watch::Receiver<bool>,
    connected: Arc<dyn Fn() + Send + Sync>,
) -> Result<Stopped, String> {
    let subject = format!("flowmesh.assist.{}.*.i", session.id);
    let mut sub = client
        .subscribe(subject.clone())
        .await
        .map_err(|e| format!("subscribing to {subject}: {e}"))?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut mux = Mux::default();
    let expiry = super::expiry(session.expires);
    tokio::pin!(expiry);
    let stopped = loop {
        if *cancel.borrow_and_update() {
            break Ok(Stopped::Cancelled);
        }
        tokio::select! {
            m = sub.next() => {
                let Some(m) = m else { break Err("the subscription ended".to_string()) };
                let Some(conn) = conn_of(&m.subject, &session.id) else {
                    counters.refused.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                if mux.route(conn, m.payload.clone()) {
                    continue;
                }
                let opened = handshake_peer(OPEN, &m.payload)
                    .and_then(|peer| mux.add(conn).map(|added| (peer, added)));
                let Some((peer, (incoming, done))) = opened else {
                    counters.refused.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(conn, "assistance: a message that opens no connection");
                    continue;
                };
                let accept = Accept {
                    client: client.clone(),
                    session: session.clone(),
                    conn: conn.to_string(),
                    peer,
                    counters: counters.clone(),
                    connected: connected.clone(),
                };
                tokio::spawn(accept.run(incoming, stop_rx.clone(), done));
            }
            () = mux.finished() => {}
            () = &mut expiry => break Ok(Stopped::Expired),
            r = cancel.changed() => if r.is_err() {
                // Whoever could end the session is gone: end it.
                break Ok(Stopped::Cancelled);
            }
        }
    };
    // Every connection resets its peer and closes.
    let _ = stop_tx.send(true);
    stopped
}

/// One connection being accepted.
struct Accept {
    client: Client,
    session: Arc<Session>,
    conn: String,
    peer: [u8; 32],
    counters: Arc<Counters>,
    connected: Arc<dyn Fn() + Send + Sync>,
}

impl Accept {
    async fn run(self, incoming: mpsc::Receiver<Bytes>, stop: watch::Receiver<bool>, _done: Done) {
        let conn = self.conn.clone();
        match self.accept(incoming, stop).await {
            Ok(ended) => tracing::info!(conn = %conn, ?ended, "assistance connection closed"),
            Err(e) => tracing::warn!(conn = %conn, error = %e, "assistance connection ended"),
        }
    }

    async fn accept(
        self,
        mut incoming: mpsc::Receiver<Bytes>,
        stop: watch::Receiver<bool>,
    ) -> Result<pipe::Ended, String> {
        let refused = |why: String| {
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
            why
        };
        let conn_id = conn_bytes(&self.conn)?;
        let hs = Handshake::new();
        let answer = handshake_message(ACCEPT, hs.public());
        let (tx, mut rx) = hs
            .finish(&self.session.secret, &conn_id, Role::Responder, self.peer)
            .map_err(|e| refused(e.to_string()))?;
        let mut link = Link {
            client: self.client.clone(),
            out: to_support(&self.session.id, &self.conn).into(),
            tx,
        };
        self.client
            .publish(link.out.clone(), answer.clone())
            .await
            .map_err(|e| e.to_string())?;
        // The first frame proves the secret; nothing reaches the service before it. A refusal
        // is said (a reset the opener cannot open with the wrong secret: it closes anyway).
        // Repeats of the opening (the support side says it again until answered: the answer
        // may have been lost, or crossed the gateway before the opener's interest) are
        // answered again; then comes the first frame.
        let first = tokio::time::timeout(FIRST_FRAME, async {
            loop {
                match incoming.recv().await {
                    Some(m) if m.first() == Some(&OPEN) => {
                        let _ = self.client.publish(link.out.clone(), answer.clone()).await;
                    }
                    other => return other,
                }
            }
        })
        .await
        .ok()
        .flatten();
        let hello = match first.map(|f| rx.open(&f)) {
            Some(Ok((Kind::Data, hello))) => hello,
            other => {
                let _ = link.send(Kind::Reset, &[]).await;
                return Err(refused(match other {
                    None => "no first frame in time".into(),
                    Some(Err(e)) => format!("the first frame: {e}"),
                    Some(Ok((kind, _))) => format!("the first frame is {kind:?}, not data"),
                }));
            }
        };
        let tcp =
            match tokio::time::timeout(SERVICE_CONNECT, TcpStream::connect(self.session.service))
                .await
            {
                Ok(Ok(tcp)) => tcp,
                failed => {
                    let _ = link.send(Kind::Reset, &[]).await;
                    let why = match failed {
                        Ok(Err(e)) => e.to_string(),
                        _ => "timed out".into(),
                    };
                    return Err(format!(
                        "the assisted service {} does not accept: {why}",
                        self.session.service
                    ));
                }
            };
        let mut tcp = tcp;
        if !hello.is_empty() {
            tcp.write_all(&hello).await.map_err(|e| e.to_string())?;
        }
        self.counters.connections.fetch_add(1, Ordering::Relaxed);
        if self.counters.open.fetch_add(1, Ordering::Relaxed) == 0 {
            (self.connected)();
        }
        tracing::info!(conn = %self.conn, service = %self.session.service, "assistance connection opened");
        let ended = pipe::carry(tcp, link, rx, incoming, stop, &self.counters.traffic).await;
        self.counters.open.fetch_sub(1, Ordering::Relaxed);
        ended.map_err(|e| e.to_string())
    }
}
