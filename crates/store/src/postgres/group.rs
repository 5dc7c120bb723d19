//! PostgreSQL: the GroupStore port (not written yet).

use async_trait::async_trait;
use latchkey_domain::ids::GroupId;
use latchkey_domain::ids::UserId;
use latchkey_domain::store::{GroupStore, StoreResult};
use latchkey_domain::user::Group;

use super::PostgresStore;

#[async_trait]
impl GroupStore for PostgresStore {
    #[allow(unused_variables)]
    async fn create_group(&self, group: &Group) -> StoreResult<()> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn group(&self, id: &GroupId) -> StoreResult<Option<Group>> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn list_groups(&self) -> StoreResult<Vec<Group>> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn add_group_member(&self, group: &GroupId, user: &UserId) -> StoreResult<()> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn remove_group_member(&self, group: &GroupId, user: &UserId) -> StoreResult<()> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn group_members(&self, group: &GroupId) -> StoreResult<Vec<UserId>> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn groups_of_user(&self, user: &UserId) -> StoreResult<Vec<GroupId>> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn administrators_group(&self) -> StoreResult<Option<GroupId>> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn bind_administrators_group(&self, group: &GroupId) -> StoreResult<()> {
        todo!()
    }
}
