//! The identity-protection part of the admin API, shaped after Microsoft Graph's
//! `/identityProtection/riskyUsers` and `riskDetections`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use latchkey_api as api;
use latchkey_domain::log::Actor;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::admin_api_wire as wire;
use crate::error::{ApiError, ApiJson};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(dismiss))
        .routes(routes!(one))
}

/// List the users with a risk record.
#[utoipa::path(get, path = "/identityProtection/riskyUsers", tag = "identityProtection",
    responses((status = 200, body = api::RiskyUserList)))]
async fn list(State(state): State<AppState>) -> Result<Json<api::RiskyUserList>, ApiError> {
    let users = state.latchkey.governance.risky_users().await?;
    Ok(Json(
        users
            .iter()
            .map(|(risk, user)| wire::risky_user(risk, user))
            .collect::<Vec<_>>()
            .into(),
    ))
}

/// Read a user's risk and what raised it.
#[utoipa::path(get, path = "/identityProtection/riskyUsers/{id}", tag = "identityProtection",
    params(("id" = String, Path, description = "A user id or user principal name")),
    responses((status = 200, body = api::RiskyUserWithDetections),
        (status = 404, body = api::Error, description = "No such user, or no risk record")))]
async fn one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<api::RiskyUserWithDetections>, ApiError> {
    let user = state.latchkey.directory.find_user(&id).await?;
    let (risk, detections) = state.latchkey.governance.user_risk(&user.id).await?;
    let Some(risk) = risk else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "this user has no risk record",
        ));
    };
    Ok(Json(api::RiskyUserWithDetections {
        detections: detections.iter().map(wire::risk_detection).collect(),
        risky_user: wire::risky_user(&risk, &user),
    }))
}

/// Dismiss the risk of these users.
#[utoipa::path(post, path = "/identityProtection/riskyUsers/dismiss", tag = "identityProtection",
    request_body = api::DismissRiskyUsers,
    responses((status = 204, description = "Dismissed"), (status = 400, body = api::Error),
        (status = 404, body = api::Error)))]
async fn dismiss(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiJson(body): ApiJson<api::DismissRiskyUsers>,
) -> Result<StatusCode, ApiError> {
    state
        .latchkey
        .governance
        .dismiss_risk(&actor, &body.user_ids)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
