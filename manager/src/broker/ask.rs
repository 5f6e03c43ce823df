//! Asking every node at once, through the system account: one request on a subject every node
//! answers (`$SYS.REQ.SERVER.PING.<what>`), the answers gathered until all came or the nodes
//! fell quiet.

use std::time::Duration;

use flowmesh_link::async_nats::{Client, Message};
use futures::StreamExt;

/// Sends `body` on `subject` and gathers the answers: until `expected` came (when known), or
/// until none came for `quiet`. A failure to send or to subscribe gives no answers (logged).
pub async fn ask_every_node(
    system: &Client,
    subject: &str,
    body: &'static [u8],
    expected: Option<usize>,
    quiet: Duration,
) -> Vec<Message> {
    let inbox = system.new_inbox();
    let mut answers = match system.subscribe(inbox.clone()).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(%subject, error = %e, "asking the nodes: cannot subscribe");
            return Vec::new();
        }
    };
    if let Err(e) = system
        .publish_with_reply(subject.to_string(), inbox, body.into())
        .await
    {
        tracing::warn!(%subject, error = %e, "asking the nodes: cannot send");
        return Vec::new();
    }
    let mut got = Vec::new();
    while expected.is_none_or(|n| got.len() < n) {
        match tokio::time::timeout(quiet, answers.next()).await {
            Ok(Some(answer)) => got.push(answer),
            _ => break,
        }
    }
    got
}
