//! `flowmesh hello`: one user's instances exchange a sealed message through the cluster — the
//! smallest end-to-end proof that keys, TLS, accounts and gateways are right.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use flowmesh_link::connect::{BrokerConfig, connect};
use flowmesh_link::subject::Channel;
use flowmesh_link::{Identity, Opener, Sealer};
use futures::StreamExt;
use serde_json::{Value, json};

/// Options shared by both directions.
#[derive(clap::Args)]
pub struct Common {
    /// The user's identity file.
    #[arg(long)]
    identity: PathBuf,
    /// A TOML file with a [broker] table (e.g. creds/<user>/<instance>.toml from `broker init`).
    #[arg(long)]
    broker: PathBuf,
    /// Connect only to these URLs instead of the file's (e.g. to pick a region).
    #[arg(long = "url")]
    urls: Vec<String>,
    /// This instance's name.
    #[arg(long)]
    instance: String,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

/// Hello subcommands.
#[derive(clap::Subcommand)]
pub enum HelloCommand {
    /// Wait for sealed hello messages, print each opened one as a JSON line, and answer it.
    Listen {
        #[command(flatten)]
        common: Common,
        /// Exit after this many messages.
        #[arg(long, default_value_t = 1)]
        count: u64,
    },
    /// Send a sealed hello and wait for the sealed answer, retrying until --timeout.
    Send {
        #[command(flatten)]
        common: Common,
        /// The text to send.
        #[arg(long, default_value = "hello from flowmesh")]
        text: String,
    },
}

struct Link {
    client: flowmesh_link::async_nats::Client,
    sealer: Sealer,
    opener: Opener,
    server: String,
}

async fn link(c: &Common) -> anyhow::Result<Link> {
    let id = Identity::load(&c.identity)?;
    let mut cfg = BrokerConfig::load(&c.broker)?;
    if !c.urls.is_empty() {
        // The URLs given are the ones to use: no measuring of regions.
        cfg.regions.clear();
        cfg.urls = c.urls.clone();
    }
    let client = connect(
        &cfg,
        &flowmesh_link::connect::tool_name(&c.instance, "hello"),
    )
    .await?;
    let server = client.server_info().server_name;
    Ok(Link {
        client,
        sealer: Sealer::new(&id, id.public()),
        opener: Opener::new(&id),
        server,
    })
}

pub async fn run(c: HelloCommand) -> anyhow::Result<ExitCode> {
    match c {
        HelloCommand::Listen { common, count } => listen(common, count).await,
        HelloCommand::Send { common, text } => send(common, text).await,
    }
}

async fn listen(c: Common, count: u64) -> anyhow::Result<ExitCode> {
    let l = link(&c).await?;
    let mut sub = l.client.subscribe(Channel::Hello.all()).await?;
    l.client.flush().await?;
    eprintln!(
        "{} listening on {} via node {}",
        c.instance,
        Channel::Hello.all(),
        l.server
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(c.timeout);
    let (mut opened, mut rejected) = (0u64, 0u64);
    while opened < count {
        let msg = match tokio::time::timeout_at(deadline, sub.next()).await {
            Ok(Some(m)) => m,
            Ok(None) => bail!("subscription closed by the broker"),
            Err(_) => bail!(
                "no hello within {}s ({opened} opened, {rejected} rejected)",
                c.timeout
            ),
        };
        let o = match l.opener.open(msg.subject.as_str(), &msg.payload) {
            Ok(o) => o,
            Err(e) => {
                rejected += 1;
                tracing::warn!(subject = %msg.subject, error = %e, "rejected a message");
                continue;
            }
        };
        let body: Value = serde_json::from_slice(&o.payload).unwrap_or(Value::Null);
        println!(
            "{}",
            json!({
                "received_by": c.instance,
                "received_via": l.server,
                "subject": msg.subject.as_str(),
                "sender_user": o.sender.to_hex(),
                "sent_by": body["from"],
                "sent_via": body["via"],
                "text": body["text"],
                "latency_ms": (flowmesh_link::envelope::now_micros().saturating_sub(o.time_micros)) as f64 / 1000.0,
            })
        );
        if let Some(reply) = msg.reply {
            let ack =
                json!({"from": c.instance, "via": l.server, "ack": hex::encode(o.message_id)});
            let sealed = l.sealer.seal(reply.as_str(), ack.to_string().as_bytes())?;
            l.client.publish(reply, sealed.into()).await?;
            l.client.flush().await?;
        }
        opened += 1;
    }
    Ok(ExitCode::SUCCESS)
}

async fn send(c: Common, text: String) -> anyhow::Result<ExitCode> {
    let l = link(&c).await?;
    let subject = Channel::Hello.subject(&c.instance)?;
    eprintln!("{} sending on {subject} via node {}", c.instance, l.server);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(c.timeout);
    let mut attempts = 0u32;
    // Interest in a subscriber in another region reaches this node through the gateways a
    // moment after the subscriber subscribed: retry until the sealed answer comes back.
    while Instant::now() < deadline {
        attempts += 1;
        let payload = json!({"from": c.instance, "via": l.server, "text": text});
        let sealed = l.sealer.seal(&subject, payload.to_string().as_bytes())?;
        let answer = tokio::time::timeout(
            Duration::from_secs(2),
            l.client.request(subject.clone(), sealed.into()),
        )
        .await;
        match answer {
            Ok(Ok(reply)) => {
                let o = l
                    .opener
                    .open(reply.subject.as_str(), &reply.payload)
                    .context("the answer did not open")?;
                let body: Value = serde_json::from_slice(&o.payload).unwrap_or(Value::Null);
                println!(
                    "{}",
                    json!({
                        "sent_by": c.instance,
                        "sent_via": l.server,
                        "answered_by": body["from"],
                        "answered_via": body["via"],
                        "attempts": attempts,
                        "round_trip_ms": started.elapsed().as_secs_f64() * 1000.0,
                    })
                );
                return Ok(ExitCode::SUCCESS);
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "no answer yet"),
            Err(_) => tracing::debug!("no answer within 2s"),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    bail!(
        "no listener answered within {}s ({attempts} attempts)",
        c.timeout
    )
}
