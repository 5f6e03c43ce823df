//! Alerts leaving the collector: sealed and published on its alerts subject (JetStream
//! de-duplicates re-runs by message id), and — for alerts raised outside a batch — stored.

use super::collector::Collector;
use super::*;
use crate::alert::Alert;

impl Collector {
    /// Publishes alerts sealed on `flowmesh.alerts.<collector>`, each with a message id derived
    /// from `origin` so a re-run after a crash is de-duplicated by JetStream.
    pub(super) async fn publish_alerts(
        &self,
        origin: &str,
        alerts: &[Alert],
    ) -> Result<(), CollectorError> {
        let subject = Channel::Alerts
            .subject(&self.name)
            .map_err(|e| CollectorError(e.to_string()))?;
        self.publish_json(&subject, origin, alerts).await
    }

    /// The remote-assistance alerts, once (the daemon publishes them).
    pub(super) fn take_assist_alerts(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<Alert>> {
        self.assist_alerts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Publishes and stores an alert raised outside a batch (retried until done or `stop`).
    pub(super) async fn raise(&self, alert: Alert, stop: &AtomicBool) {
        let seq = self.alert_seq.fetch_add(1, Ordering::Relaxed);
        let origin = format!("{}/{}/{}/{seq}", self.name, alert.kind, alert.time);
        let alerts = std::slice::from_ref(&alert);
        until_ok("publishing an alert", stop, || {
            self.publish_alerts(&origin, alerts)
        })
        .await;
        self.store_alerts(&alert.instance, alerts, now_micros(), stop)
            .await;
    }

    /// Stores alerts raised outside a batch (status changes, remote assistance), retried
    /// until done or `stop`.
    pub(super) async fn store_alerts(
        &self,
        instance: &str,
        alerts: &[Alert],
        now_micros: i64,
        stop: &AtomicBool,
    ) {
        let commit = Commit {
            batch_id: None,
            instance,
            alerts,
            series: &SeriesDelta::default(),
            now_micros,
            flows: None,
        };
        until_ok("storing an alert", stop, || async {
            self.store.commit(&commit)
        })
        .await;
    }

    pub(super) async fn publish_json(
        &self,
        subject: &str,
        origin: &str,
        alerts: &[Alert],
    ) -> Result<(), CollectorError> {
        let mut acks = Vec::new();
        for (i, a) in alerts.iter().enumerate() {
            let json = serde_json::to_vec(a).map_err(|e| CollectorError(e.to_string()))?;
            let payload = self
                .seal(subject, &json)
                .map_err(|e| CollectorError(e.to_string()))?;
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", format!("{origin}/{i}").as_str());
            match self
                .js
                .publish_with_headers(subject.to_string(), headers, payload.into())
                .await
            {
                Ok(ack) => acks.push(ack),
                Err(e) => return Err(CollectorError(format!("publishing alerts: {e}"))),
            }
        }
        for ack in acks {
            match tokio::time::timeout(Duration::from_secs(10), ack).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    return Err(CollectorError(format!(
                        "alert not stored by JetStream: {e}"
                    )));
                }
                Err(_) => return Err(CollectorError("alert not acknowledged by JetStream".into())),
            }
        }
        Ok(())
    }
}
