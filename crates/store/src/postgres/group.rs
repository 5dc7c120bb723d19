//! PostgreSQL: groups, membership and the administrator role binding.

use async_trait::async_trait;
use latchkey_domain::ids::{GroupId, UserId};
use latchkey_domain::store::{GroupStore, StoreResult};
use latchkey_domain::user::Group;
use sqlx::postgres::PgRow;

use super::{PostgresStore, backend, conflict_or_backend, get, read_error, timestamp};

fn group_from(row: &PgRow) -> StoreResult<Group> {
    Ok(Group {
        id: GroupId::from_string(get::<String>(row, "id")?),
        display_name: get(row, "display_name")?,
        description: get(row, "description")?,
        created_at: timestamp(row, "created_at")?,
    })
}

#[async_trait]
impl GroupStore for PostgresStore {
    async fn create_group(&self, group: &Group) -> StoreResult<()> {
        // The unique index on lower(display_name) refuses a name differing only in case.
        let query = sqlx::query(
            "INSERT INTO groups (id, display_name, description, created_at) VALUES ($1, $2, $3, $4)",
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
        self.read_by_key(
            "SELECT * FROM groups WHERE id = $1",
            id.as_str(),
            group_from,
        )
        .await
    }

    async fn list_groups(&self) -> StoreResult<Vec<Group>> {
        self.read_all(
            sqlx::query(
                "SELECT * FROM groups ORDER BY display_name COLLATE \"C\", id COLLATE \"C\"",
            ),
            group_from,
        )
        .await
    }

    async fn add_group_member(&self, group: &GroupId, user: &UserId) -> StoreResult<()> {
        let query = sqlx::query(
            "INSERT INTO group_members (group_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(group.as_str())
        .bind(user.as_str());
        self.execute(query)
            .await
            .map_err(|e| conflict_or_backend("a group membership", e))?;
        Ok(())
    }

    async fn remove_group_member(&self, group: &GroupId, user: &UserId) -> StoreResult<()> {
        let query = sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND user_id = $2")
            .bind(group.as_str())
            .bind(user.as_str());
        self.execute(query)
            .await
            .map_err(|e| backend("removing a group member", e))?;
        Ok(())
    }

    async fn group_members(&self, group: &GroupId) -> StoreResult<Vec<UserId>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT user_id FROM group_members WHERE group_id = $1 ORDER BY user_id COLLATE \"C\"",
        )
        .bind(group.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(read_error)?;
        Ok(ids.into_iter().map(UserId::from_string).collect())
    }

    async fn groups_of_user(&self, user: &UserId) -> StoreResult<Vec<GroupId>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT group_id FROM group_members WHERE user_id = $1 ORDER BY group_id COLLATE \"C\"",
        )
        .bind(user.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(read_error)?;
        Ok(ids.into_iter().map(GroupId::from_string).collect())
    }

    async fn administrators_group(&self) -> StoreResult<Option<GroupId>> {
        let id: Option<String> =
            sqlx::query_scalar("SELECT group_id FROM role_bindings WHERE role = 'administrators'")
                .fetch_optional(&self.pool)
                .await
                .map_err(read_error)?;
        Ok(id.map(GroupId::from_string))
    }

    async fn bind_administrators_group(&self, group: &GroupId) -> StoreResult<()> {
        // One row per role: the upsert is atomic, so of two concurrent binds the later wins.
        let query = sqlx::query(
            "INSERT INTO role_bindings (role, group_id) VALUES ('administrators', $1) \
             ON CONFLICT (role) DO UPDATE SET group_id = excluded.group_id",
        )
        .bind(group.as_str());
        self.execute(query)
            .await
            .map_err(|e| conflict_or_backend("the administrator role", e))?;
        Ok(())
    }
}
