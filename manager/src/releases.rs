//! The release service: signed releases kept in the `CLOUD` account's object store (bucket
//! `releases`, one object per version and platform, its signed manifest in the object's
//! metadata), listed and served in chunks to every user's instances on
//! `flowmesh.cloud.release` (exported to each user's account as a service). Users cannot write
//! the bucket: their accounts have no access to `CLOUD`'s JetStream, only to this service.
//!
//! The manager holds no release key and checks no signature: instances do. It keeps the
//! binary last asked for in memory (an update fetches hundreds of chunks in a row), and drops
//! it after a few idle minutes.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flowmesh_link::async_nats::{Client, jetstream};
use flowmesh_link::subject::cloud;
use flowmesh_update::SignedManifest;
use flowmesh_update::service::{CHUNK, Listing, Request, refusal};
use futures::StreamExt;
use tokio::io::AsyncReadExt;

/// The object store bucket releases live in.
pub const BUCKET: &str = "releases";
/// The object metadata key holding a release's signed manifest (JSON).
pub const MANIFEST_KEY: &str = "flowmesh-manifest";
/// How long an idle cached binary is kept.
const CACHE_IDLE: Duration = Duration::from_secs(300);

/// The binary last served.
#[derive(Default)]
struct Cache {
    entry: Option<(String, Arc<Vec<u8>>, Instant)>,
}

/// Every release's signed manifest in the bucket (none if there is no bucket yet).
pub async fn list(js: &jetstream::Context) -> Result<Vec<SignedManifest>, String> {
    let Ok(store) = js.get_object_store(BUCKET).await else {
        return Ok(Vec::new());
    };
    let mut objects = store.list().await.map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    while let Some(info) = objects.next().await {
        let info = info.map_err(|e| e.to_string())?;
        if let Some(m) = info
            .metadata
            .get(MANIFEST_KEY)
            .and_then(|j| serde_json::from_str::<SignedManifest>(j).ok())
        {
            out.push(m);
        }
    }
    Ok(out)
}

async fn binary(
    js: &jetstream::Context,
    cache: &Mutex<Cache>,
    name: &str,
) -> Result<Arc<Vec<u8>>, String> {
    if let Ok(mut c) = cache.lock()
        && let Some((n, bytes, used)) = c.entry.as_mut()
        && n == name
    {
        *used = Instant::now();
        return Ok(bytes.clone());
    }
    let store = js
        .get_object_store(BUCKET)
        .await
        .map_err(|_| "no releases published".to_string())?;
    let mut object = store
        .get(name)
        .await
        .map_err(|_| format!("no release {name}"))?;
    let mut bytes = Vec::with_capacity(object.info().size);
    object
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| format!("release {name}: {e}"))?;
    let bytes = Arc::new(bytes);
    if let Ok(mut c) = cache.lock() {
        c.entry = Some((name.to_string(), bytes.clone(), Instant::now()));
    }
    Ok(bytes)
}

/// The answer to one request: its body, or why not.
async fn answer(
    js: &jetstream::Context,
    cache: &Mutex<Cache>,
    body: &[u8],
) -> Result<Vec<u8>, String> {
    let request: Request =
        serde_json::from_slice(body).map_err(|e| format!("malformed request: {e}"))?;
    match request {
        Request::List => serde_json::to_vec(&Listing {
            releases: list(js).await?,
        })
        .map_err(|e| e.to_string()),
        Request::Chunk {
            version,
            platform,
            index,
        } => {
            let name = flowmesh_update::manifest::object_name(&version, &platform);
            let bytes = binary(js, cache, &name).await?;
            let start = index.saturating_mul(CHUNK);
            let start = usize::try_from(start).unwrap_or(usize::MAX);
            if start >= bytes.len() {
                return Err(format!("release {name} has no chunk {index}"));
            }
            let end = bytes.len().min(start + CHUNK as usize);
            Ok(bytes[start..end].to_vec())
        }
    }
}

/// Serves the release service until the subscription ends: requests from users' accounts
/// (`flowmesh.cloud.release.<user>`) and from the cloud's own (`flowmesh.cloud.release`).
pub async fn serve(client: Client) {
    let js = jetstream::new(client.clone());
    let cache = Mutex::new(Cache::default());
    let subs = futures::future::try_join(
        client.subscribe(cloud::release_of("*")),
        client.subscribe(cloud::RELEASE),
    )
    .await;
    let (users, own) = match subs {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "the release service is not served");
            return;
        }
    };
    let mut requests = futures::stream::select(users, own);
    let mut sweep = tokio::time::interval(Duration::from_secs(60));
    loop {
        let m = tokio::select! {
            m = requests.next() => match m { Some(m) => m, None => return },
            _ = sweep.tick() => {
                if let Ok(mut c) = cache.lock()
                    && c.entry.as_ref().is_some_and(|(_, _, used)| used.elapsed() > CACHE_IDLE)
                {
                    c.entry = None;
                }
                continue;
            }
        };
        let Some(reply) = m.reply else { continue };
        let sent = match answer(&js, &cache, &m.payload).await {
            Ok(body) => client.publish(reply, body.into()).await,
            Err(why) => {
                tracing::debug!(subject = %m.subject, %why, "release request refused");
                client
                    .publish_with_headers(reply, refusal(&why), bytes::Bytes::new())
                    .await
            }
        };
        if let Err(e) = sent {
            tracing::debug!(error = %e, "release answer not sent");
        }
    }
}
