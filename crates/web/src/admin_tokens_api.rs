//! Administration in the admin API: tokens (`/api/v1/adminTokens`) and the administrator role
//! (`/api/v1/administratorRole`). A token's secret is in the answer to its creation only;
//! lists and revocations never carry it (nor its hash).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use latchkey_api as api;
use latchkey_domain::ids::GroupId;
use latchkey_domain::log::Actor;
use latchkey_domain::service::NewAdminToken;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::admin_api_wire as wire;
use crate::error::{ApiError, ApiJson};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show))
        .routes(routes!(revoke))
        .routes(routes!(show_role, bind_role))
}

type Answer<T> = Result<Json<T>, ApiError>;

/// List the administrator API tokens (never their secrets).
#[utoipa::path(get, path = "/adminTokens", tag = "adminTokens",
    responses((status = 200, body = api::AdminTokenList)))]
async fn list(State(state): State<AppState>) -> Answer<api::AdminTokenList> {
    let now = state.latchkey.now();
    let tokens = state.latchkey.governance.list_admin_tokens().await?;
    Ok(Json(
        tokens
            .iter()
            .map(|t| wire::admin_token(t, now))
            .collect::<Vec<_>>()
            .into(),
    ))
}

/// Create a token; its secret is in this answer only.
#[utoipa::path(post, path = "/adminTokens", tag = "adminTokens",
    request_body = api::NewAdminToken,
    responses((status = 201, body = api::CreatedAdminToken), (status = 400, body = api::Error)))]
async fn create(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiJson(new): ApiJson<api::NewAdminToken>,
) -> Result<(StatusCode, Json<api::CreatedAdminToken>), ApiError> {
    let new = NewAdminToken {
        display_name: new.display_name,
        expires_date_time: new.expires_date_time,
    };
    let (token, secret) = state
        .latchkey
        .governance
        .create_admin_token(&actor, new)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(api::CreatedAdminToken {
            admin_token: wire::admin_token(&token, state.latchkey.now()),
            token: secret.expose().to_string(),
        }),
    ))
}

/// Read a token (never its secret).
#[utoipa::path(get, path = "/adminTokens/{id}", tag = "adminTokens",
    params(("id" = String, Path, description = "The token's id")),
    responses((status = 200, body = api::AdminToken), (status = 404, body = api::Error)))]
async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Answer<api::AdminToken> {
    let token = state.latchkey.governance.admin_token(&id).await?;
    Ok(Json(wire::admin_token(&token, state.latchkey.now())))
}

/// Revoke a token: it is refused from its next request on.
#[utoipa::path(post, path = "/adminTokens/{id}/revoke", tag = "adminTokens",
    params(("id" = String, Path, description = "The token's id")),
    responses((status = 200, body = api::AdminToken), (status = 404, body = api::Error)))]
async fn revoke(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Answer<api::AdminToken> {
    let token = state
        .latchkey
        .governance
        .revoke_admin_token(&actor, &id)
        .await?;
    Ok(Json(wire::admin_token(&token, state.latchkey.now())))
}

/// The group whose members are administrators.
#[utoipa::path(get, path = "/administratorRole", tag = "adminTokens",
    responses((status = 200, body = api::AdministratorRole),
        (status = 404, body = api::Error, description = "No group holds the role")))]
async fn show_role(State(state): State<AppState>) -> Answer<api::AdministratorRole> {
    match state.latchkey.governance.administrators_group().await? {
        Some(group) => Ok(Json(wire::administrator_role(&group))),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no group holds the administrator role",
        )),
    }
}

/// Bind the administrator role to a group, by id only: display names play no part.
#[utoipa::path(put, path = "/administratorRole", tag = "adminTokens",
    request_body = api::AdministratorRoleBinding,
    responses((status = 200, body = api::AdministratorRole), (status = 404, body = api::Error)))]
async fn bind_role(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiJson(body): ApiJson<api::AdministratorRoleBinding>,
) -> Answer<api::AdministratorRole> {
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
    Ok(Json(wire::administrator_role(&group)))
}
