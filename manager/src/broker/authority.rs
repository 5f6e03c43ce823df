//! The operator: the key every node trusts. It signs the accounts; each account's signing key
//! signs that account's instances (user JWTs). Its seed is in `secrets/operator.nk` (0600), held
//! by the cloud operator's manager and `flowmesh enroll`, never by a node.

use std::path::{Path, PathBuf};

use nkeys::KeyPair;

use super::BrokerError;
use super::accounts::{AccountRecord, CLOUD, SYSTEM, read_seed};
use super::jwt::{self, UserClaims};
use super::roles::{self, Role};

/// The operator's keys and the cluster directory they sign for.
pub struct Authority {
    out: PathBuf,
    operator: KeyPair,
    cloud_account: String,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("out", &self.out)
            .field("operator", &self.operator.public_key())
            .finish_non_exhaustive()
    }
}

/// Seconds since the epoch.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// What [`Authority::create`] made: the operator JWT and the two infrastructure accounts.
pub struct Created {
    /// The authority.
    pub authority: Authority,
    /// The operator JWT (public; in every node's config).
    pub operator_jwt: String,
    /// The system account: public key and JWT.
    pub system: (String, String),
    /// The cloud account: public key and JWT.
    pub cloud: (String, String),
}

impl Authority {
    /// A new operator with its system and cloud accounts, written into `out`; the manager's
    /// logins to both are `creds/SYS/manager.creds` and `creds/CLOUD/manager.creds`.
    pub fn create(out: &Path) -> Result<Created, BrokerError> {
        let operator = KeyPair::new_operator();
        let seed = operator
            .seed()
            .map_err(|e| BrokerError::Nkey(e.to_string()))?;
        let body = format!("# operator seed: PRIVATE (mode 0600); signs every account\n{seed}\n");
        flowmesh_link::secret_file::write(&out.join("secrets/operator.nk"), body.as_bytes(), true)?;
        let system = AccountRecord::create(out, SYSTEM, None)?;
        let cloud = AccountRecord::create(out, CLOUD, None)?;
        let operator_jwt = jwt::operator(&operator, "flowmesh", &system.account, now_secs())
            .map_err(|e| BrokerError::Nkey(e.to_string()))?;
        super::write_atomic(&out.join("operator.jwt"), operator_jwt.as_bytes())?;
        let authority = Authority {
            out: out.to_path_buf(),
            operator,
            cloud_account: cloud.account.clone(),
        };
        let system = authority.finish(system)?;
        let cloud = authority.finish(cloud)?;
        Ok(Created {
            authority,
            operator_jwt,
            system,
            cloud,
        })
    }

    /// Gives an infrastructure account its manager login, signs and saves it: its key and JWT.
    fn finish(&self, mut record: AccountRecord) -> Result<(String, String), BrokerError> {
        self.issue_manager(&mut record)?;
        let token = self.sign(&record)?;
        record.save(&self.out, &token)?;
        Ok((record.account, token))
    }

    /// The authority of the cluster generated in `out`.
    pub fn load(out: &Path) -> Result<Self, BrokerError> {
        let operator = read_seed(&out.join("secrets/operator.nk")).map_err(|e| {
            super::invalid(format!(
                "{e}: {} is not a cluster directory written by `flowmesh broker init` (in \
                 operator mode), or its secrets/ are not on this machine",
                out.display()
            ))
        })?;
        let cloud = AccountRecord::load(out, CLOUD)?;
        Ok(Authority {
            out: out.to_path_buf(),
            operator,
            cloud_account: cloud.account,
        })
    }

    /// The cluster directory.
    pub fn out(&self) -> &Path {
        &self.out
    }

    /// The account JWT of `record`, signed by the operator now — issued strictly after the
    /// version last saved: a node takes whatever JWT it is sent, and its resolver's sync keeps
    /// the one issued later (in seconds), so two versions signed within one second must not
    /// compare equal.
    pub fn sign(&self, record: &AccountRecord) -> Result<String, BrokerError> {
        let last = AccountRecord::jwt(&self.out, &record.name)
            .ok()
            .and_then(|token| jwt::claims(&token).ok())
            .and_then(|claims| claims["iat"].as_i64());
        let now = now_secs();
        let issued_at = last.map_or(now, |last| now.max(last.saturating_add(1)));
        jwt::account(
            &self.operator,
            &record.account,
            &record.name,
            &record.claims(&self.cloud_account),
            issued_at,
        )
        .map_err(|e| BrokerError::Nkey(e.to_string()))
    }

    /// The manager's unrestricted login to `SYS` or `CLOUD` (the operator's own accounts).
    fn issue_manager(&self, record: &mut AccountRecord) -> Result<(), BrokerError> {
        let claims = UserClaims {
            name: "manager".into(),
            tags: vec!["role:manager".into()],
            ..UserClaims::default()
        };
        self.write_creds(record, &claims)?;
        Ok(())
    }

    /// New credentials for `instance` of `record` in `role` (expiring at `expires`, s): a user
    /// JWT signed by the account's signing key, written with its seed to
    /// `creds/<account>/<instance>.creds` (0600). Records it in `record` (not saved here).
    pub fn issue(
        &self,
        record: &mut AccountRecord,
        instance: &str,
        role: Role,
        expires: Option<i64>,
    ) -> Result<PathBuf, BrokerError> {
        let claims = claims_for(role, instance, expires);
        let (path, key, issued) = self.write_creds(record, &claims)?;
        record.instances.insert(
            instance.to_string(),
            super::accounts::InstanceRecord {
                key,
                role,
                issued,
                expires,
            },
        );
        Ok(path)
    }

    /// A user JWT for a key pair someone else holds (`user_nkey`, its public `U…` key): the web
    /// console's browser generates its nkey, and only the JWT — no secret — comes from here.
    /// Not written to disk, not recorded as an instance: it lasts until `expires` (s).
    pub fn session_jwt(
        &self,
        record: &AccountRecord,
        name: &str,
        role: Role,
        user_nkey: &str,
        expires: i64,
    ) -> Result<String, BrokerError> {
        check_user_nkey(user_nkey)?;
        let signer = record.signer(&self.out)?;
        let claims = claims_for(role, name, Some(expires));
        jwt::user(&signer, &record.account, user_nkey, &claims, now_secs())
            .map_err(|e| BrokerError::Nkey(e.to_string()))
    }

    /// The user JWT of a remote-assistance session of `record` for `user_nkey` (the instance
    /// made the key pair and keeps its seed for the support engineer): only the session's
    /// subjects ([`roles::assist_permissions`]), until `expires` (s). Not recorded: it lasts
    /// no longer than the session.
    pub fn assist_jwt(
        &self,
        record: &AccountRecord,
        session: &str,
        user_nkey: &str,
        expires: i64,
    ) -> Result<String, BrokerError> {
        check_user_nkey(user_nkey)?;
        flowmesh_link::assist::check_session_id(session).map_err(super::invalid)?;
        let signer = record.signer(&self.out)?;
        let claims = UserClaims {
            name: format!("assist-{session}"),
            permissions: roles::assist_permissions(session),
            tags: vec!["assist".into()],
            expires: Some(expires),
        };
        jwt::user(&signer, &record.account, user_nkey, &claims, now_secs())
            .map_err(|e| BrokerError::Nkey(e.to_string()))
    }

    /// Credentials for `instance` of `record` in `role` for a key pair someone else holds: the
    /// console's browser makes the new instance's nkey, so its seed never reaches the manager.
    /// Recorded in `record` (so it can be revoked; not saved here). Returns the user JWT.
    pub fn issue_for_key(
        &self,
        record: &mut AccountRecord,
        instance: &str,
        role: Role,
        user_nkey: &str,
        expires: Option<i64>,
    ) -> Result<String, BrokerError> {
        check_user_nkey(user_nkey)?;
        let signer = record.signer(&self.out)?;
        let issued = now_secs();
        let claims = claims_for(role, instance, expires);
        let token = jwt::user(&signer, &record.account, user_nkey, &claims, issued)
            .map_err(|e| BrokerError::Nkey(e.to_string()))?;
        record.instances.insert(
            instance.to_string(),
            super::accounts::InstanceRecord {
                key: user_nkey.to_string(),
                role,
                issued,
                expires,
            },
        );
        Ok(token)
    }

    /// Credentials for `name` in `record` with no permission limit inside the account: what
    /// someone holding the account's signing key (the operator) could make. For tests that act
    /// as an attacker who runs the broker, and for the operator's own diagnostics; never handed
    /// to an instance. Not recorded as an instance.
    pub fn issue_unrestricted(
        &self,
        record: &AccountRecord,
        name: &str,
    ) -> Result<PathBuf, BrokerError> {
        let claims = UserClaims {
            name: name.to_string(),
            ..UserClaims::default()
        };
        let path = self
            .out
            .join("creds")
            .join(&record.name)
            .join(format!("unrestricted-{name}.creds"));
        Ok(self.write_creds_to(&path, record, &claims)?.0)
    }

    fn write_creds(
        &self,
        record: &AccountRecord,
        claims: &UserClaims,
    ) -> Result<(PathBuf, String, i64), BrokerError> {
        let path = creds_path(&self.out, &record.name, &claims.name);
        self.write_creds_to(&path, record, claims)
    }

    fn write_creds_to(
        &self,
        path: &Path,
        record: &AccountRecord,
        claims: &UserClaims,
    ) -> Result<(PathBuf, String, i64), BrokerError> {
        let signer = record.signer(&self.out)?;
        let user = KeyPair::new_user();
        let issued = now_secs();
        let token = jwt::user(&signer, &record.account, &user.public_key(), claims, issued)
            .map_err(|e| BrokerError::Nkey(e.to_string()))?;
        let seed = user.seed().map_err(|e| BrokerError::Nkey(e.to_string()))?;
        flowmesh_link::secret_file::write(path, jwt::creds(&token, &seed).as_bytes(), true)?;
        Ok((path.to_path_buf(), user.public_key(), issued))
    }
}

/// The claims of `name` in `role`: its permissions, and the tags the registry reads.
fn claims_for(role: Role, name: &str, expires: Option<i64>) -> UserClaims {
    UserClaims {
        name: name.to_string(),
        permissions: roles::permissions(role, name),
        tags: vec![role.tag(), roles::instance_tag(name)],
        expires,
    }
}

fn check_user_nkey(user_nkey: &str) -> Result<(), BrokerError> {
    if user_nkey.starts_with('U') && KeyPair::from_public_key(user_nkey).is_ok() {
        Ok(())
    } else {
        Err(super::invalid(format!(
            "{user_nkey:?} is not a NATS user public key (U…)"
        )))
    }
}

/// Where the credentials of `instance` of `account` are written.
pub fn creds_path(out: &Path, account: &str, instance: &str) -> PathBuf {
    out.join("creds")
        .join(account)
        .join(format!("{instance}.creds"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_version_of_an_account_is_issued_after_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let created = Authority::create(dir.path()).unwrap();
        let record = AccountRecord::load(dir.path(), CLOUD).unwrap();
        let iat = |token: &str| jwt::claims(token).unwrap()["iat"].as_i64().unwrap();
        let mut last = iat(&created.cloud.1);
        for _ in 0..3 {
            let token = created.authority.sign(&record).unwrap();
            assert!(iat(&token) > last, "signed within the same second");
            last = iat(&token);
            record.save(dir.path(), &token).unwrap();
        }
    }
}
