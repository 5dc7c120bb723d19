//! The device authorization grant's edges (RFC 8628): `POST /device_authorization`, where a
//! device asks for codes, and the verification page `/device`, where a signed-in user types
//! (or follows a link with) the code, sees which application asks, and continues or denies.
//! The token endpoint's device-code branch is in `oidc`.

use askama::Template;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use latchkey_domain::DomainError;
use latchkey_domain::device_authorization::MAX_USER_CODE_INPUT;
use latchkey_domain::oidc::OAuthErrorCode;
use latchkey_domain::service::{DeviceConfirmation, OAuthError};
use serde::Deserialize;

use crate::AppState;
use crate::cookies::{CsrfScope, csrf_token};
use crate::error::{PageError, PageFailure, render_uncached, sign_in_redirect};
use crate::extract::{Origin, ReturnTo, SignedIn, SignedInForm, csrf_field};
use crate::oidc::{TokenForm, client_credentials, oauth_error};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/device_authorization", post(device_authorization))
        .route("/device", get(device_page).post(decide))
}

/// `POST /device_authorization` (RFC 8628 §3.1, §3.2).
async fn device_authorization(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<TokenForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let no_store = [
        (header::CACHE_CONTROL, "no-store"),
        (header::PRAGMA, "no-cache"),
    ];
    let Ok(Form(form)) = form else {
        let e = OAuthError {
            error: OAuthErrorCode::InvalidRequest,
            description: "the body must be application/x-www-form-urlencoded".into(),
        };
        return (no_store, oauth_error(StatusCode::BAD_REQUEST, e)).into_response();
    };
    let result = match client_credentials(&headers, &form) {
        Ok(credentials) => {
            state
                .latchkey
                .tokens
                .start_device_authorization(&credentials, form.scope.as_deref())
                .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(answer) => (no_store, Json(answer)).into_response(),
        Err(e) => {
            tracing::info!(error = %e.error, description = %e.description, "device authorization refused");
            let status = match e.error {
                OAuthErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
                OAuthErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::BAD_REQUEST,
            };
            (no_store, oauth_error(status, e)).into_response()
        }
    }
}

/// The verification page, where signing in for it returns.
struct DevicePage;

impl ReturnTo for DevicePage {
    const PATH: &'static str = "/device";
}

#[derive(Template)]
#[template(path = "device.html")]
struct DeviceTemplate<'a> {
    csrf: &'a str,
    upn: &'a str,
    typed: &'a str,
    error: Option<String>,
    confirm: Option<DeviceConfirmation>,
    heading: &'a str,
    done: Option<String>,
}

impl<'a> DeviceTemplate<'a> {
    fn entry(typed: &'a str, error: Option<String>) -> Self {
        DeviceTemplate {
            csrf: "",
            upn: "",
            typed,
            error,
            confirm: None,
            heading: "",
            done: None,
        }
    }
}

#[derive(Deserialize)]
struct CodeQuery {
    user_code: Option<String>,
}

/// A refusal the person can act on (shown on the entry form), or a failure of ours.
fn refused(typed: &str, e: DomainError) -> Result<Response, PageError> {
    match e {
        DomainError::Rejected(message) => {
            let mut response = render_uncached(&DeviceTemplate::entry(typed, Some(message)));
            *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(response)
        }
        other => Err(other.into()),
    }
}

fn too_long() -> PageError {
    PageError::bad_request("That code is too long. Codes are 8 letters, like BCDF-GHJK.")
}

/// `GET /device[?user_code=…]`: the entry form, or the confirmation for a code. A browser
/// without a session signs in first and comes back here with the code.
async fn device_page(
    State(state): State<AppState>,
    Origin(context): Origin,
    signed_in: Option<SignedIn<DevicePage>>,
    query: Result<Query<CodeQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageFailure> {
    let Query(query) = query.map_err(PageError::from)?;
    let typed = query.user_code.unwrap_or_default();
    if typed.len() > MAX_USER_CODE_INPUT {
        return Err(too_long().into());
    }
    let Some(SignedIn { session, user, .. }) = signed_in else {
        let back = if typed.is_empty() {
            DevicePage::PATH.to_string()
        } else {
            let mut url = url::Url::parse("http://x/device").expect("static URL");
            url.query_pairs_mut().append_pair("user_code", &typed);
            format!("/device?{}", url.query().unwrap_or_default())
        };
        return Ok(sign_in_redirect(&back).into_response());
    };
    if typed.is_empty() {
        return Ok(render_uncached(&DeviceTemplate::entry("", None)));
    }
    let confirmation = match state
        .latchkey
        .tokens
        .device_confirmation(&typed, &user, &context)
        .await
    {
        Ok(c) => c,
        Err(e) => return Ok(refused(&typed, e)?),
    };
    let csrf = csrf_token(&state, CsrfScope::Session(&session.id));
    Ok(render_uncached(&DeviceTemplate {
        csrf: &csrf,
        upn: user.upn.as_str(),
        typed: &typed,
        error: None,
        confirm: Some(confirmation),
        heading: "",
        done: None,
    }))
}

#[derive(Deserialize)]
struct DecisionForm {
    csrf: String,
    user_code: String,
    decision: String,
}

csrf_field!(DecisionForm);

/// `POST /device`: the user continues (approves) or denies; CSRF-bound to the session.
async fn decide(
    State(state): State<AppState>,
    Origin(context): Origin,
    signed_in: SignedInForm<DecisionForm, DevicePage>,
) -> Result<Response, PageFailure> {
    let SignedInForm {
        session,
        user,
        form,
        ..
    } = signed_in;
    if form.user_code.len() > MAX_USER_CODE_INPUT {
        return Err(too_long().into());
    }
    let tokens = &state.latchkey.tokens;
    let (heading, outcome) = match form.decision.as_str() {
        "approve" => (
            "You're signed in on your device",
            tokens
                .approve_device_authorization(&form.user_code, &session, &user, &context)
                .await
                .map(|c| {
                    format!(
                        "{} is signed in as you on your device. You can close this window.",
                        c.application
                    )
                }),
        ),
        "deny" => (
            "Sign-in denied",
            tokens
                .deny_device_authorization(&form.user_code, &user, &context)
                .await
                .map(|c| {
                    format!(
                        "{} was not signed in. If you didn't start this yourself, someone may have tried to trick you: nothing was shared with them.",
                        c.application
                    )
                }),
        ),
        _ => return Err(PageError::bad_request("Choose Continue or Deny.").into()),
    };
    match outcome {
        Ok(message) => Ok(render_uncached(&DeviceTemplate {
            csrf: "",
            upn: user.upn.as_str(),
            typed: "",
            error: None,
            confirm: None,
            heading,
            done: Some(message),
        })),
        Err(e) => Ok(refused(&form.user_code, e)?),
    }
}
