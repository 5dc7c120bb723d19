//! PostgreSQL: administrator API tokens.

use async_trait::async_trait;
use latchkey_domain::admin_token::AdminToken;
use latchkey_domain::clock::Timestamp;
use latchkey_domain::ids::AdminTokenId;
use latchkey_domain::secret::TokenHash;
use latchkey_domain::store::{AdminTokenStore, StoreResult};
use sqlx::postgres::PgRow;

use super::{
    PostgresStore, backend, conflict_or_backend, get, optional_timestamp, read_error, timestamp,
};

fn admin_token_from(row: &PgRow) -> StoreResult<AdminToken> {
    Ok(AdminToken {
        id: AdminTokenId::from_string(get::<String>(row, "id")?),
        name: get(row, "name")?,
        hash: TokenHash::from_stored(get::<String>(row, "hash")?),
        legacy_sha256: get(row, "legacy_sha256")?,
        created_at: timestamp(row, "created_at")?,
        created_by: get(row, "created_by")?,
        expires_at: optional_timestamp(row, "expires_at")?,
        last_used_at: optional_timestamp(row, "last_used_at")?,
        revoked_at: optional_timestamp(row, "revoked_at")?,
        revoked_by: get(row, "revoked_by")?,
    })
}

#[async_trait]
impl AdminTokenStore for PostgresStore {
    async fn create_admin_token(&self, token: &AdminToken) -> StoreResult<()> {
        let query = sqlx::query(
            "INSERT INTO admin_tokens (id, hash, legacy_sha256, name, created_at, created_by, \
             expires_at, last_used_at, revoked_at, revoked_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(token.id.as_str())
        .bind(token.hash.as_str())
        .bind(token.legacy_sha256)
        .bind(&token.name)
        .bind(token.created_at.0)
        .bind(&token.created_by)
        .bind(token.expires_at.map(|t| t.0))
        .bind(token.last_used_at.map(|t| t.0))
        .bind(token.revoked_at.map(|t| t.0))
        .bind(&token.revoked_by);
        self.execute(query)
            .await
            .map_err(|e| conflict_or_backend("an administrator token", e))?;
        Ok(())
    }

    async fn admin_token_by_hash(&self, hash: &TokenHash) -> StoreResult<Option<AdminToken>> {
        self.read_by_key(
            "SELECT * FROM admin_tokens WHERE hash = $1",
            hash.as_str(),
            admin_token_from,
        )
        .await
    }

    async fn admin_token(&self, id: &AdminTokenId) -> StoreResult<Option<AdminToken>> {
        self.read_by_key(
            "SELECT * FROM admin_tokens WHERE id = $1",
            id.as_str(),
            admin_token_from,
        )
        .await
    }

    async fn list_admin_tokens(&self) -> StoreResult<Vec<AdminToken>> {
        self.read_all(
            sqlx::query("SELECT * FROM admin_tokens ORDER BY created_at, id COLLATE \"C\""),
            admin_token_from,
        )
        .await
    }

    async fn count_admin_tokens(&self) -> StoreResult<u64> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM admin_tokens")
            .fetch_one(&self.pool)
            .await
            .map_err(read_error)?;
        Ok(count.unsigned_abs())
    }

    async fn revoke_admin_token(
        &self,
        id: &AdminTokenId,
        at: Timestamp,
        by: &str,
    ) -> StoreResult<bool> {
        // Conditional: of two concurrent revocations, the second re-checks `revoked_at IS NULL`
        // after the first commits and changes nothing, so exactly one reports true.
        let query = sqlx::query(
            "UPDATE admin_tokens SET revoked_at = $1, revoked_by = $2 \
             WHERE id = $3 AND revoked_at IS NULL",
        )
        .bind(at.0)
        .bind(by)
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
        let query = sqlx::query(
            "UPDATE admin_tokens SET last_used_at = $1 \
             WHERE id = $2 AND (last_used_at IS NULL OR last_used_at <= $3)",
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
        // Conditional on still being legacy, so a token is re-hashed once however many
        // instances see its first use at the same moment.
        let query = sqlx::query(
            "UPDATE admin_tokens SET hash = $1, legacy_sha256 = FALSE WHERE id = $2 AND legacy_sha256",
        )
        .bind(hash.as_str())
        .bind(id.as_str());
        self.execute(query)
            .await
            .map_err(|e| conflict_or_backend("an administrator token", e))?;
        Ok(())
    }
}
