//! SQLite: administrator API tokens.

use async_trait::async_trait;
use latchkey_domain::admin_token::AdminToken;
use latchkey_domain::clock::Timestamp;
use latchkey_domain::ids::AdminTokenId;
use latchkey_domain::secret::TokenHash;
use latchkey_domain::store::{AdminTokenStore, StoreResult};

use super::SqliteStore;
use super::db::{get, stmt};
use super::rows::admin_token_from;
use super::{backend, conflict_or_backend};

#[async_trait]
impl AdminTokenStore for SqliteStore {
    async fn create_admin_token(&self, token: &AdminToken) -> StoreResult<()> {
        let query = stmt(
            "INSERT INTO admin_tokens (id, hash, legacy_sha256, name, created_at, created_by, \
             expires_at, last_used_at, revoked_at, revoked_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(token.id.as_str())
        .bind(token.hash.as_str())
        .bind(token.legacy_sha256)
        .bind(token.name.as_str())
        .bind(token.created_at.0)
        .bind(token.created_by.as_str())
        .bind(token.expires_at.map(|t| t.0))
        .bind(token.last_used_at.map(|t| t.0))
        .bind(token.revoked_at.map(|t| t.0))
        .bind(token.revoked_by.as_deref());
        self.execute(query)
            .await
            .map_err(|e| conflict_or_backend("an administrator token", e))?;
        Ok(())
    }

    async fn admin_token_by_hash(&self, hash: &TokenHash) -> StoreResult<Option<AdminToken>> {
        self.read_by_key(
            "SELECT * FROM admin_tokens WHERE hash = ?",
            hash.as_str(),
            admin_token_from,
        )
        .await
    }

    async fn admin_token(&self, id: &AdminTokenId) -> StoreResult<Option<AdminToken>> {
        self.read_by_key(
            "SELECT * FROM admin_tokens WHERE id = ?",
            id.as_str(),
            admin_token_from,
        )
        .await
    }

    async fn list_admin_tokens(&self) -> StoreResult<Vec<AdminToken>> {
        self.read_all(
            stmt("SELECT * FROM admin_tokens ORDER BY created_at, id"),
            admin_token_from,
        )
        .await
    }

    async fn count_admin_tokens(&self) -> StoreResult<u64> {
        let count = self
            .read_one(stmt("SELECT COUNT(*) FROM admin_tokens"), |row| {
                get::<i64>(row, 0)
            })
            .await?
            .unwrap_or(0);
        Ok(count.unsigned_abs())
    }

    async fn revoke_admin_token(
        &self,
        id: &AdminTokenId,
        at: Timestamp,
        by: &str,
    ) -> StoreResult<bool> {
        let query = stmt(
            "UPDATE admin_tokens SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL",
        )
        .bind(at.0)
        .bind(by.to_string())
        .bind(id.as_str());
        let done = self
            .execute(query)
            .await
            .map_err(|e| backend("revoking an administrator token", e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn touch_admin_token(
        &self,
        id: &AdminTokenId,
        at: Timestamp,
        not_before: Timestamp,
    ) -> StoreResult<()> {
        let query = stmt(
            "UPDATE admin_tokens SET last_used_at = ? \
             WHERE id = ? AND (last_used_at IS NULL OR last_used_at <= ?)",
        )
        .bind(at.0)
        .bind(id.as_str())
        .bind(not_before.0);
        self.execute(query)
            .await
            .map_err(|e| backend("recording an administrator token's use", e))?;
        Ok(())
    }

    async fn rehash_admin_token(&self, id: &AdminTokenId, hash: &TokenHash) -> StoreResult<()> {
        let query = stmt(
            "UPDATE admin_tokens SET hash = ?, legacy_sha256 = 0 WHERE id = ? AND legacy_sha256 = 1",
        )
        .bind(hash.as_str())
        .bind(id.as_str());
        self.execute(query)
            .await
            .map_err(|e| conflict_or_backend("an administrator token", e))?;
        Ok(())
    }
}
