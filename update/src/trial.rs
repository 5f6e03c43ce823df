//! The new version's trial: after an update the instance starts the release it installed, and
//! a watchdog — a separate process running the *previous* binary — waits for it to report
//! healthy (connected and serving remote actions again). If it does not within the deadline, or
//! exits first, the watchdog stops it, puts the previous binary back and starts that (under
//! systemd, the unit's `Restart=` starts it). The restored instance reports the failure.
//!
//! Files beside the binary: `<exe>.trial.json` (the trial), `<exe>.trial.healthy` (the new
//! version's word), `<exe>.update-failed.json` (what the restored instance reports).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::install::{self, Paths, beside};

/// The environment variable that tells a started release where its trial file is.
pub const TRIAL_ENV: &str = "FLOWMESH_UPDATE_TRIAL";

/// One update on trial.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Trial {
    /// The process that runs the new version (the same PID: the instance execs it).
    pub pid: u32,
    /// The installation.
    pub paths: Paths,
    /// The version that ran.
    pub from: String,
    /// The version on trial.
    pub to: String,
    /// Seconds it has to report healthy.
    pub health_secs: u64,
    /// The command line to start the instance with (without the program).
    pub args: Vec<String>,
    /// Its working directory.
    pub cwd: PathBuf,
}

/// What the restored instance reports after a rollback.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Failure {
    /// The version that failed (or was refused).
    pub version: String,
    /// Why.
    pub reason: String,
    /// When, µs since the epoch.
    pub time_us: i64,
}

/// The trial file of the binary at `exe`.
pub fn trial_file(exe: &Path) -> PathBuf {
    beside(exe, ".trial.json")
}

fn healthy_file(trial: &Path) -> PathBuf {
    trial.with_extension("healthy")
}

fn failure_file(exe: &Path) -> PathBuf {
    beside(exe, ".update-failed.json")
}

/// Writes the trial file and starts its watchdog (detached, running the previous binary).
/// Called by the old version just before it starts the new one in its place.
pub fn begin(trial: &Trial) -> Result<PathBuf, String> {
    let path = trial_file(&trial.paths.exe);
    let _ = std::fs::remove_file(healthy_file(&path));
    let json = serde_json::to_vec_pretty(trial).map_err(|e| e.to_string())?;
    std::fs::write(&path, json).map_err(|e| format!("{}: {e}", path.display()))?;
    // `update-watchdog --detach` starts the watchdog in its own process group and returns at
    // once, so the watchdog is nobody's child to reap and outlives this process image.
    let status = std::process::Command::new(&trial.paths.previous)
        .args(["update-watchdog", "--detach", "--trial"])
        .arg(&path)
        .stdin(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("cannot start the update watchdog: {e}"))?;
    if !status.success() {
        return Err(format!("the update watchdog did not start ({status})"));
    }
    Ok(path)
}

/// `update-watchdog --detach`: starts the watchdog proper and returns.
pub fn detach(trial: &Path) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    std::process::Command::new(me)
        .args(["update-watchdog", "--trial"])
        .arg(trial)
        .stdin(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start the update watchdog: {e}"))?;
    Ok(())
}

/// Called by a started instance once it is healthy: if it runs on trial, the watchdog learns it.
pub fn confirm_healthy() {
    let Ok(path) = std::env::var(TRIAL_ENV) else {
        return;
    };
    let path = PathBuf::from(path);
    if !path.exists() {
        return;
    }
    match std::fs::write(healthy_file(&path), b"ok\n") {
        Ok(()) => tracing::info!(
            version = crate::stamp::current(),
            "update: this version reports healthy"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "update: cannot tell the watchdog this version is healthy")
        }
    }
}

fn alive(pid: u32) -> bool {
    // A zombie has exited; /proc/PID/stat's third field says so.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .is_some_and(|zombie| !zombie)
}

fn signal(pid: u32, sig: rustix::process::Signal) {
    if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(p, sig);
    }
}

/// Stops `pid`: SIGTERM (a clean stop), then SIGKILL after `grace`.
fn stop(pid: u32, grace: Duration) {
    signal(pid, rustix::process::Signal::TERM);
    let until = Instant::now() + grace;
    while alive(pid) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
    if alive(pid) {
        signal(pid, rustix::process::Signal::KILL);
    }
}

/// How a trial ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The new version reported healthy.
    Healthy,
    /// It was rolled back, for this reason.
    RolledBack(String),
}

/// The watchdog proper: waits for the verdict, rolls back if it is bad. Under systemd (the
/// unit restarts the service) it returns after a rollback; standalone, it starts the restored
/// binary in its own place and does not return unless that fails.
pub fn watch(trial_path: &Path) -> Result<Outcome, String> {
    let text = std::fs::read(trial_path).map_err(|e| format!("{}: {e}", trial_path.display()))?;
    let trial: Trial =
        serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", trial_path.display()))?;
    let healthy = healthy_file(trial_path);
    let deadline = Instant::now() + Duration::from_secs(trial.health_secs.max(1));
    let reason = loop {
        if healthy.exists() {
            tracing::info!(from = %trial.from, to = %trial.to, "update: the new version is healthy; keeping it");
            let _ = std::fs::remove_file(&healthy);
            let _ = std::fs::remove_file(trial_path);
            return Ok(Outcome::Healthy);
        }
        if !alive(trial.pid) {
            break format!("version {} exited before it reported healthy", trial.to);
        }
        if Instant::now() >= deadline {
            stop(trial.pid, Duration::from_secs(10));
            break format!(
                "version {} did not report healthy within {} s",
                trial.to, trial.health_secs
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    tracing::error!(%reason, back_to = %trial.from, "update: rolling back");
    install::roll_back(&trial.paths)?;
    let failure = Failure {
        version: trial.to.clone(),
        reason: reason.clone(),
        time_us: flowmesh_link::envelope::now_micros() as i64,
    };
    let _ = std::fs::write(
        failure_file(&trial.paths.exe),
        serde_json::to_vec(&failure).unwrap_or_default(),
    );
    let _ = std::fs::remove_file(trial_path);
    if std::env::var_os("INVOCATION_ID").is_some() {
        // systemd's `Restart=` starts the unit again, now with the restored binary.
        return Ok(Outcome::RolledBack(reason));
    }
    use std::os::unix::process::CommandExt;
    tracing::warn!(exe = %trial.paths.exe.display(), "update: starting the previous version again");
    let err = std::process::Command::new(&trial.paths.exe)
        .args(&trial.args)
        .current_dir(&trial.cwd)
        .env_remove(TRIAL_ENV)
        .exec();
    Err(format!(
        "rolled back, but could not start {}: {err}",
        trial.paths.exe.display()
    ))
}

/// At start: the failure a rollback left for this instance to report, taken (removed).
pub fn take_failure() -> Option<Failure> {
    let exe = std::env::current_exe().ok()?;
    let path = failure_file(&exe);
    let text = std::fs::read(&path).ok()?;
    let _ = std::fs::remove_file(&path);
    serde_json::from_slice(&text).ok()
}
