//! Identity files: a Curve25519 key pair, kept private (mode 0600).
//!
//! A user's public key is the user's id; the same file is copied to every instance of that user.
//! The cloud operator has an identity of kind `cloud` whose public key is published in DNS.

use std::fmt;
use std::path::{Path, PathBuf};

use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use x25519_dalek::StaticSecret;
use zeroize::Zeroizing;

use crate::secret_file::{self, SecretFileError};

/// A Curve25519 public key: a user's id, or the cloud's key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// Parses 64 hexadecimal characters.
    pub fn from_hex(text: &str) -> Result<Self, KeyParseError> {
        let text = text.trim();
        if text.len() != 64 {
            return Err(KeyParseError::Length(text.len()));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).map_err(|_| KeyParseError::NotHex)?;
        Ok(PublicKey(out))
    }

    /// The 64 lowercase hexadecimal characters of the key.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A short form (first 16 hex characters) for logs and names; never used for security.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..8])
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_hex())
    }
}

/// Why a key string was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyParseError {
    /// Not 64 characters long.
    #[error("a key is 64 hexadecimal characters, this one has {0}")]
    Length(usize),
    /// Contains something other than 0-9, a-f.
    #[error("a key is 64 hexadecimal characters, this one has a non-hex character")]
    NotHex,
}

/// Whose key pair this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentityKind {
    /// A cloud user; copied to each of the user's instances.
    User,
    /// The cloud operator (the manager); its public key is published in DNS.
    Cloud,
}

/// A key pair. The private half never leaves the process except into its 0600 file.
#[derive(Clone)]
pub struct Identity {
    kind: IdentityKind,
    secret: StaticSecret,
    public: PublicKey,
}

impl fmt::Debug for Identity {
    // The secret is never printed, whatever the log level.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("kind", &self.kind)
            .field("public", &self.public)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The on-disk form of an identity.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityFile {
    kind: IdentityKind,
    /// For a user, the user id (equal to `public_key`); for the cloud, the TXT record value.
    user_id: String,
    public_key: String,
    private_key: String,
}

/// Why an identity file could not be written or loaded.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Reading, writing or permissions (see [`SecretFileError`]).
    #[error(transparent)]
    File(#[from] SecretFileError),
    /// The file is not a valid identity.
    #[error("{path} is not a flowmesh identity file: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

impl Identity {
    /// Creates a new random identity.
    pub fn generate(kind: IdentityKind) -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(bytes.as_mut());
        Self::from_secret_bytes(kind, *bytes)
    }

    /// Builds an identity from its 32 private-key bytes (test vectors, tests).
    pub fn from_secret_bytes(kind: IdentityKind, bytes: [u8; 32]) -> Self {
        let secret = StaticSecret::from(bytes);
        let public = PublicKey(x25519_dalek::PublicKey::from(&secret).to_bytes());
        Identity {
            kind,
            secret,
            public,
        }
    }

    /// The public key (a user's id).
    pub fn public(&self) -> PublicKey {
        self.public
    }

    /// User or cloud.
    pub fn kind(&self) -> IdentityKind {
        self.kind
    }

    pub(crate) fn secret(&self) -> &StaticSecret {
        &self.secret
    }

    /// Writes the identity to `path` with mode 0600. Refuses an existing file unless `force`.
    pub fn write(&self, path: &Path, force: bool) -> Result<(), IdentityError> {
        let file = IdentityFile {
            kind: self.kind,
            user_id: self.public.to_hex(),
            public_key: self.public.to_hex(),
            private_key: hex::encode(self.secret.to_bytes()),
        };
        let toml = Zeroizing::new(toml::to_string(&file).map_err(|e| IdentityError::Invalid {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?);
        let body = Zeroizing::new(format!(
            "# flowmesh {} identity. PRIVATE: keep mode 0600, copy only to your own instances.\n{}",
            match self.kind {
                IdentityKind::User => "user",
                IdentityKind::Cloud => "cloud",
            },
            toml.as_str()
        ));
        secret_file::write(path, body.as_bytes(), force)?;
        Ok(())
    }

    /// Loads an identity file, refusing one that group or others can read.
    pub fn load(path: &Path) -> Result<Self, IdentityError> {
        let invalid = |reason: String| IdentityError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        let text = secret_file::read(path)?;
        let file: IdentityFile =
            toml::from_str(&text).map_err(|e| invalid(e.message().to_string()))?;
        let private = Zeroizing::new(file.private_key);
        let mut secret = Zeroizing::new([0u8; 32]);
        if private.len() != 64 || hex::decode_to_slice(private.as_bytes(), secret.as_mut()).is_err()
        {
            return Err(invalid(
                "private_key must be 64 hexadecimal characters".into(),
            ));
        }
        let identity = Self::from_secret_bytes(file.kind, *secret);
        let public = PublicKey::from_hex(&file.public_key)
            .map_err(|e| invalid(format!("public_key: {e}")))?;
        if public != identity.public {
            return Err(invalid("public_key does not belong to private_key".into()));
        }
        if PublicKey::from_hex(&file.user_id).ok() != Some(public) {
            return Err(invalid("user_id must equal public_key".into()));
        }
        Ok(identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn write_then_load_round_trips_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.toml");
        let id = Identity::generate(IdentityKind::User);
        id.write(&path, false).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let loaded = Identity::load(&path).unwrap();
        assert_eq!(loaded.public(), id.public());
        assert_eq!(loaded.kind(), IdentityKind::User);
    }

    #[test]
    fn refuses_to_overwrite_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.toml");
        let first = Identity::generate(IdentityKind::User);
        first.write(&path, false).unwrap();
        let second = Identity::generate(IdentityKind::User);
        assert!(matches!(
            second.write(&path, false),
            Err(IdentityError::File(SecretFileError::Exists(_)))
        ));
        assert_eq!(Identity::load(&path).unwrap().public(), first.public());
        second.write(&path, true).unwrap();
        assert_eq!(Identity::load(&path).unwrap().public(), second.public());
    }

    #[test]
    fn refuses_a_file_others_can_read_and_says_how_to_fix_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.toml");
        Identity::generate(IdentityKind::User)
            .write(&path, false)
            .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = Identity::load(&path).unwrap_err();
        assert!(matches!(
            err,
            IdentityError::File(SecretFileError::Permissions { mode: 0o644, .. })
        ));
        assert!(err.to_string().contains("chmod 600"));
    }

    #[test]
    fn rejects_mismatched_or_garbled_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.toml");
        let id = Identity::generate(IdentityKind::User);
        id.write(&path, false).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let other = Identity::generate(IdentityKind::User).public().to_hex();
        for bad in [
            text.replace(
                &format!("public_key = \"{}\"", id.public()),
                &format!("public_key = \"{other}\""),
            ),
            text.replace("private_key = \"", "private_key = \"zz"),
            "not toml at all".to_string(),
        ] {
            fs::write(&path, bad).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
            assert!(matches!(
                Identity::load(&path),
                Err(IdentityError::Invalid { .. })
            ));
        }
    }

    #[test]
    fn debug_output_never_contains_the_secret() {
        let id = Identity::from_secret_bytes(IdentityKind::User, [7u8; 32]);
        let shown = format!("{id:?}");
        assert!(!shown.contains(&hex::encode([7u8; 32])));
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn public_key_hex_parsing() {
        let k = PublicKey([0xab; 32]);
        assert_eq!(PublicKey::from_hex(&k.to_hex()).unwrap(), k);
        assert_eq!(PublicKey::from_hex("ab"), Err(KeyParseError::Length(2)));
        assert_eq!(
            PublicKey::from_hex(&"g".repeat(64)),
            Err(KeyParseError::NotHex)
        );
    }
}
