//! Remote-assistance tunnel: throughput and added latency, against the same TCP transfer on
//! loopback without the tunnel (a ratio from the same run).
//!
//! `cargo bench --bench assist` (needs nats-server: `./deploy/test.sh` installs it). Starts the
//! reference cluster (eu: 3, us: 2) on free ports; the instance's side serves a session on
//! eu-1 (a collector's credentials), the support side listens on us-1 (client → us-1 →
//! gateway → eu-1 → instance → loopback service, TLS on every broker hop, AES-256-GCM end to
//! end). The service is a sink that answers each byte count, and an echo for round trips.
//! Prints MB/s of a 64 MiB upload and the median round trip of a 64-byte request, each direct
//! and through the tunnel.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flowmesh_link::assist::serve::{self, Counters, Session};
use flowmesh_link::assist::{new_id, now_secs, support};
use flowmesh_link::connect::connect;
use flowmesh_testkit::{Cluster, Collector, TestUser};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use zeroize::Zeroizing;

const UPLOAD: usize = 64 * 1024 * 1024;
const ROUND_TRIPS: usize = 500;

/// A service: each connection's first byte says which — `u` (upload: read everything, answer
/// the count) or `e` (echo).
async fn service() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut kind = [0u8; 1];
                if s.read_exact(&mut kind).await.is_err() {
                    return;
                }
                let (mut r, mut w) = s.split();
                if kind[0] == b'u' {
                    let n = tokio::io::copy(&mut r, &mut tokio::io::sink())
                        .await
                        .unwrap_or(0);
                    let _ = w.write_all(&n.to_be_bytes()).await;
                } else {
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                }
            });
        }
    });
    addr
}

/// Seconds to upload `UPLOAD` bytes to `to` and hear the count back.
async fn upload(to: SocketAddr) -> f64 {
    let data = vec![0x5au8; 1024 * 1024];
    let mut c = TcpStream::connect(to).await.unwrap();
    c.set_nodelay(true).unwrap();
    let t = Instant::now();
    c.write_all(b"u").await.unwrap();
    for _ in 0..UPLOAD / data.len() {
        c.write_all(&data).await.unwrap();
    }
    c.shutdown().await.unwrap();
    let mut n = [0u8; 8];
    c.read_exact(&mut n).await.unwrap();
    assert_eq!(u64::from_be_bytes(n), UPLOAD as u64);
    t.elapsed().as_secs_f64()
}

/// The median round trip (µs) of a 64-byte request and its echo.
async fn round_trips(to: SocketAddr) -> f64 {
    let mut c = TcpStream::connect(to).await.unwrap();
    c.set_nodelay(true).unwrap();
    c.write_all(b"e").await.unwrap();
    let (msg, mut back) = ([7u8; 64], [0u8; 64]);
    let mut rtts = Vec::with_capacity(ROUND_TRIPS);
    for _ in 0..ROUND_TRIPS {
        let t = Instant::now();
        c.write_all(&msg).await.unwrap();
        c.read_exact(&mut back).await.unwrap();
        rtts.push(t.elapsed().as_secs_f64() * 1e6);
    }
    rtts.sort_by(f64::total_cmp);
    rtts[rtts.len() / 2]
}

fn main() {
    let alice = TestUser::new("alice", &[("col", Collector)]);
    let cluster = Cluster::start(&[&alice], Duration::from_secs(60)).expect("cluster");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let service = service().await;
        let mut ic = cluster.broker_config("alice", "col", None);
        ic.urls = vec![cluster.url("eu-1").unwrap()];
        let mut sc = cluster.insider_config("alice", "support", None);
        sc.urls = vec![cluster.url("us-1").unwrap()];
        let instance = connect(&ic, "col").await.unwrap();
        let supporter = connect(&sc, "support").await.unwrap();
        let id = new_id();
        let expires = now_secs() + 3600;
        let (_stop, stopped) = watch::channel(false);
        tokio::spawn(serve::serve(
            instance,
            Arc::new(Session {
                id: id.clone(),
                secret: Zeroizing::new([1; 32]),
                expires,
                service,
            }),
            Arc::new(Counters::default()),
            stopped.clone(),
            Arc::new(|| {}),
        ));
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tunnel = l.local_addr().unwrap();
        tokio::spawn(support::listen(
            supporter,
            id,
            Zeroizing::new([1; 32]),
            expires,
            l,
            Arc::new(Counters::default()),
            stopped,
        ));
        // Warm up (interest across the gateway, first handshakes).
        let _ = round_trips(tunnel).await;
        let mb = UPLOAD as f64 / 1e6;
        for round in 1..=3 {
            let (direct, through) = (upload(service).await, upload(tunnel).await);
            let (rtt_direct, rtt_through) = (round_trips(service).await, round_trips(tunnel).await);
            println!(
                "round {round}: upload {:.0} MB/s direct, {:.1} MB/s through the tunnel ({:.1}%); \
                 round trip (median of {ROUND_TRIPS}) {:.0} µs direct, {:.0} µs through the tunnel \
                 (+{:.0} µs)",
                mb / direct,
                mb / through,
                100.0 * direct / through,
                rtt_direct,
                rtt_through,
                rtt_through - rtt_direct
            );
        }
    });
}
