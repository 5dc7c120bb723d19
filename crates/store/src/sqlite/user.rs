//! SQLite: users and their password hashes.

use async_trait::async_trait;
use latchkey_domain::error::StoreError;
use latchkey_domain::ids::UserId;
use latchkey_domain::store::{StoreResult, UserStore};
use latchkey_domain::user::{Upn, User};

use super::SqliteStore;
use super::db::stmt;
use super::rows::{get, user_from};
use super::{backend, conflict_or_backend};

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, user: &User) -> StoreResult<()> {
        let query = stmt(
            "INSERT INTO users (id, upn, display_name, email, enabled, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(user.id.as_str())
        .bind(user.upn.as_str())
        .bind(&user.display_name)
        .bind(user.email.as_deref())
        .bind(user.enabled)
        .bind(user.created_at.0);
        self.execute(query)
            .await
            .map_err(|e| conflict_or_backend(&format!("a user named {}", user.upn), e))?;
        Ok(())
    }

    async fn update_user(&self, user: &User) -> StoreResult<()> {
        // `created_at` is history, not state: an update never rewrites it.
        let query =
            stmt("UPDATE users SET upn = ?, display_name = ?, email = ?, enabled = ? WHERE id = ?")
                .bind(user.upn.as_str())
                .bind(&user.display_name)
                .bind(user.email.as_deref())
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
        self.read_steady(
            |rows| &rows.users,
            &format!("id:{}", id.as_str()),
            || {
                let read = stmt("SELECT * FROM users WHERE id = ?").bind(id.as_str());
                self.read(|conn| read.fetch_optional(conn, user_from))
            },
        )
    }

    async fn user_by_upn(&self, upn: &Upn) -> StoreResult<Option<User>> {
        self.read_steady(
            |rows| &rows.users,
            &format!("upn:{}", upn.as_str()),
            || {
                let read = stmt("SELECT * FROM users WHERE upn = ?").bind(upn.as_str());
                self.read(|conn| read.fetch_optional(conn, user_from))
            },
        )
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        self.read_all(stmt("SELECT * FROM users ORDER BY upn"), user_from)
            .await
    }

    async fn set_password_hash(&self, id: &UserId, hash: Option<&str>) -> StoreResult<()> {
        let query = stmt("UPDATE users SET password_hash = ? WHERE id = ?")
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
        let hash = self
            .read_one(
                stmt("SELECT password_hash FROM users WHERE id = ?").bind(id.as_str()),
                |row| get::<Option<String>>(row, 0),
            )
            .await?;
        Ok(hash.flatten())
    }

    async fn certificate_user_ids(&self, id: &UserId) -> StoreResult<Vec<String>> {
        self.read_all(
            stmt("SELECT value FROM user_certificate_ids WHERE user_id = ? ORDER BY position")
                .bind(id.as_str()),
            |row| get::<String>(row, 0),
        )
        .await
    }

    async fn set_certificate_user_ids(&self, id: &UserId, values: &[String]) -> StoreResult<()> {
        // Under the write lock, in one transaction: a refused value leaves the old set whole.
        let exists = stmt("SELECT 1 FROM users WHERE id = ?").bind(id.as_str());
        let clear = stmt("DELETE FROM user_certificate_ids WHERE user_id = ?").bind(id.as_str());
        let inserts: Vec<_> = values
            .iter()
            .enumerate()
            .map(|(position, value)| {
                stmt("INSERT INTO user_certificate_ids (value, user_id, position) VALUES (?, ?, ?)")
                    .bind(value)
                    .bind(id.as_str())
                    .bind(position as i64)
            })
            .collect();
        self.write("replacing certificate user ids", move |conn| {
            let tx = conn
                .savepoint()
                .map_err(|e| backend("starting a write", e))?;
            if exists
                .fetch_optional(&tx, |row| get::<i64>(row, 0))?
                .is_none()
            {
                return Err(StoreError::NotFound);
            }
            clear
                .execute(&tx)
                .map_err(|e| backend("replacing certificate user ids", e))?;
            for insert in &inserts {
                insert
                    .execute(&tx)
                    .map_err(|e| conflict_or_backend("a user with this certificate user id", e))?;
            }
            tx.commit()
                .map_err(|e| backend("replacing certificate user ids", e))
        })
        .await
    }

    async fn users_by_certificate_user_id(&self, value: &str) -> StoreResult<Vec<User>> {
        self.read_all(
            stmt(
                "SELECT users.* FROM user_certificate_ids JOIN users ON users.id = user_certificate_ids.user_id \
                 WHERE user_certificate_ids.value = ? ORDER BY users.upn",
            )
            .bind(value.to_string()),
            user_from,
        )
        .await
    }
}
