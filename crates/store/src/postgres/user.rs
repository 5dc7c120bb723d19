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

    async fn certificate_user_ids(&self, id: &UserId) -> StoreResult<Vec<String>> {
        sqlx::query_scalar(
            "SELECT value FROM user_certificate_ids WHERE user_id = $1 ORDER BY position",
        )
        .bind(id.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(read_error)
    }

    async fn set_certificate_user_ids(&self, id: &UserId, values: &[String]) -> StoreResult<()> {
        // One transaction: a refused value leaves the old set whole. The user's row is locked
        // so two concurrent replacements of one user's set run one after the other.
        let mut tx = self.begin().await?;
        let exists: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM users WHERE id = $1 FOR UPDATE")
                .bind(id.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| backend("reading a user", e))?;
        if exists.is_none() {
            return Err(StoreError::NotFound);
        }
        sqlx::query("DELETE FROM user_certificate_ids WHERE user_id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|e| backend("replacing certificate user ids", e))?;
        for (position, value) in values.iter().enumerate() {
            sqlx::query(
                "INSERT INTO user_certificate_ids (value, user_id, position) VALUES ($1, $2, $3)",
            )
            .bind(value)
            .bind(id.as_str())
            .bind(position as i32)
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict_or_backend("a user with this certificate user id", e))?;
        }
        tx.commit()
            .await
            .map_err(|e| backend("replacing certificate user ids", e))
    }

    async fn users_by_certificate_user_id(&self, value: &str) -> StoreResult<Vec<User>> {
        self.read_all(
            sqlx::query(
                "SELECT users.* FROM user_certificate_ids JOIN users ON users.id = user_certificate_ids.user_id \
                 WHERE user_certificate_ids.value = $1 ORDER BY users.upn COLLATE \"C\"",
            )
            .bind(value),
            user_from,
        )
        .await
    }
}
