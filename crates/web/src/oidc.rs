//! The OpenID Connect provider endpoints: discovery, JWKS, authorize, token, userinfo and
//! RP-initiated logout.

use askama::Template;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use axum_extra::extract::cookie::{CookieJar, SameSite};
use latchkey_domain::DomainError;
use latchkey_domain::application::SigningAlg;
use latchkey_domain::ids::ClientId;
use latchkey_domain::log::SignInContext;
use latchkey_domain::oidc::{AuthorizeError, AuthorizeParams, OAuthErrorCode};
use latchkey_domain::secret::Secret;
use latchkey_domain::service::{AuthorizeStep, ClientCredentials, OAuthError};
use latchkey_domain::session::Session;
use latchkey_domain::signin::SignInStage;
use latchkey_domain::user::User;
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::cookies::{self, CsrfScope, csrf_token};
use crate::error::{PageError, render};
use crate::extract::{LogoutForm, Origin, current_session};
use crate::metrics::Metrics;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/authorize", get(authorize).post(authorize_form))
        .route("/token", axum::routing::post(token))
        .route("/userinfo", get(userinfo).post(userinfo))
        .route("/logout", get(end_session).post(confirm_end_session))
        .merge(crate::revocation::routes())
}

async fn discovery(State(state): State<AppState>) -> impl IntoResponse {
    let issuer = state.issuer();
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "jwks_uri": format!("{issuer}/jwks"),
        "end_session_endpoint": format!("{issuer}/logout"),
        "revocation_endpoint": format!("{issuer}/revoke"),
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint": format!("{issuer}/introspect"),
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "device_authorization_endpoint": format!("{issuer}/device_authorization"),
        "grant_types_supported": ["authorization_code", "refresh_token",
                                  latchkey_domain::device_authorization::DEVICE_CODE_GRANT_TYPE],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": SigningAlg::ALL,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "sid", "amr", "acr",
                             "at_hash", "preferred_username", "name", "email", "groups"],
        "prompt_values_supported": ["none", "login"],
        // Every acr an ID token may carry; `acr_values` can ask for the three strengths.
        "acr_values_supported": [
            latchkey_domain::session::ACR_SINGLE_FACTOR,
            latchkey_domain::session::ACR_MFA,
            latchkey_domain::session::ACR_PASSWORDLESS_MFA,
            latchkey_domain::session::ACR_PHISHING_RESISTANT_MFA,
        ],
        "authorization_response_iss_parameter_supported": true,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "claims_parameter_supported": false,
    }))
}

async fn jwks(State(state): State<AppState>) -> Result<Response, PageError> {
    let ring = state.latchkey.tokens.keyring().await?;
    Ok((
        [(
            header::CACHE_CONTROL,
            format!(
                "public, max-age={}",
                latchkey_domain::service::JWKS_MAX_AGE_SECONDS
            ),
        )],
        Json(ring.jwks()),
    )
        .into_response())
}

/// OpenID Connect Core §3.1.2.1: the authorization endpoint accepts GET and form POST alike.
async fn authorize_form(
    State(state): State<AppState>,
    Origin(context): Origin,
    jar: CookieJar,
    params: Result<Form<AuthorizeParams>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    let Form(params) = params?;
    authorize_with(state, jar, params, context).await
}

async fn authorize(
    State(state): State<AppState>,
    Origin(context): Origin,
    jar: CookieJar,
    params: Result<Query<AuthorizeParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    let Query(params) = params?;
    authorize_with(state, jar, params, context).await
}

async fn authorize_with(
    state: AppState,
    jar: CookieJar,
    params: AuthorizeParams,
    context: SignInContext,
) -> Result<Response, PageError> {
    let request = match state.latchkey.tokens.authorization_request(&params).await {
        Ok(request) => request,
        Err(AuthorizeError::NoRedirect(message)) => {
            return Err(PageError::new(
                StatusCode::BAD_REQUEST,
                "This sign-in link isn't valid",
                message,
            ));
        }
        Err(AuthorizeError::Redirect {
            redirect_uri,
            error,
            description,
            state: app_state,
        }) => {
            let target = latchkey_domain::service::error_redirect(
                &redirect_uri,
                error,
                &description,
                app_state.as_deref(),
                state.issuer(),
            );
            return Ok(Redirect::to(&target).into_response());
        }
    };
    let current = current_session(&state, &jar).await?;
    match state
        .latchkey
        .sign_in
        .continue_authorization(request, current, &context)
        .await?
    {
        AuthorizeStep::Redirect(target) => Ok(Redirect::to(&target).into_response()),
        AuthorizeStep::SignIn(sign_in) => {
            let cookie = cookies::build(
                &state,
                cookies::SIGN_IN,
                sign_in.id.to_string(),
                SameSite::Lax,
            );
            let jar = jar.add(cookie);
            // The user-name page is shown here, without a redirect to /login first. A later
            // stage (a step-up's number page, which reloads itself) lives at /login.
            if sign_in.stage == SignInStage::AwaitingUsername {
                return Ok(crate::pages::first_page(&state, jar, &sign_in).await);
            }
            Ok((jar, Redirect::to("/login")).into_response())
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct TokenForm {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    /// The device authorization grant's (RFC 8628) `device_code`, at the token endpoint.
    device_code: Option<String>,
    /// At the token endpoint, a refresh may ask for less than was granted (RFC 6749 §6); at
    /// the device authorization endpoint, what the device asks for.
    pub(crate) scope: Option<String>,
}

pub(crate) fn oauth_error(status: StatusCode, error: OAuthError) -> Response {
    let mut response = (
        status,
        Json(json!({"error": error.error, "error_description": error.description})),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            "Basic realm=\"latchkey\"".parse().expect("static"),
        );
    }
    response
}

/// Client credentials from HTTP Basic (RFC 6749 §2.3.1: form-urlencoded id and secret) or the
/// form body; using both at once is refused.
pub(crate) fn client_credentials(
    headers: &HeaderMap,
    form: &TokenForm,
) -> Result<ClientCredentials, OAuthError> {
    credentials_from(
        headers,
        form.client_id.as_deref(),
        form.client_secret.as_deref(),
    )
}

/// [`client_credentials`] for any endpoint that authenticates clients as the token endpoint
/// does (revocation, introspection): the form's `client_id` and `client_secret`.
pub(crate) fn credentials_from(
    headers: &HeaderMap,
    form_client_id: Option<&str>,
    form_secret: Option<&str>,
) -> Result<ClientCredentials, OAuthError> {
    let invalid = |why: &str| OAuthError {
        error: OAuthErrorCode::InvalidRequest,
        description: why.to_string(),
    };
    let basic = match headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        Some(value) if value.len() > 1024 => {
            return Err(invalid("the Authorization header is too long"));
        }
        Some(_) if crate::auth_header::credentials(headers, "Basic").is_some() => {
            let encoded = crate::auth_header::credentials(headers, "Basic").unwrap_or_default();
            let credentials = crate::auth_header::basic_credentials(encoded)
                .ok_or_else(|| invalid("malformed Basic credentials"))?;
            Some(credentials)
        }
        Some(_) => {
            return Err(invalid(
                "only Basic client authentication is supported in the Authorization header",
            ));
        }
        None => None,
    };
    match (basic, form_secret) {
        (Some(_), Some(_)) => Err(invalid("use one client authentication method, not two")),
        (Some((id, secret)), None) => {
            if form_client_id.is_some_and(|form_id| form_id != id) {
                return Err(invalid("client_id does not match the Basic credentials"));
            }
            Ok(ClientCredentials {
                client_id: Some(id),
                secret: Some(Secret::new(secret)),
            })
        }
        (None, secret) => Ok(ClientCredentials {
            client_id: form_client_id.map(str::to_string),
            secret: secret.map(|s| Secret::new(s.to_string())),
        }),
    }
}

async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<TokenForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            OAuthError {
                error: OAuthErrorCode::InvalidRequest,
                description: "the body must be application/x-www-form-urlencoded".into(),
            },
        );
    };
    let credentials = match client_credentials(&headers, &form) {
        Ok(c) => c,
        Err(e) => return oauth_error(StatusCode::BAD_REQUEST, e),
    };
    if let Err(e) = browser_origin_is_the_clients(&state, &headers, &credentials).await {
        Metrics::inc(&state.metrics.token_errors);
        return oauth_error(StatusCode::BAD_REQUEST, e);
    }
    let missing = |name: &str| OAuthError {
        error: OAuthErrorCode::InvalidRequest,
        description: format!("{name} is required"),
    };
    let result = match form.grant_type.as_deref() {
        Some("authorization_code") => match &form.code {
            Some(code) => {
                state
                    .latchkey
                    .tokens
                    .exchange_code(
                        &credentials,
                        code,
                        form.redirect_uri.as_deref(),
                        form.code_verifier.as_deref(),
                    )
                    .await
            }
            None => Err(missing("code")),
        },
        Some("refresh_token") => match &form.refresh_token {
            Some(token) => {
                state
                    .latchkey
                    .tokens
                    .refresh(&credentials, token, form.scope.as_deref())
                    .await
            }
            None => Err(missing("refresh_token")),
        },
        Some(latchkey_domain::device_authorization::DEVICE_CODE_GRANT_TYPE) => {
            match &form.device_code {
                Some(code) => {
                    state
                        .latchkey
                        .tokens
                        .exchange_device_code(&credentials, code)
                        .await
                }
                None => Err(missing("device_code")),
            }
        }
        Some(_) => Err(OAuthError {
            error: OAuthErrorCode::UnsupportedGrantType,
            description: "use authorization_code, refresh_token or the device_code grant".into(),
        }),
        None => Err(missing("grant_type")),
    };
    let no_store = [
        (header::CACHE_CONTROL, "no-store"),
        (header::PRAGMA, "no-cache"),
    ];
    match result {
        Ok(tokens) => {
            Metrics::inc(&state.metrics.tokens_issued);
            (no_store, Json(tokens)).into_response()
        }
        Err(e) => {
            Metrics::inc(&state.metrics.token_errors);
            tracing::info!(error = %e.error, description = %e.description, "token request refused");
            let status = match e.error {
                OAuthErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
                OAuthErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::BAD_REQUEST,
            };
            (no_store, oauth_error(status, e)).into_response()
        }
    }
}

/// A token request a browser sent (it carries `Origin`) must come from a page of the client it
/// names: otherwise a page of another registered application (whose origin gets CORS) could
/// spend this client's code or refresh token. Refused before anything is spent. Requests
/// without `Origin` (servers, native apps) are not concerned; an unknown client is left for
/// client authentication to refuse.
async fn browser_origin_is_the_clients(
    state: &AppState,
    headers: &HeaderMap,
    credentials: &ClientCredentials,
) -> Result<(), OAuthError> {
    let Some(origin) = crate::cors::request_origin(headers) else {
        return Ok(());
    };
    let Some(client_id) = credentials
        .client_id
        .as_deref()
        .filter(|id| !id.is_empty() && id.len() <= 128)
    else {
        return Ok(());
    };
    let app = match state
        .latchkey
        .applications
        .application(&ClientId::from_string(client_id))
        .await
    {
        Ok(app) => app,
        Err(_) => return Ok(()),
    };
    if app.accepts_origin(origin) {
        return Ok(());
    }
    Err(OAuthError {
        error: OAuthErrorCode::UnauthorizedClient,
        description: "this client does not accept token requests from this browser origin".into(),
    })
}

async fn userinfo(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let bearer = crate::auth_header::credentials(&headers, "Bearer");
    let challenge = |error: OAuthError| {
        let value = crate::auth_header::challenge(
            "Bearer",
            &[
                ("error", error.error.as_str()),
                ("error_description", &error.description),
            ],
        );
        let mut response = (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": error.error, "error_description": error.description})),
        )
            .into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
        response
    };
    let Some(token) = bearer.filter(|t| !t.is_empty()) else {
        // RFC 6750 §3.1: a request without credentials gets a bare challenge, no error code.
        let mut response = StatusCode::UNAUTHORIZED.into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, "Bearer".parse().expect("static"));
        return response;
    };
    match state.latchkey.tokens.userinfo(token).await {
        Ok(claims) => Json(claims).into_response(),
        Err(e) if e.error == OAuthErrorCode::ServerError => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": e.error})),
        )
            .into_response(),
        Err(e) => challenge(e),
    }
}

#[derive(Deserialize, Default)]
struct EndSessionParams {
    id_token_hint: Option<String>,
    client_id: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
}

#[derive(Template)]
#[template(path = "logout.html")]
struct ConfirmLogoutPage<'a> {
    csrf: &'a str,
    client_id: &'a str,
    redirect: &'a str,
    state: &'a str,
}

fn logout_redirect(uri: &str, app_state: Option<&str>) -> String {
    match (url::Url::parse(uri), app_state) {
        (Ok(mut url), Some(s)) if !s.is_empty() => {
            url.query_pairs_mut().append_pair("state", s);
            url.to_string()
        }
        _ => uri.to_string(),
    }
}

/// A logout link (or its confirmation) that names no application, or a redirect the
/// application did not register.
fn unusable_logout_link(e: DomainError) -> PageError {
    PageError::new(
        StatusCode::BAD_REQUEST,
        "We couldn't sign you out from that link",
        e.to_string(),
    )
}

/// Ends this browser's session, if it has one, and goes on: to the application's checked
/// redirect (with its `state`), or to the signed-out page.
async fn sign_out_and_go_on(
    state: &AppState,
    jar: CookieJar,
    current: Option<(Session, User)>,
    redirect: Option<String>,
    app_state: Option<&str>,
) -> Result<Response, PageError> {
    if let Some((session, _)) = current {
        state.latchkey.sign_in.sign_out(&session.id).await?;
    }
    let jar = jar.add(cookies::removal(state, cookies::SESSION));
    Ok(match redirect {
        Some(uri) => (jar, Redirect::to(&logout_redirect(&uri, app_state))).into_response(),
        None => (jar, crate::signed_out::page("/myapps")).into_response(),
    })
}

/// RP-initiated logout. With a valid `id_token_hint` the application asked, so we sign out at
/// once; without one the user confirms, so a third-party page cannot sign people out.
async fn end_session(
    State(state): State<AppState>,
    jar: CookieJar,
    params: Result<Query<EndSessionParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    let Query(params) = params?;
    if params.state.as_ref().is_some_and(|s| s.len() > 2048) {
        return Err(PageError::bad_request("The state parameter is too long."));
    }
    let checked = state
        .latchkey
        .tokens
        .end_session_request(
            params.id_token_hint.as_deref(),
            params.client_id.as_deref(),
            params.post_logout_redirect_uri.as_deref(),
        )
        .await
        .map_err(unusable_logout_link)?;
    let current = current_session(&state, &jar).await?;
    // A hint only vouches for the session it names: someone else's ID token must not sign this
    // browser out without asking.
    let hint_names_this_session = match (&checked.hinted_sid, &current) {
        (Some(sid), Some((session, _))) => sid == session.id.as_str(),
        (Some(_), None) => true,
        _ => false,
    };
    if !checked.verified_hint || !hint_names_this_session {
        let csrf = match &current {
            Some((session, _)) => csrf_token(&state, CsrfScope::Session(&session.id)),
            None => csrf_token(&state, CsrfScope::NoSession),
        };
        let page = ConfirmLogoutPage {
            csrf: &csrf,
            client_id: checked.client_id.as_deref().unwrap_or_default(),
            redirect: checked.redirect.as_deref().unwrap_or_default(),
            state: params.state.as_deref().unwrap_or_default(),
        };
        return Ok((jar, render(&page)).into_response());
    }
    sign_out_and_go_on(
        &state,
        jar,
        current,
        checked.redirect,
        params.state.as_deref(),
    )
    .await
}

#[derive(Deserialize)]
struct ConfirmForm {
    csrf: String,
    client_id: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
}

crate::extract::csrf_field!(ConfirmForm);

async fn confirm_end_session(
    State(state): State<AppState>,
    jar: CookieJar,
    LogoutForm { current, form }: LogoutForm<ConfirmForm>,
) -> Result<Response, PageError> {
    if form.state.as_ref().is_some_and(|s| s.len() > 2048) {
        return Err(PageError::bad_request("The state parameter is too long."));
    }
    // The redirect was validated when the confirmation page was shown; validate it again
    // against the application the request names, as the form came back from the browser.
    let checked = state
        .latchkey
        .tokens
        .end_session_request(
            None,
            form.client_id.as_deref(),
            form.post_logout_redirect_uri.as_deref(),
        )
        .await
        .map_err(unusable_logout_link)?;
    sign_out_and_go_on(
        &state,
        jar,
        current,
        checked.redirect,
        form.state.as_deref(),
    )
    .await
}
