//! `flowmesh control`: ask one of your instances to do something.

use std::path::PathBuf;
use std::process::ExitCode;

use flowmesh_link::Identity;
use flowmesh_link::connect::connect;

/// Ask one of your instances, through the broker, to restart (a clean stop as on SIGTERM —
/// outbox kept, `stopping` said — then the same program started again in the same process),
/// restart its capture (a sensor), reload its policy file (a collector) or report its
/// configuration. The request and the answer are
/// sealed to your key: other users cannot reach your instances, and the cloud cannot ask.
#[derive(clap::Args)]
pub struct Args {
    /// A config file with your `identity` and a `[broker]` whose credentials may send remote
    /// actions: a collector's (sensors and watch clients may not).
    #[arg(long)]
    config: PathBuf,
    /// The instance to ask.
    #[arg(long)]
    instance: String,
    /// restart | restart_capture | reload_policy | report_config
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(flowmesh_proto::control::ACTIONS))]
    action: String,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let reply = ask(&a.config, &a.instance, &a.action, "")?;
    if reply.ok {
        if !reply.json.is_empty() {
            println!("{}", reply.json);
        }
        eprintln!("{}: {} done", a.instance, a.action);
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("{}: {} refused: {}", a.instance, a.action, reply.error);
        Ok(ExitCode::FAILURE)
    }
}

/// Asks `instance`, with the identity and broker of the config file `config`, to do `action`
/// with `args` (JSON or empty); its verified answer.
pub fn ask(
    config: &std::path::Path,
    instance: &str,
    action: &str,
    args: &str,
) -> anyhow::Result<flowmesh_proto::v1::ControlReply> {
    let n = super::InstanceConfig::load(config)?;
    let identity = Identity::load(&n.identity)?;
    let me = n.name.unwrap_or_else(|| "cli".into());
    let rt = super::runtime()?;
    rt.block_on(async {
        let client = connect(
            &n.broker,
            &flowmesh_link::connect::tool_name(&me, "control"),
        )
        .await?;
        let ask = flowmesh_proto::control::Ask {
            action,
            args,
            from: &me,
        };
        flowmesh_proto::control::request(&client, &identity, instance, ask)
            .await
            .map_err(anyhow::Error::msg)
    })
}
