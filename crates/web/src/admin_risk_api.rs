//! The identity-protection part of the admin API, shaped after Microsoft Graph's
//! `/identityProtection/riskyUsers` and `riskDetections`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use latchkey_domain::log::Actor;
use latchkey_domain::risk::{RiskDetection, UserRisk};
use latchkey_domain::user::User;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::{ApiError, ApiJson};

type ApiResult = Result<Response, ApiError>;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/identityProtection/riskyUsers", get(list))
        .route("/identityProtection/riskyUsers/dismiss", post(dismiss))
        .route("/identityProtection/riskyUsers/{id}", get(one))
}

fn risky_user_json(risk: &UserRisk, user: &User) -> Value {
    json!({
        "id": user.id,
        "userPrincipalName": user.upn,
        "userDisplayName": user.display_name,
        "riskLevel": if risk.is_at_risk() { "high" } else { "none" },
        "riskState": risk.state.as_str(),
        "riskDetail": risk.detail,
        "riskLastUpdatedDateTime": risk.last_updated.to_rfc3339(),
    })
}

fn detection_json(d: &RiskDetection) -> Value {
    json!({
        "id": d.id,
        "userId": d.user_id,
        "riskEventType": d.risk_event_type,
        "riskLevel": "high",
        "detectedDateTime": d.detected_date_time.to_rfc3339(),
        "ipAddress": d.ip_address,
        "location": d.location,
        "appDisplayName": d.app_display_name,
        "deviceName": d.device_name,
    })
}

async fn list(State(state): State<AppState>) -> ApiResult {
    let users = state.latchkey.governance.risky_users().await?;
    let value: Vec<Value> = users.iter().map(|(r, u)| risky_user_json(r, u)).collect();
    Ok(Json(json!({ "value": value })).into_response())
}

async fn one(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let user = state.latchkey.directory.find_user(&id).await?;
    let (risk, detections) = state.latchkey.governance.user_risk(&user.id).await?;
    let Some(risk) = risk else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "this user has no risk record",
        ));
    };
    let mut body = risky_user_json(&risk, &user);
    body["detections"] = detections.iter().map(detection_json).collect();
    Ok(Json(body).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DismissBody {
    user_ids: Vec<String>,
}

async fn dismiss(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiJson(body): ApiJson<DismissBody>,
) -> ApiResult {
    state
        .latchkey
        .governance
        .dismiss_risk(&actor, &body.user_ids)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
