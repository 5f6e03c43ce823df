//! Heartbeats in, status changes out, claimed through the status bucket.

use super::*;

/// The subject a status is sealed to in the key-value bucket.
pub(super) fn kv_subject(instance: &str) -> String {
    format!("$KV.{}.{instance}", streams::STATUS_BUCKET)
}

/// Heartbeats in, status changes out: sealed on `flowmesh.changes.<instance>`, kept in the
/// status bucket, stored as `instance_status` alerts. With several collectors, the bucket's
/// compare-and-set decides which one announces a change.
pub(super) async fn status_loop(c: Arc<Collector>, replicas: usize, stop: Arc<AtomicBool>) {
    let client = c.client();
    let Some(kv) = until_ok("opening the status bucket", &stop, || {
        streams::status_bucket(&c.js, replicas)
    })
    .await
    else {
        return;
    };
    let Some(mut sub) = until_ok("subscribing to heartbeats", &stop, || {
        client.subscribe(Channel::Status.all())
    })
    .await
    else {
        return;
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while !stop.load(Ordering::Relaxed) {
        let changes = tokio::select! {
            m = sub.next() => {
                let Some(m) = m else { break };
                let plain = match c.open(&m.subject, &m.payload, Opening::Once) {
                    Ok(p) => p,
                    Err(e) => {
                        c.counters.reject(reason(&e));
                        tracing::warn!(subject = %m.subject, reason = reason(&e), error = %e, "heartbeat refused");
                        continue;
                    }
                };
                let Ok(hb) = Status::decode(plain.as_slice()) else {
                    c.counters.reject("malformed");
                    continue;
                };
                if instance_of(&m.subject) != Some(hb.instance.as_str()) {
                    c.counters.reject("instance_mismatch");
                    continue;
                }
                let (failed, changes) = {
                    let mut t = c.tracker.lock().unwrap_or_else(|p| p.into_inner());
                    let now = now_micros();
                    (t.update_failure(&hb, now), t.heartbeat(hb, now).into_iter().collect::<Vec<_>>())
                };
                if let Some(alert) = failed {
                    c.raise(alert, &stop).await;
                }
                changes
            }
            _ = tick.tick() => c.tracker.lock().unwrap_or_else(|p| p.into_inner()).tick(now_micros()),
        };
        for change in changes {
            announce(&c, &kv, &change, &stop).await;
        }
    }
}

/// Whether this collector's write of a change to the bucket landed.
pub(super) enum Claim {
    /// It did: this collector announces the change.
    Won,
    /// Another collector announced this change, or a later one.
    Lost,
}

/// One compare-and-set attempt on the bucket. An error is the broker's (retry), never a loss.
pub(super) async fn claim(
    c: &Collector,
    kv: &kv::Store,
    change: &crate::status::Change,
    value: &[u8],
) -> Result<Claim, String> {
    let entry = kv
        .entry(change.instance.clone())
        .await
        .map_err(|e| e.to_string())?;
    match entry {
        Some(e) => {
            // Already said, or overtaken: another collector has announced this change, or a
            // later one (a lagging collector must not bring back `restarted` after `online`).
            let stale = peek_status(c, &change.instance, &e.value)
                .is_some_and(|(status, time)| status == change.status || time >= change.time);
            if stale {
                return Ok(Claim::Lost);
            }
            match kv
                .update(&change.instance, value.to_vec().into(), e.revision)
                .await
            {
                Ok(_) => Ok(Claim::Won),
                // Someone wrote in between: look again.
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    Err("the entry changed meanwhile".into())
                }
                Err(e) => Err(e.to_string()),
            }
        }
        None => match kv.create(&change.instance, value.to_vec().into()).await {
            Ok(_) => Ok(Claim::Won),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                Err("the entry appeared meanwhile".into())
            }
            Err(e) => Err(e.to_string()),
        },
    }
}

pub(super) async fn announce(
    c: &Collector,
    kv: &kv::Store,
    change: &crate::status::Change,
    stop: &AtomicBool,
) {
    let alert = change.alert();
    let Ok(json) = serde_json::to_vec(&alert) else {
        return;
    };
    let Ok(value) = c.seal(&kv_subject(&change.instance), &json) else {
        return;
    };
    // Compare-and-set on the bucket: the collector whose write lands announces.
    let Some(claimed) = until_ok("claiming a status change in the bucket", stop, || {
        claim(c, kv, change, &value)
    })
    .await
    else {
        return;
    };
    if let Claim::Lost = claimed {
        tracing::debug!(instance = %change.instance, status = change.status, "another collector announced it");
        return;
    }
    tracing::info!(instance = %change.instance, status = change.status, previous = change.previous, "status change");
    let Ok(subject) = Channel::Changes.subject(&change.instance) else {
        return;
    };
    let origin = format!("{}/{}/{}", change.instance, change.status, change.time);
    let alerts = std::slice::from_ref(&alert);
    until_ok("publishing a status change", stop, || {
        c.publish_json(&subject, &origin, alerts)
    })
    .await;
    c.store_alerts(&change.instance, alerts, change.time, stop)
        .await;
}

/// The status a bucket entry holds (opened), and when it changed (µs), if readable.
pub(super) fn peek_status(c: &Collector, instance: &str, value: &[u8]) -> Option<(String, i64)> {
    let plain = c.open(&kv_subject(instance), value, Opening::Stored).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&plain).ok()?;
    let time = v
        .get("time")
        .and_then(|t| t.as_str())
        .and_then(flowmesh_record::parse_rfc3339_micros)
        .unwrap_or(i64::MIN);
    Some((v.get("status")?.as_str()?.to_string(), time))
}
