//! Users and their password hashes.

use async_trait::async_trait;

use crate::ids::UserId;
use crate::user::Upn;
use crate::user::User;

use super::StoreResult;

/// Users and their password hashes. UPNs are unique; `create_user` answers `Conflict` for a
/// taken one.
#[async_trait]
pub trait UserStore: Send + Sync {
    async fn create_user(&self, user: &User) -> StoreResult<()>;
    async fn update_user(&self, user: &User) -> StoreResult<()>;
    async fn user(&self, id: &UserId) -> StoreResult<Option<User>>;
    async fn user_by_upn(&self, upn: &Upn) -> StoreResult<Option<User>>;
    async fn list_users(&self) -> StoreResult<Vec<User>>;
    async fn set_password_hash(&self, id: &UserId, hash: Option<&str>) -> StoreResult<()>;
    async fn password_hash(&self, id: &UserId) -> StoreResult<Option<String>>;
}
