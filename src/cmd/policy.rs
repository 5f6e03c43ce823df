//! `flowmesh policy ...`: validate a policy file, and show or edit a policy — a file directly
//! (`--policy FILE`) or a running collector's through its API (`--config COLLECTOR.toml`,
//! applied at once and kept in its file). Both paths run the same edit and the same validation.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use flowmesh_collector::api::convert;
use flowmesh_collector::daemon::CollectorConfig;
use flowmesh_collector::policy::edit::{self, Edit, EditError, HostList, RuleFields};
use flowmesh_collector::policy::{self, Policy, Problem, Report};
use flowmesh_proto::v1::GetPolicyRequest;

/// Which policy a command reads or edits.
#[derive(clap::Args, Clone)]
pub struct Where {
    /// A policy file, edited in place (a running collector applies it at its next start).
    #[arg(long, global = true, conflicts_with = "config")]
    policy: Option<PathBuf>,
    /// A running collector's config: its policy is edited through its API, applied at once
    /// and kept in its policy file.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
}

/// Policy subcommands.
#[derive(clap::Subcommand)]
pub enum PolicyCommand {
    /// Check a policy file: exit 0, or print every error with its line and exit 1.
    Validate {
        /// The policy file (TOML, see DESIGN.md).
        file: PathBuf,
    },
    /// Print the policy's ACL as ntopng's plain-text rule lines.
    ExportAcl {
        /// The policy file.
        file: PathBuf,
    },
    /// Import ntopng rule lines into the policy's [acl] (appended, skipping rules already
    /// there; --replace to replace), keeping the rest of the file as written. Nothing changes
    /// unless every line is valid and the resulting policy validates.
    ImportAcl {
        /// A text file of rules, one per line (`#` comments allowed).
        rules: PathBuf,
        /// Replace the existing rules instead of appending.
        #[arg(long)]
        replace: bool,
        /// Print the resulting policy instead of writing it (with --policy).
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        at: Where,
    },
    /// Print the policy file.
    Show {
        #[command(flatten)]
        at: Where,
    },
    /// ACL rules (ntopng's `L4;CLIENT;SERVER;SERVICE` lines), numbered from 1.
    #[command(subcommand)]
    Acl(AclCommand),
    /// Authorized devices ([devices]; adding one turns device tracking on).
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Device types assigned by hand ([device_types]).
    #[command(subcommand)]
    DeviceType(DeviceTypeCommand),
    /// Applications allowed per device type ([device_apps], replacing the built-in preset).
    #[command(subcommand)]
    Apps(AppsCommand),
    /// Host policy lists: restricted, core, whitelisted.
    #[command(subcommand)]
    Host(HostCommand),
    /// Traffic profiles (BPF filters).
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Traffic rules on timeseries, numbered from 1.
    #[command(subcommand)]
    Rule(RuleCommand),
}

/// `policy acl ...`
#[derive(clap::Subcommand)]
pub enum AclCommand {
    /// Print the rules with their ids.
    List {
        #[command(flatten)]
        at: Where,
    },
    /// Append a rule.
    Add {
        /// e.g. `TCP;192.168.1.0/24;*;443`
        rule: String,
        #[command(flatten)]
        at: Where,
    },
    /// Replace rule ID.
    Edit {
        /// The rule's id (from `acl list`).
        id: usize,
        /// Its new text.
        rule: String,
        #[command(flatten)]
        at: Where,
    },
    /// Delete rule ID.
    Delete {
        /// The rule's id (from `acl list`).
        id: usize,
        #[command(flatten)]
        at: Where,
    },
    /// Delete every rule (the ACL check stays on: every flow then violates it, as in ntopng).
    DeleteAll {
        #[command(flatten)]
        at: Where,
    },
}

/// `policy device ...`
#[derive(clap::Subcommand)]
pub enum DeviceCommand {
    /// Authorize a device (or update it).
    Add {
        /// Its MAC.
        mac: String,
        /// A name for alerts.
        #[arg(long)]
        name: Option<String>,
        /// Alert when it has been silent for the idle timeout.
        #[arg(long)]
        alert_on_disconnect: bool,
        #[command(flatten)]
        at: Where,
    },
    /// Forget an authorized device.
    Remove {
        /// Its MAC.
        mac: String,
        #[command(flatten)]
        at: Where,
    },
}

/// `policy device-type ...`
#[derive(clap::Subcommand)]
pub enum DeviceTypeCommand {
    /// Assign a type to a MAC.
    Set {
        /// The MAC.
        mac: String,
        /// printer, phone, laptop, workstation, tablet, tv, video, iot, nas, router, ...
        device_type: String,
        #[command(flatten)]
        at: Where,
    },
    /// Let the MAC's type be detected again.
    Unset {
        /// The MAC.
        mac: String,
        #[command(flatten)]
        at: Where,
    },
}

/// `policy apps ...`
#[derive(clap::Subcommand)]
pub enum AppsCommand {
    /// Set the applications a device type may use.
    Set {
        /// The device type.
        device_type: String,
        /// Allowed as client, comma-separated (nDPI names).
        #[arg(long, value_delimiter = ',')]
        client: Vec<String>,
        /// Allowed as server, comma-separated.
        #[arg(long, value_delimiter = ',')]
        server: Vec<String>,
        #[command(flatten)]
        at: Where,
    },
    /// Go back to the type's built-in preset.
    Unset {
        /// The device type.
        device_type: String,
        #[command(flatten)]
        at: Where,
    },
}

/// `policy host ...`
#[derive(clap::Subcommand)]
pub enum HostCommand {
    /// Add an IP or CIDR to a list.
    Add {
        /// restricted, core or whitelisted.
        list: HostList,
        /// IP or CIDR.
        cidr: String,
        #[command(flatten)]
        at: Where,
    },
    /// Remove an IP or CIDR from a list.
    Remove {
        /// restricted, core or whitelisted.
        list: HostList,
        /// IP or CIDR.
        cidr: String,
        #[command(flatten)]
        at: Where,
    },
}

/// `policy profile ...`
#[derive(clap::Subcommand)]
pub enum ProfileCommand {
    /// Add or replace a profile.
    Set {
        /// Its name (traffic rules say `profile:NAME`).
        name: String,
        /// A BPF filter, e.g. "tcp port 80 or tcp port 443".
        bpf: String,
        #[command(flatten)]
        at: Where,
    },
    /// Remove a profile (refused while a traffic rule uses it).
    Remove {
        /// Its name.
        name: String,
        #[command(flatten)]
        at: Where,
    },
}

/// `policy rule ...`
#[derive(clap::Subcommand)]
pub enum RuleCommand {
    /// Print the traffic rules with their ids.
    List {
        #[command(flatten)]
        at: Where,
    },
    /// Append a traffic rule.
    Add {
        /// interface:NAME | host:IP | host:* | network:CIDR | vlan:N | pool:NAME |
        /// profile:NAME | exporter:IP
        #[arg(long)]
        target: String,
        /// "total" or an application / L7 name.
        #[arg(long, default_value = "total")]
        metric: String,
        /// 5min | hour | day.
        #[arg(long)]
        frequency: String,
        /// volume | throughput | percentage.
        #[arg(long)]
        kind: String,
        /// above | below.
        #[arg(long, default_value = "above")]
        bound: String,
        /// The threshold: 1MB, 10Mbps, 50 (percent).
        #[arg(long)]
        value: String,
        #[command(flatten)]
        at: Where,
    },
    /// Remove traffic rule ID.
    Remove {
        /// The rule's id (from `rule list`).
        id: usize,
        #[command(flatten)]
        at: Where,
    },
}

fn load(file: &Path) -> anyhow::Result<Result<(Policy, Report), Report>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    Ok(policy::parse(&text))
}

fn print(file: &Path, kind: &str, problems: &[Problem]) {
    for p in problems {
        if p.line == 0 {
            eprintln!("{}: {kind}: {}", file.display(), p.message);
        } else {
            eprintln!("{}:{}: {kind}: {}", file.display(), p.line, p.message);
        }
    }
}

impl Where {
    fn pick(&self) -> anyhow::Result<Target<'_>> {
        match (&self.policy, &self.config) {
            (Some(p), None) => Ok(Target::File(p)),
            (None, Some(c)) => Ok(Target::Api(c)),
            _ => anyhow::bail!(
                "say which policy: --policy FILE (edit the file) or --config COLLECTOR.toml (a running collector, through its API)"
            ),
        }
    }
}

enum Target<'a> {
    File(&'a Path),
    Api(&'a Path),
}

/// The policy text, from the file or the collector.
fn text_of(at: &Where) -> anyhow::Result<(PathBuf, String)> {
    match at.pick()? {
        Target::File(f) => Ok((
            f.to_path_buf(),
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?,
        )),
        Target::Api(c) => {
            let path = CollectorConfig::load(c)?.policy;
            let rt = super::runtime()?;
            let view = rt.block_on(async {
                let mut client = super::api::connect(c).await?;
                client
                    .get_policy(GetPolicyRequest {})
                    .await
                    .map_err(super::api::status_error)
            })?;
            Ok((path, view.into_inner().toml))
        }
    }
}

/// Applies an edit where asked; prints what happened.
fn apply(at: &Where, e: Edit) -> anyhow::Result<ExitCode> {
    match at.pick()? {
        Target::File(file) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            match edit::apply(&text, &e) {
                Ok(applied) => {
                    flowmesh_link::secret_file::replace(file, applied.text.as_bytes())?;
                    print(file, "warning", &applied.warnings);
                    eprintln!("{}: updated", file.display());
                    Ok(ExitCode::SUCCESS)
                }
                Err(err) => {
                    refused(file, err);
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Target::Api(config) => {
            let file = CollectorConfig::load(config)?.policy;
            let rt = super::runtime()?;
            let r = rt
                .block_on(async {
                    let mut client = super::api::connect(config).await?;
                    client
                        .edit_policy(convert::edit_to_proto(&e))
                        .await
                        .map_err(super::api::status_error)
                })?
                .into_inner();
            let problems = |p: &[flowmesh_proto::v1::PolicyProblem]| -> Vec<Problem> {
                p.iter()
                    .map(|p| Problem {
                        line: p.line as usize,
                        message: p.message.clone(),
                    })
                    .collect()
            };
            print(&file, "warning", &problems(&r.warnings));
            if r.applied {
                eprintln!("{}: updated and applied by the collector", file.display());
                Ok(ExitCode::SUCCESS)
            } else {
                print(&file, "error", &problems(&r.errors));
                eprintln!("{} was not changed", file.display());
                Ok(ExitCode::FAILURE)
            }
        }
    }
}

fn refused(file: &Path, err: EditError) {
    match err {
        EditError::Invalid(m) | EditError::Toml(m) => eprintln!("{}: error: {m}", file.display()),
        EditError::Rules(p) => print(Path::new("rules"), "error", &p),
        EditError::Policy(r) => {
            print(file, "error", &r.errors);
            print(file, "warning", &r.warnings);
        }
    }
    eprintln!("{} was not changed", file.display());
}

fn validate(file: &Path) -> anyhow::Result<ExitCode> {
    match load(file)? {
        Ok((p, report)) => {
            print(file, "warning", &report.warnings);
            println!(
                "{}: ok ({} ACL rules{}, {} authorized devices, {} device types, {} pools, {} profiles, {} traffic rules)",
                file.display(),
                p.acl.as_ref().map_or(0, Vec::len),
                if p.acl.is_none() {
                    " (ACL check off)"
                } else {
                    ""
                },
                p.devices.as_ref().map_or(0, |d| d.authorized.len()),
                p.device_types.len(),
                p.pools.len(),
                p.profiles.len(),
                p.traffic_rules.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(report) => {
            print(file, "error", &report.errors);
            print(file, "warning", &report.warnings);
            eprintln!(
                "{}: {} error(s); the policy is not applied",
                file.display(),
                report.errors.len()
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

pub fn run(c: PolicyCommand) -> anyhow::Result<ExitCode> {
    match c {
        PolicyCommand::Validate { file } => validate(&file),
        PolicyCommand::ExportAcl { file } => match load(&file)? {
            Ok((p, _)) => {
                for rule in p.acl.unwrap_or_default() {
                    println!("{rule}");
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(report) => {
                print(&file, "error", &report.errors);
                Ok(ExitCode::FAILURE)
            }
        },
        PolicyCommand::ImportAcl {
            rules,
            replace,
            dry_run,
            at,
        } => {
            let text = std::fs::read_to_string(&rules)
                .with_context(|| format!("reading {}", rules.display()))?;
            let e = Edit::AclImport { text, replace };
            if dry_run {
                let (file, current) = text_of(&at)?;
                return match edit::apply(&current, &e) {
                    Ok(a) => {
                        print!("{}", a.text);
                        Ok(ExitCode::SUCCESS)
                    }
                    Err(err) => {
                        refused(&file, err);
                        Ok(ExitCode::FAILURE)
                    }
                };
            }
            apply(&at, e)
        }
        PolicyCommand::Show { at } => {
            print!("{}", text_of(&at)?.1);
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Acl(c) => match c {
            AclCommand::List { at } => {
                let (file, text) = text_of(&at)?;
                match edit::acl_rules(&text) {
                    None => eprintln!("{}: no [acl]: the ACL check is off", file.display()),
                    Some(rules) => {
                        for (i, r) in rules.iter().enumerate() {
                            println!("{:>4}  {r}", i + 1);
                        }
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            AclCommand::Add { rule, at } => apply(&at, Edit::AclAdd(rule)),
            AclCommand::Edit { id, rule, at } => apply(&at, Edit::AclEdit { id, rule }),
            AclCommand::Delete { id, at } => apply(&at, Edit::AclDelete(id)),
            AclCommand::DeleteAll { at } => apply(&at, Edit::AclDeleteAll),
        },
        PolicyCommand::Device(c) => match c {
            DeviceCommand::Add {
                mac,
                name,
                alert_on_disconnect,
                at,
            } => apply(
                &at,
                Edit::DeviceSet {
                    mac,
                    name,
                    alert_on_disconnect,
                },
            ),
            DeviceCommand::Remove { mac, at } => apply(&at, Edit::DeviceRemove(mac)),
        },
        PolicyCommand::DeviceType(c) => match c {
            DeviceTypeCommand::Set {
                mac,
                device_type,
                at,
            } => apply(&at, Edit::DeviceTypeSet { mac, device_type }),
            DeviceTypeCommand::Unset { mac, at } => apply(&at, Edit::DeviceTypeUnset(mac)),
        },
        PolicyCommand::Apps(c) => match c {
            AppsCommand::Set {
                device_type,
                client,
                server,
                at,
            } => apply(
                &at,
                Edit::DeviceAppsSet {
                    device_type,
                    client,
                    server,
                },
            ),
            AppsCommand::Unset { device_type, at } => {
                apply(&at, Edit::DeviceAppsUnset(device_type))
            }
        },
        PolicyCommand::Host(c) => match c {
            HostCommand::Add { list, cidr, at } => apply(&at, Edit::HostAdd { list, cidr }),
            HostCommand::Remove { list, cidr, at } => apply(&at, Edit::HostRemove { list, cidr }),
        },
        PolicyCommand::Profile(c) => match c {
            ProfileCommand::Set { name, bpf, at } => apply(&at, Edit::ProfileSet { name, bpf }),
            ProfileCommand::Remove { name, at } => apply(&at, Edit::ProfileRemove(name)),
        },
        PolicyCommand::Rule(c) => match c {
            RuleCommand::List { at } => {
                let (file, text) = text_of(&at)?;
                match policy::parse(&text) {
                    Ok((p, _)) => {
                        for (i, r) in p.traffic_rules.iter().enumerate() {
                            println!(
                                "{:>4}  {} {} every {} {} {} {}",
                                i + 1,
                                r.target_text,
                                r.metric,
                                r.frequency.name(),
                                match r.threshold {
                                    policy::Threshold::Volume(_) => "volume",
                                    policy::Threshold::Throughput(_) => "throughput",
                                    policy::Threshold::Percentage(_) => "percentage",
                                },
                                if r.above { "above" } else { "below" },
                                r.value_text
                            );
                        }
                        Ok(ExitCode::SUCCESS)
                    }
                    Err(report) => {
                        print(&file, "error", &report.errors);
                        Ok(ExitCode::FAILURE)
                    }
                }
            }
            RuleCommand::Add {
                target,
                metric,
                frequency,
                kind,
                bound,
                value,
                at,
            } => apply(
                &at,
                Edit::TrafficRuleAdd(RuleFields {
                    target,
                    metric,
                    frequency,
                    kind,
                    bound,
                    value,
                }),
            ),
            RuleCommand::Remove { id, at } => apply(&at, Edit::TrafficRuleRemove(id)),
        },
    }
}
