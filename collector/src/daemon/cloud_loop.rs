//! The cloud: its keys, its blacklist broadcasts, and reports of alerting addresses.

use super::*;

/// Addresses reported in the last hour that a collector remembers (not to report them again).
const REPORTED_MEMORY: usize = 10_000;

/// The cloud: its keys from DNS (retried until found), then its blacklist broadcasts applied and
/// reports of alerting addresses sent, each address at most once an hour.
pub(super) async fn follow_cloud(
    c: Arc<Collector>,
    cloud: CloudConfig,
    journal: PathBuf,
    stop: Arc<AtomicBool>,
) {
    let Some(keys) = until_ok("finding the cloud's keys", &stop, || cloud.keys()).await else {
        return;
    };
    // Broadcasts are applied once each, across restarts too.
    let mut opener = Opener::new(&c.identity);
    opener.trust(keys.key);
    let opener = match opener.journaled(&journal) {
        Ok(o) => Arc::new(o),
        Err(e) => {
            tracing::error!(error = %e, "cannot follow the cloud's blacklist");
            return;
        }
    };
    tracing::info!(cloud_key = %keys.key, signing_key = %keys.signing.to_hex(), "following the cloud's blacklist");
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(std::net::IpAddr, String, String)>(1024);
    *c.reports.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
    let reporter = {
        let c = c.clone();
        tokio::spawn(async move {
            let mut sent: HashMap<std::net::IpAddr, std::time::Instant> = HashMap::new();
            while let Some((ip, reason, instance)) = rx.recv().await {
                sent.retain(|_, at| at.elapsed() < Duration::from_secs(3600));
                if sent.contains_key(&ip) || sent.len() >= REPORTED_MEMORY {
                    continue;
                }
                sent.insert(ip, std::time::Instant::now());
                let report = flowmesh_proto::v1::BlacklistReport {
                    ip: ip.to_string(),
                    reason,
                    instance,
                };
                match crate::cloud::report_ip(&c.client(), &c.identity, &keys, &report).await {
                    Ok(r) if r.accepted => tracing::info!(%ip, "reported to the cloud"),
                    Ok(r) => tracing::warn!(%ip, error = %r.error, "the cloud refused a report"),
                    Err(e) => tracing::warn!(%ip, error = %e, "report not delivered"),
                }
            }
        })
    };
    until_ok("following the cloud's blacklist", &stop, || {
        crate::cloud::follow_broadcasts(
            c.client(),
            opener.clone(),
            keys,
            c.blacklist.clone(),
            c.cloud_counters.clone(),
        )
    })
    .await;
    reporter.abort();
}
