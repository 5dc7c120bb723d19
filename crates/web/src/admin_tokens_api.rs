//! Administration in the admin API: tokens (`/api/v1/adminTokens`) and the administrator role
//! (`/api/v1/administratorRole`). A token's secret is in the answer to its creation only;
//! lists and revocations never carry it (nor its hash).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use latchkey_domain::admin_token::AdminToken;
use latchkey_domain::ids::GroupId;
use latchkey_domain::log::Actor;
use latchkey_domain::service::NewAdminToken;
use latchkey_domain::user::Group;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::{ApiError, ApiJson};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/adminTokens", get(list).post(create))
        .route("/adminTokens/{id}", get(show))
        .route("/adminTokens/{id}/revoke", post(revoke))
        .route("/administratorRole", get(show_role).put(bind_role))
}

fn token_json(state: &AppState, token: &AdminToken) -> Value {
    token.summary(state.latchkey.now())
}

type ApiResult = Result<Response, ApiError>;

async fn list(State(state): State<AppState>) -> ApiResult {
    let tokens = state.latchkey.governance.list_admin_tokens().await?;
    let value: Vec<Value> = tokens.iter().map(|t| token_json(&state, t)).collect();
    Ok(Json(json!({"value": value})).into_response())
}

async fn create(
    State(state): State<AppState>,
    axum::Extension(actor): axum::Extension<Actor>,
    ApiJson(new): ApiJson<NewAdminToken>,
) -> ApiResult {
    let (token, secret) = state
        .latchkey
        .governance
        .create_admin_token(&actor, new)
        .await?;
    let mut body = token_json(&state, &token);
    body["token"] = json!(secret.expose());
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn show(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let token = state.latchkey.governance.admin_token(&id).await?;
    Ok(Json(token_json(&state, &token)).into_response())
}

async fn revoke(
    State(state): State<AppState>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(id): Path<String>,
) -> ApiResult {
    let token = state
        .latchkey
        .governance
        .revoke_admin_token(&actor, &id)
        .await?;
    Ok(Json(token_json(&state, &token)).into_response())
}

fn role_json(group: &Group) -> Value {
    json!({"groupId": group.id, "displayName": group.display_name})
}

async fn show_role(State(state): State<AppState>) -> ApiResult {
    match state.latchkey.governance.administrators_group().await? {
        Some(group) => Ok(Json(role_json(&group)).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no group holds the administrator role",
        )),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RoleBody {
    /// A group id; never a display name, which is what the binding exists to avoid.
    group_id: String,
}

async fn bind_role(
    State(state): State<AppState>,
    axum::Extension(actor): axum::Extension<Actor>,
    ApiJson(body): ApiJson<RoleBody>,
) -> ApiResult {
    if body.group_id.is_empty() || body.group_id.len() > 64 {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "group was not found",
        ));
    }
    let group = state
        .latchkey
        .governance
        .bind_administrators_group(&actor, &GroupId::from_string(body.group_id))
        .await?;
    Ok(Json(role_json(&group)).into_response())
}
