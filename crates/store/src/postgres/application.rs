//! PostgreSQL: the ApplicationStore port (not written yet).

use async_trait::async_trait;
use latchkey_domain::application::Application;
use latchkey_domain::ids::ClientId;
use latchkey_domain::store::{ApplicationStore, StoreResult};

use super::PostgresStore;

#[async_trait]
impl ApplicationStore for PostgresStore {
    #[allow(unused_variables)]
    async fn create_application(&self, app: &Application) -> StoreResult<()> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn application(&self, client_id: &ClientId) -> StoreResult<Option<Application>> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn list_applications(&self) -> StoreResult<Vec<Application>> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn delete_application(&self, client_id: &ClientId) -> StoreResult<()> {
        todo!()
    }
}
