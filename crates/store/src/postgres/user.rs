//! PostgreSQL: users and their password hashes.

use async_trait::async_trait;
use latchkey_domain::error::StoreError;
use latchkey_domain::ids::UserId;
use latchkey_domain::store::{StoreResult, UserStore};
use latchkey_domain::user::{Upn, User};
use serde_json::Value;
use sqlx::postgres::PgRow;

use super::{PostgresStore, backend, conflict_or_backend, corrupt, get, read_error, timestamp};

/// Stored UPNs were validated on the way in; decoding them without re-validating keeps old rows
/// readable even if the domain's UPN rules tighten later.
fn upn_from(row: &PgRow) -> StoreResult<Upn> {
    serde_json::from_value(Value::String(get(row, "upn")?))
        .map_err(|_| corrupt("user principal name"))
}

fn user_from(row: &PgRow) -> StoreResult<User> {
    Ok(User {
        id: UserId::from_string(get::<String>(row, "id")?),
        upn: upn_from(row)?,
        display_name: get(row, "display_name")?,
        email: get(row, "email")?,
        enabled: get(row, "enabled")?,
        created_at: timestamp(row, "created_at")?,
    })
}

#[async_trait]
impl UserStore for PostgresStore {
    async fn create_user(&self, user: &User) -> StoreResult<()> {
        let query = sqlx::query(
            "INSERT INTO users (id, upn, display_name, email, enabled, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(user.id.as_str())
        .bind(user.upn.as_str())
        .bind(&user.display_name)
        .bind(&user.email)
        .bind(user.enabled)
        .bind(user.created_at.0);
        self.execute(query)
            .await
            .map_err(|e| conflict_or_backend(&format!("a user named {}", user.upn), e))?;
        Ok(())
    }

    async fn update_user(&self, user: &User) -> StoreResult<()> {
        // `created_at` is history, not state: an update never rewrites it.
        let query = sqlx::query(
            "UPDATE users SET upn = $1, display_name = $2, email = $3, enabled = $4 WHERE id = $5",
        )
        .bind(user.upn.as_str())
        .bind(&user.display_name)
        .bind(&user.email)
        .bind(user.enabled)
        .bind(user.id.as_str());
        let done = self
            .execute(query)
            .await
            .map_err(|e| conflict_or_backend(&format!("a user named {}", user.upn), e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn user(&self, id: &UserId) -> StoreResult<Option<User>> {
        self.read_by_key("SELECT * FROM users WHERE id = $1", id.as_str(), user_from)
            .await
    }

    async fn user_by_upn(&self, upn: &Upn) -> StoreResult<Option<User>> {
        self.read_by_key(
            "SELECT * FROM users WHERE upn = $1",
            upn.as_str(),
            user_from,
        )
        .await
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        // COLLATE "C": byte order, as SQLite's default BINARY collation sorts, whatever the
        // database's locale.
        self.read_all(
            sqlx::query("SELECT * FROM users ORDER BY upn COLLATE \"C\""),
            user_from,
        )
        .await
    }

    async fn set_password_hash(&self, id: &UserId, hash: Option<&str>) -> StoreResult<()> {
        let query = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(hash)
            .bind(id.as_str());
        let done = self
            .execute(query)
            .await
            .map_err(|e| backend("setting a password", e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn password_hash(&self, id: &UserId) -> StoreResult<Option<String>> {
        let hash: Option<Option<String>> =
            sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(read_error)?;
        Ok(hash.flatten())
    }
}
