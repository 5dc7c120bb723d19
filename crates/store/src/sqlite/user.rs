//! SQLite: users and their password hashes.

use async_trait::async_trait;
use latchkey_domain::error::StoreError;
use latchkey_domain::ids::UserId;
use latchkey_domain::store::{StoreResult, UserStore};
use latchkey_domain::user::{Upn, User};

use super::SqliteStore;
use super::rows::user_from;
use super::{backend, begin, conflict_or_backend, read_error};

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, user: &User) -> StoreResult<()> {
        let query = sqlx::query(
            "INSERT INTO users (id, upn, display_name, email, enabled, created_at) VALUES (?, ?, ?, ?, ?, ?)",
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
            "UPDATE users SET upn = ?, display_name = ?, email = ?, enabled = ? WHERE id = ?",
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
        self.read_by_key("SELECT * FROM users WHERE id = ?", id.as_str(), user_from)
            .await
    }

    async fn user_by_upn(&self, upn: &Upn) -> StoreResult<Option<User>> {
        self.read_by_key("SELECT * FROM users WHERE upn = ?", upn.as_str(), user_from)
            .await
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        self.read_all(sqlx::query("SELECT * FROM users ORDER BY upn"), user_from)
            .await
    }

    async fn set_password_hash(&self, id: &UserId, hash: Option<&str>) -> StoreResult<()> {
        let query = sqlx::query("UPDATE users SET password_hash = ? WHERE id = ?")
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
            sqlx::query_scalar("SELECT password_hash FROM users WHERE id = ?")
                .bind(id.as_str())
                .fetch_optional(&mut *self.reader().await?)
                .await
                .map_err(read_error)?;
        Ok(hash.flatten())
    }

    async fn certificate_user_ids(&self, id: &UserId) -> StoreResult<Vec<String>> {
        sqlx::query_scalar(
            "SELECT value FROM user_certificate_ids WHERE user_id = ? ORDER BY position",
        )
        .bind(id.as_str())
        .fetch_all(&mut *self.reader().await?)
        .await
        .map_err(read_error)
    }

    async fn set_certificate_user_ids(&self, id: &UserId, values: &[String]) -> StoreResult<()> {
        // Under the write lock, in one transaction: a refused value leaves the old set whole.
        let mut writer = self.write_lock().await?;
        let mut tx = begin(&mut writer).await?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM users WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| backend("reading a user", e))?;
        if exists.is_none() {
            return Err(StoreError::NotFound);
        }
        sqlx::query("DELETE FROM user_certificate_ids WHERE user_id = ?")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|e| backend("replacing certificate user ids", e))?;
        for (position, value) in values.iter().enumerate() {
            sqlx::query(
                "INSERT INTO user_certificate_ids (value, user_id, position) VALUES (?, ?, ?)",
            )
            .bind(value)
            .bind(id.as_str())
            .bind(position as i64)
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
                 WHERE user_certificate_ids.value = ? ORDER BY users.upn",
            )
            .bind(value.to_string()),
            user_from,
        )
        .await
    }
}
