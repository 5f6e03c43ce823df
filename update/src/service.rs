//! The release service's wire form, and its client: an instance lists releases and fetches a
//! binary in chunks from the manager, on `flowmesh.cloud.release` (a service the `CLOUD`
//! account exports to every user's account). Nothing here is secret and nothing here is
//! trusted: the manifest's signature and the binary's SHA-256 decide, not the carrier.

use std::time::Duration;

use flowmesh_link::async_nats::{Client, HeaderMap};
use flowmesh_link::subject::cloud;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::manifest::{Manifest, SignedManifest};

/// Bytes per chunk answer (under NATS's default 1 MiB payload).
pub const CHUNK: u64 = 256 * 1024;
/// The header a refused request's answer carries, with the reason.
pub const ERROR_HEADER: &str = "Flowmesh-Error";
/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Tries per chunk before the download is given up.
const TRIES: u32 = 4;

/// A request to the release service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    /// Every release's signed manifest.
    List,
    /// Bytes `[index × CHUNK, (index+1) × CHUNK)` of a release's binary.
    Chunk {
        /// Its version.
        version: String,
        /// Its platform.
        platform: String,
        /// Which chunk.
        index: u64,
    },
}

/// The answer to [`Request::List`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Listing {
    /// Every release, oldest first.
    pub releases: Vec<SignedManifest>,
}

async fn ask(client: &Client, request: &Request) -> Result<bytes::Bytes, String> {
    let body = serde_json::to_vec(request).map_err(|e| e.to_string())?;
    let answer = tokio::time::timeout(
        TIMEOUT,
        client.request(cloud::RELEASE.to_string(), body.into()),
    )
    .await
    .map_err(|_| {
        "the release service did not answer in 10 s (is the manager running?)".to_string()
    })?
    .map_err(|e| format!("the release service: {e} (is the manager running?)"))?;
    if let Some(why) = answer.headers.as_ref().and_then(|h| h.get(ERROR_HEADER)) {
        return Err(format!("the release service refused: {why}"));
    }
    Ok(answer.payload)
}

/// Every published release's signed manifest.
pub async fn list(client: &Client) -> Result<Vec<SignedManifest>, String> {
    let body = ask(client, &Request::List).await?;
    let listing: Listing =
        serde_json::from_slice(&body).map_err(|e| format!("the release list is malformed: {e}"))?;
    Ok(listing.releases)
}

/// Fetches the binary `m` describes into `out`, chunk by chunk (each retried a few times);
/// returns its SHA-256. The caller compares it with the (verified) manifest's.
pub async fn download(
    client: &Client,
    m: &Manifest,
    out: &mut impl std::io::Write,
) -> Result<[u8; 32], String> {
    let mut hash = Sha256::new();
    let chunks = m.size.div_ceil(CHUNK);
    let mut last_log = std::time::Instant::now();
    for index in 0..chunks {
        let want = CHUNK.min(m.size - index * CHUNK);
        let request = Request::Chunk {
            version: m.version.clone(),
            platform: m.platform.clone(),
            index,
        };
        let mut tries = 0;
        let bytes = loop {
            tries += 1;
            match ask(client, &request).await {
                Ok(b) if b.len() as u64 == want => break b,
                Ok(b) => {
                    return Err(format!(
                        "chunk {index} of {} has {} bytes, not {want}",
                        m.object(),
                        b.len()
                    ));
                }
                Err(e) if tries >= TRIES => return Err(e),
                Err(e) => {
                    tracing::debug!(error = %e, index, "chunk request failed; asking again");
                    tokio::time::sleep(Duration::from_millis(500 * u64::from(tries))).await;
                }
            }
        };
        hash.update(&bytes);
        out.write_all(&bytes).map_err(|e| e.to_string())?;
        if last_log.elapsed() > Duration::from_secs(5) {
            last_log = std::time::Instant::now();
            tracing::info!(
                version = %m.version,
                done = format!("{:.0}%", 100.0 * (index + 1) as f64 / chunks as f64),
                "downloading the release"
            );
        }
    }
    Ok(hash.finalize().into())
}

/// Headers of a refused request's answer.
pub fn refusal(why: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(ERROR_HEADER, why);
    h
}
