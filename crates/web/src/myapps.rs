//! My Apps: an OpenID Connect client of this server that uses the public flow like any other
//! application (authorization code + PKCE over the browser, code exchange and JWKS over HTTP).
//! It never reads the identity provider's session or store directly to learn who the user is.

use askama::Template;
use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::cookie::{CookieJar, SameSite};
use jsonwebtoken::{DecodingKey, Validation, jwk::JwkSet};
use latchkey_domain::secret::{
    base64url, constant_time_eq, keyed_mac, keyed_mac_matches, random_token, sha256,
};
use latchkey_domain::service::MY_APPS_CLIENT_ID;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::AppState;
use crate::cookies::{self, csrf_ok, csrf_token};
use crate::error::{PageError, render};

const SESSION_COOKIE: &str = "lk_myapps";
const LOGIN_COOKIE: &str = "lk_myapps_login";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/myapps", get(portal))
        .route("/myapps/callback", get(callback))
        .route("/myapps/signout", post(sign_out))
        .route("/myapps/signed-out", get(signed_out))
}

/// What My Apps remembers about a signed-in user, in a cookie signed with the server key.
#[derive(Serialize, Deserialize)]
struct PortalSession {
    sub: String,
    upn: String,
    name: String,
    id_token: String,
    exp: i64,
}

/// The login in flight: state, nonce and PKCE verifier, bound to this browser.
#[derive(Serialize, Deserialize)]
struct PortalLogin {
    state: String,
    nonce: String,
    verifier: String,
}

fn seal(state: &AppState, value: &impl Serialize) -> String {
    let body = base64url(&serde_json::to_vec(value).unwrap_or_default());
    let tag = keyed_mac(&state.cookie_key, format!("myapps:{body}").as_bytes());
    format!("{body}.{tag}")
}

fn open<T: DeserializeOwned>(state: &AppState, sealed: &str) -> Option<T> {
    let (body, tag) = sealed.split_once('.')?;
    if !keyed_mac_matches(&state.cookie_key, format!("myapps:{body}").as_bytes(), tag) {
        return None;
    }
    let bytes =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, body).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[derive(Template)]
#[template(path = "myapps.html")]
struct PortalPage<'a> {
    csrf: &'a str,
    name: &'a str,
    upn: &'a str,
    apps: Vec<(String, String)>,
}

async fn portal(State(state): State<AppState>, jar: CookieJar) -> Result<Response, PageError> {
    let now = state.latchkey.now().0;
    let session: Option<PortalSession> = jar
        .get(SESSION_COOKIE)
        .and_then(|c| open(&state, c.value()));
    let Some(session) = session.filter(|s| s.exp > now) else {
        return Ok(start_login(&state, jar));
    };
    let apps = state
        .latchkey
        .list_applications()
        .await?
        .into_iter()
        .filter_map(|app| app.home_url.map(|url| (app.display_name, url)))
        .collect();
    let (jar, csrf) = csrf_token(&state, jar);
    let page = PortalPage {
        csrf: &csrf,
        name: &session.name,
        upn: &session.upn,
        apps,
    };
    Ok((jar, render(&page)).into_response())
}

fn start_login(state: &AppState, jar: CookieJar) -> Response {
    let login = PortalLogin {
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
    let cookie = cookies::build(state, LOGIN_COOKIE, seal(state, &login), SameSite::Lax);
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
}

#[derive(Deserialize)]
struct IdClaims {
    sub: String,
    nonce: Option<String>,
    preferred_username: Option<String>,
    name: Option<String>,
    exp: i64,
}

async fn callback(
    State(state): State<AppState>,
    jar: CookieJar,
    query: Result<Query<CallbackQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    let Query(query) = query?;
    let login: PortalLogin = jar
        .get(LOGIN_COOKIE)
        .and_then(|c| open(&state, c.value()))
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
    let claims = redeem(&state, &code, &login).await.map_err(|e| {
        tracing::warn!(error = %e, "My Apps could not complete sign-in");
        PageError::new(
            StatusCode::BAD_GATEWAY,
            "We couldn't finish signing you in",
            "My Apps could not complete your sign-in. Open My Apps to try again.",
        )
    })?;
    let session = PortalSession {
        upn: claims.1.preferred_username.clone().unwrap_or_default(),
        name: claims.1.name.clone().unwrap_or_default(),
        sub: claims.1.sub.clone(),
        exp: claims.1.exp,
        id_token: claims.0,
    };
    let jar = jar
        .remove(cookies::removal(LOGIN_COOKIE))
        .add(cookies::build(
            &state,
            SESSION_COOKIE,
            seal(&state, &session),
            SameSite::Lax,
        ));
    Ok((jar, Redirect::to("/myapps")).into_response())
}

/// Exchanges the code at the token endpoint and validates the ID token against the JWKS.
async fn redeem(
    state: &AppState,
    code: &str,
    login: &PortalLogin,
) -> Result<(String, IdClaims), String> {
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
    let jwks: JwkSet = state
        .http
        .get(format!("{base}/jwks"))
        .send()
        .await
        .map_err(|e| format!("jwks request: {e}"))?
        .json()
        .await
        .map_err(|e| format!("jwks response: {e}"))?;
    let header = jsonwebtoken::decode_header(&answer.id_token)
        .map_err(|e| format!("id token header: {e}"))?;
    let jwk = header
        .kid
        .as_deref()
        .and_then(|kid| jwks.find(kid))
        .ok_or("id token signed by an unknown key")?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("jwk: {e}"))?;
    let algorithm = match jwk.common.key_algorithm {
        Some(jsonwebtoken::jwk::KeyAlgorithm::ES256) => jsonwebtoken::Algorithm::ES256,
        Some(jsonwebtoken::jwk::KeyAlgorithm::RS256) => jsonwebtoken::Algorithm::RS256,
        _ => return Err("unsupported key algorithm".into()),
    };
    let mut validation = Validation::new(algorithm);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[MY_APPS_CLIENT_ID]);
    let claims = jsonwebtoken::decode::<IdClaims>(&answer.id_token, &key, &validation)
        .map_err(|e| format!("id token: {e}"))?
        .claims;
    if !claims
        .nonce
        .as_deref()
        .is_some_and(|n| constant_time_eq(n.as_bytes(), login.nonce.as_bytes()))
    {
        return Err("id token nonce does not match".into());
    }
    Ok((answer.id_token, claims))
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

/// Signs out of My Apps, then of Latchkey itself through the end-session endpoint.
async fn sign_out(
    State(state): State<AppState>,
    jar: CookieJar,
    form: Result<Form<CsrfForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form?;
    if !csrf_ok(&state, &jar, &form.csrf) {
        return Err(PageError::csrf());
    }
    let session: Option<PortalSession> = jar
        .get(SESSION_COOKIE)
        .and_then(|c| open(&state, c.value()));
    let jar = jar.remove(cookies::removal(SESSION_COOKIE));
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
    crate::oidc::signed_out_page("/myapps")
}
