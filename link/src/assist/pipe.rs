//! One tunnelled connection: bytes from a local TCP socket sealed into frames on one subject,
//! frames from the other end opened and written to the socket — with flow control (the other
//! end credits what it consumed; at most [`WINDOW`] in flight), keepalives, half-close (`Fin`)
//! and reset. Also [`Mux`], which hands each connection the messages of its subject.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::Client;
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use super::{FRAME, MAX_CONNECTIONS, WINDOW};
use crate::tunnel::{self, Kind, Receiver, Sender, TunnelError};

/// A silent connection sends a keepalive (a repeated credit) this often.
const KEEPALIVE: Duration = Duration::from_secs(20);
/// A connection that hears nothing for this long is reset.
const SILENT: Duration = Duration::from_secs(75);
/// Messages a connection may have waiting: a peer that honours the window never has more
/// (each frame costs at least 1 KiB of a 2 MiB window).
const QUEUE: usize = (WINDOW / 1024) as usize + 64;

/// Bytes carried, each way (shared by a session's connections).
#[derive(Debug, Default)]
pub struct Traffic {
    /// Read from the local socket and sent through the tunnel.
    pub sent: AtomicU64,
    /// Received through the tunnel and written to the local socket.
    pub received: AtomicU64,
}

/// How a connection ended without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Both sides sent their `Fin`.
    Closed,
    /// The other end reset it (its session ended, or it refused something).
    ResetByPeer,
    /// This end was told to stop (the session ended here).
    Cancelled,
}

/// Why a connection broke.
#[derive(Debug, thiserror::Error)]
pub enum PipeError {
    /// A frame did not open: forged, replayed, reordered, lost.
    #[error(transparent)]
    Tunnel(#[from] TunnelError),
    /// Nothing heard for too long.
    #[error("the other end went silent for {0:?}")]
    Silent(Duration),
    /// The frames stopped coming (the broker connection ended, or too many were queued).
    #[error("the stream of frames was cut")]
    Cut,
    /// A credit for more than was sent.
    #[error("the other end credited more than was sent")]
    BadCredit,
    /// Publishing failed.
    #[error("broker: {0}")]
    Publish(String),
    /// The local socket.
    #[error("local connection: {0}")]
    Io(#[from] std::io::Error),
}

/// Where this end's frames go.
pub struct Link {
    /// The broker connection.
    pub client: Client,
    /// The subject of this end's frames (a `Subject`: cloned per frame without allocating).
    pub out: async_nats::Subject,
    /// This end's sealing half.
    pub tx: Sender,
}

impl Link {
    /// Seals `data` as `kind` and publishes it.
    pub async fn send(&mut self, kind: Kind, data: &[u8]) -> Result<(), PipeError> {
        let frame = self.tx.seal(kind, data);
        self.client
            .publish(self.out.clone(), Bytes::from(frame))
            .await
            .map_err(|e| PipeError::Publish(e.to_string()))
    }
}

/// Carries `tcp` through the tunnel until both sides closed, either reset, or `cancel` turns
/// true (then the other end is reset). `incoming`: the other end's frames, in order.
pub async fn carry(
    tcp: TcpStream,
    mut link: Link,
    mut rx: Receiver,
    mut incoming: mpsc::Receiver<Bytes>,
    mut cancel: watch::Receiver<bool>,
    traffic: &Traffic,
) -> Result<Ended, PipeError> {
    if *cancel.borrow_and_update() {
        let _ = link.send(Kind::Reset, &[]).await;
        return Ok(Ended::Cancelled);
    }
    let (mut rd, mut wr) = tcp.into_split();
    let mut buf = vec![0u8; FRAME];
    let (mut sent_cost, mut acked, mut consumed, mut credited) = (0u64, 0u64, 0u64, 0u64);
    let (mut fin_sent, mut fin_received) = (false, false);
    let (mut heard, mut said) = (Instant::now(), Instant::now());
    let mut tick = tokio::time::interval(KEEPALIVE / 2);
    let result = loop {
        if fin_sent && fin_received {
            break Ok(Ended::Closed);
        }
        let room = sent_cost.saturating_sub(acked) < WINDOW;
        tokio::select! {
            r = rd.read(&mut buf), if !fin_sent && room => {
                said = Instant::now();
                match r {
                    Ok(0) => {
                        link.send(Kind::Fin, &[]).await?;
                        fin_sent = true;
                    }
                    Ok(n) => {
                        link.send(Kind::Data, &buf[..n]).await?;
                        sent_cost += tunnel::cost(n);
                        traffic.sent.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    Err(e) => break Err(e.into()),
                }
            }
            m = incoming.recv() => {
                let Some(frame) = m else { break Err(PipeError::Cut) };
                heard = Instant::now();
                // A repeated opening or answer (see `support`): never a frame kind, skipped.
                if matches!(frame.first(), Some(&super::OPEN | &super::ACCEPT)) {
                    continue;
                }
                let (kind, data) = match rx.open(&frame) {
                    Ok(opened) => opened,
                    Err(e) => break Err(e.into()),
                };
                match kind {
                    Kind::Data => {
                        if let Err(e) = wr.write_all(&data).await {
                            break Err(e.into());
                        }
                        traffic.received.fetch_add(data.len() as u64, Ordering::Relaxed);
                        consumed += tunnel::cost(data.len());
                        if consumed - credited >= WINDOW / 4 {
                            link.send(Kind::Credit, &consumed.to_be_bytes()).await?;
                            (credited, said) = (consumed, Instant::now());
                        }
                    }
                    Kind::Fin => {
                        let _ = wr.shutdown().await;
                        fin_received = true;
                    }
                    Kind::Credit => {
                        let v = <[u8; 8]>::try_from(data.as_slice())
                            .map(u64::from_be_bytes)
                            .map_err(|_| PipeError::BadCredit);
                        match v {
                            Ok(v) if v <= sent_cost => acked = acked.max(v),
                            _ => break Err(PipeError::BadCredit),
                        }
                    }
                    Kind::Reset => return Ok(Ended::ResetByPeer),
                }
            }
            _ = cancel.changed() => break Ok(Ended::Cancelled),
            _ = tick.tick() => {
                if heard.elapsed() > SILENT {
                    break Err(PipeError::Silent(SILENT));
                }
                if said.elapsed() >= KEEPALIVE {
                    link.send(Kind::Credit, &consumed.to_be_bytes()).await?;
                    (credited, said) = (consumed, Instant::now());
                }
            }
        }
    };
    // Anything but a clean close resets the other end (it then closes its socket at once).
    if !matches!(result, Ok(Ended::Closed)) {
        let _ = link.send(Kind::Reset, &[]).await;
    }
    result
}

/// Hands each connection of a session the messages of its subject, bounded in number of
/// connections and of messages waiting per connection.
pub struct Mux {
    conns: HashMap<String, mpsc::Sender<Bytes>>,
    done_tx: mpsc::UnboundedSender<String>,
    done_rx: mpsc::UnboundedReceiver<String>,
}

impl Default for Mux {
    fn default() -> Self {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        Mux {
            conns: HashMap::new(),
            done_tx,
            done_rx,
        }
    }
}

/// Held by a connection's task: when it ends (however), its entry leaves the [`Mux`].
pub struct Done {
    conn: String,
    tx: mpsc::UnboundedSender<String>,
}

impl Drop for Done {
    fn drop(&mut self) {
        let _ = self.tx.send(std::mem::take(&mut self.conn));
    }
}

impl Mux {
    /// Gives `payload` to connection `conn`; `false` if there is no such connection. A
    /// connection whose queue is full (its peer ignores the window) is cut.
    pub fn route(&mut self, conn: &str, payload: Bytes) -> bool {
        let Some(tx) = self.conns.get(conn) else {
            return false;
        };
        if tx.try_send(payload).is_err() {
            self.conns.remove(conn);
        }
        true
    }

    /// A new connection `conn`: its messages and its guard; `None` when the session has
    /// [`MAX_CONNECTIONS`] already (or `conn` exists).
    pub fn add(&mut self, conn: &str) -> Option<(mpsc::Receiver<Bytes>, Done)> {
        if self.conns.len() >= MAX_CONNECTIONS || self.conns.contains_key(conn) {
            return None;
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        self.conns.insert(conn.to_string(), tx);
        let done = Done {
            conn: conn.to_string(),
            tx: self.done_tx.clone(),
        };
        Some((rx, done))
    }

    /// Waits until a connection's task ends, and forgets it.
    pub async fn finished(&mut self) {
        if let Some(conn) = self.done_rx.recv().await {
            self.conns.remove(&conn);
        }
    }

    /// Connections open.
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// Whether none is open.
    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }
}
