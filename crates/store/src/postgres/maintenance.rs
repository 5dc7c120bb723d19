//! PostgreSQL: the MaintenanceStore port (not written yet).

use async_trait::async_trait;
use latchkey_domain::clock::Timestamp;
use latchkey_domain::store::{MaintenanceStore, StoreResult};

use super::PostgresStore;

#[async_trait]
impl MaintenanceStore for PostgresStore {
    #[allow(unused_variables)]
    async fn purge_expired(&self, now: Timestamp) -> StoreResult<u64> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn ping(&self) -> StoreResult<()> {
        todo!()
    }
}
