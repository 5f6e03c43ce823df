//! The cloud inbox: what users' instances send the cloud, sealed to its key — blacklist
//! reports, requests for remote-assistance credentials — each answered sealed and signed.

use super::*;

impl Manager {
    /// Handles one inbox message from `user` (the broker says who); the answer to send back.
    pub(super) fn take_request(&self, user: &str, data: &[u8]) -> Result<InboxReply, &'static str> {
        if self.key_of(user).is_none() {
            let _ = self.refresh_users();
        }
        let Some(key) = self.key_of(user) else {
            return Err("unknown_user");
        };
        let opened = lock(&self.opener)
            .open(cloud::INBOX, data)
            .map_err(|e| match e {
                flowmesh_link::OpenError::Replayed(_) => "replayed",
                flowmesh_link::OpenError::TooOld | flowmesh_link::OpenError::FromTheFuture => {
                    "stale"
                }
                _ => "unreadable",
            })?;
        // The broker vouches for the account, the envelope for the key: both must agree.
        if opened.sender != key {
            return Err("wrong_sender");
        }
        let request = CloudRequest::decode(opened.payload.as_slice()).map_err(|_| "malformed")?;
        match request.kind {
            Some(cloud_request::Kind::Report(report)) => {
                Ok(self.take_blacklist_report(user, &report))
            }
            Some(cloud_request::Kind::Assist(ask)) => self.assist_credentials(user, &ask),
            None => Err("malformed"),
        }
    }

    /// A session's broker credentials (see [`crate::broker::Authority::assist_jwt`]): for the
    /// account the broker says sent the request, at most 24 hours.
    fn assist_credentials(
        &self,
        user: &str,
        ask: &pb::AssistCredentials,
    ) -> Result<InboxReply, &'static str> {
        let now = now_micros() / 1_000_000;
        // A minute of slack for clocks; never beyond a day.
        if ask.expires_s <= now || ask.expires_s > now + flowmesh_link::assist::MAX_TTL_SECS + 60 {
            return Err("assist_ttl");
        }
        if flowmesh_link::subject::validate_token(&ask.instance).is_err() {
            return Err("malformed");
        }
        let jwt = AccountRecord::load(&self.cluster, user).and_then(|record| {
            crate::broker::Authority::load(&self.cluster)?.assist_jwt(
                &record,
                &ask.session,
                &ask.user_nkey,
                ask.expires_s,
            )
        });
        match jwt {
            Ok(jwt) => {
                tracing::info!(%user, instance = %ask.instance, session = %ask.session, expires = ask.expires_s, "remote-assistance credentials issued");
                self.counters.assist.fetch_add(1, Ordering::Relaxed);
                Ok(InboxReply {
                    accepted: true,
                    error: String::new(),
                    jwt,
                })
            }
            Err(e) => {
                tracing::warn!(%user, error = %e, "remote-assistance credentials refused");
                Ok(InboxReply {
                    accepted: false,
                    error: e.to_string(),
                    jwt: String::new(),
                })
            }
        }
    }

    fn take_blacklist_report(&self, user: &str, report: &BlacklistReport) -> InboxReply {
        let result = lock(&self.blacklist).report(user, report, now_micros());
        match result {
            Ok(()) => {
                tracing::info!(%user, ip = %report.ip, reason = %report.reason, "blacklist report");
                self.counters.reports.fetch_add(1, Ordering::Relaxed);
                self.changed.notify_one();
                InboxReply {
                    accepted: true,
                    ..Default::default()
                }
            }
            Err(e) => InboxReply {
                accepted: false,
                error: e,
                ..Default::default()
            },
        }
    }
}

/// The inbox: reports from users, answered sealed.
pub(super) async fn serve_inbox(m: Arc<Manager>, client: Client, stop: Arc<AtomicBool>) {
    let Some(mut sub) = until_ok("subscribing to the cloud inbox", &stop, || {
        client.subscribe(format!("{}.*", cloud::INBOX))
    })
    .await
    else {
        return;
    };
    while let Some(msg) = sub.next().await {
        let Some(user) = cloud::user_of(&msg.subject) else {
            continue;
        };
        let reply = match m.take_request(user, &msg.payload) {
            Ok(r) => r,
            Err(why) => {
                m.counters.refuse(why);
                tracing::warn!(%user, reason = why, "inbox message refused");
                InboxReply {
                    accepted: false,
                    error: format!("refused: {why}"),
                    ..Default::default()
                }
            }
        };
        // Answer only a known user, sealed to its key and signed; anyone else gets nothing.
        if let (Some(to), Some(key)) = (msg.reply, m.key_of(user))
            && let Some(sealed) = m.seal_signed(key, cloud::INBOX_REPLY, reply.encode_to_vec())
        {
            let _ = client.publish(to, sealed.into()).await;
        }
    }
}
