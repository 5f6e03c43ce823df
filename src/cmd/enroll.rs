//! `flowmesh enroll` and `flowmesh revoke`: users and instances added to, or removed from, a
//! running cluster without restarting it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use flowmesh_link::Identity;
use flowmesh_manager::broker;

/// Add a user (its NATS account) and/or instances (their credentials) to a cluster generated
/// by `flowmesh broker init`, then have every node reload its config — no restart, no
/// connection dropped. Prints, per new instance, the `[broker]` file for its config.
#[derive(clap::Args)]
pub struct EnrollArgs {
    /// The generated cluster directory.
    #[arg(long)]
    cluster: PathBuf,
    /// The user (account) name.
    #[arg(long)]
    user: String,
    /// A new user's public key (64 hex characters, printed by `flowmesh keygen`).
    #[arg(long, conflicts_with = "identity")]
    public_key: Option<String>,
    /// Or the new user's identity file, to read its public key from.
    #[arg(long)]
    identity: Option<PathBuf>,
    /// Instance names to create credentials for (repeat for several).
    #[arg(long = "instance", required = true)]
    instances: Vec<String>,
    /// Only rewrite the configs (nodes on other machines: copy them and reload each with
    /// `nats-server --signal reload`).
    #[arg(long)]
    no_reload: bool,
}

/// Revoke an instance's credentials: its login leaves every node's config and each node
/// reloads, closing its connections everywhere at once.
#[derive(clap::Args)]
pub struct RevokeArgs {
    /// The generated cluster directory.
    #[arg(long)]
    cluster: PathBuf,
    /// The user (account) name.
    #[arg(long)]
    user: String,
    /// The instance to revoke.
    #[arg(long)]
    instance: String,
    /// Only rewrite the configs (see `enroll --no-reload`).
    #[arg(long)]
    no_reload: bool,
}

const RELOAD_TIMEOUT: Duration = Duration::from_secs(15);

fn reload(cluster: &std::path::Path, skip: bool) -> anyhow::Result<()> {
    if skip {
        eprintln!(
            "configs rewritten in {}/nodes; reload each node (nats-server --signal reload)",
            cluster.display()
        );
        return Ok(());
    }
    let nodes = broker::reload(cluster, RELOAD_TIMEOUT)?;
    eprintln!("reloaded {} node(s): {}", nodes.len(), nodes.join(", "));
    Ok(())
}

pub fn enroll(a: EnrollArgs) -> anyhow::Result<ExitCode> {
    let key = match (&a.public_key, &a.identity) {
        (Some(k), _) => Some(k.clone()),
        (None, Some(path)) => Some(Identity::load(path)?.public().to_hex()),
        (None, None) => None,
    };
    let done = broker::enroll(&a.cluster, &a.user, key.as_deref(), &a.instances)
        .with_context(|| format!("enrolling into {}", a.cluster.display()))?;
    if done.new_account {
        eprintln!("created the account of user {}", a.user);
    }
    for (instance, file) in &done.instances {
        println!("{instance}\t{}", file.display());
    }
    reload(&a.cluster, a.no_reload)?;
    Ok(ExitCode::SUCCESS)
}

pub fn revoke(a: RevokeArgs) -> anyhow::Result<ExitCode> {
    broker::revoke(&a.cluster, &a.user, &a.instance)
        .with_context(|| format!("revoking in {}", a.cluster.display()))?;
    eprintln!("revoked {} of user {}", a.instance, a.user);
    reload(&a.cluster, a.no_reload)?;
    Ok(ExitCode::SUCCESS)
}
