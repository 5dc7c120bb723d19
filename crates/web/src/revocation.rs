//! Token revocation (RFC 7009, `POST /revoke`) and introspection (RFC 7662,
//! `POST /introspect`). Clients authenticate as at the token endpoint; the rules (which tokens
//! a client may act on) are the domain's, in `Tokens::revoke` and `Tokens::introspect`.

use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use latchkey_domain::oidc::OAuthErrorCode;
use latchkey_domain::service::{OAuthError, TokenTypeHint};
use serde::Deserialize;

use crate::AppState;
use crate::oidc::{credentials_from, oauth_error};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/revoke", post(revoke))
        .route("/introspect", post(introspect))
}

#[derive(Deserialize)]
struct TokenActionForm {
    token: Option<String>,
    token_type_hint: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

const NO_STORE: [(header::HeaderName, &str); 2] = [
    (header::CACHE_CONTROL, "no-store"),
    (header::PRAGMA, "no-cache"),
];

fn refused(e: OAuthError) -> Response {
    tracing::info!(error = %e.error, description = %e.description, "token revocation or introspection refused");
    let status = match e.error {
        OAuthErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
        OAuthErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    (NO_STORE, oauth_error(status, e)).into_response()
}

/// The form, the client's credentials and the token, or the error to answer with.
fn parse(
    headers: &HeaderMap,
    form: Result<Form<TokenActionForm>, axum::extract::rejection::FormRejection>,
) -> Result<(TokenActionForm, latchkey_domain::service::ClientCredentials), OAuthError> {
    let invalid = |why: &str| OAuthError {
        error: OAuthErrorCode::InvalidRequest,
        description: why.to_string(),
    };
    let Ok(Form(form)) = form else {
        return Err(invalid(
            "the body must be application/x-www-form-urlencoded",
        ));
    };
    let credentials = credentials_from(
        headers,
        form.client_id.as_deref(),
        form.client_secret.as_deref(),
    )?;
    if form.token.is_none() {
        return Err(invalid("token is required"));
    }
    Ok((form, credentials))
}

/// RFC 7009 §2.2: 200 with an empty body whether or not there was such a token.
async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<TokenActionForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let (form, credentials) = match parse(&headers, form) {
        Ok(parsed) => parsed,
        Err(e) => return refused(e),
    };
    let hint = TokenTypeHint::parse(form.token_type_hint.as_deref());
    match state
        .latchkey
        .tokens
        .revoke(
            &credentials,
            form.token.as_deref().unwrap_or_default(),
            hint,
        )
        .await
    {
        Ok(()) => (StatusCode::OK, NO_STORE).into_response(),
        Err(e) => refused(e),
    }
}

/// RFC 7662 §2.2: `{"active": false}` for any token the client may not see as active.
async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<TokenActionForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let (form, credentials) = match parse(&headers, form) {
        Ok(parsed) => parsed,
        Err(e) => return refused(e),
    };
    let hint = TokenTypeHint::parse(form.token_type_hint.as_deref());
    match state
        .latchkey
        .tokens
        .introspect(
            &credentials,
            form.token.as_deref().unwrap_or_default(),
            hint,
        )
        .await
    {
        Ok(answer) => (NO_STORE, Json(answer)).into_response(),
        Err(e) => refused(e),
    }
}
