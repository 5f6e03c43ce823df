//! The secure link every flowmesh component shares.
//!
//! - [`identity`]: a user's (or the cloud's) Curve25519 key pair in a private TOML file.
//! - [`envelope`]: the sealed envelope every message travels in (see `ENVELOPE.md`).
//! - [`replay`]: the replay window that rejects a message id seen before, per sender.
//! - [`replay_journal`]: the window's accepted ids on disk, so a restart refuses replays.
//! - [`retry`]: waiting out a broker that refuses for a while (capped backoff).
//! - [`subject`]: the NATS subject names, in one place.
//! - [`streams`]: the JetStream streams and status bucket.
//! - [`time`]: RFC 3339 UTC with microseconds, both ways.
//! - [`tls`]: the TLS-1.3-only rustls client configuration.
//! - [`connect`]: the NATS connection (TLS 1.3, CA file, per-instance nkey, all seed URLs).
//! - [`nearest`]: the nearest region by measured round trip, or a pinned one.
//! - [`addr`]: address classes (public or not).
//! - [`access`]: how the CLI finds a daemon's API (URL and token in a 0600 file).
//! - [`config`]: reading components' TOML config files.
//! - [`cloud_sig`]: the cloud's Ed25519 signatures on what it sends.
//! - [`cloud_key`]: the cloud's public key from the DNS TXT record `cloud._pubkey.<domain>`.
//! - [`tunnel`]: byte streams as end-to-end encrypted frames; [`assist`]: remote assistance
//!   sessions carried in them.

pub mod access;
pub mod addr;
pub mod assist;
pub mod cloud_key;
pub mod cloud_sig;
pub mod config;
pub mod connect;
pub mod envelope;
pub mod identity;
pub mod nearest;
pub mod replay;
pub mod replay_journal;
pub mod retry;
pub mod secret_file;
pub mod streams;
pub mod subject;
pub mod time;
pub mod tls;
pub mod tunnel;

/// The NATS client crate, re-exported so every component uses the same version.
pub use async_nats;
pub use envelope::{OpenError, Opened, Opener, SealError, Sealer};
pub use identity::{Identity, IdentityError, IdentityKind, PublicKey};
