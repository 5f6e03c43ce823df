//! What an instance does when its user asks it to update: find the release, verify it,
//! download it, check it, install it. The restart into it is the caller's (after answering).

use std::path::PathBuf;

use flowmesh_link::async_nats::Client;
use serde::{Deserialize, Serialize};

use crate::install::{self, Paths};
use crate::manifest::{Manifest, ReleasePublicKey, SignedManifest, platform};
use crate::{service, stamp};

/// `[update]` in a sensor's or collector's config.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateConfig {
    /// The release key's public half (64 hex characters, `flowmesh release keygen` prints it).
    /// Without it, updates are refused.
    #[serde(default)]
    pub release_key: Option<String>,
    /// Seconds a new version has to report healthy before it is rolled back.
    #[serde(default = "sixty")]
    pub health_secs: u64,
}

fn sixty() -> u64 {
    60
}

impl Default for UpdateConfig {
    fn default() -> Self {
        UpdateConfig {
            release_key: None,
            health_secs: sixty(),
        }
    }
}

/// The `update` action's arguments (JSON).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UpdateArgs {
    /// The version to install; the newest for this platform when absent.
    #[serde(default)]
    pub version: Option<String>,
    /// Install an older version than the running one.
    #[serde(default)]
    pub allow_downgrade: bool,
}

/// A release installed and ready to start.
#[derive(Debug, Clone)]
pub struct Staged {
    /// Where it is.
    pub paths: Paths,
    /// The version that runs now.
    pub from: String,
    /// The version installed.
    pub to: String,
    /// Seconds it has to report healthy.
    pub health_secs: u64,
}

fn parse_version(v: &str) -> Result<semver::Version, String> {
    semver::Version::parse(v).map_err(|e| format!("version {v:?} is not semantic versioning: {e}"))
}

/// Chooses the release to install among `releases`: verified with `key`, for this platform,
/// `args.version` or the newest; refuses a downgrade (or the same version) unless allowed.
pub fn choose(
    releases: &[SignedManifest],
    key: &ReleasePublicKey,
    running: &str,
    args: &UpdateArgs,
) -> Result<Manifest, String> {
    let here = platform();
    let mut bad_signature = None;
    let mut verified = Vec::new();
    for r in releases {
        let Ok(m) = r.unverified() else { continue };
        if m.platform != here || args.version.as_ref().is_some_and(|v| *v != m.version) {
            continue;
        }
        match r.verify(key) {
            Ok(m) => verified.push(m),
            Err(e) => bad_signature = Some(format!("release {}: {e}", m.version)),
        }
    }
    let best = verified
        .into_iter()
        .filter_map(|m| parse_version(&m.version).ok().map(|v| (v, m)))
        .max_by(|a, b| a.0.cmp(&b.0));
    let Some((version, m)) = best else {
        return Err(bad_signature.unwrap_or_else(|| match &args.version {
            Some(v) => format!("no release {v} for {here}"),
            None => format!("no release for {here}"),
        }));
    };
    let now = parse_version(running)?;
    if version == now {
        return Err(format!("already running {running}"));
    }
    if version < now && !args.allow_downgrade {
        return Err(format!(
            "{} is older than the running {running}: a downgrade needs --allow-downgrade",
            m.version
        ));
    }
    Ok(m)
}

/// Finds, verifies, downloads, checks and installs the release `args` asks for.
pub async fn prepare(client: &Client, config: &UpdateConfig, args: &str) -> Result<Staged, String> {
    let args: UpdateArgs = if args.trim().is_empty() {
        UpdateArgs::default()
    } else {
        serde_json::from_str(args).map_err(|e| format!("update arguments: {e}"))?
    };
    let key = config.release_key.as_deref().ok_or(
        "no release key pinned: set [update] release_key (what `flowmesh release keygen` printed) \
         in this instance's config",
    )?;
    let key = ReleasePublicKey::from_hex(key).map_err(|e| e.to_string())?;
    let running = stamp::current().to_string();
    let releases = service::list(client).await?;
    let m = choose(&releases, &key, &running, &args)?;
    let paths = Paths::of_running()?;
    let download = paths.download();
    tracing::info!(from = %running, to = %m.version, size = m.size, "update: downloading");
    let fetched = fetch(client, &m, &download).await;
    if let Err(e) = fetched {
        let _ = std::fs::remove_file(&download);
        return Err(e);
    }
    install::install(&download, &paths)?;
    tracing::info!(to = %m.version, exe = %paths.exe.display(), "update: installed; restarting into it");
    Ok(Staged {
        paths,
        from: running,
        to: m.version,
        health_secs: config.health_secs,
    })
}

/// Downloads `m` to `path` and checks it: size, SHA-256, and the version the binary says.
async fn fetch(client: &Client, m: &Manifest, path: &PathBuf) -> Result<(), String> {
    let mut file = install::create_executable(path)?;
    let hash = service::download(client, m, &mut file).await?;
    install::finish(file, m.size, path)?;
    if hex::encode(hash) != m.sha256 {
        return Err(format!(
            "the binary of release {} does not match its signed SHA-256 (tampered with in \
             storage or in transit); nothing installed",
            m.version
        ));
    }
    let body = std::fs::read(path).map_err(|e| e.to_string())?;
    match stamp::read(&body) {
        Ok(v) if v == m.version => Ok(()),
        Ok(v) => Err(format!(
            "the binary of release {} says it is version {v}; nothing installed",
            m.version
        )),
        Err(e) => Err(format!("release {}: {e}; nothing installed", m.version)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::ReleaseKey;

    fn release(key: &ReleaseKey, version: &str, platform: &str) -> SignedManifest {
        let m = Manifest {
            version: version.into(),
            platform: platform.into(),
            size: 1,
            sha256: String::new(),
            notes: String::new(),
            published: 0,
        };
        SignedManifest::sign(&m, key)
    }

    #[test]
    fn the_newest_verified_release_for_this_platform_is_chosen_and_downgrades_refused() {
        let key = ReleaseKey::generate();
        let other = ReleaseKey::generate();
        let here = platform();
        let list = vec![
            release(&key, "0.1.0", &here),
            release(&key, "0.3.0", "mips-plan9"),
            release(&key, "0.2.0", &here),
            release(&other, "0.9.0", &here),
        ];
        let pk = key.public();
        let newest = choose(&list, &pk, "0.1.0", &UpdateArgs::default()).unwrap();
        assert_eq!(newest.version, "0.2.0");
        let forged = UpdateArgs {
            version: Some("0.9.0".into()),
            ..Default::default()
        };
        let e = choose(&list, &pk, "0.1.0", &forged).unwrap_err();
        assert!(e.contains("signature"), "{e}");
        let down = UpdateArgs {
            version: Some("0.1.0".into()),
            ..Default::default()
        };
        let e = choose(&list, &pk, "0.2.0", &down).unwrap_err();
        assert!(e.contains("--allow-downgrade"), "{e}");
        let allowed = UpdateArgs {
            allow_downgrade: true,
            ..down
        };
        assert_eq!(
            choose(&list, &pk, "0.2.0", &allowed).unwrap().version,
            "0.1.0"
        );
        assert!(
            choose(&list, &pk, "0.2.0", &UpdateArgs::default())
                .unwrap_err()
                .contains("already running")
        );
        let e = choose(
            &list,
            &pk,
            "0.1.0",
            &UpdateArgs {
                version: Some("0.3.0".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.contains("no release 0.3.0"), "{e}");
    }
}
