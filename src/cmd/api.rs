//! The CLI's side of the collector's API: find it through the collector's config (its access
//! file holds the URL and token) and attach the token to every call.

use std::path::Path;

use anyhow::Context;
use flowmesh_collector::daemon::CollectorConfig;
use flowmesh_link::access::Access;
use flowmesh_proto::auth::Bearer;
use flowmesh_proto::v1::collector_client::CollectorClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// A client of a collector's API.
pub type Client = CollectorClient<InterceptedService<Channel, Bearer>>;

/// A channel to the API whose access file is `access_file`, and the token for its calls.
/// `daemon` says how to start it, for the error when it is not running.
pub async fn channel(access_file: &Path, daemon: &str) -> anyhow::Result<(Channel, Bearer)> {
    let access = Access::read(access_file).map_err(anyhow::Error::msg)?;
    let token = Bearer::new(&access.token).context("the access file's token is not printable")?;
    let mut endpoint = Channel::from_shared(access.url.clone())?
        .connect_timeout(std::time::Duration::from_secs(5));
    if let Some(ca) = &access.ca_file {
        let pem = std::fs::read(ca).with_context(|| {
            format!(
                "{} (the API's certificate, named in the access file)",
                ca.display()
            )
        })?;
        let host = access
            .url
            .trim_start_matches("https://")
            .rsplit_once(':')
            .map_or("localhost", |(h, _)| h)
            .trim_matches(|c| c == '[' || c == ']')
            .to_string();
        endpoint = endpoint.tls_config(
            tonic::transport::ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(pem))
                .domain_name(host),
        )?;
    }
    let channel = endpoint.connect().await.with_context(|| {
        format!(
            "cannot reach the API at {} (is `{daemon}` running?)",
            access.url
        )
    })?;
    Ok((channel, token))
}

/// Where the CLI finds a collector's API: its config file, or an access file (as `flowmesh
/// assist connect --access-file` writes for a tunnelled API).
#[derive(clap::Args)]
pub struct ApiArgs {
    /// The collector's config file (its `[api]` and access file are used).
    #[arg(long)]
    pub config: Option<std::path::PathBuf>,
    /// An API access file instead (URL and token), e.g. the one `flowmesh assist connect
    /// --access-file FILE` writes.
    #[arg(long, conflicts_with = "config")]
    pub access: Option<std::path::PathBuf>,
}

impl ApiArgs {
    /// Connects to the API these name.
    pub async fn connect(&self) -> anyhow::Result<Client> {
        match (&self.access, &self.config) {
            (Some(access), _) => {
                let (channel, token) = channel(access, "flowmesh assist connect").await?;
                Ok(CollectorClient::with_interceptor(channel, token))
            }
            (None, Some(config)) => connect(config).await,
            (None, None) => anyhow::bail!("give --config COLLECTOR.toml or --access FILE"),
        }
    }
}

/// Connects to the API of the collector whose config file is `config`.
pub async fn connect(config: &Path) -> anyhow::Result<Client> {
    let c = CollectorConfig::load(config)?;
    if c.api.address().map_err(anyhow::Error::msg)?.is_none() {
        anyhow::bail!(
            "{}: [api] listen = \"off\": this collector has no API",
            config.display()
        );
    }
    let (channel, token) = channel(
        &c.api.access_file,
        &format!("flowmesh collector --config {}", config.display()),
    )
    .await?;
    Ok(CollectorClient::with_interceptor(channel, token))
}

/// A gRPC error as the user should read it.
pub fn status_error(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("collector API: {} ({:?})", s.message(), s.code())
}
