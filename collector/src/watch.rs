//! `flowmesh watch`: the user's alerts and status changes, opened, as JSON lines — and
//! optionally POSTed to a webhook, with retries.

use std::path::{Path, PathBuf};
use std::time::Duration;

use flowmesh_link::async_nats;
use flowmesh_link::connect::{BrokerConfig, connect};
use flowmesh_link::subject::Channel;
use flowmesh_link::{Identity, Opener};
use futures::StreamExt;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What `watch` needs from a config file; other tables are ignored, so a collector's or a
/// sensor's config works too.
#[derive(Debug, Clone, Deserialize)]
pub struct WatchConfig {
    /// The user's identity file.
    pub identity: PathBuf,
    /// The cluster.
    pub broker: BrokerConfig,
    /// `[watch]`: optional webhook.
    #[serde(default)]
    pub watch: WatchSection,
}

/// `[watch]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchSection {
    /// POST every event here (`http://host:port/path`).
    pub webhook: Option<String>,
    /// Attempts per event before giving up on it.
    #[serde(default = "three")]
    pub webhook_attempts: u32,
}

fn three() -> u32 {
    3
}

impl WatchConfig {
    /// Reads a config file; relative paths are resolved against its directory.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut c: WatchConfig =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        c.identity = dir.join(&c.identity);
        c.broker = c.broker.relative_to(dir);
        Ok(c)
    }
}

/// Subscribes to alerts and status changes; every opened event goes to `out` as a JSON value.
/// Returns when the subscription ends or `out` returns false.
pub async fn watch(
    config: &WatchConfig,
    name: &str,
    out: impl FnMut(serde_json::Value) -> bool,
) -> Result<(), String> {
    let identity = Identity::load(&config.identity).map_err(|e| e.to_string())?;
    let client = connect(&config.broker, name)
        .await
        .map_err(|e| e.to_string())?;
    follow(subscribe(&client).await?, &Opener::new(&identity), out).await
}

/// The user's alerts and status changes, as they are published.
pub type Events = futures::stream::Select<async_nats::Subscriber, async_nats::Subscriber>;

/// Subscribes to the user's alerts and status changes; when it returns, the broker has the
/// subscriptions, so nothing published from then on is missed.
pub async fn subscribe(client: &async_nats::Client) -> Result<Events, String> {
    let alerts = client
        .subscribe(Channel::Alerts.all())
        .await
        .map_err(|e| e.to_string())?;
    let changes = client
        .subscribe(Channel::Changes.all())
        .await
        .map_err(|e| e.to_string())?;
    client.flush().await.map_err(|e| e.to_string())?;
    Ok(futures::stream::select(alerts, changes))
}

/// Opens each event with `opener` (its own: a replay window shared with other readers would
/// see every event twice) and hands it to `out` as a JSON value, until the subscription ends
/// or `out` returns false.
pub async fn follow(
    mut events: Events,
    opener: &Opener,
    mut out: impl FnMut(serde_json::Value) -> bool,
) -> Result<(), String> {
    tracing::info!("watching alerts and status changes");
    while let Some(m) = events.next().await {
        let opened = match opener.open(&m.subject, &m.payload) {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(subject = %m.subject, error = %e, "rejected an event");
                continue;
            }
        };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&opened.payload) else {
            tracing::warn!(subject = %m.subject, "an event that is not JSON");
            continue;
        };
        if !out(v) {
            break;
        }
    }
    Ok(())
}

/// POSTs `body` to an `http://` URL; `Ok` on a 2xx answer.
pub async fn post(url: &str, body: &[u8]) -> Result<(), String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        format!("{url}: only http:// webhooks (put a TLS proxy in front for https)")
    })?;
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let addr = if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:80")
    };
    let mut s = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(&addr),
    )
    .await
    .map_err(|_| format!("{addr}: connect timed out"))?
    .map_err(|e| format!("{addr}: {e}"))?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    s.write_all(body).await.map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer))
        .await
        .map_err(|_| "webhook answer timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let status_line = answer.split(|&b| b == b'\n').next().unwrap_or_default();
    let code = std::str::from_utf8(status_line)
        .ok()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse::<u16>().ok())
        .unwrap_or(0);
    if (200..300).contains(&code) {
        Ok(())
    } else {
        Err(format!("webhook answered {code}"))
    }
}

/// Delivers one event with up to `attempts` tries (1 s, 2 s, 4 s ... apart).
pub async fn deliver(url: &str, body: &[u8], attempts: u32) -> bool {
    let mut wait = Duration::from_secs(1);
    for attempt in 1..=attempts.max(1) {
        match post(url, body).await {
            Ok(()) => return true,
            Err(e) => {
                tracing::warn!(%url, attempt, error = %e, "webhook delivery failed");
                if attempt < attempts {
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
            }
        }
    }
    false
}

/// A client name for the watch connection.
pub fn client_name() -> String {
    format!("watch-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A webhook that answers 503 first, then 200; returns the bodies it received.
    async fn flaky_hook(listener: TcpListener) -> Vec<String> {
        let mut bodies = Vec::new();
        for status in ["503 Service Unavailable", "200 OK"] {
            let Ok((mut s, _)) = listener.accept().await else {
                break;
            };
            let mut buf = vec![0u8; 4096];
            let mut got = Vec::new();
            // Read until the blank line and the announced body length are in.
            loop {
                let n = s.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if body.len() >= len {
                        bodies.push(body.to_string());
                        break;
                    }
                }
            }
            let answer = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
            let _ = s.write_all(answer.as_bytes()).await;
        }
        bodies
    }

    #[tokio::test]
    async fn a_webhook_gets_the_event_after_a_failed_attempt() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let server = tokio::spawn(flaky_hook(listener));
        assert!(deliver(&url, br#"{"type":"instance_status"}"#, 3).await);
        let bodies = server.await.unwrap();
        assert_eq!(
            bodies, [r#"{"type":"instance_status"}"#; 2],
            "sent twice: 503, then 200"
        );
    }

    #[tokio::test]
    async fn a_dead_webhook_gives_up_after_its_attempts_and_https_is_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        drop(listener);
        assert!(!deliver(&url, b"{}", 1).await);
        assert!(
            post("https://example.org/", b"{}")
                .await
                .unwrap_err()
                .contains("only http://")
        );
    }
}
