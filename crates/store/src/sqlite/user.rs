//! SQLite: users and their password hashes.

use async_trait::async_trait;
use latchkey_domain::error::StoreError;
use latchkey_domain::ids::UserId;
use latchkey_domain::store::{StoreResult, UserStore};
use latchkey_domain::user::{Upn, User};

use super::SqliteStore;
use super::rows::user_from;
use super::{backend, conflict_or_backend, read_error};

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
}
