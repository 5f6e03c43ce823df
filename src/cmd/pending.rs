//! Subcommands whose issue is not done yet: say so plainly instead of pretending.

use std::process::ExitCode;

/// Accepts anything, so `--help` shows the command and its status.
#[derive(clap::Args)]
pub struct Args {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    rest: Vec<String>,
}

pub fn run(name: &str, issue: u32) -> anyhow::Result<ExitCode> {
    eprintln!(
        "flowmesh {name} is not available yet: it arrives with issue #{issue}. See README.md for what works today."
    );
    Ok(ExitCode::from(2))
}
