//! The admin API (JSON under `/api/v1`), shaped after Microsoft Graph where Graph has a shape.
//! Every route but the OpenAPI document needs an administrator API token as a Bearer token.
//!
//! The contract is `latchkey-api`: handlers answer with its types, and every route is
//! registered through `routes!` from its handler's `#[utoipa::path]`, so the document served at
//! `/api/v1/openapi.json` is generated from the code it describes and cannot leave a route out.

use std::sync::LazyLock;

use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json, Router};
use latchkey_api as api;
use latchkey_domain::DomainError;
use latchkey_domain::application::AssignedPrincipal;
use latchkey_domain::ids::{ClientId, GroupId, UserId};
use latchkey_domain::log::Actor;
use latchkey_domain::secret::Secret;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::admin_api_wire as wire;
use crate::error::{ApiError, ApiJson};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Latchkey admin API",
        version = "1",
        description = "Manage Latchkey's users, groups, applications and Temporary Access Passes, \
the authentication methods policy and user risk, and read the sign-in and audit logs.\n\n\
Every operation except `GET /openapi.json` needs an administrator API token, sent as \
`Authorization: Bearer <token>`. Latchkey creates the first token (named `initial`) when it \
starts for the first time, prints it once and saves it to `<data dir>/admin-token` (mode 0600). \
Tokens are managed under `/adminTokens`; a revoked or expired token is refused with 401.\n\n\
Request bodies are JSON (`Content-Type: application/json`) and at most 64 KiB. Unknown fields \
in a request body are refused. Lists are returned as `{\"value\": [...]}`. Errors are returned \
as `{\"error\": {\"code\": \"...\", \"message\": \"...\"}}`.\n\n\
Secrets are shown once: the value of a Temporary Access Pass, an application's client secret \
and an administrator token appear only in the response that creates them.\n\n\
This document is generated from the server's code. See also `docs/admin-api.md`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    servers((url = "/api/v1", description = "Relative to the Latchkey server's base URL.")),
    security(("bearerAuth" = [])),
    modifiers(&BearerAuth),
    components(schemas(api::Error)),
    tags(
        (name = "users", description = "People who sign in."),
        (name = "temporaryAccessPass", description = "Time-limited passes an administrator issues so a user can sign in."),
        (name = "groups", description = "Groups of users."),
        (name = "applications", description = "OpenID Connect clients (relying parties)."),
        (name = "policy", description = "The authentication methods policy: which sign-in methods each user may use, and how. See `docs/policy.md`."),
        (name = "auditLogs", description = "The sign-in log and the audit log of administrative changes. See `docs/logs.md`."),
        (name = "identityProtection", description = "User risk, shaped after Microsoft Graph's `riskyUser` and `riskDetection`."),
        (name = "meta", description = "About the API itself."),
        (name = "adminTokens", description = "Administrator API tokens and the administrator role."),
    )
)]
struct ApiDoc;

/// The `bearerAuth` scheme the document's `security` names.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearerAuth",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An administrator API token (`lk_admin_…`). The first one is created at \
                         first start, printed once, and saved to `<data dir>/admin-token`.",
                    ))
                    .build(),
            ),
        );
    }
}

/// Every route, with its documentation; `protect` wraps the routes that need a token.
fn documented(
    protect: impl FnOnce(OpenApiRouter<AppState>) -> OpenApiRouter<AppState>,
) -> OpenApiRouter<AppState> {
    let protected = OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user))
        .routes(routes!(set_password))
        .routes(routes!(get_certificate_user_ids, set_certificate_user_ids))
        .routes(routes!(create_pass, get_pass, delete_pass))
        .routes(routes!(create_activation))
        .routes(routes!(get_activation))
        .routes(routes!(list_groups, create_group))
        .routes(routes!(list_members, add_member))
        .routes(routes!(remove_member))
        .routes(routes!(list_apps, create_app))
        .routes(routes!(get_app, update_app, delete_app))
        .routes(routes!(set_app_strength))
        .routes(routes!(list_assignments, add_assignment))
        .routes(routes!(remove_user_assignment))
        .routes(routes!(remove_group_assignment))
        .merge(crate::admin_policy_api::routes())
        .merge(crate::admin_risk_api::routes())
        .merge(crate::admin_tokens_api::routes());
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(openapi_document))
        .merge(protect(protected))
}

/// The generated OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented(|routes| routes).into_openapi()
}

static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serialises")
});

pub fn routes(state: AppState) -> Router<AppState> {
    let (router, _) = documented(|routes| {
        routes.layer(middleware::from_fn_with_state(state, require_admin_token))
    })
    .split_for_parts();
    router.fallback(|| async {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such API route")
    })
}

/// This document. Needs no token.
#[utoipa::path(get, path = "/openapi.json", tag = "meta", security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
async fn openapi_document() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
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

type Answer<T> = Result<Json<T>, ApiError>;
type Created<T> = Result<(StatusCode, Json<T>), ApiError>;
type NoContent = Result<StatusCode, ApiError>;

fn created<T>(body: T) -> (StatusCode, Json<T>) {
    (StatusCode::CREATED, Json(body))
}

/// List the users.
#[utoipa::path(get, path = "/users", tag = "users",
    responses((status = 200, body = api::UserList)))]
async fn list_users(State(state): State<AppState>) -> Answer<api::UserList> {
    Ok(Json(wire::users(
        &state.latchkey.directory.list_users().await?,
    )))
}

/// Create a user.
#[utoipa::path(post, path = "/users", tag = "users", request_body = api::NewUser,
    responses((status = 201, body = api::User), (status = 400, body = api::Error),
        (status = 409, body = api::Error, description = "The user principal name is taken")))]
async fn create_user(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiJson(new): ApiJson<api::NewUser>,
) -> Created<api::User> {
    let user = state
        .latchkey
        .directory
        .create_user(&actor, wire::new_user(new))
        .await?;
    Ok(created(wire::user(&user)))
}

/// Read a user, by id or user principal name.
#[utoipa::path(get, path = "/users/{id}", tag = "users",
    params(("id" = String, Path, description = "A user id or user principal name")),
    responses((status = 200, body = api::User), (status = 404, body = api::Error)))]
async fn get_user(State(state): State<AppState>, Path(id): Path<String>) -> Answer<api::User> {
    Ok(Json(wire::user(
        &state.latchkey.directory.find_user(&id).await?,
    )))
}

/// Change a user's display name, mail or whether the account is enabled.
#[utoipa::path(patch, path = "/users/{id}", tag = "users", request_body = api::UserPatch,
    params(("id" = String, Path, description = "A user id or user principal name")),
    responses((status = 200, body = api::User), (status = 400, body = api::Error),
        (status = 404, body = api::Error)))]
async fn update_user(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<api::UserPatch>,
) -> Answer<api::User> {
    let user = state.latchkey.directory.find_user(&id).await?;
    let user = state
        .latchkey
        .directory
        .update_user(&actor, &user.id, wire::user_patch(patch))
        .await?;
    Ok(Json(wire::user(&user)))
}

/// Set a user's password.
#[utoipa::path(put, path = "/users/{id}/password", tag = "users",
    request_body = api::PasswordChange,
    params(("id" = String, Path, description = "A user id or user principal name")),
    responses((status = 204, description = "Set"), (status = 400, body = api::Error),
        (status = 404, body = api::Error)))]
async fn set_password(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<api::PasswordChange>,
) -> NoContent {
    let user = state.latchkey.directory.find_user(&id).await?;
    state
        .latchkey
        .directory
        .set_password(&actor, &user.id, &Secret::new(body.password))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Read a user's certificate user ids (what `certificateUserIds` bindings find them by).
#[utoipa::path(get, path = "/users/{id}/certificateUserIds", tag = "users",
    params(("id" = String, Path, description = "A user id or user principal name")),
    responses((status = 200, body = api::CertificateUserIds), (status = 404, body = api::Error)))]
async fn get_certificate_user_ids(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Answer<api::CertificateUserIds> {
    let user = state.latchkey.directory.find_user(&id).await?;
    let ids = state
        .latchkey
        .directory
        .certificate_user_ids(&user.id)
        .await?;
    Ok(Json(api::CertificateUserIds {
        certificate_user_ids: ids,
    }))
}

/// Replace a user's certificate user ids: at most 5, each at most 1,024 characters in one of
/// the `X509:<…>` formats. An id another user has is a conflict (409).
#[utoipa::path(put, path = "/users/{id}/certificateUserIds", tag = "users",
    request_body = api::CertificateUserIds,
    params(("id" = String, Path, description = "A user id or user principal name")),
    responses((status = 200, body = api::CertificateUserIds), (status = 400, body = api::Error),
        (status = 404, body = api::Error), (status = 409, body = api::Error)))]
async fn set_certificate_user_ids(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<api::CertificateUserIds>,
) -> Answer<api::CertificateUserIds> {
    let user = state.latchkey.directory.find_user(&id).await?;
    let ids = state
        .latchkey
        .directory
        .set_certificate_user_ids(&actor, &user.id, &body.certificate_user_ids)
        .await?;
    Ok(Json(api::CertificateUserIds {
        certificate_user_ids: ids,
    }))
}

/// Issue a Temporary Access Pass; its value is in this answer only.
///
/// The body is optional: an empty body asks for a pass with the policy's defaults.
#[utoipa::path(post, path = "/users/{id}/temporaryAccessPass", tag = "temporaryAccessPass",
    request_body(content = Option<api::TemporaryAccessPassRequest>),
    params(("id" = String, Path, description = "A user id or user principal name")),
    responses((status = 201, body = api::CreatedTemporaryAccessPass),
        (status = 400, body = api::Error), (status = 404, body = api::Error)))]
async fn create_pass(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Created<api::CreatedTemporaryAccessPass> {
    let user = state.latchkey.directory.find_user(&id).await?;
    let request: api::TemporaryAccessPassRequest = if body.iter().all(u8::is_ascii_whitespace) {
        api::TemporaryAccessPassRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", e.to_string()))?
    };
    let (pass, secret) = state
        .latchkey
        .directory
        .issue_pass(&actor, &user.id, &wire::pass_request(request))
        .await?;
    Ok(created(api::CreatedTemporaryAccessPass {
        pass: wire::pass(&pass, state.latchkey.now()),
        temporary_access_pass: secret.expose().to_string(),
    }))
}

/// Read a user's Temporary Access Pass (never its value).
#[utoipa::path(get, path = "/users/{id}/temporaryAccessPass", tag = "temporaryAccessPass",
    params(("id" = String, Path, description = "A user id or user principal name")),
    responses((status = 200, body = api::TemporaryAccessPass),
        (status = 404, body = api::Error, description = "No such user, or no pass")))]
async fn get_pass(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Answer<api::TemporaryAccessPass> {
    let user = state.latchkey.directory.find_user(&id).await?;
    match state.latchkey.directory.pass_for_user(&user.id).await? {
        Some(pass) => Ok(Json(wire::pass(&pass, state.latchkey.now()))),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "the user has no Temporary Access Pass",
        )),
    }
}

/// Delete a user's Temporary Access Pass.
#[utoipa::path(delete, path = "/users/{id}/temporaryAccessPass", tag = "temporaryAccessPass",
    params(("id" = String, Path, description = "A user id or user principal name")),
    responses((status = 204, description = "Deleted"), (status = 404, body = api::Error)))]
async fn delete_pass(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> NoContent {
    let user = state.latchkey.directory.find_user(&id).await?;
    state
        .latchkey
        .directory
        .delete_pass(&actor, &user.id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Start adding the authenticator app for a user: the link (what the QR code holds) is in
/// this answer only.
#[utoipa::path(post, path = "/users/{id}/authenticatorActivations", tag = "users",
    params(("id" = String, Path, description = "A user id or user principal name")),
    responses((status = 201, body = api::CreatedAuthenticatorActivation),
        (status = 404, body = api::Error)))]
async fn create_activation(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Created<api::CreatedAuthenticatorActivation> {
    let user = state.latchkey.directory.find_user(&id).await?;
    let (activation, link) = state
        .latchkey
        .devices
        .issue_activation(&actor, &user.id)
        .await?;
    Ok(created(api::CreatedAuthenticatorActivation {
        activation_link: link.to_uri(),
        code: link.code,
        expires_date_time: activation.expires_at.to_rfc3339(),
        id: activation.id.to_string(),
        server: link.server,
    }))
}

/// Where an activation stands; while the device waits for its test, the number to enter.
#[utoipa::path(get, path = "/users/{id}/authenticatorActivations/{activation}", tag = "users",
    params(("id" = String, Path, description = "A user id or user principal name"),
        ("activation" = String, Path, description = "The activation's id")),
    responses((status = 200, body = api::AuthenticatorActivation),
        (status = 404, body = api::Error)))]
async fn get_activation(
    State(state): State<AppState>,
    Path((id, activation)): Path<(String, String)>,
) -> Answer<api::AuthenticatorActivation> {
    use latchkey_domain::service::ActivationProgress as Progress;
    let user = state.latchkey.directory.find_user(&id).await?;
    let activation_id = latchkey_domain::ids::ActivationId::from_string(activation.clone());
    let progress = state
        .latchkey
        .devices
        .activation_progress(&user.id, &activation_id)
        .await?;
    Ok(Json(match progress {
        Progress::WaitingForDevice { activation } => {
            api::AuthenticatorActivation::WaitingForDevice {
                expires_date_time: activation.expires_at.to_rfc3339(),
                id: activation.id.to_string(),
            }
        }
        Progress::WaitingForTest {
            number,
            device_name,
        } => api::AuthenticatorActivation::WaitingForTest {
            device_name,
            id: activation,
            test_number: number,
        },
        Progress::Registered { device_name } => api::AuthenticatorActivation::Registered {
            device_name,
            id: activation,
        },
        Progress::Failed { message } => api::AuthenticatorActivation::Failed {
            id: activation,
            message,
        },
    }))
}

/// List the groups.
#[utoipa::path(get, path = "/groups", tag = "groups",
    responses((status = 200, body = api::GroupList)))]
async fn list_groups(State(state): State<AppState>) -> Answer<api::GroupList> {
    let groups = state.latchkey.directory.list_groups().await?;
    Ok(Json(
        groups.iter().map(wire::group).collect::<Vec<_>>().into(),
    ))
}

/// Create a group.
#[utoipa::path(post, path = "/groups", tag = "groups", request_body = api::NewGroup,
    responses((status = 201, body = api::Group), (status = 400, body = api::Error),
        (status = 409, body = api::Error)))]
async fn create_group(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiJson(body): ApiJson<api::NewGroup>,
) -> Created<api::Group> {
    let group = state
        .latchkey
        .directory
        .create_group(&actor, &body.display_name, &body.description)
        .await?;
    Ok(created(wire::group(&group)))
}

/// List a group's members.
#[utoipa::path(get, path = "/groups/{id}/members", tag = "groups",
    params(("id" = String, Path, description = "A group id or display name")),
    responses((status = 200, body = api::UserList), (status = 404, body = api::Error)))]
async fn list_members(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Answer<api::UserList> {
    let group = state.latchkey.directory.find_group(&id).await?;
    Ok(Json(wire::users(
        &state.latchkey.directory.group_members(&group.id).await?,
    )))
}

/// Add a user to a group.
#[utoipa::path(post, path = "/groups/{id}/members", tag = "groups",
    request_body = api::MemberReference,
    params(("id" = String, Path, description = "A group id or display name")),
    responses((status = 204, description = "Added"), (status = 400, body = api::Error),
        (status = 404, body = api::Error)))]
async fn add_member(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<api::MemberReference>,
) -> NoContent {
    let group = state.latchkey.directory.find_group(&id).await?;
    let user = state.latchkey.directory.find_user(&body.user_id).await?;
    state
        .latchkey
        .directory
        .add_group_member(&actor, &group.id, &user.id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a user from a group.
#[utoipa::path(delete, path = "/groups/{id}/members/{user}", tag = "groups",
    params(("id" = String, Path, description = "A group id or display name"),
        ("user" = String, Path, description = "A user id or user principal name")),
    responses((status = 204, description = "Removed"), (status = 404, body = api::Error)))]
async fn remove_member(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path((id, user)): Path<(String, String)>,
) -> NoContent {
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
    Ok(StatusCode::NO_CONTENT)
}

/// List the applications.
#[utoipa::path(get, path = "/applications", tag = "applications",
    responses((status = 200, body = api::ApplicationList)))]
async fn list_apps(State(state): State<AppState>) -> Answer<api::ApplicationList> {
    let apps = state.latchkey.applications.list_applications().await?;
    Ok(Json(
        apps.iter()
            .map(wire::application)
            .collect::<Vec<_>>()
            .into(),
    ))
}

/// Register an application; a confidential client's secret is in this answer only.
#[utoipa::path(post, path = "/applications", tag = "applications",
    request_body = api::NewApplication,
    responses((status = 201, body = api::CreatedApplication), (status = 400, body = api::Error)))]
async fn create_app(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    ApiJson(new): ApiJson<api::NewApplication>,
) -> Created<api::CreatedApplication> {
    let (app, secret) = state
        .latchkey
        .applications
        .register_application(&actor, wire::new_application(new))
        .await?;
    Ok(created(api::CreatedApplication {
        application: wire::application(&app),
        client_secret: secret.map(|s| s.expose().to_string()),
    }))
}

/// Read an application.
#[utoipa::path(get, path = "/applications/{id}", tag = "applications",
    params(("id" = String, Path, description = "The application's appId")),
    responses((status = 200, body = api::Application), (status = 404, body = api::Error)))]
async fn get_app(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Answer<api::Application> {
    let app = state
        .latchkey
        .applications
        .application(&ClientId::from_string(id))
        .await?;
    Ok(Json(wire::application(&app)))
}

/// Set or clear the authentication strength an application requires before it gets a code.
#[utoipa::path(put, path = "/applications/{id}/requiredStrength", tag = "applications",
    request_body = api::ApplicationStrength,
    params(("id" = String, Path, description = "The application's appId")),
    responses((status = 200, body = api::Application), (status = 400, body = api::Error),
        (status = 404, body = api::Error)))]
async fn set_app_strength(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<api::ApplicationStrength>,
) -> Answer<api::Application> {
    let app = state
        .latchkey
        .applications
        .set_required_strength(
            &actor,
            &ClientId::from_string(id),
            body.required_strength.as_deref(),
        )
        .await?;
    Ok(Json(wire::application(&app)))
}

/// Change an application's settings (display name, redirect URIs, post-logout redirect URIs,
/// home URL, groups claim, assignment required); what the body leaves out stays. Validated as
/// at registration, audited with the settings before and after.
#[utoipa::path(patch, path = "/applications/{id}", tag = "applications",
    request_body = api::ApplicationPatch,
    params(("id" = String, Path, description = "The application's appId")),
    responses((status = 200, body = api::Application), (status = 400, body = api::Error),
        (status = 404, body = api::Error), (status = 422, body = api::Error)))]
async fn update_app(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<api::ApplicationPatch>,
) -> Answer<api::Application> {
    let app = state
        .latchkey
        .applications
        .update_application(
            &actor,
            &ClientId::from_string(id),
            wire::application_patch(patch),
        )
        .await?;
    Ok(Json(wire::application(&app)))
}

/// The display name of an assignment's user or group, for the answer.
async fn principal_name(
    state: &AppState,
    principal: &AssignedPrincipal,
) -> Result<String, ApiError> {
    Ok(match principal {
        AssignedPrincipal::User(id) => state.latchkey.directory.user(id).await?.display_name,
        AssignedPrincipal::Group(id) => {
            state
                .latchkey
                .directory
                .find_group(id.as_str())
                .await?
                .display_name
        }
    })
}

/// List the users and groups an application is assigned to.
#[utoipa::path(get, path = "/applications/{id}/assignments", tag = "applications",
    params(("id" = String, Path, description = "The application's appId")),
    responses((status = 200, body = api::AppAssignmentList), (status = 404, body = api::Error)))]
async fn list_assignments(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Answer<api::AppAssignmentList> {
    let assignments = state
        .latchkey
        .applications
        .assignments(&ClientId::from_string(id))
        .await?;
    let mut listed = Vec::with_capacity(assignments.len());
    for assignment in &assignments {
        let name = principal_name(&state, &assignment.principal).await?;
        listed.push(wire::app_assignment(assignment, name));
    }
    Ok(Json(listed.into()))
}

/// Assign an application to a user or a group. With `assignmentRequired`, only assigned users
/// (directly or through a group) may sign in to it.
#[utoipa::path(post, path = "/applications/{id}/assignments", tag = "applications",
    request_body = api::NewAppAssignment,
    params(("id" = String, Path, description = "The application's appId")),
    responses((status = 201, body = api::AppAssignment), (status = 400, body = api::Error),
        (status = 404, body = api::Error), (status = 409, body = api::Error)))]
async fn add_assignment(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<api::NewAppAssignment>,
) -> Created<api::AppAssignment> {
    let directory = &state.latchkey.directory;
    let (principal, name) = match body.principal_type.as_str() {
        "User" => {
            let user = directory.find_user(&body.principal_id).await?;
            (AssignedPrincipal::User(user.id), user.display_name)
        }
        "Group" => {
            let group = directory.find_group(&body.principal_id).await?;
            (AssignedPrincipal::Group(group.id), group.display_name)
        }
        _ => {
            return Err(DomainError::invalid("principalType", "must be User or Group").into());
        }
    };
    let assignment = state
        .latchkey
        .applications
        .assign(&actor, &ClientId::from_string(id), principal)
        .await?;
    Ok(created(wire::app_assignment(&assignment, name)))
}

/// Remove a user's assignment to an application.
#[utoipa::path(delete, path = "/applications/{id}/assignments/users/{user}", tag = "applications",
    params(("id" = String, Path, description = "The application's appId"),
        ("user" = String, Path, description = "A user id or user principal name")),
    responses((status = 204, description = "Removed"), (status = 404, body = api::Error)))]
async fn remove_user_assignment(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path((id, user)): Path<(String, String)>,
) -> NoContent {
    let user = state.latchkey.directory.find_user(&user).await?;
    state
        .latchkey
        .applications
        .unassign(
            &actor,
            &ClientId::from_string(id),
            AssignedPrincipal::User(user.id),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a group's assignment to an application.
#[utoipa::path(delete, path = "/applications/{id}/assignments/groups/{group}", tag = "applications",
    params(("id" = String, Path, description = "The application's appId"),
        ("group" = String, Path, description = "A group id or display name")),
    responses((status = 204, description = "Removed"), (status = 404, body = api::Error)))]
async fn remove_group_assignment(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path((id, group)): Path<(String, String)>,
) -> NoContent {
    let group = state.latchkey.directory.find_group(&group).await?;
    state
        .latchkey
        .applications
        .unassign(
            &actor,
            &ClientId::from_string(id),
            AssignedPrincipal::Group(group.id),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete an application.
#[utoipa::path(delete, path = "/applications/{id}", tag = "applications",
    params(("id" = String, Path, description = "The application's appId")),
    responses((status = 204, description = "Deleted"), (status = 404, body = api::Error)))]
async fn delete_app(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> NoContent {
    state
        .latchkey
        .applications
        .delete_application(&actor, &ClientId::from_string(id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The operations (`GET /users`) the hand-written document described before the document
    /// was generated; kept so the generated one can be held to at least as much.
    const HANDWRITTEN_OPERATIONS: &str = include_str!("../openapi-baseline/operations.txt");
    const HANDWRITTEN_SCHEMAS: &str = include_str!("../openapi-baseline/schemas.txt");

    fn operations(doc: &utoipa::openapi::OpenApi) -> Vec<String> {
        let json = serde_json::to_value(doc).expect("serialises");
        let mut operations = Vec::new();
        for (path, item) in json["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("path item").keys() {
                if method != "parameters" {
                    operations.push(format!("{} {path}", method.to_uppercase()));
                }
            }
        }
        operations
    }

    #[test]
    fn the_generated_document_describes_every_operation_the_handwritten_one_did() {
        let generated = operations(&openapi());
        for operation in HANDWRITTEN_OPERATIONS.lines().filter(|l| !l.is_empty()) {
            assert!(
                generated.iter().any(|g| g == operation),
                "the generated document describes {operation}"
            );
        }
    }

    #[test]
    fn the_generated_document_has_the_handwritten_main_schemas() {
        let json = serde_json::to_value(openapi()).expect("serialises");
        let schemas = json["components"]["schemas"].as_object().expect("schemas");
        for name in HANDWRITTEN_SCHEMAS.lines().filter(|l| !l.is_empty()) {
            assert!(schemas.contains_key(name), "the schema {name} is generated");
        }
        assert!(json["components"]["securitySchemes"]["bearerAuth"].is_object());
    }

    /// A route added with axum's plain `route` method would escape the document; `routes!` takes the
    /// path and method from the handler's `#[utoipa::path]`, so every route is documented.
    #[test]
    fn every_admin_route_is_registered_from_its_documentation() {
        let sources = [
            ("admin_api.rs", include_str!("admin_api.rs")),
            ("admin_policy_api.rs", include_str!("admin_policy_api.rs")),
            ("admin_risk_api.rs", include_str!("admin_risk_api.rs")),
            ("admin_tokens_api.rs", include_str!("admin_tokens_api.rs")),
        ];
        let plain = concat!(".", "route(");
        for (file, source) in sources {
            assert!(
                !source.contains(plain),
                "{file} registers a route without documentation; use routes!(handler)"
            );
        }
    }

    #[test]
    fn every_operation_but_the_document_needs_a_token() {
        let json = serde_json::to_value(openapi()).expect("serialises");
        assert_eq!(json["security"], serde_json::json!([{"bearerAuth": []}]));
        assert_eq!(
            json["paths"]["/openapi.json"]["get"]["security"],
            serde_json::json!([{}])
        );
    }
}
