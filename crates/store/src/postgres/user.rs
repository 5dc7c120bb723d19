//! PostgreSQL: the UserStore port (not written yet).

use async_trait::async_trait;
use latchkey_domain::ids::UserId;
use latchkey_domain::store::{StoreResult, UserStore};
use latchkey_domain::user::Upn;
use latchkey_domain::user::User;

use super::PostgresStore;

#[async_trait]
impl UserStore for PostgresStore {
    #[allow(unused_variables)]
    async fn create_user(&self, user: &User) -> StoreResult<()> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn update_user(&self, user: &User) -> StoreResult<()> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn user(&self, id: &UserId) -> StoreResult<Option<User>> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn user_by_upn(&self, upn: &Upn) -> StoreResult<Option<User>> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn list_users(&self) -> StoreResult<Vec<User>> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn set_password_hash(&self, id: &UserId, hash: Option<&str>) -> StoreResult<()> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn password_hash(&self, id: &UserId) -> StoreResult<Option<String>> {
        todo!()
    }
}
