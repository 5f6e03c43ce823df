//! `flowmesh policy ...`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use flowmesh_collector::policy::{self, Policy, Report};

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
    /// Import ntopng rule lines into the policy's [acl] (appended; --replace to replace),
    /// keeping the rest of the file as written. Nothing changes unless every line is valid and
    /// the resulting policy validates.
    ImportAcl {
        /// The policy file to update.
        #[arg(long)]
        policy: PathBuf,
        /// A text file of rules, one per line (`#` comments allowed).
        rules: PathBuf,
        /// Replace the existing rules instead of appending.
        #[arg(long)]
        replace: bool,
        /// Print the resulting policy instead of writing it.
        #[arg(long)]
        dry_run: bool,
    },
}

fn load(file: &Path) -> anyhow::Result<Result<(Policy, Report), Report>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    Ok(policy::parse(&text))
}

fn print(file: &Path, kind: &str, problems: &[policy::Problem]) {
    for p in problems {
        eprintln!("{}:{}: {kind}: {}", file.display(), p.line, p.message);
    }
}

pub fn run(c: PolicyCommand) -> anyhow::Result<ExitCode> {
    match c {
        PolicyCommand::Validate { file } => match load(&file)? {
            Ok((p, report)) => {
                print(&file, "warning", &report.warnings);
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
                print(&file, "error", &report.errors);
                print(&file, "warning", &report.warnings);
                eprintln!(
                    "{}: {} error(s); the policy is not applied",
                    file.display(),
                    report.errors.len()
                );
                Ok(ExitCode::FAILURE)
            }
        },
        PolicyCommand::ImportAcl {
            policy: file,
            rules,
            replace,
            dry_run,
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let lines = std::fs::read_to_string(&rules)
                .with_context(|| format!("reading {}", rules.display()))?;
            match policy::import_acl(&text, &lines, replace) {
                Ok(out) if dry_run => {
                    print!("{out}");
                    Ok(ExitCode::SUCCESS)
                }
                Ok(out) => {
                    // Written beside and renamed over: the policy is never half-written.
                    let tmp = file.with_extension("toml.tmp");
                    std::fs::write(&tmp, out)?;
                    std::fs::rename(&tmp, &file)?;
                    eprintln!("{}: ACL updated from {}", file.display(), rules.display());
                    Ok(ExitCode::SUCCESS)
                }
                Err(policy::ImportError::Rules(problems)) => {
                    print(&rules, "error", &problems);
                    eprintln!("{} was not changed", file.display());
                    Ok(ExitCode::FAILURE)
                }
                Err(policy::ImportError::Toml(e)) => {
                    eprintln!("{}: {e}", file.display());
                    Ok(ExitCode::FAILURE)
                }
                Err(policy::ImportError::Policy(report)) => {
                    print(&file, "error", &report.errors);
                    eprintln!("{} was not changed", file.display());
                    Ok(ExitCode::FAILURE)
                }
            }
        }
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
    }
}
