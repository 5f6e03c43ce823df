//! The manager's config file, and why it cannot start.

use std::path::{Path, PathBuf};

use flowmesh_link::access::ApiConfig;
use flowmesh_link::connect::BrokerConfig;
use serde::Deserialize;

use crate::blacklist::Limits;

/// The manager's config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagerConfig {
    /// The cloud's identity file (`flowmesh keygen --cloud`).
    pub identity: PathBuf,
    /// The cluster directory `flowmesh broker init` wrote: users' public keys and accounts come
    /// from its `accounts/` (re-read when it changes, so enrolled users count at once).
    pub cluster: PathBuf,
    /// The manager's login to the `CLOUD` account (`creds/CLOUD/manager.toml`).
    pub broker: BrokerConfig,
    /// Its login to the system account (`creds/SYS/manager.toml`'s `[broker]` table).
    pub system: BrokerConfig,
    /// How long a blacklisted address stays after its latest report, seconds.
    #[serde(default = "one_day")]
    pub blacklist_ttl_secs: u64,
    /// How often the blacklist is sent again (collectors that were away catch up), seconds.
    #[serde(default = "one_minute")]
    pub rebroadcast_secs: u64,
    /// `[blacklist]`: how many users must agree before an address reaches others
    /// (`min_reporters`, 2), and each user's quotas (`reports_per_hour`, `entries_per_user`).
    #[serde(default)]
    pub blacklist: Limits,
    /// `[api]` (127.0.0.1:7702 by default).
    #[serde(default = "manager_api")]
    pub api: ApiConfig,
    /// Where the blacklist and the registry are kept across restarts (mode 0600). Default:
    /// `<config file name>.state.json` beside the config.
    #[serde(default)]
    pub state_file: PathBuf,
    /// `[console]`: the web console (HTTPS on 127.0.0.1:9443 by default; `listen = "off"`).
    #[serde(default)]
    pub console: crate::console::ConsoleConfig,
}

fn one_day() -> u64 {
    86_400
}
fn one_minute() -> u64 {
    60
}
fn manager_api() -> ApiConfig {
    ApiConfig::on_port(7702)
}

/// Why the manager cannot start or go on.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ManagerError(pub String);

impl ManagerConfig {
    /// Reads a config file; relative paths are resolved against its directory.
    pub fn load(path: &Path) -> Result<Self, ManagerError> {
        let err = |r: String| ManagerError(format!("{}: {r}", path.display()));
        let (mut c, dir): (ManagerConfig, _) =
            flowmesh_link::config::read_toml(path).map_err(err)?;
        c.identity = dir.join(&c.identity);
        c.cluster = dir.join(&c.cluster);
        c.broker = c.broker.relative_to(&dir);
        c.system = c.system.relative_to(&dir);
        c.api.resolve(path);
        c.console.resolve(&dir);
        c.state_file = if c.state_file.as_os_str().is_empty() {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "manager".into());
            dir.join(format!("{stem}.state.json"))
        } else {
            dir.join(&c.state_file)
        };
        c.api.address().map_err(err)?;
        Ok(c)
    }
}
