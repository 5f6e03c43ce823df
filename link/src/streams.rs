//! The JetStream streams and key-value bucket every component agrees on. Each user's account
//! has its own: the names need no user prefix.
//!
//! - `FLOWS` holds sealed flow batches (`flowmesh.flows.*`) until the user's collectors have
//!   them; message ids (`<instance>/<boot>/<sequence>`) de-duplicate a sensor's retries.
//! - `ALERTS` keeps a week of sealed alerts and status changes (`flowmesh.alerts.*`,
//!   `flowmesh.changes.*`) for subscribers that connect later.
//! - The `status` bucket holds each instance's latest status change, sealed.

use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};

use crate::subject::Channel;

/// The flow stream.
pub const FLOWS: &str = "FLOWS";
/// The alert and status-change stream.
pub const ALERTS: &str = "ALERTS";
/// The key-value bucket of instance statuses.
pub const STATUS_BUCKET: &str = "status";
/// How long JetStream remembers message ids to drop duplicates: longer than any retry burst.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(10 * 60);

/// The flow stream's configuration with `replicas` copies.
pub fn flows_config(replicas: usize) -> stream::Config {
    stream::Config {
        name: FLOWS.into(),
        subjects: vec![Channel::Flows.all()],
        storage: stream::StorageType::File,
        num_replicas: replicas,
        duplicate_window: DUPLICATE_WINDOW,
        // A week of backlog while no collector runs; the collector acknowledges what it stored.
        max_age: Duration::from_secs(7 * 86_400),
        ..Default::default()
    }
}

/// The alert stream's configuration.
pub fn alerts_config(replicas: usize) -> stream::Config {
    stream::Config {
        name: ALERTS.into(),
        subjects: vec![Channel::Alerts.all(), Channel::Changes.all()],
        storage: stream::StorageType::File,
        num_replicas: replicas,
        duplicate_window: DUPLICATE_WINDOW,
        max_age: Duration::from_secs(7 * 86_400),
        ..Default::default()
    }
}

/// Why the streams could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// JetStream refused or did not answer.
    #[error(
        "JetStream: {what}: {source} (is JetStream enabled for this account, and are enough nodes up for {replicas} replicas?)"
    )]
    Setup {
        /// What was being set up.
        what: &'static str,
        /// Replicas asked for.
        replicas: usize,
        /// The error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Creates (or finds) the flow and alert streams.
pub async fn ensure_streams(js: &jetstream::Context, replicas: usize) -> Result<(), StreamError> {
    let err = |what| {
        move |e: Box<dyn std::error::Error + Send + Sync>| StreamError::Setup {
            what,
            replicas,
            source: e,
        }
    };
    js.get_or_create_stream(flows_config(replicas))
        .await
        .map_err(|e| err("the FLOWS stream")(e.into()))?;
    js.get_or_create_stream(alerts_config(replicas))
        .await
        .map_err(|e| err("the ALERTS stream")(e.into()))?;
    Ok(())
}

/// Creates (or finds) the status bucket.
pub async fn status_bucket(
    js: &jetstream::Context,
    replicas: usize,
) -> Result<kv::Store, StreamError> {
    if let Ok(kv) = js.get_key_value(STATUS_BUCKET).await {
        return Ok(kv);
    }
    js.create_key_value(kv::Config {
        bucket: STATUS_BUCKET.into(),
        history: 5,
        num_replicas: replicas,
        ..Default::default()
    })
    .await
    .map_err(|e| StreamError::Setup {
        what: "the status bucket",
        replicas,
        source: e.into(),
    })
}
