//! SQLite: registered applications.

use async_trait::async_trait;
use latchkey_domain::application::{AppAssignment, Application, AssignedPrincipal};
use latchkey_domain::ids::{ClientId, GroupId, UserId};
use latchkey_domain::store::{ApplicationStore, StoreResult};
use latchkey_domain::strength::AuthStrength;
use rusqlite::Row;

use super::SqliteStore;
use super::db::stmt;
use super::rows::application_from;
use super::rows::{get, timestamp};
use super::{backend, conflict_or_backend, corrupt, to_json};

#[async_trait]
impl ApplicationStore for SqliteStore {
    async fn create_application(&self, app: &Application) -> StoreResult<()> {
        let query = stmt(
            "INSERT INTO applications (client_id, display_name, redirect_uris, post_logout_redirect_uris, kind, \
             id_token_alg, home_url, required_strength, created_at, allowed_origins, groups_claim, assignment_required, \
             backchannel_logout_uri) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(app.client_id.as_str())
        .bind(app.display_name.as_str())
        .bind(to_json("redirect URIs", serde_json::to_string(&app.redirect_uris))?)
        .bind(to_json("post-logout redirect URIs", serde_json::to_string(&app.post_logout_redirect_uris))?)
        .bind(to_json("client kind", serde_json::to_string(&app.kind))?)
        .bind(app.id_token_alg.as_str())
        .bind(app.home_url.as_deref())
        .bind(app.required_strength.map(AuthStrength::id))
        .bind(app.created_at.0)
        .bind(to_json("allowed origins", serde_json::to_string(&app.allowed_origins))?)
        .bind(app.groups_claim.as_str())
        .bind(app.assignment_required)
        .bind(app.backchannel_logout_uri.as_deref());
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
            stmt("SELECT * FROM applications ORDER BY display_name, client_id"),
            application_from,
        )
        .await
    }

    async fn set_required_strength(
        &self,
        client_id: &ClientId,
        strength: Option<AuthStrength>,
    ) -> StoreResult<bool> {
        let query = stmt("UPDATE applications SET required_strength = ? WHERE client_id = ?")
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
        let query = stmt("DELETE FROM applications WHERE client_id = ?").bind(client_id.as_str());
        self.execute(query)
            .await
            .map_err(|e| backend("deleting an application", e))?;
        Ok(())
    }
    async fn update_application(&self, app: &Application) -> StoreResult<bool> {
        let query = stmt(
            "UPDATE applications SET display_name = ?, redirect_uris = ?, post_logout_redirect_uris = ?, \
             home_url = ?, groups_claim = ?, assignment_required = ?, allowed_origins = ?, backchannel_logout_uri = ? WHERE client_id = ?",
        )
        .bind(app.display_name.clone())
        .bind(to_json("redirect URIs", serde_json::to_string(&app.redirect_uris))?)
        .bind(to_json("post-logout redirect URIs", serde_json::to_string(&app.post_logout_redirect_uris))?)
        .bind(app.home_url.clone())
        .bind(app.groups_claim.as_str())
        .bind(app.assignment_required)
        .bind(to_json("allowed origins", serde_json::to_string(&app.allowed_origins))?)
        .bind(app.backchannel_logout_uri.clone())
        .bind(app.client_id.as_str().to_owned());
        let done = self
            .execute(query)
            .await
            .map_err(|e| backend("updating an application", e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn add_assignment(&self, assignment: &AppAssignment) -> StoreResult<()> {
        let (user, group) = principal_columns(&assignment.principal);
        let query = stmt("INSERT INTO app_assignments (client_id, user_id, group_id, created_at) VALUES (?, ?, ?, ?)")
            .bind(assignment.client_id.as_str().to_owned())
            .bind(user)
            .bind(group)
            .bind(assignment.created_at.0);
        self.execute(query)
            .await
            .map_err(|e| conflict_or_backend("this assignment", e))?;
        Ok(())
    }

    async fn remove_assignment(
        &self,
        client_id: &ClientId,
        principal: &AssignedPrincipal,
    ) -> StoreResult<bool> {
        let (sql, id) = match principal {
            AssignedPrincipal::User(user) => (
                "DELETE FROM app_assignments WHERE client_id = ? AND user_id = ?",
                user.as_str(),
            ),
            AssignedPrincipal::Group(group) => (
                "DELETE FROM app_assignments WHERE client_id = ? AND group_id = ?",
                group.as_str(),
            ),
        };
        let query = stmt(sql)
            .bind(client_id.as_str().to_owned())
            .bind(id.to_owned());
        let done = self
            .execute(query)
            .await
            .map_err(|e| backend("removing an assignment", e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn assignments(&self, client_id: &ClientId) -> StoreResult<Vec<AppAssignment>> {
        self.read_all(
            stmt(
                "SELECT * FROM app_assignments WHERE client_id = ? ORDER BY created_at, user_id, group_id",
            )
            .bind(client_id.as_str()),
            assignment_from,
        )
        .await
    }

    async fn applications_assigned_to(&self, user: &UserId) -> StoreResult<Vec<ClientId>> {
        let ids = self
            .read_all(
                stmt(
                    "SELECT client_id FROM app_assignments WHERE user_id = ? \
                     UNION SELECT a.client_id FROM app_assignments a \
                     JOIN group_members m ON m.group_id = a.group_id WHERE m.user_id = ? \
                     ORDER BY client_id",
                )
                .bind(user.as_str())
                .bind(user.as_str()),
                |row| get::<String>(row, 0),
            )
            .await?;
        Ok(ids.into_iter().map(ClientId::from_string).collect())
    }
}

/// An assignment's principal as the table holds it: exactly one of a user id and a group id.
fn principal_columns(principal: &AssignedPrincipal) -> (Option<String>, Option<String>) {
    match principal {
        AssignedPrincipal::User(user) => (Some(user.as_str().to_owned()), None),
        AssignedPrincipal::Group(group) => (None, Some(group.as_str().to_owned())),
    }
}

fn assignment_from(row: &Row<'_>) -> StoreResult<AppAssignment> {
    let user: Option<String> = get(row, "user_id")?;
    let group: Option<String> = get(row, "group_id")?;
    let principal = match (user, group) {
        (Some(user), None) => AssignedPrincipal::User(UserId::from_string(user)),
        (None, Some(group)) => AssignedPrincipal::Group(GroupId::from_string(group)),
        _ => return Err(corrupt("assignment principal")),
    };
    Ok(AppAssignment {
        client_id: ClientId::from_string(get::<String>(row, "client_id")?),
        principal,
        created_at: timestamp(row, "created_at")?,
    })
}
