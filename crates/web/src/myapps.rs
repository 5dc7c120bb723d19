//! My Apps: an OpenID Connect client of this server that uses the public flow like any other
//! application (authorization code + PKCE over the browser, code exchange and JWKS over HTTP).
//! It never reads the identity provider's session or store directly to learn who the user is.

use askama::Template;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::cookie::{SameSite, SignedCookieJar};
use jsonwebtoken::{DecodingKey, Validation, jwk::JwkSet};
use latchkey_domain::ids::ClientId;
use latchkey_domain::ids::UserId;
use latchkey_domain::secret::{base64url, constant_time_eq, random_token, sha256};
use latchkey_domain::service::{BACKCHANNEL_LOGOUT_EVENT, LOGOUT_TOKEN_TYPE, MY_APPS_CLIENT_ID};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::AppState;
use crate::cookies::{self, CookieName, CsrfScope, MyAppsKey, csrf_token, require_csrf};
use crate::error::{PageError, render};

/// My Apps' cookies, signed with a key of their own (`KeyPurpose::MyAppsCookies`).
type Jar = SignedCookieJar<MyAppsKey>;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/myapps", get(portal))
        .route("/myapps/callback", get(callback))
        .route("/myapps/signout", post(sign_out))
        .route("/myapps/signed-out", get(signed_out))
        .route(
            "/myapps/backchannel-logout",
            post(backchannel_logout).layer(DefaultBodyLimit::max(MAX_LOGOUT_BODY)),
        )
}

/// What My Apps remembers about a signed-in user. The access token is asked about on every
/// view, so a disabled user or a revoked session ends My Apps' session too.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PortalSession {
    /// Always [`PortalSession::KIND`]: the signed jar signs values, not names, so each value
    /// says what it is and a login cookie can never be read as a session.
    kind: String,
    sub: String,
    upn: String,
    name: String,
    id_token: String,
    access_token: String,
    /// Random, for the sign-out form's CSRF token.
    form_id: String,
    exp: i64,
    /// The provider session (`sid` of the ID token) this session belongs to, which a
    /// back-channel logout token names when it ends.
    #[serde(default)]
    sid: Option<String>,
}

impl PortalSession {
    const KIND: &str = "my-apps-session";
}

/// The login in flight: state, nonce and PKCE verifier, bound to this browser.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PortalLogin {
    kind: String,
    state: String,
    nonce: String,
    verifier: String,
}

impl PortalLogin {
    const KIND: &str = "my-apps-login";
}

/// A value for the signed jar: base64url JSON, which needs no cookie escaping.
fn encode(value: &impl Serialize) -> String {
    base64url(&serde_json::to_vec(value).unwrap_or_default())
}

/// The verified value of cookie `name`, if the signature holds and it is of `kind`.
fn read<T: DeserializeOwned>(
    state: &AppState,
    jar: &Jar,
    name: CookieName,
    kind: &str,
    kind_of: impl Fn(&T) -> &str,
) -> Option<T> {
    let cookie = jar.get(name.of(state))?;
    let bytes = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        cookie.value(),
    )
    .ok()?;
    let value: T = serde_json::from_slice(&bytes).ok()?;
    (kind_of(&value) == kind).then_some(value)
}

fn session(state: &AppState, jar: &Jar) -> Option<PortalSession> {
    read(
        state,
        jar,
        cookies::MY_APPS_SESSION,
        PortalSession::KIND,
        |s: &PortalSession| &s.kind,
    )
}

#[derive(Template)]
#[template(path = "myapps.html")]
struct PortalPage<'a> {
    csrf: &'a str,
    name: &'a str,
    upn: &'a str,
    apps: Vec<(String, String)>,
}

async fn portal(State(state): State<AppState>, jar: Jar) -> Result<Response, PageError> {
    let now = state.latchkey.now().0;
    let Some(session) = session(&state, &jar).filter(|s| s.exp > now) else {
        return Ok(start_login(&state, jar));
    };
    // The provider said (back-channel logout) that this session's provider session ended.
    if let Some(sid) = &session.sid {
        let client = ClientId::from_string(MY_APPS_CLIENT_ID);
        if state
            .latchkey
            .tokens
            .client_session_ended(&client, sid)
            .await?
        {
            // The provider session is over: sign in again, asking for a fresh sign-in
            // (`prompt=login`), so that even a provider session somehow still alive under that
            // sid cannot hand back the same sid and loop.
            let jar = jar.add(cookies::removal(&state, cookies::MY_APPS_SESSION));
            return Ok(start_login_prompting(&state, jar, Some("login")));
        }
    }
    // Like any application, My Apps asks the provider whether its grant still stands: a
    // disabled account or revoked sessions revoke the grant, and My Apps signs in again.
    if !grant_stands(&state, &session).await? {
        let jar = jar.add(cookies::removal(&state, cookies::MY_APPS_SESSION));
        return Ok(start_login(&state, jar));
    }
    // As in Entra's My Apps: only the applications the user is assigned to (directly or
    // through a group), and of those only the ones with a home page to go to.
    let assigned = state
        .latchkey
        .applications
        .assigned_to(&UserId::from_string(session.sub.as_str()))
        .await?;
    let apps = state
        .latchkey
        .applications
        .list_applications()
        .await?
        .into_iter()
        .filter(|app| assigned.contains(&app.client_id))
        .filter_map(|app| app.home_url.map(|url| (app.display_name, url)))
        .collect();
    let csrf = csrf_token(&state, CsrfScope::MyApps(&session.form_id));
    let page = PortalPage {
        csrf: &csrf,
        name: &session.name,
        upn: &session.upn,
        apps,
    };
    Ok(render(&page))
}

/// Whether the provider's `/userinfo` still accepts the session's access token.
async fn grant_stands(state: &AppState, session: &PortalSession) -> Result<bool, PageError> {
    let answer = state
        .http
        .get(format!("{}/userinfo", state.internal_base_url))
        .bearer_auth(&session.access_token)
        .send()
        .await;
    match answer.map(|a| a.status()) {
        Ok(status) if status.is_success() => Ok(true),
        Ok(StatusCode::UNAUTHORIZED) => Ok(false),
        other => {
            tracing::warn!(answer = ?other, "My Apps could not check its session");
            Err(PageError::new(
                StatusCode::BAD_GATEWAY,
                "We couldn't check your session",
                "My Apps could not reach the sign-in service. Reload the page to try again.",
            ))
        }
    }
}

fn start_login(state: &AppState, jar: Jar) -> Response {
    start_login_prompting(state, jar, None)
}

/// Sends the browser to the provider's `/authorize`, with `prompt` when given.
fn start_login_prompting(state: &AppState, jar: Jar, prompt: Option<&str>) -> Response {
    let login = PortalLogin {
        kind: PortalLogin::KIND.into(),
        state: random_token().expose().to_string(),
        nonce: random_token().expose().to_string(),
        verifier: random_token().expose().to_string(),
    };
    let challenge = base64url(&sha256(login.verifier.as_bytes()));
    let issuer = state.issuer();
    let mut url = url::Url::parse(&format!("{issuer}/authorize")).expect("issuer is a URL");
    url.query_pairs_mut()
        .append_pair("client_id", MY_APPS_CLIENT_ID)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid profile email")
        .append_pair("redirect_uri", &format!("{issuer}/myapps/callback"))
        .append_pair("state", &login.state)
        .append_pair("nonce", &login.nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    if let Some(prompt) = prompt {
        url.query_pairs_mut().append_pair("prompt", prompt);
    }
    let cookie = cookies::build(state, cookies::MY_APPS_LOGIN, encode(&login), SameSite::Lax);
    (jar.add(cookie), Redirect::to(url.as_str())).into_response()
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    id_token: String,
    access_token: String,
}

#[derive(Deserialize)]
struct IdClaims {
    sub: String,
    nonce: Option<String>,
    preferred_username: Option<String>,
    name: Option<String>,
    exp: i64,
    sid: Option<String>,
}

async fn callback(
    State(state): State<AppState>,
    jar: Jar,
    query: Result<Query<CallbackQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    let Query(query) = query?;
    let login: PortalLogin = read(
        &state,
        &jar,
        cookies::MY_APPS_LOGIN,
        PortalLogin::KIND,
        |l: &PortalLogin| &l.kind,
    )
    .ok_or_else(|| PageError::bad_request("This sign-in to My Apps was not started in this browser, or it expired. Open My Apps again."))?;
    let returned_state = query.state.unwrap_or_default();
    if !constant_time_eq(returned_state.as_bytes(), login.state.as_bytes()) {
        return Err(PageError::bad_request(
            "The sign-in answer does not belong to this browser's sign-in. Open My Apps again.",
        ));
    }
    if let Some(error) = query.error {
        let detail = query.error_description.unwrap_or_default();
        return Err(PageError::bad_request(format!(
            "Signing in to My Apps failed ({error}: {detail}). Open My Apps to try again."
        )));
    }
    let code = query.code.ok_or_else(|| {
        PageError::bad_request("The sign-in answer has no code. Open My Apps again.")
    })?;
    let (tokens, claims) = redeem(&state, &code, &login).await.map_err(|e| {
        tracing::warn!(error = %e, "My Apps could not complete sign-in");
        PageError::new(
            StatusCode::BAD_GATEWAY,
            "We couldn't finish signing you in",
            "My Apps could not complete your sign-in. Open My Apps to try again.",
        )
    })?;
    let session = PortalSession {
        kind: PortalSession::KIND.into(),
        upn: claims.preferred_username.clone().unwrap_or_default(),
        name: claims.name.clone().unwrap_or_default(),
        sub: claims.sub.clone(),
        exp: claims.exp,
        id_token: tokens.id_token,
        access_token: tokens.access_token,
        form_id: random_token().expose().to_string(),
        sid: claims.sid.clone(),
    };
    let jar = jar
        .add(cookies::removal(&state, cookies::MY_APPS_LOGIN))
        .add(cookies::build(
            &state,
            cookies::MY_APPS_SESSION,
            encode(&session),
            SameSite::Lax,
        ));
    Ok((jar, Redirect::to("/myapps")).into_response())
}

/// Exchanges the code at the token endpoint and validates the ID token against the JWKS.
async fn redeem(
    state: &AppState,
    code: &str,
    login: &PortalLogin,
) -> Result<(TokenAnswer, IdClaims), String> {
    let issuer = state.issuer();
    let base = &state.internal_base_url;
    let answer: TokenAnswer = state
        .http
        .post(format!("{base}/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &format!("{issuer}/myapps/callback")),
            ("client_id", MY_APPS_CLIENT_ID),
            ("code_verifier", &login.verifier),
        ])
        .send()
        .await
        .map_err(|e| format!("token request: {e}"))?
        .error_for_status()
        .map_err(|e| format!("token endpoint: {e}"))?
        .json()
        .await
        .map_err(|e| format!("token response: {e}"))?;
    let (key, algorithm) = verifying_key(state, &answer.id_token)
        .await
        .map_err(|e| format!("id token: {e}"))?;
    let mut validation = Validation::new(algorithm);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[MY_APPS_CLIENT_ID]);
    // Expiry is judged by the clock that set `exp` (the domain's), with the library's leeway.
    validation.validate_exp = false;
    let claims = jsonwebtoken::decode::<IdClaims>(&answer.id_token, &key, &validation)
        .map_err(|e| format!("id token: {e}"))?
        .claims;
    if claims.exp < state.latchkey.now().0 - validation.leeway as i64 {
        return Err("id token: ExpiredSignature".into());
    }
    if !claims
        .nonce
        .as_deref()
        .is_some_and(|n| constant_time_eq(n.as_bytes(), login.nonce.as_bytes()))
    {
        return Err("id token nonce does not match".into());
    }
    Ok((answer, claims))
}

/// The provider's key that signed `token` (by `kid`, from the JWKS My Apps fetches like any
/// application), and its algorithm.
async fn verifying_key(
    state: &AppState,
    token: &str,
) -> Result<(DecodingKey, jsonwebtoken::Algorithm), String> {
    let base = &state.internal_base_url;
    let jwks: JwkSet = state
        .http
        .get(format!("{base}/jwks"))
        .send()
        .await
        .map_err(|e| format!("jwks request: {e}"))?
        .json()
        .await
        .map_err(|e| format!("jwks response: {e}"))?;
    let header = jsonwebtoken::decode_header(token).map_err(|e| format!("header: {e}"))?;
    let jwk = header
        .kid
        .as_deref()
        .and_then(|kid| jwks.find(kid))
        .ok_or("signed by an unknown key")?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("jwk: {e}"))?;
    let algorithm = match jwk.common.key_algorithm {
        Some(jsonwebtoken::jwk::KeyAlgorithm::ES256) => jsonwebtoken::Algorithm::ES256,
        Some(jsonwebtoken::jwk::KeyAlgorithm::RS256) => jsonwebtoken::Algorithm::RS256,
        _ => return Err("unsupported key algorithm".into()),
    };
    if header.alg != algorithm {
        return Err("algorithm does not match the key".into());
    }
    Ok((key, algorithm))
}

/// The largest back-channel logout request body and token My Apps reads. A logout token is a
/// few hundred bytes.
const MAX_LOGOUT_BODY: usize = 16 * 1024;
const MAX_LOGOUT_TOKEN: usize = 8 * 1024;

#[derive(Deserialize)]
struct LogoutForm {
    logout_token: String,
}

#[derive(Deserialize)]
struct LogoutClaims {
    jti: Option<String>,
    iat: Option<i64>,
    exp: Option<i64>,
    sid: Option<String>,
    sub: Option<String>,
    nonce: Option<serde_json::Value>,
    events: Option<serde_json::Map<String, serde_json::Value>>,
}

/// `400` with an OAuth-style JSON error (§2.8), never cached.
fn logout_refused(description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        axum::Json(serde_json::json!({
            "error": "invalid_request",
            "error_description": description,
        })),
    )
        .into_response()
}

/// OpenID Connect Back-Channel Logout 1.0, My Apps as the relying party: validates the logout
/// token as §2.6 asks, refuses a replayed `jti`, and records the ended `sid` so that My Apps'
/// cookie sessions of it count as signed out on their next view.
async fn backchannel_logout(
    State(state): State<AppState>,
    form: Result<Form<LogoutForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return logout_refused("The request must be a form with a logout_token.");
    };
    if form.logout_token.is_empty() || form.logout_token.len() > MAX_LOGOUT_TOKEN {
        return logout_refused("The logout_token is missing or too long.");
    }
    let claims = match verify_logout_token(&state, &form.logout_token).await {
        Ok(claims) => claims,
        Err(reason) => {
            tracing::info!(reason = %reason, "My Apps refused a logout token");
            return logout_refused("The logout_token is not valid.");
        }
    };
    let client = ClientId::from_string(MY_APPS_CLIENT_ID);
    let (Some(jti), Some(exp)) = (claims.jti.as_deref(), claims.exp) else {
        return logout_refused("The logout_token is not valid.");
    };
    match state
        .latchkey
        .tokens
        .remember_logout_token(&client, jti, latchkey_domain::clock::Timestamp(exp))
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!("My Apps refused a replayed logout token");
            return logout_refused("The logout_token was already used.");
        }
        Err(e) => {
            tracing::warn!(error = %e, "My Apps could not record a logout token");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(axum::http::header::CACHE_CONTROL, "no-store")],
            )
                .into_response();
        }
    }
    let Some(sid) = claims.sid.as_deref() else {
        // Verified to hold a sub; My Apps keys its sessions by sid only (docs/oidc.md).
        return logout_refused("My Apps signs out by sid; the logout_token has none.");
    };
    if let Err(e) = state.latchkey.tokens.end_client_session(&client, sid).await {
        tracing::warn!(error = %e, "My Apps could not record an ended session");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(axum::http::header::CACHE_CONTROL, "no-store")],
        )
            .into_response();
    }
    (
        StatusCode::OK,
        [(axum::http::header::CACHE_CONTROL, "no-store")],
    )
        .into_response()
}

/// §2.6: signature by the provider's key, explicit `typ`, `iss`, `aud`, `iat`/`exp` against
/// the clock, the back-channel logout event, a `sid` or `sub`, and no `nonce`.
async fn verify_logout_token(state: &AppState, token: &str) -> Result<LogoutClaims, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| format!("header: {e}"))?;
    let typ = header.typ.as_deref().unwrap_or_default();
    if !typ.eq_ignore_ascii_case(LOGOUT_TOKEN_TYPE)
        && !typ.eq_ignore_ascii_case(&format!("application/{LOGOUT_TOKEN_TYPE}"))
    {
        return Err("not typed logout+jwt".into());
    }
    let (key, algorithm) = verifying_key(state, token).await?;
    let mut validation = Validation::new(algorithm);
    validation.set_issuer(&[state.issuer()]);
    validation.set_audience(&[MY_APPS_CLIENT_ID]);
    validation.set_required_spec_claims(&["iss", "aud"]);
    // Time is judged by the clock that set it (the domain's), with the library's leeway.
    validation.validate_exp = false;
    let claims = jsonwebtoken::decode::<LogoutClaims>(token, &key, &validation)
        .map_err(|e| format!("{e}"))?
        .claims;
    let now = state.latchkey.now().0;
    let leeway = validation.leeway as i64;
    match (claims.iat, claims.exp) {
        (Some(iat), Some(exp)) if iat <= now + leeway && exp >= now - leeway => {}
        _ => return Err("iat or exp missing, in the future or passed".into()),
    }
    if !claims
        .events
        .as_ref()
        .and_then(|e| e.get(BACKCHANNEL_LOGOUT_EVENT))
        .is_some_and(|v| v.is_object())
    {
        return Err("no back-channel logout event".into());
    }
    if claims.sid.is_none() && claims.sub.is_none() {
        return Err("neither sid nor sub".into());
    }
    if claims.nonce.is_some() {
        return Err("has a nonce".into());
    }
    if claims.jti.as_deref().is_none_or(str::is_empty) {
        return Err("no jti".into());
    }
    Ok(claims)
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

/// Signs out of My Apps, then of Latchkey itself through the end-session endpoint.
async fn sign_out(
    State(state): State<AppState>,
    jar: Jar,
    form: Result<Form<CsrfForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form?;
    let session = session(&state, &jar);
    // Without a session My Apps has nothing to end; the provider's logout then asks the user.
    if let Some(session) = &session {
        require_csrf(&state, CsrfScope::MyApps(&session.form_id), &form.csrf)?;
    }
    let jar = jar.add(cookies::removal(&state, cookies::MY_APPS_SESSION));
    let issuer = state.issuer();
    let mut url = url::Url::parse(&format!("{issuer}/logout")).expect("issuer is a URL");
    url.query_pairs_mut()
        .append_pair("client_id", MY_APPS_CLIENT_ID)
        .append_pair(
            "post_logout_redirect_uri",
            &format!("{issuer}/myapps/signed-out"),
        );
    if let Some(session) = session {
        url.query_pairs_mut()
            .append_pair("id_token_hint", &session.id_token);
    }
    Ok((jar, Redirect::to(url.as_str())).into_response())
}

async fn signed_out() -> Response {
    crate::signed_out::page("/myapps")
}
