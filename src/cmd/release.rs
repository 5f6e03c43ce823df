//! `flowmesh release`: signed releases in the cloud (keygen, stamp, publish, list), and the
//! hidden `update-watchdog` an updating instance starts.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use flowmesh_link::async_nats::jetstream::{self, object_store};
use flowmesh_link::connect::connect;
use flowmesh_manager::releases::{BUCKET, MANIFEST_KEY};
use flowmesh_update::{Manifest, ReleaseKey, ReleasePublicKey, SignedManifest, stamp};
use sha2::{Digest, Sha256};

/// Signed software releases, kept in the cloud for instances to update from.
#[derive(clap::Subcommand)]
pub enum ReleaseCommand {
    /// Create the release signing key (Ed25519, mode 0600) and print its public half: pin it
    /// in every instance's `[update] release_key` (and publish it beside the cloud key).
    Keygen {
        /// Where to write the key. Keep it off the manager: whoever holds it can ship code to
        /// every instance that pins it.
        #[arg(long)]
        out: PathBuf,
        /// Replace an existing key.
        #[arg(long)]
        force: bool,
        /// The domain, to print the TXT record's full name.
        #[arg(long)]
        domain: Option<String>,
    },
    /// Set the version a built binary reports (`flowmesh --version`, heartbeats), e.g. a
    /// packager's `1.4.2+deb12u1`, without rebuilding.
    Stamp {
        /// The binary to read.
        binary: PathBuf,
        /// The version to set (semantic versioning).
        #[arg(long)]
        version: String,
        /// Where to write the stamped copy (0755).
        #[arg(long)]
        out: PathBuf,
    },
    /// Publish a binary as a release (cloud operator): its manifest (version, platform, size,
    /// SHA-256, notes) signed with the release key, the binary into the CLOUD account's
    /// object store, where every user's instances can fetch it and none can write.
    Publish(PublishArgs),
    /// List the published releases, as instances see them (any config whose broker reaches
    /// the cloud: an instance's, or the manager's), one JSON object per line.
    List {
        /// A config file with a `[broker]`.
        #[arg(long)]
        config: PathBuf,
        /// Check signatures with this public key (64 hex; default: the config's `[update]
        /// release_key`, if any).
        #[arg(long)]
        release_key: Option<String>,
    },
}

/// `release publish`.
#[derive(clap::Args)]
pub struct PublishArgs {
    /// The binary.
    binary: PathBuf,
    /// Its version: must be what the binary reports (its stamp).
    #[arg(long)]
    version: Option<String>,
    /// The release signing key (`flowmesh release keygen`).
    #[arg(long)]
    key: PathBuf,
    /// The manager's config (its login to the CLOUD account).
    #[arg(long)]
    config: PathBuf,
    /// What changed.
    #[arg(long, default_value = "")]
    notes: String,
    /// The platform it runs on (default: this machine's, e.g. x86_64-linux).
    #[arg(long)]
    platform: Option<String>,
    /// JetStream replicas of the release bucket when it is created (1 on a one-node
    /// cluster).
    #[arg(long, default_value_t = 3)]
    replicas: usize,
}

/// The watchdog of an update on trial (started by the instance; not for people).
#[derive(clap::Args)]
pub struct WatchdogArgs {
    /// The trial file.
    #[arg(long)]
    trial: PathBuf,
    /// Start the watchdog in its own process group and return.
    #[arg(long)]
    detach: bool,
}

/// Runs `update-watchdog`.
pub fn watchdog(a: WatchdogArgs) -> anyhow::Result<ExitCode> {
    if a.detach {
        flowmesh_update::trial::detach(&a.trial).map_err(anyhow::Error::msg)?;
        return Ok(ExitCode::SUCCESS);
    }
    match flowmesh_update::trial::watch(&a.trial).map_err(anyhow::Error::msg)? {
        flowmesh_update::trial::Outcome::Healthy => Ok(ExitCode::SUCCESS),
        flowmesh_update::trial::Outcome::RolledBack(_) => Ok(ExitCode::FAILURE),
    }
}

pub fn run(c: ReleaseCommand) -> anyhow::Result<ExitCode> {
    match c {
        ReleaseCommand::Keygen { out, force, domain } => {
            let key = ReleaseKey::generate();
            flowmesh_link::secret_file::write(&out, key.to_file().as_bytes(), force)?;
            eprintln!(
                "wrote release signing key {} (mode 0600); pin the public key below in each \
                 instance's [update] release_key, and publish it:",
                out.display()
            );
            let domain = domain.as_deref().unwrap_or("<your-domain>");
            println!(
                "cloud._releasekey.{domain} IN TXT \"{}\"",
                key.public().to_hex()
            );
            Ok(ExitCode::SUCCESS)
        }
        ReleaseCommand::Stamp {
            binary,
            version,
            out,
        } => {
            let mut bytes = std::fs::read(&binary).with_context(|| binary.display().to_string())?;
            let was =
                stamp::read(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", binary.display()))?;
            stamp::write(&mut bytes, &version).map_err(anyhow::Error::msg)?;
            let mut f =
                flowmesh_update::install::create_executable(&out).map_err(anyhow::Error::msg)?;
            std::io::Write::write_all(&mut f, &bytes)?;
            f.sync_all()?;
            eprintln!("{}: {was} → {version}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        ReleaseCommand::Publish(p) => publish(p),
        ReleaseCommand::List {
            config,
            release_key,
        } => list(&config, release_key),
    }
}

fn publish(p: PublishArgs) -> anyhow::Result<ExitCode> {
    let key_text = flowmesh_link::secret_file::read(&p.key)?;
    let key = ReleaseKey::from_file(&key_text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", p.key.display()))?;
    let bytes = std::fs::read(&p.binary).with_context(|| p.binary.display().to_string())?;
    let says = stamp::read(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", p.binary.display()))?;
    let version = p.version.unwrap_or_else(|| says.clone());
    if version != says {
        bail!(
            "{} reports version {says}, not {version}: stamp it first (`flowmesh release stamp`)",
            p.binary.display()
        );
    }
    semver::Version::parse(&version)
        .with_context(|| format!("version {version:?} is not semantic versioning"))?;
    let manifest = Manifest {
        version: version.clone(),
        platform: p
            .platform
            .unwrap_or_else(flowmesh_update::manifest::platform),
        size: bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(&bytes)),
        notes: p.notes,
        published: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
    };
    let signed = SignedManifest::sign(&manifest, &key);
    let n = super::InstanceConfig::load(&p.config)?;
    let rt = super::runtime()?;
    rt.block_on(async {
        let client = connect(&n.broker, "release-publish").await?;
        let js = jetstream::new(client.clone());
        let store = match js.get_object_store(BUCKET).await {
            Ok(s) => s,
            Err(_) => js
                .create_object_store(object_store::Config {
                    bucket: BUCKET.into(),
                    description: Some("flowmesh releases (signed manifests in metadata)".into()),
                    num_replicas: p.replicas,
                    ..Default::default()
                })
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "cannot create the release bucket: {e} (is this the manager's config, \
                         with its CLOUD login? on a one-node cluster pass --replicas 1)"
                    )
                })?,
        };
        let meta = object_store::ObjectMetadata {
            name: manifest.object(),
            description: Some(format!("flowmesh {version}")),
            metadata: [(MANIFEST_KEY.to_string(), serde_json::to_string(&signed)?)].into(),
            ..Default::default()
        };
        let mut reader = bytes.as_slice();
        store
            .put(meta, &mut reader)
            .await
            .map_err(|e| anyhow::anyhow!("storing {}: {e}", manifest.object()))?;
        anyhow::Ok(())
    })?;
    eprintln!(
        "published {} ({} bytes, sha256 {})",
        manifest.object(),
        manifest.size,
        manifest.sha256
    );
    println!("{}", serde_json::to_string(&manifest)?);
    Ok(ExitCode::SUCCESS)
}

/// `[update]` of a config file, if it has one.
#[derive(serde::Deserialize)]
struct WithUpdate {
    #[serde(default)]
    update: Option<flowmesh_update::UpdateConfig>,
}

fn list(config: &std::path::Path, release_key: Option<String>) -> anyhow::Result<ExitCode> {
    let n = super::InstanceConfig::load(config)?;
    let pinned = match release_key {
        Some(k) => Some(k),
        None => flowmesh_link::config::read_toml::<WithUpdate>(config)
            .ok()
            .and_then(|(w, _)| w.update)
            .and_then(|u| u.release_key),
    };
    let key = pinned
        .map(|k| ReleasePublicKey::from_hex(&k))
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let me = n.name.clone().unwrap_or_else(|| "cli".into());
    let rt = super::runtime()?;
    let releases = rt.block_on(async {
        let client = connect(
            &n.broker,
            &flowmesh_link::connect::tool_name(&me, "release"),
        )
        .await?;
        flowmesh_update::service::list(&client)
            .await
            .map_err(anyhow::Error::msg)
    })?;
    for r in releases {
        let Ok(m) = r.unverified() else { continue };
        let signature = match &key {
            Some(k) if r.verify(k).is_ok() => "valid",
            Some(_) => "INVALID",
            None => "unchecked",
        };
        let mut line = serde_json::to_value(&m)?;
        line["signature"] = signature.into();
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}
