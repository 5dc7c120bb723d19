//! The admin API (JSON under `/api/v1`), shaped after Microsoft Graph where Graph has a shape.
//! Every route but the OpenAPI document needs an administrator API token as a Bearer token.
//! `docs/admin-api.md` and `openapi.json` describe it; keep all three in step.

use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use latchkey_domain::application::{Application, ClientKind};
use latchkey_domain::credential::{PassRequest, TemporaryAccessPass};
use latchkey_domain::ids::{ClientId, GroupId, UserId};
use latchkey_domain::log::Actor;
use latchkey_domain::secret::Secret;
use latchkey_domain::service::{NewApplication, NewUser, UserPatch};
use latchkey_domain::user::{Group, User};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::{ApiError, ApiJson};

const OPENAPI: &str = include_str!("../openapi.json");

pub fn routes(state: AppState) -> Router<AppState> {
    let protected = Router::new()
        .route("/users", get(list_users).post(create_user))
        .route("/users/{id}", get(get_user).patch(update_user))
        .route("/users/{id}/password", put(set_password))
        .route(
            "/users/{id}/temporaryAccessPass",
            post(create_pass).get(get_pass).delete(delete_pass),
        )
        .route(
            "/users/{id}/authenticatorActivations",
            axum::routing::post(create_activation),
        )
        .route(
            "/users/{id}/authenticatorActivations/{activation}",
            get(get_activation),
        )
        .route("/groups", get(list_groups).post(create_group))
        .route("/groups/{id}/members", get(list_members).post(add_member))
        .route("/groups/{id}/members/{user}", delete(remove_member))
        .route("/applications", get(list_apps).post(create_app))
        .route("/applications/{id}", get(get_app).delete(delete_app))
        .merge(crate::admin_policy_api::routes())
        .merge(crate::admin_risk_api::routes())
        .merge(crate::admin_tokens_api::routes())
        .layer(middleware::from_fn_with_state(state, require_admin_token));
    Router::new()
        .route(
            "/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }),
        )
        .merge(protected)
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such API route")
        })
}

async fn require_admin_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let presented =
        crate::auth_header::credentials(request.headers(), "Bearer").unwrap_or_default();
    match state
        .latchkey
        .governance
        .authenticate_admin_token(presented)
        .await
    {
        Ok(Some(token)) => {
            let mut request = request;
            request
                .extensions_mut()
                .insert(Actor::api_token(&token.name));
            next.run(request).await
        }
        Ok(None) => {
            let mut response = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send an administrator API token as a Bearer token",
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, "Bearer".parse().expect("static"));
            response
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

fn user_json(user: &User) -> Value {
    json!({
        "id": user.id,
        "userPrincipalName": user.upn,
        "displayName": user.display_name,
        "mail": user.email,
        "accountEnabled": user.enabled,
        "createdDateTime": user.created_at.to_rfc3339(),
    })
}

fn group_json(group: &Group) -> Value {
    json!({"id": group.id, "displayName": group.display_name, "description": group.description,
           "createdDateTime": group.created_at.to_rfc3339()})
}

fn app_json(app: &Application) -> Value {
    json!({
        "appId": app.client_id,
        "displayName": app.display_name,
        "redirectUris": app.redirect_uris,
        "postLogoutRedirectUris": app.post_logout_redirect_uris,
        "publicClient": matches!(app.kind, ClientKind::Public),
        "idTokenSigningAlg": app.id_token_alg.as_str(),
        "homeUrl": app.home_url,
        "createdDateTime": app.created_at.to_rfc3339(),
    })
}

fn pass_json(
    pass: &TemporaryAccessPass,
    now: latchkey_domain::clock::Timestamp,
    secret: Option<&Secret>,
) -> Value {
    let reason = match pass.usability(now) {
        Ok(()) => "EnabledByPolicy".to_string(),
        Err(reason) => format!("{reason:?}"),
    };
    let mut value = json!({
        "startDateTime": pass.starts_at.to_rfc3339(),
        "lifetimeInMinutes": pass.lifetime_minutes,
        "isUsableOnce": pass.usable_once,
        "isUsable": pass.usability(now).is_ok(),
        "methodUsabilityReason": reason,
        "createdDateTime": pass.created_at.to_rfc3339(),
    });
    if let Some(secret) = secret {
        value["temporaryAccessPass"] = json!(secret.expose());
    }
    value
}

type ApiResult = Result<Response, ApiError>;

async fn list_users(State(state): State<AppState>) -> ApiResult {
    let users = state.latchkey.directory.list_users().await?;
    Ok(Json(json!({"value": users.iter().map(user_json).collect::<Vec<_>>()})).into_response())
}

async fn create_user(
    State(state): State<AppState>,
    axum::Extension(actor): axum::Extension<Actor>,
    ApiJson(new): ApiJson<NewUser>,
) -> ApiResult {
    let user = state.latchkey.directory.create_user(&actor, new).await?;
    Ok((StatusCode::CREATED, Json(user_json(&user))).into_response())
}

async fn get_user(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult {
    Ok(Json(user_json(&state.latchkey.directory.find_user(&id).await?)).into_response())
}

async fn update_user(
    State(state): State<AppState>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<UserPatch>,
) -> ApiResult {
    let user = state.latchkey.directory.find_user(&id).await?;
    let user = state
        .latchkey
        .directory
        .update_user(&actor, &user.id, patch)
        .await?;
    Ok(Json(user_json(&user)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordBody {
    password: String,
}

async fn set_password(
    State(state): State<AppState>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PasswordBody>,
) -> ApiResult {
    let user = state.latchkey.directory.find_user(&id).await?;
    state
        .latchkey
        .directory
        .set_password(&actor, &user.id, &Secret::new(body.password))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The body is optional: an empty body asks for a pass with the policy's defaults.
async fn create_pass(
    State(state): State<AppState>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult {
    let user = state.latchkey.directory.find_user(&id).await?;
    let request: PassRequest = if body.iter().all(u8::is_ascii_whitespace) {
        PassRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", e.to_string()))?
    };
    let (pass, secret) = state
        .latchkey
        .directory
        .issue_pass(&actor, &user.id, &request)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(pass_json(&pass, state.latchkey.now(), Some(&secret))),
    )
        .into_response())
}

/// Starts adding the authenticator app for a user: the link (what the QR code holds) is in
/// this answer only.
async fn create_activation(
    State(state): State<AppState>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(id): Path<String>,
) -> ApiResult {
    let user = state.latchkey.directory.find_user(&id).await?;
    let (activation, link) = state
        .latchkey
        .devices
        .issue_activation(&actor, &user.id)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": activation.id,
            "activationLink": link.to_uri(),
            "server": link.server,
            "code": link.code,
            "expiresDateTime": activation.expires_at.to_rfc3339(),
        })),
    )
        .into_response())
}

/// Where an activation stands; while the device waits for its test, the number to enter.
async fn get_activation(
    State(state): State<AppState>,
    Path((id, activation)): Path<(String, String)>,
) -> ApiResult {
    use latchkey_domain::service::ActivationProgress;
    let user = state.latchkey.directory.find_user(&id).await?;
    let activation_id = latchkey_domain::ids::ActivationId::from_string(activation.clone());
    let progress = state
        .latchkey
        .devices
        .activation_progress(&user.id, &activation_id)
        .await?;
    let body = match progress {
        ActivationProgress::WaitingForDevice { activation } => json!({
            "id": activation.id,
            "status": "waitingForDevice",
            "expiresDateTime": activation.expires_at.to_rfc3339(),
        }),
        ActivationProgress::WaitingForTest {
            number,
            device_name,
        } => json!({
            "id": activation,
            "status": "waitingForTest",
            "deviceName": device_name,
            "testNumber": number,
        }),
        ActivationProgress::Registered { device_name } => json!({
            "id": activation,
            "status": "registered",
            "deviceName": device_name,
        }),
        ActivationProgress::Failed { message } => json!({
            "id": activation,
            "status": "failed",
            "message": message,
        }),
    };
    Ok(Json(body).into_response())
}

async fn get_pass(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let user = state.latchkey.directory.find_user(&id).await?;
    match state.latchkey.directory.pass_for_user(&user.id).await? {
        Some(pass) => Ok(Json(pass_json(&pass, state.latchkey.now(), None)).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "the user has no Temporary Access Pass",
        )),
    }
}

async fn delete_pass(
    State(state): State<AppState>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(id): Path<String>,
) -> ApiResult {
    let user = state.latchkey.directory.find_user(&id).await?;
    state
        .latchkey
        .directory
        .delete_pass(&actor, &user.id)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewGroupBody {
    display_name: String,
    #[serde(default)]
    description: String,
}

async fn list_groups(State(state): State<AppState>) -> ApiResult {
    let groups = state.latchkey.directory.list_groups().await?;
    Ok(Json(json!({"value": groups.iter().map(group_json).collect::<Vec<_>>()})).into_response())
}

async fn create_group(
    State(state): State<AppState>,
    axum::Extension(actor): axum::Extension<Actor>,
    ApiJson(body): ApiJson<NewGroupBody>,
) -> ApiResult {
    let group = state
        .latchkey
        .directory
        .create_group(&actor, &body.display_name, &body.description)
        .await?;
    Ok((StatusCode::CREATED, Json(group_json(&group))).into_response())
}

async fn list_members(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let group = state.latchkey.directory.find_group(&id).await?;
    let members = state.latchkey.directory.group_members(&group.id).await?;
    Ok(Json(json!({"value": members.iter().map(user_json).collect::<Vec<_>>()})).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MemberBody {
    user_id: String,
}

async fn add_member(
    State(state): State<AppState>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<MemberBody>,
) -> ApiResult {
    let group = state.latchkey.directory.find_group(&id).await?;
    let user = state.latchkey.directory.find_user(&body.user_id).await?;
    state
        .latchkey
        .directory
        .add_group_member(&actor, &group.id, &user.id)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn remove_member(
    State(state): State<AppState>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path((id, user)): Path<(String, String)>,
) -> ApiResult {
    let group = state.latchkey.directory.find_group(&id).await?;
    let user = state.latchkey.directory.find_user(&user).await?;
    state
        .latchkey
        .directory
        .remove_group_member(
            &actor,
            &GroupId::from_string(group.id.as_str()),
            &UserId::from_string(user.id.as_str()),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_apps(State(state): State<AppState>) -> ApiResult {
    let apps = state.latchkey.applications.list_applications().await?;
    Ok(Json(json!({"value": apps.iter().map(app_json).collect::<Vec<_>>()})).into_response())
}

async fn create_app(
    State(state): State<AppState>,
    axum::Extension(actor): axum::Extension<Actor>,
    ApiJson(new): ApiJson<NewApplication>,
) -> ApiResult {
    let (app, secret) = state
        .latchkey
        .applications
        .register_application(&actor, new)
        .await?;
    let mut body = app_json(&app);
    if let Some(secret) = secret {
        body["clientSecret"] = json!(secret.expose());
    }
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn get_app(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult {
    Ok(Json(app_json(
        &state
            .latchkey
            .applications
            .application(&ClientId::from_string(id))
            .await?,
    ))
    .into_response())
}

async fn delete_app(
    State(state): State<AppState>,
    axum::Extension(actor): axum::Extension<Actor>,
    Path(id): Path<String>,
) -> ApiResult {
    state
        .latchkey
        .applications
        .delete_application(&actor, &ClientId::from_string(id))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
