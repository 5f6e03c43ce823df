//! How the CLI finds and authenticates to a running daemon's gRPC API (the collector's, the
//! manager's).
//!
//! At start the daemon binds its API (loopback only: there is no TLS on it yet), draws a
//! random token and writes both to an access file, mode 0600, beside its config. Whoever may
//! read the daemon's files may use its API; nobody else on the machine can. The token changes
//! at every start and the file is removed at a clean stop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::secret_file;
use serde::{Deserialize, Serialize};

/// `[api]` in a daemon's config.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// `IP:PORT` to listen on (a loopback address; port 0 picks a free one), or `off`.
    pub listen: String,
    /// Where the URL and token are written (relative to the config file). Default:
    /// `<config file name>.api.json` beside the config, so daemons sharing a directory do not
    /// share an access file.
    #[serde(default)]
    pub access_file: PathBuf,
}

impl ApiConfig {
    /// The defaults of a daemon whose API listens on `port` by default.
    pub fn on_port(port: u16) -> Self {
        ApiConfig {
            listen: format!("127.0.0.1:{port}"),
            access_file: PathBuf::new(),
        }
    }

    /// Resolves the access file against the config file at `config`.
    pub fn resolve(&mut self, config: &Path) {
        let dir = config.parent().unwrap_or(Path::new("."));
        if self.access_file.as_os_str().is_empty() {
            let stem = config
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "daemon".into());
            self.access_file = dir.join(format!("{stem}.api.json"));
        } else {
            self.access_file = dir.join(&self.access_file);
        }
    }

    /// The address to bind, `None` when the API is off.
    pub fn address(&self) -> Result<Option<SocketAddr>, String> {
        if self.listen == "off" {
            return Ok(None);
        }
        let addr: SocketAddr = self
            .listen
            .parse()
            .map_err(|_| format!("[api] listen = {:?}: IP:PORT or \"off\"", self.listen))?;
        if !addr.ip().is_loopback() {
            return Err(format!(
                "[api] listen = {:?}: the API has no TLS yet, so it listens on loopback only \
                 (127.0.0.1 or [::1]); reach it from elsewhere over SSH (ssh -L)",
                self.listen
            ));
        }
        Ok(Some(addr))
    }
}

/// The access file's content.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Access {
    /// `http://IP:PORT`.
    pub url: String,
    /// The bearer token.
    pub token: String,
}

impl Access {
    /// A fresh random token for `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        let mut token = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut token);
        Access {
            url: format!("http://{addr}"),
            token: hex::encode(token),
        }
    }

    /// Writes the access file (0600, atomically).
    pub fn write(&self, path: &Path) -> Result<(), String> {
        let json = serde_json::to_vec_pretty(self).map_err(|e| e.to_string())?;
        secret_file::write(path, &json, true).map_err(|e| e.to_string())
    }

    /// Reads an access file (refused if others may read it).
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = secret_file::read(path).map_err(|e| match e {
            secret_file::SecretFileError::Io { source, .. }
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                format!(
                    "{}: not found — is the daemon running (it writes this file when its API starts)?",
                    path.display()
                )
            }
            other => other.to_string(),
        })?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}
