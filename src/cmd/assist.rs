//! `flowmesh assist`: remote assistance. The owner enables a session on a collector and hands
//! the printed key to a support engineer, whose `flowmesh assist connect KEY` opens a local
//! port into that collector's API — for the session only, encrypted end to end.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use flowmesh_link::access::Access;
use flowmesh_link::assist::{AssistKey, admin_token, now_secs, support};
use flowmesh_link::connect::connect;

/// Remote assistance: let a support engineer reach one collector's API through the cloud, for
/// at most 24 hours.
#[derive(clap::Subcommand)]
pub enum AssistCommand {
    /// Open a session on a collector and print its assistance key (hand it over by a secure
    /// channel: whoever holds it reaches the collector's API until the session ends).
    Enable(Enable),
    /// End the session at once: open connections are reset, new ones refused.
    Disable(Target),
    /// Show the session: who asked, since and until when, connections, bytes.
    Status(Target),
    /// (Support engineer) open a local port whose connections reach the instance's API.
    Connect(Connect),
}

/// Which instance, asked with which credentials.
#[derive(clap::Args)]
pub struct Target {
    /// A config file with your `identity` and a `[broker]` whose credentials may send remote
    /// actions (a collector's).
    #[arg(long)]
    config: PathBuf,
    /// The collector to assist.
    #[arg(long)]
    instance: String,
}

/// `assist enable`.
#[derive(clap::Args)]
pub struct Enable {
    #[command(flatten)]
    target: Target,
    /// Tunnelled API calls act as the collector's admin (a token valid for this session only);
    /// without it they are anonymous and the API asks for credentials.
    #[arg(long)]
    admin: bool,
    /// How long the session lasts: 30m, 4h, 24h (at most), or seconds.
    #[arg(long, default_value = "24h", value_parser = parse_ttl)]
    ttl: i64,
}

/// `assist connect`.
#[derive(clap::Args)]
pub struct Connect {
    /// The assistance key (or `-` to read it from standard input, keeping it out of the
    /// process list and shell history).
    key: String,
    /// Where to listen (loopback): connections to it reach the instance's API.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Write an access file for the tunnelled API here (0600), for `flowmesh instances
    /// --access FILE` and `flowmesh alerts --access FILE`: its token is the session's admin
    /// token with an admin session, none otherwise.
    #[arg(long)]
    access_file: Option<PathBuf>,
    /// Broker URLs to use instead of those in the key (e.g. the nodes of your own region).
    #[arg(long = "broker")]
    brokers: Vec<String>,
}

/// `30m`, `4h`, `1d`, `90s` or plain seconds, at most 24 h.
fn parse_ttl(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (n, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: i64 = n
        .parse()
        .map_err(|_| format!("{s:?}: a number and s, m, h or d"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("{s:?}: the unit is s, m, h or d")),
    };
    if !(60..=flowmesh_link::assist::MAX_TTL_SECS).contains(&secs) {
        return Err(format!("{s:?}: a session lasts from 1 minute to 24 hours"));
    }
    Ok(secs)
}

pub fn run(c: AssistCommand) -> anyhow::Result<ExitCode> {
    match c {
        AssistCommand::Enable(e) => {
            let args = serde_json::json!({ "admin": e.admin, "ttl_secs": e.ttl }).to_string();
            let reply = ask(&e.target, "assist_enable", &args)?;
            let v: serde_json::Value = serde_json::from_str(&reply)?;
            eprintln!(
                "remote assistance enabled on {}: session {}, until {}, {}.\nHand this key to \
                 the support engineer over a secure channel; they run `flowmesh assist connect \
                 KEY`. End it early with `flowmesh assist disable`.",
                e.target.instance,
                v["session"].as_str().unwrap_or_default(),
                v["expires"].as_str().unwrap_or_default(),
                if e.admin {
                    "as admin"
                } else {
                    "without admin access"
                }
            );
            println!("{}", v["key"].as_str().unwrap_or_default());
            Ok(ExitCode::SUCCESS)
        }
        AssistCommand::Disable(t) => {
            let v: serde_json::Value = serde_json::from_str(&ask(&t, "assist_disable", "")?)?;
            if v["ended"] == true {
                eprintln!("{}: remote assistance ended", t.instance);
            } else {
                eprintln!("{}: no remote-assistance session was active", t.instance);
            }
            Ok(ExitCode::SUCCESS)
        }
        AssistCommand::Status(t) => {
            println!("{}", ask(&t, "assist_status", "")?);
            Ok(ExitCode::SUCCESS)
        }
        AssistCommand::Connect(c) => connect_support(c),
    }
}

fn ask(t: &Target, action: &str, args: &str) -> anyhow::Result<String> {
    let reply = super::control::ask(&t.config, &t.instance, action, args)?;
    if reply.ok {
        Ok(reply.json)
    } else {
        anyhow::bail!("{}: {}", t.instance, reply.error)
    }
}

fn connect_support(c: Connect) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        c.listen.ip().is_loopback(),
        "--listen {}: listen on a loopback address (the tunnel must not be open to the network)",
        c.listen
    );
    let text = if c.key == "-" {
        // A key is a few KB: stop reading well after that, whatever is piped in.
        const MAX_KEY: u64 = 64 * 1024;
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut std::io::Read::take(std::io::stdin(), MAX_KEY + 1),
            &mut text,
        )
        .context("reading the key from stdin")?;
        anyhow::ensure!(
            text.len() as u64 <= MAX_KEY,
            "stdin holds more than {MAX_KEY} bytes: that is not an assistance key"
        );
        text
    } else {
        c.key.clone()
    };
    let key = AssistKey::parse(&text, now_secs())?;
    let secret = key.secret()?;
    let dir = tempfile_dir()?;
    let mut broker = key.broker_config(&dir.0).map_err(anyhow::Error::msg)?;
    if !c.brokers.is_empty() {
        broker.urls = c.brokers.clone();
        broker.regions.clear();
    }
    let rt = super::runtime()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(c.listen)
            .await
            .with_context(|| format!("cannot listen on {}", c.listen))?;
        let bound = listener.local_addr()?;
        if let Some(path) = &c.access_file {
            let mut access = Access::new(bound, None);
            // Without admin access there is no token to give: the API will ask for one.
            access.token = if key.admin {
                admin_token(&secret, &key.session)
            } else {
                "none".into()
            };
            access.write(path).map_err(anyhow::Error::msg)?;
        }
        let client = connect(&broker, &format!("assist-{}", &key.session[..8])).await?;
        let until = flowmesh_link::time::rfc3339_secs(key.expires);
        println!("listening on {bound}");
        eprintln!(
            "connections to {bound} reach {}'s API until {until}{}{}",
            key.instance,
            if key.admin { " (as admin)" } else { "" },
            c.access_file
                .as_ref()
                .map(|p| format!("; e.g. flowmesh instances --access {}", p.display()))
                .unwrap_or_default()
        );
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        // SIGTERM too (kill, a service manager): the session's credentials are removed on
        // the way out, not left in the temporary directory.
        tokio::spawn(async move {
            super::wait_for_stop_signal().await;
            let _ = stop_tx.send(true);
        });
        let counters = Arc::new(flowmesh_link::assist::serve::Counters::default());
        let finished = support::listen(
            client,
            key.session.clone(),
            secret,
            key.expires,
            listener,
            counters.clone(),
            stop_rx,
        )
        .await
        .map_err(anyhow::Error::msg)?;
        let t = &counters.traffic;
        eprintln!(
            "{}: {} connections, {} bytes sent, {} received",
            match finished {
                support::Finished::Expired => "the session expired",
                support::Finished::Stopped => "stopped",
            },
            counters
                .connections
                .load(std::sync::atomic::Ordering::Relaxed),
            t.sent.load(std::sync::atomic::Ordering::Relaxed),
            t.received.load(std::sync::atomic::Ordering::Relaxed)
        );
        if let Some(path) = &c.access_file {
            let _ = std::fs::remove_file(path);
        }
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

/// A private directory (0700) removed when dropped: the session's credentials and CA file.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempfile_dir() -> anyhow::Result<TempDir> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = std::env::temp_dir().join(format!(
        "flowmesh-assist-{}",
        flowmesh_link::assist::new_id()
    ));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    Ok(TempDir(dir))
}

#[cfg(test)]
mod tests {
    use super::parse_ttl;

    #[test]
    fn ttls_read_as_people_write_them_and_stay_within_a_day() {
        assert_eq!(parse_ttl("24h"), Ok(86_400));
        assert_eq!(parse_ttl("30m"), Ok(1_800));
        assert_eq!(parse_ttl("90"), Ok(90));
        assert!(parse_ttl("25h").is_err());
        assert!(parse_ttl("2d").is_err());
        assert!(parse_ttl("10s").is_err());
        assert!(parse_ttl("1w").is_err());
    }
}
