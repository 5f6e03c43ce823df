//! Users and instances added to a running cluster, and instances revoked, without touching a
//! node: a new user's account JWT (and every change to it, such as a revocation) is pushed to
//! the nodes' `full` resolvers through the system account (see `push`: every node answers, and
//! a node that was down gets it again when it restarts, see `resync`). A new instance of a
//! known user needs no push at all: its user JWT, signed by the account's signing key, is all a
//! node needs to check. No config file is rewritten and no node reloaded, ever. Every change
//! here happens with the accounts' lock held (see `lock`).

use std::path::PathBuf;
use std::time::Duration;

use flowmesh_link::PublicKey;
use flowmesh_link::subject::validate_token;

use super::accounts::{AccountRecord, check_user_name};
use super::authority::{Authority, creds_path, now_secs};
use super::lock::AccountsLock;
use super::roles::Role;
use super::{BrokerError, invalid, read_summary, write_broker_toml};

/// What to enroll.
#[derive(Debug, Clone)]
pub struct Enrollment {
    /// The user (account) name.
    pub user: String,
    /// A new user's public key (hex): recorded as its user id.
    pub public_key: Option<String>,
    /// Instances and their roles.
    pub instances: Vec<(String, Role)>,
    /// How long the instances' credentials last (none: until revoked).
    pub expires_in: Option<Duration>,
}

/// What [`enroll`] created.
#[derive(Debug, Clone)]
pub struct Enrolled {
    /// The user's account JWT, when it is new and must be pushed (see [`push`](super::push)).
    pub account_jwt: Option<String>,
    /// For each new instance: its name and the `[broker]` file for its config.
    pub instances: Vec<(String, PathBuf)>,
}

impl Enrolled {
    /// Whether the user's account is new.
    pub fn new_account(&self) -> bool {
        self.account_jwt.is_some()
    }
}

/// Creates the user's account if it is new (signing its JWT; push it with [`push`](super::push)
/// before letting go of `held`) and credentials for each instance. `authority` signs.
pub fn enroll(
    authority: &Authority,
    held: &AccountsLock,
    e: &Enrollment,
) -> Result<Enrolled, BrokerError> {
    let out = authority.out();
    same_cluster(authority, held)?;
    check_user_name(&e.user)?;
    for (i, _) in &e.instances {
        validate_token(i).map_err(|err| invalid(err.to_string()))?;
    }
    let existing = AccountRecord::find(out, &e.user)?;
    let new_account = existing.is_none();
    let mut record = match existing {
        Some(r) => r,
        None => {
            let key = e.public_key.as_deref().ok_or_else(|| {
                invalid(format!(
                    "{} is a new user: give its public key (--public-key or --identity, from `flowmesh keygen`)",
                    e.user
                ))
            })?;
            PublicKey::from_hex(key).map_err(|err| invalid(format!("--public-key: {err}")))?;
            AccountRecord::create(out, &e.user, Some(key.to_string()))?
        }
    };
    if let Some((i, _)) = e
        .instances
        .iter()
        .find(|(i, _)| record.instances.contains_key(i))
    {
        return Err(invalid(format!(
            "{} already has an instance {i}; revoke it first to give it new credentials",
            e.user
        )));
    }
    let expires = e
        .expires_in
        .map(|d| now_secs().saturating_add(d.as_secs() as i64));
    let nodes = read_summary(out)?;
    let mut created = Vec::new();
    for (i, role) in &e.instances {
        authority.issue(&mut record, i, *role, expires)?;
        write_broker_toml(out, &nodes, &e.user, i)?;
        created.push((i.clone(), out.join(format!("creds/{}/{i}.toml", e.user))));
    }
    // The JWT changes only for a new account; the record is saved either way.
    let jwt = if new_account {
        authority.sign(&record)?
    } else {
        AccountRecord::jwt(out, &e.user)?
    };
    record.save(out, &jwt)?;
    tracing::info!(user = %e.user, new_account, instances = ?e.instances, "enrolled");
    Ok(Enrolled {
        account_jwt: new_account.then_some(jwt),
        instances: created,
    })
}

/// Revokes `instance` of `user`: its key joins the account's revocations and its credentials
/// are deleted. Returns the account JWT to push: once a node has it, the instance's
/// connections are closed and it cannot log in again. Push it before letting go of `held`.
pub fn revoke(
    authority: &Authority,
    held: &AccountsLock,
    user: &str,
    instance: &str,
) -> Result<String, BrokerError> {
    let out = authority.out();
    same_cluster(authority, held)?;
    let mut record = AccountRecord::load(out, user)?;
    let Some(gone) = record.instances.remove(instance) else {
        return Err(invalid(format!("user {user} has no instance {instance}")));
    };
    record.revoked.insert(gone.key, now_secs());
    let jwt = authority.sign(&record)?;
    record.save(out, &jwt)?;
    for path in [
        creds_path(out, user, instance),
        out.join(format!("creds/{user}/{instance}.toml")),
    ] {
        let _ = std::fs::remove_file(path);
    }
    tracing::info!(%user, %instance, "revoked");
    Ok(jwt)
}

/// The lock held must be that of the authority's cluster.
fn same_cluster(authority: &Authority, held: &AccountsLock) -> Result<(), BrokerError> {
    if authority.out() == held.out() {
        Ok(())
    } else {
        Err(invalid(format!(
            "the accounts lock held is {}'s, not {}'s",
            held.out().display(),
            authority.out().display()
        )))
    }
}
