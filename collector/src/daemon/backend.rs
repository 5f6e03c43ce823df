//! The collector as the APIs see it (gRPC for the CLI, NATS for the web console).

use std::sync::Arc;

use flowmesh_link::async_nats;
use flowmesh_link::{Identity, Opener};
use flowmesh_proto::v1::Status;

use super::collector::Collector;
use crate::policy::edit::{Applied, Edit, PolicyEditError};
use crate::store::Store;

#[tonic::async_trait]
impl crate::api::Backend for Collector {
    fn instances(&self) -> Vec<Status> {
        Collector::instances(self)
    }
    fn store(&self) -> &Store {
        Collector::store(self)
    }
    fn client(&self) -> async_nats::Client {
        Collector::client(self)
    }
    fn identity(&self) -> &Identity {
        Collector::identity(self)
    }
    fn policy_text(&self) -> Result<String, String> {
        Collector::policy_text(self)
    }
    async fn edit_policy(&self, edit: &Edit) -> Result<Applied, PolicyEditError> {
        Collector::edit_policy(self, edit).await
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn unauthorized_devices(&self, limit: usize) -> Vec<(String, String, Option<String>, i64)> {
        Collector::unauthorized_devices(self, limit)
    }
    fn opener(&self) -> Arc<Opener> {
        self.opener.clone()
    }
    fn assist_status(&self) -> Option<flowmesh_proto::v1::AssistStatus> {
        self.assist.status()
    }
    fn admits(&self, authorization: &[u8]) -> bool {
        self.assist.admits(authorization)
    }
}
