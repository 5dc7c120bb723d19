//! Groups, their members, and which group holds the administrator role.

use async_trait::async_trait;

use crate::ids::GroupId;
use crate::ids::UserId;
use crate::user::Group;

use super::StoreResult;

/// Groups and their members. Display names are unique (case-insensitive).
#[async_trait]
pub trait GroupStore: Send + Sync {
    async fn create_group(&self, group: &Group) -> StoreResult<()>;
    async fn group(&self, id: &GroupId) -> StoreResult<Option<Group>>;
    async fn list_groups(&self) -> StoreResult<Vec<Group>>;
    /// Adding a member twice is not an error.
    async fn add_group_member(&self, group: &GroupId, user: &UserId) -> StoreResult<()>;
    async fn remove_group_member(&self, group: &GroupId, user: &UserId) -> StoreResult<()>;
    async fn group_members(&self, group: &GroupId) -> StoreResult<Vec<UserId>>;
    async fn groups_of_user(&self, user: &UserId) -> StoreResult<Vec<GroupId>>;

    // Roles: which group holds the administrator role (bound by id, never by name).
    async fn administrators_group(&self) -> StoreResult<Option<GroupId>>;
    /// Binds the administrator role to `group`, replacing any previous binding.
    /// `NotFound` for an unknown group.
    async fn bind_administrators_group(&self, group: &GroupId) -> StoreResult<()>;
}
