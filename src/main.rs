//! `flowmesh`: the one binary. This file only parses the command line and dispatches; the work
//! lives in the library crates (link, sensor, collector, manager).

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// Network sensors that publish end-to-end encrypted flows over a federated NATS cluster.
///
/// Start with `./deploy/quickstart.sh` (README.md). Logs go to stderr; set RUST_LOG
/// (e.g. RUST_LOG=flowmesh=debug) or -v / -q for more or less.
#[derive(Parser)]
#[command(
    name = "flowmesh",
    version = flowmesh_update::stamp::current(),
    arg_required_else_help = true
)]
struct Cli {
    /// More logging (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only warnings and errors.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create an identity file (Curve25519 key pair, mode 0600): a user's, or with --cloud the
    /// cloud operator's.
    Keygen(cmd::keygen::Args),
    /// Generate and inspect configurations for the federated NATS cluster.
    #[command(subcommand)]
    Broker(cmd::broker::BrokerCommand),
    /// Find the cloud's public key in DNS (TXT cloud._pubkey.<domain>) and check it against a pin.
    CloudKey(cmd::cloud_key::Args),
    /// Send or receive a sealed test message between two instances of one user.
    #[command(subcommand)]
    Hello(cmd::hello::HelloCommand),
    /// Print one JSON flow record per line for a pcap/pcapng capture (no broker involved).
    Flows(cmd::flows::Args),
    /// Search a collector's stored flows, or list the top hosts, applications, profiles.
    FlowsSearch(cmd::flows_search::Args),
    /// Write stored flows as Parquet files, one per hour (for DuckDB, ClickHouse, Spark).
    FlowsExport(cmd::flows_export::Args),
    /// Print the devices (MACs, IPs, host names, vendors, detected types) seen in a capture.
    Devices(cmd::devices::Args),
    /// Write a synthetic capture of realistic flows (for benchmarks).
    Gen(cmd::generate::Args),
    /// Run the policy checks on a capture and print one JSON alert per line (packet time).
    Check(cmd::check::Args),
    /// Print the traffic timeseries kept in a store (5-minute, hourly and daily buckets).
    Series(cmd::series::Args),
    /// Validate a policy; show or edit it (ACL, devices, device types, allowed apps, host policy,
    /// profiles, traffic rules) in a file or in a running collector through its API.
    #[command(subcommand)]
    Policy(cmd::policy::PolicyCommand),
    /// Run a sensor: capture or replay, publish sealed flow batches (outbox while offline).
    Sensor(cmd::sensor::Args),
    /// Run a collector: consume flow batches, run the policy, store and publish alerts.
    Collector(cmd::collector::Args),
    /// Run the cloud manager: instance registry, cloud inbox, shared blacklist.
    Manager(cmd::manager::Args),
    /// Ask a running manager: users' instances, the shared blacklist.
    #[command(subcommand)]
    Cloud(cmd::manager::CloudCommand),
    /// Ask your instances to update, restart, restart capture, reload the policy or report their
    /// config (one, a list, or all, one at a time).
    Control(cmd::control::Args),
    /// Signed software releases in the cloud: keygen, stamp, publish, list.
    #[command(subcommand)]
    Release(cmd::release::ReleaseCommand),
    /// The watchdog of a software update on trial (started by an updating instance).
    #[command(hide = true)]
    UpdateWatchdog(cmd::release::WatchdogArgs),
    /// Report an attacker's IP to the cloud (shared with every user's collectors).
    ReportIp(cmd::report_ip::Args),
    /// Remote assistance: let a support engineer reach a collector's API for at most a day
    /// (enable, disable, status), and the engineer's side (connect KEY).
    #[command(subcommand)]
    Assist(cmd::assist::AssistCommand),
    /// Add a user and/or instances to a running cluster (configs rewritten, nodes reloaded).
    Enroll(cmd::enroll::EnrollArgs),
    /// Revoke an instance's credentials on every node of a running cluster.
    Revoke(cmd::enroll::RevokeArgs),
    /// Stream alerts and instance status changes as JSON lines (optionally to a webhook).
    Watch(cmd::watch::Args),
    /// List the instances a running collector hears from, with their status (its API).
    Instances(cmd::instances::Args),
    /// Print a running collector's stored alerts; --follow for live ones (its API).
    Alerts(cmd::alerts::Args),
}

fn init_logging(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    // async_nats logs every reconnect attempt at info; keep it to warnings unless asked.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{default},async_nats=warn")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour only for a person: log files and pipes get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    let result = match cli.command {
        Command::Keygen(a) => cmd::keygen::run(a),
        Command::Broker(c) => cmd::broker::run(c),
        Command::CloudKey(a) => cmd::runtime().and_then(|rt| rt.block_on(cmd::cloud_key::run(a))),
        Command::Hello(c) => cmd::runtime().and_then(|rt| rt.block_on(cmd::hello::run(c))),
        Command::Flows(a) => cmd::flows::run(a),
        Command::FlowsSearch(a) => cmd::flows_search::run(a),
        Command::FlowsExport(a) => cmd::flows_export::run(a),
        Command::Devices(a) => cmd::devices::run(a),
        Command::Gen(a) => cmd::generate::run(a),
        Command::Check(a) => cmd::check::run(a),
        Command::Series(a) => cmd::series::run(a),
        Command::Policy(c) => cmd::policy::run(c),
        Command::Sensor(a) => cmd::sensor::run(a),
        Command::Collector(a) => cmd::collector::run(a),
        Command::Manager(a) => cmd::manager::run(a),
        Command::Cloud(c) => cmd::manager::cloud(c),
        Command::ReportIp(a) => cmd::report_ip::run(a),
        Command::Control(a) => cmd::control::run(a),
        Command::Release(c) => cmd::release::run(c),
        Command::UpdateWatchdog(a) => cmd::release::watchdog(a),
        Command::Assist(c) => cmd::assist::run(c),
        Command::Enroll(a) => cmd::enroll::enroll(a),
        Command::Revoke(a) => cmd::enroll::revoke(a),
        Command::Watch(a) => cmd::watch::run(a),
        Command::Instances(a) => cmd::instances::run(a),
        Command::Alerts(a) => cmd::alerts::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
