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
    /// The user's certificate user ids (Entra's `certificateUserIds`), in the order set.
    async fn certificate_user_ids(&self, id: &UserId) -> StoreResult<Vec<String>>;
    /// Replaces the user's certificate user ids at once. Each value belongs to at most one
    /// user: a value another user has is a `Conflict` and nothing changes; an unknown user is
    /// `NotFound`.
    async fn set_certificate_user_ids(&self, id: &UserId, values: &[String]) -> StoreResult<()>;
    /// The users with this certificate user id (by an index; at most one while values are
    /// unique, a list so that a caller can refuse an ambiguous one if that ever changes).
    async fn users_by_certificate_user_id(&self, value: &str) -> StoreResult<Vec<User>>;
}
