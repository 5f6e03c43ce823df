//! One module per subcommand.

pub mod broker;
pub mod check;
pub mod cloud_key;
pub mod collector;
pub mod devices;
pub mod flows;
pub mod generate;
pub mod hello;
pub mod keygen;
pub mod pending;
pub mod policy;
pub mod sensor;
pub mod series;
pub mod watch;

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
