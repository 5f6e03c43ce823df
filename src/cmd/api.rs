//! The CLI's side of the collector's API: find it through the collector's config (its access
//! file holds the URL and token) and attach the token to every call.

use std::path::Path;

use anyhow::Context;
use flowmesh_collector::api::access::Access;
use flowmesh_collector::daemon::CollectorConfig;
use flowmesh_proto::v1::collector_client::CollectorClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// Adds `authorization: Bearer <token>` to each request.
#[derive(Clone)]
pub struct Bearer(MetadataValue<Ascii>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut r: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        r.metadata_mut().insert("authorization", self.0.clone());
        Ok(r)
    }
}

/// A client of a collector's API.
pub type Client = CollectorClient<InterceptedService<Channel, Bearer>>;

/// Connects to the API of the collector whose config file is `config`.
pub async fn connect(config: &Path) -> anyhow::Result<Client> {
    let c = CollectorConfig::load(config)?;
    if c.api.address().map_err(anyhow::Error::msg)?.is_none() {
        anyhow::bail!(
            "{}: [api] listen = \"off\": this collector has no API",
            config.display()
        );
    }
    let access = Access::read(&c.api.access_file).map_err(anyhow::Error::msg)?;
    let token: MetadataValue<Ascii> = format!("Bearer {}", access.token)
        .parse()
        .context("the access file's token is not printable")?;
    let channel = Channel::from_shared(access.url.clone())?
        .connect_timeout(std::time::Duration::from_secs(5))
        .connect()
        .await
        .with_context(|| {
            format!(
                "cannot reach the collector's API at {} (is `flowmesh collector --config {}` running?)",
                access.url,
                config.display()
            )
        })?;
    Ok(CollectorClient::with_interceptor(channel, Bearer(token)))
}

/// A gRPC error as the user should read it.
pub fn status_error(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("collector API: {} ({:?})", s.message(), s.code())
}
