//! The TLS client configuration: TLS 1.3 only, ring as the one crypto provider, trust in the
//! cluster's CA alone.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};

/// Why the TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The CA file could not be read or holds no certificate.
    #[error("CA file {path}: {reason} (it is written by `flowmesh broker init` as ca.pem)")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The crypto provider every flowmesh TLS configuration uses.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Loads every certificate of a PEM file into a root store.
pub fn root_store(ca_file: &Path) -> Result<RootCertStore, TlsError> {
    let err = |reason: String| TlsError::CaFile {
        path: ca_file.to_path_buf(),
        reason,
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).map_err(|e| err(e.to_string()))? {
        let cert = cert.map_err(|e| err(e.to_string()))?;
        roots.add(cert).map_err(|e| err(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(err("no certificate in it".into()));
    }
    Ok(roots)
}

/// A client configuration that speaks TLS 1.3 and nothing lower, trusting `ca_file` only.
pub fn client_config(ca_file: &Path) -> Result<ClientConfig, TlsError> {
    Ok(ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(root_store(ca_file)?)
        .with_no_client_auth())
}
