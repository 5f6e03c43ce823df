//! Software updates from the cloud, safely.
//!
//! - [`stamp`]: the version a build reports, readable and settable in the binary file.
//! - [`manifest`]: release manifests, signed with the release key (Ed25519) that instances pin.
//! - [`service`]: listing releases and fetching a binary from the manager, in chunks.
//! - [`install`]: the new binary beside the running one, atomically; the previous one kept.
//! - [`trial`]: the new version on trial, a watchdog, and the rollback.
//! - [`prepare`]: what an instance does when asked to update, up to the restart.

#![forbid(unsafe_code)]

pub mod install;
pub mod manifest;
pub mod prepare;
pub mod service;
pub mod stamp;
pub mod trial;

pub use manifest::{Manifest, ReleaseKey, ReleasePublicKey, SignedManifest};
pub use prepare::{Staged, UpdateArgs, UpdateConfig, prepare};

/// The latest update failure of this process (a refused update, or the rollback it started
/// after): heartbeats carry it, and the user's collector raises an `update_failed` alert.
static LAST_FAILURE: std::sync::Mutex<Option<trial::Failure>> = std::sync::Mutex::new(None);

/// Records an update failure for the heartbeats to report.
pub fn record_failure(f: trial::Failure) {
    if let Ok(mut last) = LAST_FAILURE.lock() {
        *last = Some(f);
    }
}

/// The latest update failure, if any.
pub fn last_failure() -> Option<trial::Failure> {
    LAST_FAILURE.lock().ok().and_then(|l| l.clone())
}

/// At an instance's start: a rollback's report is taken and logged, and kept for heartbeats.
pub fn at_start() {
    if let Some(f) = trial::take_failure() {
        tracing::error!(
            version = %f.version,
            reason = %f.reason,
            "the update was rolled back; this is the previous version again"
        );
        record_failure(f);
    }
}
