//! Registered applications (OAuth clients).

use async_trait::async_trait;

use crate::application::{AppAssignment, Application, AssignedPrincipal};
use crate::ids::{ClientId, UserId};
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
    /// Deleting an application deletes its assignments too.
    async fn delete_application(&self, client_id: &ClientId) -> StoreResult<()>;
    /// Writes the settings an administrator may change after registration: display name,
    /// redirect URIs, post-logout redirect URIs, home URL, groups claim, assignment required.
    /// The client id, client kind (and secret), signing algorithm, required strength and
    /// creation time stay as stored. `false` when there is no such application.
    async fn update_application(&self, app: &Application) -> StoreResult<bool>;

    // Assignments: which users and groups may use an application that requires assignment.
    // Deleting the user or group removes its assignments.
    /// `Conflict` when the principal is already assigned to the application.
    async fn add_assignment(&self, assignment: &AppAssignment) -> StoreResult<()>;
    /// `false` when there was no such assignment.
    async fn remove_assignment(
        &self,
        client_id: &ClientId,
        principal: &AssignedPrincipal,
    ) -> StoreResult<bool>;
    /// The application's assignments, oldest first.
    async fn assignments(&self, client_id: &ClientId) -> StoreResult<Vec<AppAssignment>>;
    /// The applications `user` is assigned to, directly or through a group they are a member
    /// of; each once, sorted by client id.
    async fn applications_assigned_to(&self, user: &UserId) -> StoreResult<Vec<ClientId>>;
}
