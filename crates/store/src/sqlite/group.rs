//! SQLite: groups, membership and the administrator role binding.

use async_trait::async_trait;
use latchkey_domain::ids::{GroupId, UserId};
use latchkey_domain::store::{GroupStore, StoreResult};
use latchkey_domain::user::Group;

use super::SqliteStore;
use super::db::stmt;
use super::rows::{get, group_from};
use super::{backend, conflict_or_backend};

#[async_trait]
impl GroupStore for SqliteStore {
    async fn create_group(&self, group: &Group) -> StoreResult<()> {
        let query = stmt(
            "INSERT INTO groups (id, display_name, description, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(group.id.as_str())
        .bind(&group.display_name)
        .bind(&group.description)
        .bind(group.created_at.0);
        self.execute(query).await.map_err(|e| {
            conflict_or_backend(&format!("a group named {}", group.display_name), e)
        })?;
        Ok(())
    }

    async fn group(&self, id: &GroupId) -> StoreResult<Option<Group>> {
        self.read_by_key("SELECT * FROM groups WHERE id = ?", id.as_str(), group_from)
            .await
    }

    async fn list_groups(&self) -> StoreResult<Vec<Group>> {
        self.read_all(
            stmt("SELECT * FROM groups ORDER BY display_name, id"),
            group_from,
        )
        .await
    }

    async fn add_group_member(&self, group: &GroupId, user: &UserId) -> StoreResult<()> {
        let query = stmt(
            "INSERT INTO group_members (group_id, user_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(group.as_str())
        .bind(user.as_str());
        self.execute(query)
            .await
            .map_err(|e| conflict_or_backend("a group membership", e))?;
        Ok(())
    }

    async fn remove_group_member(&self, group: &GroupId, user: &UserId) -> StoreResult<()> {
        let query = stmt("DELETE FROM group_members WHERE group_id = ? AND user_id = ?")
            .bind(group.as_str())
            .bind(user.as_str());
        self.execute(query)
            .await
            .map_err(|e| backend("removing a group member", e))?;
        Ok(())
    }

    async fn group_members(&self, group: &GroupId) -> StoreResult<Vec<UserId>> {
        let ids = self
            .read_all(
                stmt("SELECT user_id FROM group_members WHERE group_id = ? ORDER BY user_id")
                    .bind(group.as_str()),
                |row| get::<String>(row, 0),
            )
            .await?;
        Ok(ids.into_iter().map(UserId::from_string).collect())
    }

    async fn groups_of_user(&self, user: &UserId) -> StoreResult<Vec<GroupId>> {
        let ids = self
            .read_all(
                stmt("SELECT group_id FROM group_members WHERE user_id = ? ORDER BY group_id")
                    .bind(user.as_str()),
                |row| get::<String>(row, 0),
            )
            .await?;
        Ok(ids.into_iter().map(GroupId::from_string).collect())
    }

    async fn administrators_group(&self) -> StoreResult<Option<GroupId>> {
        let id = self
            .read_one(
                stmt("SELECT group_id FROM role_bindings WHERE role = 'administrators'"),
                |row| get::<String>(row, 0),
            )
            .await?;
        Ok(id.map(GroupId::from_string))
    }

    async fn bind_administrators_group(&self, group: &GroupId) -> StoreResult<()> {
        let query = stmt(
            "INSERT INTO role_bindings (role, group_id) VALUES ('administrators', ?) \
             ON CONFLICT (role) DO UPDATE SET group_id = excluded.group_id",
        )
        .bind(group.as_str());
        self.execute(query)
            .await
            .map_err(|e| conflict_or_backend("the administrator role", e))?;
        Ok(())
    }
}
