//! SQLite: registered applications.

use async_trait::async_trait;
use latchkey_domain::application::Application;
use latchkey_domain::ids::ClientId;
use latchkey_domain::store::{ApplicationStore, StoreResult};
use latchkey_domain::strength::AuthStrength;

use super::SqliteStore;
use super::rows::application_from;
use super::{backend, conflict_or_backend, to_json};

#[async_trait]
impl ApplicationStore for SqliteStore {
    async fn create_application(&self, app: &Application) -> StoreResult<()> {
        let query = sqlx::query(
            "INSERT INTO applications (client_id, display_name, redirect_uris, post_logout_redirect_uris, kind, \
             id_token_alg, home_url, required_strength, created_at, backchannel_logout_uri) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(app.client_id.as_str())
        .bind(&app.display_name)
        .bind(to_json("redirect URIs", serde_json::to_string(&app.redirect_uris))?)
        .bind(to_json("post-logout redirect URIs", serde_json::to_string(&app.post_logout_redirect_uris))?)
        .bind(to_json("client kind", serde_json::to_string(&app.kind))?)
        .bind(app.id_token_alg.as_str())
        .bind(&app.home_url)
        .bind(app.required_strength.map(AuthStrength::id))
        .bind(app.created_at.0)
        .bind(&app.backchannel_logout_uri);
        self.execute(query).await.map_err(|e| {
            conflict_or_backend(
                &format!("an application with client ID {}", app.client_id),
                e,
            )
        })?;
        Ok(())
    }

    async fn application(&self, client_id: &ClientId) -> StoreResult<Option<Application>> {
        self.read_by_key(
            "SELECT * FROM applications WHERE client_id = ?",
            client_id.as_str(),
            application_from,
        )
        .await
    }

    async fn list_applications(&self) -> StoreResult<Vec<Application>> {
        self.read_all(
            sqlx::query("SELECT * FROM applications ORDER BY display_name, client_id"),
            application_from,
        )
        .await
    }

    async fn set_required_strength(
        &self,
        client_id: &ClientId,
        strength: Option<AuthStrength>,
    ) -> StoreResult<bool> {
        let query =
            sqlx::query("UPDATE applications SET required_strength = ? WHERE client_id = ?")
                .bind(strength.map(AuthStrength::id))
                .bind(client_id.as_str());
        let done = self
            .execute(query)
            .await
            .map_err(|e| backend("setting an application's required strength", e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_application(&self, client_id: &ClientId) -> StoreResult<()> {
        // Cascades to the application's grants and their codes and tokens.
        let query =
            sqlx::query("DELETE FROM applications WHERE client_id = ?").bind(client_id.as_str());
        self.execute(query)
            .await
            .map_err(|e| backend("deleting an application", e))?;
        Ok(())
    }
}
