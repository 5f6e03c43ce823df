//! `flowmesh control`: ask your instances to do something — one, a list, or all of them, one
//! at a time.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use flowmesh_link::Identity;
use flowmesh_link::async_nats::Client;
use flowmesh_link::connect::connect;
use flowmesh_proto::control::Ask;
use flowmesh_proto::v1::ControlReply;
use futures::StreamExt;

/// Ask your instances, through the broker, to update (fetch the newest signed release, or
/// --version, verify it, install it and restart into it; rolled back by itself if it does not
/// come up healthy), restart (a clean stop as on SIGTERM — outbox kept, `stopping` said — then
/// the same program again in the same process), restart the capture (a sensor), reload the
/// policy file (a collector), report the configuration or the version. Requests and answers
/// are sealed to your key: other users cannot reach your instances, and the cloud cannot ask.
///
/// With several instances (--instances a,b,c or --all) they are asked one at a time; an update
/// or restart waits for each to answer again (with the new version) before the next, and the
/// rollout stops at the first failure.
#[derive(clap::Args)]
pub struct Args {
    /// A config file with your `identity` and a `[broker]` whose credentials may send remote
    /// actions: a collector's (sensors and watch clients may not).
    #[arg(long)]
    config: PathBuf,
    /// The instance to ask.
    #[arg(long, required_unless_present_any = ["instances", "all"], conflicts_with_all = ["instances", "all"])]
    instance: Option<String>,
    /// Several instances, comma-separated, asked in this order.
    #[arg(long, value_delimiter = ',', conflicts_with = "all")]
    instances: Vec<String>,
    /// Every instance that sends heartbeats (from the status bucket), in name order.
    #[arg(long)]
    all: bool,
    /// update: the version to install (default: the newest published for this platform).
    #[arg(long)]
    version: Option<String>,
    /// update: allow installing an older version than the running one.
    #[arg(long)]
    allow_downgrade: bool,
    /// update/restart: how long to wait for each instance to answer again, seconds.
    #[arg(long, default_value_t = 180)]
    wait_secs: u64,
    /// update | restart | version | restart_capture | reload_policy | report_config
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(flowmesh_proto::control::ACTIONS))]
    action: String,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let args = if a.action == "update" {
        serde_json::json!({"version": a.version, "allow_downgrade": a.allow_downgrade}).to_string()
    } else {
        String::new()
    };
    let rt = super::runtime()?;
    rt.block_on(async {
        let session = Session::open(&a.config).await?;
        let (client, ask) = (&session.client, session.asker());
        let targets = match (&a.instance, a.all) {
            (Some(one), _) => vec![one.clone()],
            (None, true) => heartbeat_instances(client).await?,
            (None, false) => a.instances.clone(),
        };
        if targets.is_empty() {
            anyhow::bail!("no instance to ask (no heartbeats in the status bucket yet?)");
        }
        let wait = Duration::from_secs(a.wait_secs);
        for (i, instance) in targets.iter().enumerate() {
            if let Err(e) = ask.one(instance, &a.action, &args, wait).await {
                eprintln!("{instance}: {} failed: {e}", a.action);
                if targets.len() > 1 {
                    eprintln!(
                        "rollout stopped at {instance} ({} of {}); not asked: {}",
                        i + 1,
                        targets.len(),
                        targets[i + 1..].join(", ")
                    );
                }
                return Ok(ExitCode::FAILURE);
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Every instance with an entry in the status bucket, sorted.
async fn heartbeat_instances(client: &Client) -> anyhow::Result<Vec<String>> {
    let js = flowmesh_link::async_nats::jetstream::new(client.clone());
    let kv = js
        .get_key_value(flowmesh_link::streams::STATUS_BUCKET)
        .await
        .map_err(|e| anyhow::anyhow!("the status bucket: {e}"))?;
    let mut keys = kv.keys().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut out = Vec::new();
    while let Some(k) = keys.next().await {
        out.push(k.map_err(|e| anyhow::anyhow!("{e}"))?);
    }
    out.sort();
    Ok(out)
}

struct Asker<'a> {
    client: &'a Client,
    identity: &'a Identity,
    from: &'a str,
}

impl Asker<'_> {
    async fn ask(&self, instance: &str, action: &str, args: &str) -> Result<ControlReply, String> {
        let ask = Ask {
            action,
            args,
            from: self.from,
        };
        flowmesh_proto::control::request(self.client, self.identity, instance, ask).await
    }

    /// The version `instance` runs and the id of its program image, if it answers.
    async fn version(&self, instance: &str) -> Option<(String, String)> {
        let r = self.ask(instance, "version", "").await.ok()?;
        let v: serde_json::Value = serde_json::from_str(&r.json).ok()?;
        Some((
            v["version"].as_str()?.to_string(),
            v["image"].as_str().unwrap_or_default().to_string(),
        ))
    }

    /// Asks one instance; for update and restart, waits until it answers again.
    async fn one(
        &self,
        instance: &str,
        action: &str,
        args: &str,
        wait: Duration,
    ) -> Result<(), String> {
        let image = if matches!(action, "update" | "restart") {
            self.version(instance)
                .await
                .map(|(_, i)| i)
                .unwrap_or_default()
        } else {
            String::new()
        };
        let reply = self.ask(instance, action, args).await?;
        if !reply.ok {
            return Err(format!("refused: {}", reply.error));
        }
        if !reply.json.is_empty() && action != "update" {
            println!("{}", reply.json);
        }
        match action {
            "update" => {
                let change: serde_json::Value =
                    serde_json::from_str(&reply.json).unwrap_or_default();
                let from = change["from"].as_str().unwrap_or_default().to_string();
                let to = change["to"].as_str().unwrap_or_default().to_string();
                eprintln!("{instance}: installing {to} (was {from}); waiting for it to come back");
                self.back(instance, &image, wait, |v| {
                    if v == to {
                        Some(Ok(()))
                    } else if v == from {
                        Some(Err(format!("it came back as {from}: the update was rolled back (its log and alerts say why)")))
                    } else {
                        None
                    }
                })
                .await?;
                eprintln!("{instance}: now runs {to}");
                println!(
                    "{}",
                    serde_json::json!({"instance": instance, "from": from, "to": to})
                );
            }
            "restart" => {
                self.back(instance, &image, wait, |_| Some(Ok(()))).await?;
                eprintln!("{instance}: restarted");
            }
            _ => eprintln!("{instance}: {action} done"),
        }
        Ok(())
    }

    /// Waits for `instance` to answer again from a new program image (it restarted; `image`
    /// was the old one's); `verdict` judges the version it then reports (`None`: keep waiting).
    async fn back(
        &self,
        instance: &str,
        image: &str,
        wait: Duration,
        verdict: impl Fn(&str) -> Option<Result<(), String>>,
    ) -> Result<(), String> {
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if let Some((v, now)) = self.version(instance).await
                && now != image
                && let Some(done) = verdict(&v)
            {
                return done;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(format!(
            "it did not answer again within {} s",
            wait.as_secs()
        ))
    }
}

/// A config file's identity and broker connection, to ask instances.
struct Session {
    client: Client,
    identity: Identity,
    me: String,
}

impl Session {
    /// Loads `config` (any component's, with `identity` and `[broker]`) and connects.
    async fn open(config: &std::path::Path) -> anyhow::Result<Self> {
        let n = super::InstanceConfig::load(config)?;
        let identity = Identity::load(&n.identity)?;
        let me = n.name.unwrap_or_else(|| "cli".into());
        let client = connect(
            &n.broker,
            &flowmesh_link::connect::tool_name(&me, "control"),
        )
        .await?;
        Ok(Session {
            client,
            identity,
            me,
        })
    }

    fn asker(&self) -> Asker<'_> {
        Asker {
            client: &self.client,
            identity: &self.identity,
            from: &self.me,
        }
    }
}

/// Asks `instance`, with the identity and broker of the config file `config`, to do `action`
/// with `args` (JSON or empty); its verified answer.
pub fn ask(
    config: &std::path::Path,
    instance: &str,
    action: &str,
    args: &str,
) -> anyhow::Result<ControlReply> {
    super::runtime()?.block_on(async {
        let session = Session::open(config).await?;
        session
            .asker()
            .ask(instance, action, args)
            .await
            .map_err(anyhow::Error::msg)
    })
}
