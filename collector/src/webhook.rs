//! Webhook delivery: each event POSTed as JSON to `http://` or `https://` (TLS 1.3 only, the
//! system's roots plus an optional private CA), retried with backoff. Credentials in the URL
//! (`https://user:secret@host/...`) are sent as HTTP Basic authentication; neither they nor the
//! query string (often a token) ever appear in logs, errors or `Debug`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A webhook: where, and how to reach it.
#[derive(Clone)]
pub struct Webhook {
    /// The URL as it may be shown: no credentials, no query.
    shown: String,
    host: String,
    port: u16,
    path: String,
    /// `Authorization` header value from the URL's user info.
    auth: Option<String>,
    tls: Option<tokio_rustls::TlsConnector>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

/// A URL as it may be logged: user info and query (credentials, tokens) replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    let host = authority
        .rsplit_once('@')
        .map_or(authority.to_string(), |(_, h)| format!("***@{h}"));
    let path = match path.find(['?', '#']) {
        Some(i) => format!("{}?***", &path[..i]),
        None => path.to_string(),
    };
    if scheme.is_empty() {
        format!("{host}{path}")
    } else {
        format!("{scheme}://{host}{path}")
    }
}

fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(ca) = ca_file {
        for cert in flowmesh_link::tls::root_store(ca)
            .map_err(|e| e.to_string())?
            .roots
        {
            roots.roots.push(cert);
        }
    }
    if roots.is_empty() {
        return Err(
            "no trusted root certificates: install ca-certificates, or set webhook_ca_file".into(),
        );
    }
    Ok(
        rustls::ClientConfig::builder_with_provider(flowmesh_link::tls::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

impl Webhook {
    /// Parses `url` (`http://host[:port]/path` or `https://...`); for https, trusts the
    /// system's roots and `ca_file`.
    pub fn new(full_url: &str, ca_file: Option<&Path>) -> Result<Self, String> {
        let url = &redact_url(full_url);
        let (https, rest) = if let Some(r) = full_url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = full_url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(format!(
                "{url}: a webhook URL starts with http:// or https://"
            ));
        };
        let (authority, path) = rest
            .split_once('/')
            .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
        let (auth, authority) = match authority.rsplit_once('@') {
            Some((user_info, host)) => {
                use base64::Engine;
                let token = base64::engine::general_purpose::STANDARD.encode(user_info);
                (Some(format!("Basic {token}")), host)
            }
            None => (None, authority),
        };
        let default_port = if https { 443 } else { 80 };
        let port_of = |p: &str| {
            p.parse::<u16>()
                .map_err(|_| format!("{url}: {p:?} is not a port"))
        };
        // `[v6]:port`, `[v6]`, `host:port` or `host`.
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{url}: unclosed [ in the host"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => port_of(p)?,
                None if after.is_empty() => default_port,
                None => return Err(format!("{url}: unexpected {after:?} after the host")),
            };
            (h.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), port_of(p)?),
                None => (authority.to_string(), default_port),
            }
        };
        if host.is_empty() {
            return Err(format!("{url}: no host"));
        }
        let tls = if https {
            Some(tokio_rustls::TlsConnector::from(Arc::new(tls_config(
                ca_file,
            )?)))
        } else {
            None
        };
        Ok(Webhook {
            shown: url.clone(),
            host,
            port,
            path,
            auth,
            tls,
        })
    }

    /// POSTs `body` once; `Ok` on a 2xx answer.
    pub async fn post(&self, body: &[u8]) -> Result<(), String> {
        let addr = format!("{}:{}", self.host, self.port);
        let tcp = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::net::TcpStream::connect(&addr),
        )
        .await
        .map_err(|_| format!("{addr}: connect timed out"))?
        .map_err(|e| format!("{addr}: {e}"))?;
        match &self.tls {
            None => self.exchange(tcp, body).await,
            Some(tls) => {
                let name = rustls::pki_types::ServerName::try_from(self.host.clone())
                    .map_err(|e| format!("{}: {e}", self.host))?;
                let stream = tokio::time::timeout(Duration::from_secs(5), tls.connect(name, tcp))
                    .await
                    .map_err(|_| format!("{addr}: TLS handshake timed out"))?
                    .map_err(|e| format!("{addr}: TLS: {e}"))?;
                self.exchange(stream, body).await
            }
        }
    }

    async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        mut s: S,
        body: &[u8],
    ) -> Result<(), String> {
        let auth = self
            .auth
            .as_deref()
            .map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.path,
            self.host,
            body.len()
        );
        s.write_all(head.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        s.write_all(body).await.map_err(|e| e.to_string())?;
        s.flush().await.map_err(|e| e.to_string())?;
        // The status line is all we need; servers may not close after answering.
        let mut answer = Vec::new();
        let mut buf = [0u8; 1024];
        let read = async {
            while !answer.contains(&b'\n') {
                let n = s.read(&mut buf).await.map_err(|e| e.to_string())?;
                if n == 0 {
                    break;
                }
                answer.extend_from_slice(&buf[..n]);
            }
            Ok::<_, String>(())
        };
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .map_err(|_| "webhook answer timed out".to_string())??;
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
    pub async fn deliver(&self, body: &[u8], attempts: u32) -> bool {
        let mut wait = Duration::from_secs(1);
        for attempt in 1..=attempts.max(1) {
            match self.post(body).await {
                Ok(()) => return true,
                Err(e) => {
                    tracing::warn!(url = %self.shown, attempt, error = %e, "webhook delivery failed");
                    if attempt < attempts {
                        tokio::time::sleep(wait).await;
                        wait *= 2;
                    }
                }
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// Reads one request (head and announced body) and answers `status`; the body.
    async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, status: &str) -> String {
        let mut buf = vec![0u8; 4096];
        let mut got = Vec::new();
        let mut out = String::new();
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
                    out = body.to_string();
                    break;
                }
            }
        }
        let reply = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
        let _ = s.write_all(reply.as_bytes()).await;
        let _ = s.shutdown().await;
        out
    }

    /// A webhook that answers 503 first, then 200; returns the bodies it received.
    async fn flaky_hook(listener: TcpListener) -> Vec<String> {
        let mut bodies = Vec::new();
        for status in ["503 Service Unavailable", "200 OK"] {
            let Ok((s, _)) = listener.accept().await else {
                break;
            };
            bodies.push(answer(s, status).await);
        }
        bodies
    }

    #[tokio::test]
    async fn a_webhook_gets_the_event_after_a_failed_attempt() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let server = tokio::spawn(flaky_hook(listener));
        let hook = Webhook::new(&url, None).unwrap();
        assert!(hook.deliver(br#"{"type":"instance_status"}"#, 3).await);
        let bodies = server.await.unwrap();
        assert_eq!(
            bodies, [r#"{"type":"instance_status"}"#; 2],
            "sent twice: 503, then 200"
        );
    }

    #[tokio::test]
    async fn a_dead_webhook_gives_up_and_bad_urls_are_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        drop(listener);
        assert!(!Webhook::new(&url, None).unwrap().deliver(b"{}", 1).await);
        for bad in ["ftp://example.org/", "http:///x", "http://host:port/"] {
            assert!(Webhook::new(bad, None).is_err(), "{bad}");
        }
        let h = Webhook::new("http://[::1]:8080/a/b", None).unwrap();
        assert_eq!(
            (h.host.as_str(), h.port, h.path.as_str()),
            ("::1", 8080, "/a/b")
        );
    }

    #[tokio::test]
    async fn https_webhooks_speak_tls_1_3_and_check_the_certificate() {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("hook-ca.pem");
        std::fs::write(&ca, cert.cert.pem()).unwrap();
        let server_config =
            rustls::ServerConfig::builder_with_provider(flowmesh_link::tls::provider())
                .with_protocol_versions(&[&rustls::version::TLS13])
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(
                    vec![cert.cert.der().clone()],
                    rustls::pki_types::PrivateKeyDer::Pkcs8(
                        cert.signing_key.serialize_der().into(),
                    ),
                )
                .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            // A client that does not trust the certificate fails its handshake: wait for one
            // that does.
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                if let Ok(tls) = acceptor.accept(tcp).await {
                    return vec![answer(tls, "200 OK").await];
                }
            }
        });
        let url = format!("https://localhost:{port}/hook");
        let untrusted = Webhook::new(&url, None);
        if let Ok(h) = untrusted {
            let e = h.post(b"{}").await.unwrap_err();
            assert!(e.contains("TLS"), "{e}");
        }
        let trusted = Webhook::new(&url, Some(&ca)).unwrap();
        trusted.post(br#"{"type":"acl_violation"}"#).await.unwrap();
        assert_eq!(server.await.unwrap(), [r#"{"type":"acl_violation"}"#]);
    }

    #[test]
    fn credentials_and_queries_never_show() {
        assert_eq!(
            redact_url("https://bot:s3cret@hooks.example.org:8443/x/y?token=abc#f"),
            "https://***@hooks.example.org:8443/x/y?***"
        );
        assert_eq!(redact_url("http://h/p"), "http://h/p");
        let hook = Webhook::new("http://bot:s3cret@127.0.0.1:9/hook?key=k", None).unwrap();
        let shown = format!("{hook:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("key=k"),
            "{shown}"
        );
        assert_eq!(hook.auth.as_deref(), Some("Basic Ym90OnMzY3JldA=="));
        assert_eq!(hook.path, "/hook?key=k", "the query is still sent");
        let err = Webhook::new("http://bot:s3cret@host:port/", None).unwrap_err();
        assert!(!err.contains("s3cret"), "{err}");
    }
}
