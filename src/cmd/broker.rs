//! `flowmesh broker ...`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use flowmesh_manager::broker::{self, Topology};

/// Broker subcommands.
#[derive(clap::Subcommand)]
pub enum BrokerCommand {
    /// Generate a CA, node certificates, one nats-server config per node (TLS 1.3 only,
    /// JetStream, gateways between regions, NATS operator mode with a `full` account resolver),
    /// the operator, the system and cloud accounts, the topology's users' accounts and their
    /// instances' credentials. Start the nodes, then `flowmesh broker push`.
    Init {
        /// The topology file (see broker-config/topology.toml).
        #[arg(long)]
        topology: PathBuf,
        /// Output directory; start the cluster with `deploy/cluster.sh up DIR`.
        #[arg(long)]
        out: PathBuf,
        /// Regenerate over an existing cluster directory (new certificates and credentials).
        #[arg(long)]
        force: bool,
    },
    /// Push every account JWT of a generated cluster to its running nodes (after the first
    /// start, or to fill a node whose resolver directory was lost). Enrollment pushes by itself.
    /// Waits for every node's answer and names the nodes that did not answer.
    Push {
        /// The generated cluster directory.
        #[arg(long)]
        cluster: PathBuf,
    },
}

pub fn run(c: BrokerCommand) -> anyhow::Result<ExitCode> {
    match c {
        BrokerCommand::Init {
            topology,
            out,
            force,
        } => {
            let t = Topology::load(&topology)?;
            let base = topology
                .parent()
                .map(|p| p.to_path_buf())
                .unwrap_or_else(|| PathBuf::from("."));
            let g = broker::generate(&t, &base, &out, force)
                .with_context(|| format!("generating the cluster into {}", out.display()))?;
            for n in &g.nodes {
                println!(
                    "{}\t{}\t{}\t{}",
                    n.name, n.region, n.client_url, n.monitor_url
                );
            }
            eprintln!(
                "generated {} nodes into {}; start them with `deploy/cluster.sh up {}`, \
                 then push the accounts: flowmesh broker push --cluster {}",
                g.nodes.len(),
                g.out.display(),
                g.out.display(),
                g.out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        BrokerCommand::Push { cluster } => {
            let started = std::time::Instant::now();
            let (n, pushed) = super::runtime()?.block_on(async {
                let system = broker::system_client(&cluster).await?;
                let held = broker::AccountsLock::acquire_async(&cluster).await?;
                let pushed = broker::push_all(&system, &held).await?;
                let _ = system.flush().await;
                anyhow::Ok(pushed)
            })?;
            eprintln!(
                "pushed {n} account(s) to the cluster in {} ms: {pushed}",
                started.elapsed().as_millis()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
