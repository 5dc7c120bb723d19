//! Registered applications (OAuth clients).

use async_trait::async_trait;

use crate::application::Application;
use crate::ids::ClientId;
use crate::strength::AuthStrength;

use super::StoreResult;

/// Registered applications, keyed by client id.
#[async_trait]
pub trait ApplicationStore: Send + Sync {
    async fn create_application(&self, app: &Application) -> StoreResult<()>;
    async fn application(&self, client_id: &ClientId) -> StoreResult<Option<Application>>;
    async fn list_applications(&self) -> StoreResult<Vec<Application>>;
    /// Sets or clears the strength an application requires; `false` when there is no such
    /// application.
    async fn set_required_strength(
        &self,
        client_id: &ClientId,
        strength: Option<AuthStrength>,
    ) -> StoreResult<bool>;
    async fn delete_application(&self, client_id: &ClientId) -> StoreResult<()>;
}
