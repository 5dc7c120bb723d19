//! Administrator API tokens (stored as hashes; see `crate::admin_token`).

use async_trait::async_trait;

use crate::admin_token::AdminToken;
use crate::clock::Timestamp;
use crate::ids::AdminTokenId;
use crate::secret::TokenHash;

use super::StoreResult;

/// Administrator API tokens, stored as hashes.
#[async_trait]
pub trait AdminTokenStore: Send + Sync {
    /// `Conflict` for a hash or id already stored.
    async fn create_admin_token(&self, token: &AdminToken) -> StoreResult<()>;
    /// The token stored under exactly this hash, whatever its state.
    async fn admin_token_by_hash(&self, hash: &TokenHash) -> StoreResult<Option<AdminToken>>;
    async fn admin_token(&self, id: &AdminTokenId) -> StoreResult<Option<AdminToken>>;
    /// Every token, revoked and expired ones included, oldest first.
    async fn list_admin_tokens(&self) -> StoreResult<Vec<AdminToken>>;
    /// How many tokens were ever made (revoked ones count).
    async fn count_admin_tokens(&self) -> StoreResult<u64>;
    /// Revokes a token that is not revoked yet: true for the one caller that revoked it.
    async fn revoke_admin_token(
        &self,
        id: &AdminTokenId,
        at: Timestamp,
        by: &str,
    ) -> StoreResult<bool>;
    /// Sets the last-used time to `at` unless the stored one is later than `not_before`, so
    /// that racing requests write at most once per period.
    async fn touch_admin_token(
        &self,
        id: &AdminTokenId,
        at: Timestamp,
        not_before: Timestamp,
    ) -> StoreResult<()>;
    /// Replaces a legacy (SHA-256) hash with the keyed one; only for a legacy row.
    async fn rehash_admin_token(&self, id: &AdminTokenId, hash: &TokenHash) -> StoreResult<()>;
}
