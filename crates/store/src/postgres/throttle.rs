//! PostgreSQL: the ThrottleStore port (not written yet).

use async_trait::async_trait;
use latchkey_domain::clock::Timestamp;
use latchkey_domain::ids::UserId;
use latchkey_domain::store::{StoreResult, ThrottleStore};

use super::PostgresStore;

#[async_trait]
impl ThrottleStore for PostgresStore {
    #[allow(unused_variables)]
    async fn take_throttle_slot(
        &self,
        key: &str,
        now: Timestamp,
        window_seconds: i64,
        limit: u32,
    ) -> StoreResult<bool> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn release_throttle_slot(
        &self,
        key: &str,
        now: Timestamp,
        window_seconds: i64,
    ) -> StoreResult<()> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn throttle_count(
        &self,
        key: &str,
        now: Timestamp,
        window_seconds: i64,
    ) -> StoreResult<u32> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn remember_familiar_place(
        &self,
        user: &UserId,
        place: &str,
        at: Timestamp,
        forget_before: Timestamp,
    ) -> StoreResult<()> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn familiar_place_seen(
        &self,
        user: &UserId,
        place: &str,
    ) -> StoreResult<Option<Timestamp>> {
        todo!()
    }
}
