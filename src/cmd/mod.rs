//! One module per subcommand.

pub mod alerts;
pub mod api;
pub mod assist;
pub mod broker;
pub mod check;
pub mod cloud_key;
pub mod collector;
pub mod control;
pub mod devices;
pub mod enroll;
pub mod flows;
pub mod flows_export;
pub mod flows_search;
pub mod generate;
pub mod hello;
pub mod instances;
pub mod keygen;
pub mod manager;
pub mod policy;
pub mod release;
pub mod report_ip;
pub mod sensor;
pub mod series;
pub mod span;
pub mod watch;

/// What the commands that act as one instance (report-ip, control) need from its config file;
/// any component's config works.
#[derive(serde::Deserialize)]
pub struct InstanceConfig {
    /// The instance name, if the file has one.
    pub name: Option<String>,
    /// The user's identity file.
    pub identity: std::path::PathBuf,
    /// The cluster.
    pub broker: flowmesh_link::connect::BrokerConfig,
    /// How to find the cloud's key.
    pub cloud: Option<flowmesh_collector::cloud::CloudConfig>,
}

impl InstanceConfig {
    /// Reads it; relative paths are resolved against the file's directory.
    pub fn load(path: &std::path::Path) -> anyhow::Result<Self> {
        let (mut n, dir): (InstanceConfig, _) = flowmesh_link::config::read_toml(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        n.identity = dir.join(&n.identity);
        n.broker = n.broker.relative_to(&dir);
        Ok(n)
    }
}

/// Whether `sensor` and `collector` seal flow batches: always, except in benchmark builds
/// (feature `bench-plaintext`) asked for `--bench-plaintext`, to measure what sealing costs.
#[derive(clap::Args)]
pub struct SealMode {
    /// BENCHMARKS ONLY: flow batches unsealed (a collector accepts them only with the same
    /// flag). Exists only in builds with the `bench-plaintext` feature, never in a release.
    #[cfg(feature = "bench-plaintext")]
    #[arg(long, hide = true)]
    bench_plaintext: bool,
}

impl SealMode {
    /// Whether messages are sealed.
    pub fn seal(&self) -> bool {
        #[cfg(feature = "bench-plaintext")]
        return !self.bench_plaintext;
        #[cfg(not(feature = "bench-plaintext"))]
        true
    }
}

/// A multi-threaded tokio runtime for the networked subcommands.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Resolves on SIGINT or SIGTERM.
pub async fn wait_for_stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        // Without signal handlers, never resolve: the process ends the default way.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
}

/// After a daemon returned: if a remote `restart` stopped it, start this program again in this
/// process (same PID, so systemd and pid files follow), with the same arguments; if an `update`
/// installed a release, start that instead, on trial (a watchdog rolls it back unless it reports
/// healthy in time). Returns only if there was nothing to do or the exec failed.
pub fn restart_if_asked(what: &str) -> anyhow::Result<()> {
    if !flowmesh_proto::control::restart_requested() {
        return Ok(());
    }
    use std::os::unix::process::CommandExt;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut cmd;
    match flowmesh_proto::control::staged_update() {
        Some(staged) => {
            let trial = flowmesh_update::trial::Trial {
                pid: std::process::id(),
                paths: staged.paths.clone(),
                from: staged.from.clone(),
                to: staged.to.clone(),
                health_secs: staged.health_secs,
                args: args.clone(),
                cwd: std::env::current_dir()?,
            };
            let file = flowmesh_update::trial::begin(&trial).map_err(anyhow::Error::msg)?;
            tracing::info!(exe = %staged.paths.exe.display(), from = %staged.from, to = %staged.to, "{what} restarting into the update");
            cmd = std::process::Command::new(&staged.paths.exe);
            cmd.env(flowmesh_update::trial::TRIAL_ENV, file);
        }
        None => {
            let exe = std::env::current_exe()?;
            tracing::info!(exe = %exe.display(), "{what} restarting (remote action)");
            // A trial's variable stays: this process still owes its watchdog the word.
            cmd = std::process::Command::new(exe);
        }
    }
    let err = cmd.args(&args).exec();
    Err(anyhow::anyhow!(
        "{what}: could not start {:?} again after a remote restart: {err}",
        cmd.get_program()
    ))
}

/// Runs a daemon on a fresh runtime until it returns; SIGINT or SIGTERM set the `stop` flag it
/// is given, so it can finish its work and say goodbye.
pub fn run_daemon<Fut, T, E>(
    what: &'static str,
    daemon: impl FnOnce(std::sync::Arc<std::sync::atomic::AtomicBool>) -> Fut,
) -> anyhow::Result<T>
where
    Fut: std::future::Future<Output = Result<T, E>>,
    E: std::error::Error + Send + Sync + 'static,
{
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let rt = runtime()?;
    let flag = stop.clone();
    rt.spawn(async move {
        wait_for_stop_signal().await;
        tracing::info!("{what} stopping");
        flag.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    Ok(rt.block_on(daemon(stop))?)
}
