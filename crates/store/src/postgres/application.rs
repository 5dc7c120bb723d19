//! PostgreSQL: registered applications.

use async_trait::async_trait;
use latchkey_domain::application::{Application, ClientKind, SigningAlg};
use latchkey_domain::ids::ClientId;
use latchkey_domain::store::{ApplicationStore, StoreResult};
use latchkey_domain::strength::AuthStrength;
use sqlx::postgres::PgRow;

use super::{
    PostgresStore, backend, conflict_or_backend, corrupt, get, string_list, timestamp, to_json,
};

fn application_from(row: &PgRow) -> StoreResult<Application> {
    let kind: ClientKind =
        serde_json::from_str(&get::<String>(row, "kind")?).map_err(|_| corrupt("client kind"))?;
    let alg = SigningAlg::parse(&get::<String>(row, "id_token_alg")?)
        .map_err(|_| corrupt("ID token algorithm"))?;
    Ok(Application {
        client_id: ClientId::from_string(get::<String>(row, "client_id")?),
        display_name: get(row, "display_name")?,
        redirect_uris: string_list(row, "redirect_uris")?,
        post_logout_redirect_uris: string_list(row, "post_logout_redirect_uris")?,
        kind,
        id_token_alg: alg,
        home_url: get(row, "home_url")?,
        required_strength: match get::<Option<String>>(row, "required_strength")? {
            None => None,
            Some(id) => Some(AuthStrength::parse(&id).ok_or_else(|| corrupt("required strength"))?),
        },
        created_at: timestamp(row, "created_at")?,
        backchannel_logout_uri: get(row, "backchannel_logout_uri")?,
    })
}

#[async_trait]
impl ApplicationStore for PostgresStore {
    async fn create_application(&self, app: &Application) -> StoreResult<()> {
        let query = sqlx::query(
            "INSERT INTO applications (client_id, display_name, redirect_uris, post_logout_redirect_uris, kind, \
             id_token_alg, home_url, required_strength, created_at, backchannel_logout_uri) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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
            "SELECT * FROM applications WHERE client_id = $1",
            client_id.as_str(),
            application_from,
        )
        .await
    }

    async fn list_applications(&self) -> StoreResult<Vec<Application>> {
        self.read_all(
            sqlx::query(
                "SELECT * FROM applications ORDER BY display_name COLLATE \"C\", client_id COLLATE \"C\"",
            ),
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
            sqlx::query("UPDATE applications SET required_strength = $1 WHERE client_id = $2")
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
        self.write_by_key(
            "DELETE FROM applications WHERE client_id = $1",
            client_id.as_str(),
            "deleting an application",
        )
        .await
    }
}
