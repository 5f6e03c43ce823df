//! `flowmesh manager` and `flowmesh cloud ...`: the cloud operator's daemon and its API.

use std::path::PathBuf;
use std::process::ExitCode;

use flowmesh_manager::daemon::{self, ManagerConfig};
use flowmesh_proto::v1::manager_client::ManagerClient;
use flowmesh_proto::v1::{
    BlacklistAddRequest, CloudInstancesRequest, CloudUsersRequest, GetBlacklistRequest,
};

/// Run the cloud manager: the registry of users and instances (from the broker's connection
/// events across the supercluster: metadata only), the cloud inbox (attacker IPs reported by
/// users, sealed to the cloud's key) and the shared blacklist broadcast to every user.
#[derive(clap::Args)]
pub struct Args {
    /// The manager's config file.
    #[arg(long)]
    config: PathBuf,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let config = ManagerConfig::load(&a.config)?;
    super::run_daemon("manager", |stop| daemon::run(config, stop))?;
    Ok(ExitCode::SUCCESS)
}

/// Ask a running manager (through its API).
#[derive(clap::Subcommand)]
pub enum CloudCommand {
    /// Users' instances: connected or not, where (region, node), since when, how often.
    Instances {
        /// The manager's config file.
        #[arg(long)]
        config: PathBuf,
        /// Only this user's.
        #[arg(long)]
        user: Option<String>,
        /// One JSON object per instance instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Enrolled users: their key, their instances with credentials, how many are online.
    Users {
        /// The manager's config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// The shared blacklist (all of it, with how many users reported each address); `add`
    /// lists an address on the operator's word, which reaches every user at once.
    #[command(args_conflicts_with_subcommands = true)]
    Blacklist {
        /// The manager's config file.
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: Option<BlacklistAction>,
    },
}

/// Changes to the shared blacklist.
#[derive(clap::Subcommand)]
pub enum BlacklistAction {
    /// List an address for every user (users' own reports need `min_reporters` users).
    Add {
        /// The address (public IPv4 or IPv6).
        ip: std::net::IpAddr,
        /// Why (shown to users; at most 200 bytes are kept).
        #[arg(long, default_value = "")]
        reason: String,
        /// The manager's config file.
        #[arg(long)]
        config: PathBuf,
    },
}

async fn client(
    config: &std::path::Path,
) -> anyhow::Result<
    ManagerClient<
        tonic::service::interceptor::InterceptedService<
            tonic::transport::Channel,
            flowmesh_proto::auth::Bearer,
        >,
    >,
> {
    let c = ManagerConfig::load(config)?;
    let (channel, token) = super::api::channel(
        &c.api.access_file,
        &format!("flowmesh manager --config {}", config.display()),
    )
    .await?;
    Ok(ManagerClient::with_interceptor(channel, token))
}

pub fn cloud(c: CloudCommand) -> anyhow::Result<ExitCode> {
    let rt = super::runtime()?;
    match c {
        CloudCommand::Instances { config, user, json } => {
            let list = rt.block_on(async {
                client(&config)
                    .await?
                    .list_instances(CloudInstancesRequest { user })
                    .await
                    .map_err(super::api::status_error)
            })?;
            let list = list.into_inner().instances;
            let when = flowmesh_sensor::flow::rfc3339_micros;
            if json {
                for i in &list {
                    println!(
                        "{}",
                        serde_json::json!({
                            "user": i.user, "instance": i.instance, "online": i.online,
                            "connections": i.connections, "connects": i.connects,
                            "last_seen": when(i.last_seen_us), "region": i.region,
                            "node": i.node, "host": i.host, "role": i.role, "key": i.key,
                        })
                    );
                }
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{:<14} {:<20} {:<10} {:<8} {:<6} {:<8} {:>5} {:>8}  LAST SEEN",
                "USER", "INSTANCE", "ROLE", "STATE", "REGION", "NODE", "CONNS", "CONNECTS"
            );
            for i in &list {
                println!(
                    "{:<14} {:<20} {:<10} {:<8} {:<6} {:<8} {:>5} {:>8}  {}",
                    i.user,
                    i.instance,
                    i.role,
                    if i.online { "online" } else { "offline" },
                    i.region,
                    i.node,
                    i.connections,
                    i.connects,
                    when(i.last_seen_us)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        CloudCommand::Users { config } => {
            let users = rt.block_on(async {
                client(&config)
                    .await?
                    .list_users(CloudUsersRequest {})
                    .await
                    .map_err(super::api::status_error)
            })?;
            for u in users.into_inner().users {
                println!(
                    "{}",
                    serde_json::json!({
                        "user": u.user, "public_key": u.public_key,
                        "enrolled": u.enrolled, "online": u.online,
                    })
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        CloudCommand::Blacklist {
            action: Some(BlacklistAction::Add { ip, reason, config }),
            ..
        } => {
            let r = rt.block_on(async {
                client(&config)
                    .await?
                    .add_to_blacklist(BlacklistAddRequest {
                        ip: ip.to_string(),
                        reason,
                    })
                    .await
                    .map_err(super::api::status_error)
            })?;
            let r = r.into_inner();
            if r.accepted {
                eprintln!("{ip}: listed for every user");
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("{ip}: refused: {}", r.error);
                Ok(ExitCode::FAILURE)
            }
        }
        CloudCommand::Blacklist {
            config: None,
            action: None,
        } => anyhow::bail!(
            "flowmesh cloud blacklist --config MANAGER.toml (or: add IP --config ...)"
        ),
        CloudCommand::Blacklist {
            config: Some(config),
            action: None,
        } => {
            let b = rt.block_on(async {
                client(&config)
                    .await?
                    .get_blacklist(GetBlacklistRequest {})
                    .await
                    .map_err(super::api::status_error)
            })?;
            for e in b.into_inner().entries {
                println!(
                    "{}",
                    serde_json::json!({
                        "ip": e.ip, "reason": e.reason, "reporters": e.reporters,
                        "expires": flowmesh_sensor::flow::rfc3339_micros(e.expires_us),
                    })
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
