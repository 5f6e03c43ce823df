//! Logging in with an instance's `.creds` file as an independent client would: shared by the
//! operator-mode tests.
#![allow(dead_code)]

use std::path::Path;

use flowmesh_link::async_nats::{self, ConnectOptions, Event};

pub type Events = tokio::sync::mpsc::UnboundedReceiver<String>;

/// Logs in with the `.creds` file `broker init` or `enroll` wrote, to `url` only, as an
/// independent client would (no flowmesh code beyond TLS settings).
pub async fn login(
    dir: &Path,
    user: &str,
    instance: &str,
    url: &str,
) -> (async_nats::Client, Events) {
    try_login(dir, user, instance, url)
        .await
        .unwrap_or_else(|e| panic!("{user}/{instance} could not log in: {e}"))
}

pub async fn try_login(
    dir: &Path,
    user: &str,
    instance: &str,
    url: &str,
) -> Result<(async_nats::Client, Events), String> {
    let creds = std::fs::read_to_string(dir.join(format!("creds/{user}/{instance}.creds")))
        .map_err(|e| e.to_string())?;
    let tls = flowmesh_link::tls::client_config(&dir.join("ca.pem")).unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let client = ConnectOptions::with_credentials(&creds)
        .unwrap()
        .require_tls(true)
        .tls_first()
        .tls_client_config(tls)
        .custom_inbox_prefix(flowmesh_link::connect::inbox_prefix(instance))
        .max_reconnects(Some(1))
        .event_callback(move |e| {
            let tx = tx.clone();
            async move {
                let text = match e {
                    Event::ServerError(e) => format!("server error: {e}"),
                    other => format!("{other}"),
                };
                let _ = tx.send(text);
            }
        })
        .connect(url)
        .await
        .map_err(|e| e.to_string())?;
    Ok((client, rx))
}
