//! PostgreSQL: the AdminTokenStore port (not written yet).

use async_trait::async_trait;
use latchkey_domain::admin_token::AdminToken;
use latchkey_domain::clock::Timestamp;
use latchkey_domain::ids::AdminTokenId;
use latchkey_domain::secret::TokenHash;
use latchkey_domain::store::{AdminTokenStore, StoreResult};

use super::PostgresStore;

#[async_trait]
impl AdminTokenStore for PostgresStore {
    #[allow(unused_variables)]
    async fn create_admin_token(&self, token: &AdminToken) -> StoreResult<()> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn admin_token_by_hash(&self, hash: &TokenHash) -> StoreResult<Option<AdminToken>> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn admin_token(&self, id: &AdminTokenId) -> StoreResult<Option<AdminToken>> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn list_admin_tokens(&self) -> StoreResult<Vec<AdminToken>> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn count_admin_tokens(&self) -> StoreResult<u64> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn revoke_admin_token(
        &self,
        id: &AdminTokenId,
        at: Timestamp,
        by: &str,
    ) -> StoreResult<bool> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn touch_admin_token(
        &self,
        id: &AdminTokenId,
        at: Timestamp,
        not_before: Timestamp,
    ) -> StoreResult<()> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn rehash_admin_token(&self, id: &AdminTokenId, hash: &TokenHash) -> StoreResult<()> {
        todo!()
    }
}
