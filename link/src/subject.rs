//! NATS subject names, in one place.
//!
//! Each cloud user is its own NATS account, so subjects need no user prefix: the broker keeps
//! accounts apart. The subject is still part of every envelope's associated data, so a message
//! republished on another subject fails to open.

/// Every flowmesh subject starts with this token.
pub const PREFIX: &str = "flowmesh";

/// What a subject carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// Flow record batches from a sensor.
    Flows,
    /// Alerts raised by a collector.
    Alerts,
    /// Heartbeats of an instance.
    Status,
    /// Status changes of an instance (online, offline, ...), as judged by the user's collector.
    Changes,
    /// Requests to an instance (remote actions).
    Control,
    /// Free-form messages among one user's instances (the quickstart's hello).
    Hello,
    /// Requests from the web console to a collector (policies, stored alerts), sealed both ways.
    Api,
}

impl Channel {
    fn token(self) -> &'static str {
        match self {
            Channel::Flows => "flows",
            Channel::Alerts => "alerts",
            Channel::Status => "status",
            Channel::Changes => "changes",
            Channel::Control => "control",
            Channel::Hello => "hello",
            Channel::Api => "api",
        }
    }

    /// The subject of `instance` on this channel, e.g. `flowmesh.flows.branch-1`.
    pub fn subject(self, instance: &str) -> Result<String, SubjectError> {
        validate_token(instance)?;
        Ok(format!("{PREFIX}.{}.{instance}", self.token()))
    }

    /// The wildcard matching every instance on this channel, e.g. `flowmesh.flows.*`.
    pub fn all(self) -> String {
        format!("{PREFIX}.{}.*", self.token())
    }
}

/// Subjects between instances and the cloud manager, which lives in its own `CLOUD` account.
/// The broker maps them: a user's account sends to the inbox only as itself and receives only
/// its own copy of a broadcast.
pub mod cloud {
    /// An instance publishes here (in its own account) to reach the manager's inbox.
    pub const INBOX: &str = "flowmesh.cloud.inbox";
    /// The subject the manager seals its inbox replies to: the broker renames reply subjects
    /// across accounts, so both sides use this fixed one.
    pub const INBOX_REPLY: &str = "flowmesh.cloud.inbox.reply";
    /// Broadcasts to users: `flowmesh.cloud.broadcast.<user>` in the cloud account arrives in
    /// that user's account under the same name.
    pub const BROADCAST: &str = "flowmesh.cloud.broadcast";
    /// Signed releases: an instance asks here (in its own account) for the list and for chunks
    /// of a binary; the manager answers from the `CLOUD` account's release bucket.
    pub const RELEASE: &str = "flowmesh.cloud.release";

    /// The inbox subject of `user`, as the manager sees it.
    pub fn inbox_of(user: &str) -> String {
        format!("{INBOX}.{user}")
    }

    /// The release subject of `user`, as the manager sees it.
    pub fn release_of(user: &str) -> String {
        format!("{RELEASE}.{user}")
    }

    /// The broadcast subject of `user`.
    pub fn broadcast_to(user: &str) -> String {
        format!("{BROADCAST}.{user}")
    }

    /// The user a manager-side inbox or broadcast subject names.
    pub fn user_of(subject: &str) -> Option<&str> {
        subject
            .strip_prefix(INBOX)
            .or_else(|| subject.strip_prefix(BROADCAST))?
            .strip_prefix('.')
            .filter(|u| !u.is_empty() && !u.contains('.'))
    }
}

/// Why a name cannot be a subject token.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SubjectError {
    /// Empty, too long, or with characters outside `A-Z a-z 0-9 - _`.
    #[error("instance name {0:?} must be 1-64 characters of A-Z, a-z, 0-9, '-' or '_'")]
    BadToken(String),
}

/// Checks that `token` can be a single subject token (no dots, wildcards or spaces).
pub fn validate_token(token: &str) -> Result<(), SubjectError> {
    let ok = !token.is_empty()
        && token.len() <= 64
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(SubjectError::BadToken(token.to_string()))
    }
}

/// The instance token of a subject `flowmesh.<channel>.<instance>`, if it has that shape.
pub fn instance_of(subject: &str) -> Option<&str> {
    let mut parts = subject.splitn(3, '.');
    (parts.next()? == PREFIX).then_some(())?;
    parts.next()?;
    let inst = parts.next()?;
    validate_token(inst).ok().map(|_| inst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_built_from_valid_tokens_only() {
        assert_eq!(
            Channel::Flows.subject("eu-1").unwrap(),
            "flowmesh.flows.eu-1"
        );
        assert_eq!(Channel::Status.all(), "flowmesh.status.*");
        for bad in ["", "a.b", "a*", ">", "a b", &"x".repeat(65)] {
            assert!(Channel::Flows.subject(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn the_instance_of_a_subject() {
        assert_eq!(instance_of("flowmesh.flows.eu-sensor"), Some("eu-sensor"));
        assert_eq!(instance_of("flowmesh.flows.a.b"), None);
        assert_eq!(instance_of("other.flows.x"), None);
        assert_eq!(instance_of("flowmesh.flows"), None);
    }
}
