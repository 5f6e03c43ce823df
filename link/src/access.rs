//! How the CLI finds and authenticates to a running daemon's gRPC API (the collector's, the
//! manager's).
//!
//! At start the daemon binds its API (loopback, or any address with TLS 1.3), draws a random
//! token and writes both to an access file, mode 0600, beside its config. Whoever may read the
//! daemon's files may use its API; nobody else on the machine can. The token changes at every
//! start and the file is removed at a clean stop. To use the API from another machine, copy
//! the access file there (and the certificate it names).

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
    /// Serve over TLS 1.3 (required on a non-loopback address).
    #[serde(default)]
    pub tls: bool,
    /// The server certificate (PEM). Default `<config file name>.api-cert.pem`; with the key,
    /// generated self-signed when neither exists.
    #[serde(default)]
    pub cert_file: PathBuf,
    /// Its private key (PEM, 0600). Default `<config file name>.api-key.pem`.
    #[serde(default)]
    pub key_file: PathBuf,
}

impl ApiConfig {
    /// The defaults of a daemon whose API listens on `port` by default.
    pub fn on_port(port: u16) -> Self {
        ApiConfig {
            listen: format!("127.0.0.1:{port}"),
            access_file: PathBuf::new(),
            tls: false,
            cert_file: PathBuf::new(),
            key_file: PathBuf::new(),
        }
    }

    /// Resolves the access, certificate and key files against the config file at `config`.
    pub fn resolve(&mut self, config: &Path) {
        let dir = config.parent().unwrap_or(Path::new("."));
        let stem = config
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "daemon".into());
        for (file, default) in [
            (&mut self.access_file, "api.json"),
            (&mut self.cert_file, "api-cert.pem"),
            (&mut self.key_file, "api-key.pem"),
        ] {
            *file = if file.as_os_str().is_empty() {
                dir.join(format!("{stem}.{default}"))
            } else {
                dir.join(&*file)
            };
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
        if !addr.ip().is_loopback() && !self.tls {
            return Err(format!(
                "[api] listen = {:?} is not a loopback address: set `tls = true` in [api] (the \
                 token must not cross a network in clear), or listen on 127.0.0.1 and use ssh -L",
                self.listen
            ));
        }
        Ok(Some(addr))
    }
}

/// The access file's content. `Debug` shows the URL, never the token.
#[derive(Clone, Serialize, Deserialize)]
pub struct Access {
    /// `http://IP:PORT`, or `https://` with TLS.
    pub url: String,
    /// The bearer token.
    pub token: String,
    /// With TLS: the certificate the client must trust (the server's own, self-signed or not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("url", &self.url)
            .field("token", &"<redacted>")
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl Access {
    /// A fresh random token for `addr`; with TLS, the URL is `https://` and `ca_file` the
    /// certificate to trust. An unspecified address (0.0.0.0, ::) is written as loopback.
    pub fn new(addr: SocketAddr, ca_file: Option<PathBuf>) -> Self {
        let mut token = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut token);
        let mut shown = addr;
        if addr.ip().is_unspecified() {
            shown.set_ip(match addr {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let scheme = if ca_file.is_some() { "https" } else { "http" };
        Access {
            url: format!("{scheme}://{shown}"),
            token: hex::encode(token),
            ca_file,
        }
    }

    /// Writes the access file (0600, atomically).
    pub fn write(&self, path: &Path) -> Result<(), String> {
        let json = serde_json::to_vec_pretty(self).map_err(|e| e.to_string())?;
        secret_file::write(path, &json, true).map_err(|e| e.to_string())
    }

    /// Writes the access file and returns what removes it when dropped: the daemon holds it
    /// for as long as it serves, so a clean stop leaves no stale file behind.
    pub fn publish(&self, path: &Path) -> Result<Published, String> {
        self.write(path)?;
        Ok(Published {
            path: path.to_path_buf(),
        })
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

/// A written access file; dropping it removes the file (see [`Access::publish`]).
#[derive(Debug)]
#[must_use = "the access file is removed when this is dropped"]
pub struct Published {
    path: std::path::PathBuf,
}

impl Drop for Published {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_published_access_file_goes_with_its_guard() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.json");
        let access = Access::new("127.0.0.1:7701".parse().unwrap(), None);
        let published = access.publish(&path).unwrap();
        assert_eq!(Access::read(&path).unwrap().token, access.token);
        drop(published);
        assert!(!path.exists());
    }

    #[test]
    fn off_loopback_needs_tls() {
        let mut c = ApiConfig::on_port(7701);
        assert!(c.address().unwrap().is_some());
        c.listen = "0.0.0.0:7701".into();
        assert!(c.address().unwrap_err().contains("tls = true"));
        c.tls = true;
        assert!(c.address().unwrap().is_some());
        c.listen = "off".into();
        assert_eq!(c.address().unwrap(), None);
        c.listen = "nonsense".into();
        assert!(c.address().is_err());
    }

    #[test]
    fn files_default_beside_the_config_and_urls_say_the_scheme() {
        let mut c = ApiConfig::on_port(7701);
        c.resolve(Path::new("/etc/flowmesh/us-collector.toml"));
        assert_eq!(
            c.access_file,
            Path::new("/etc/flowmesh/us-collector.api.json")
        );
        assert_eq!(
            c.cert_file,
            Path::new("/etc/flowmesh/us-collector.api-cert.pem")
        );
        let any: SocketAddr = "0.0.0.0:7701".parse().unwrap();
        assert_eq!(Access::new(any, None).url, "http://127.0.0.1:7701");
        let tls = Access::new(any, Some("c.pem".into()));
        assert_eq!(tls.url, "https://127.0.0.1:7701");
        assert_eq!(tls.token.len(), 64);
        let shown = format!("{tls:?}");
        assert!(
            !shown.contains(&tls.token) && shown.contains("redacted"),
            "{shown}"
        );
    }
}
