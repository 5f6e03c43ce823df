//! The nearest region: an instance given seed URLs by region measures the round trip to each
//! (a TLS 1.3 handshake, so a delay anywhere on the path counts, not only the TCP accept) and
//! connects to the nearest region first, failing over inside it before crossing to the next
//! nearest. `[broker] region = "eu"` pins a region instead.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long one measurement may take; a node that does not answer by then counts as away.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The `host:port` of a `tls://host:port` URL.
fn address(url: &str) -> Option<&str> {
    url.strip_prefix("tls://")
        .map(|rest| rest.split('/').next().unwrap_or(rest))
}

/// The time a TLS handshake with `url` takes, or `None` if it fails or times out.
async fn probe(url: &str, tls: Arc<rustls::ClientConfig>) -> Option<Duration> {
    let addr = address(url)?;
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let name = rustls::pki_types::ServerName::try_from(
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
    )
    .ok()?;
    let start = Instant::now();
    let handshake = async {
        let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
        tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .ok()
    };
    tokio::time::timeout(PROBE_TIMEOUT, handshake)
        .await
        .ok()??;
    Some(start.elapsed())
}

/// The order to try `urls` in, and the region chosen: the pinned region's URLs first, or the
/// nearest region's (by its best node's round trip), then the other regions by round trip,
/// then URLs of no region. Without regions, `urls` as they are.
pub async fn order(
    urls: &[String],
    regions: &BTreeMap<String, Vec<String>>,
    pinned: Option<&str>,
    tls: Arc<rustls::ClientConfig>,
) -> (Vec<String>, Option<String>) {
    if regions.is_empty() {
        return (urls.to_vec(), None);
    }
    let mut rtts: Vec<(Duration, String)> = Vec::new();
    for (region, list) in regions {
        let mut best = None;
        if pinned.is_none() {
            let probes = list.iter().map(|u| probe(u, tls.clone()));
            best = futures::future::join_all(probes)
                .await
                .into_iter()
                .flatten()
                .min();
        }
        let rank = match (pinned, best) {
            (Some(p), _) if p == region => Duration::ZERO,
            (Some(_), _) => Duration::MAX,
            (None, Some(rtt)) => rtt,
            (None, None) => Duration::MAX,
        };
        rtts.push((rank, region.clone()));
    }
    rtts.sort();
    let chosen = rtts
        .first()
        .filter(|(rtt, _)| *rtt < Duration::MAX)
        .map(|(_, r)| r.clone());
    let mut ordered: Vec<String> = Vec::new();
    for (_, region) in &rtts {
        for u in &regions[region] {
            if !ordered.contains(u) {
                ordered.push(u.clone());
            }
        }
    }
    for u in urls {
        if !ordered.contains(u) {
            ordered.push(u.clone());
        }
    }
    if let Some(r) = &chosen {
        let measured: Vec<String> = rtts
            .iter()
            .filter(|(d, _)| *d < Duration::MAX && *d > Duration::ZERO)
            .map(|(d, r)| format!("{r}={}ms", d.as_millis()))
            .collect();
        tracing::info!(region = %r, pinned = pinned.is_some(), measured = %measured.join(","), "nearest region");
    }
    (ordered, chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_come_out_of_tls_urls() {
        assert_eq!(address("tls://127.0.0.1:4222"), Some("127.0.0.1:4222"));
        assert_eq!(address("nats://127.0.0.1:4222"), None);
    }
}
