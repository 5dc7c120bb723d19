//! Passkeys and security keys at the HTTP edge: registering, renaming and removing them on
//! Security info, and the sign-in ceremonies.
//!
//! Each ceremony is two requests. `begin` (fetched by `static/passkey.js`, answered with JSON)
//! returns the options for the browser and the id of the ceremony the server keeps; `finish` is
//! an ordinary form post carrying the browser's `credential.toJSON()`, answered with the next
//! page, so a finished sign-in goes through `pages::finish_sign_in` like every other. The
//! ceremony state never leaves the server; this module checks only the shape and size of what
//! comes in and must never decide whether a response is good: that is the domain's.

use askama::Template;
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::cookie::CookieJar;
use latchkey_domain::ids::UserId;
use latchkey_domain::passkey::{
    CeremonyId, MAX_NAME_CHARS, PasskeyChallenge, PasskeyError, PasskeyId, RegisteredPasskey,
};
use latchkey_domain::service::SignInFailure;
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::cookies::{CsrfScope, csrf_token};
use crate::error::{PageError, PageFailure, render, render_uncached};
use crate::extract::{CsrfForm, Origin, ReturnTo, SignInForm, SignedIn, SignedInForm};
use crate::metrics::Metrics;
use crate::security_info::{Segment, freshly_signed_in};

/// The largest browser answer a finish accepts: the domain's cap, the one source of it.
pub use latchkey_domain::passkey::MAX_RESPONSE_BYTES;
/// Ids (passkey, ceremony) are short random strings; anything longer is not one of ours.
const MAX_ID_LEN: usize = 64;

/// Where "Add method: Security key or passkey" goes; signing in again for it returns here.
const REGISTER_PATH: &str = "/mysecurityinfo/passkey";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(REGISTER_PATH, get(register_page))
        .route("/mysecurityinfo/passkey/begin", post(begin_registration))
        .route("/mysecurityinfo/passkey/finish", post(finish_registration))
        .route(
            "/mysecurityinfo/passkeys/{id}/rename",
            get(rename_page).post(rename),
        )
        .route(
            "/mysecurityinfo/passkeys/{id}/remove",
            get(confirm_remove).post(remove),
        )
        .route("/login/passkey/begin", post(begin_sign_in))
        .route("/login/passkey/finish", post(finish_sign_in))
}

/// A passkey as the Security info list shows it.
pub(crate) struct PasskeyRow {
    pub(crate) id: String,
    pub(crate) label: &'static str,
    pub(crate) name: String,
    pub(crate) authenticator: Option<String>,
    pub(crate) created: Segment,
    pub(crate) last_used: Option<Segment>,
}

impl From<RegisteredPasskey> for PasskeyRow {
    fn from(p: RegisteredPasskey) -> Self {
        PasskeyRow {
            id: p.id.to_string(),
            label: p.kind.label(),
            // The make is shown beside the name, unless the name already is the make.
            authenticator: p.authenticator_name.filter(|make| *make != p.name),
            name: p.name,
            created: Segment::time(&p.created_at.to_rfc3339()),
            last_used: p.last_used_at.map(|t| Segment::time(&t.to_rfc3339())),
        }
    }
}

pub(crate) async fn rows(state: &AppState, user: &UserId) -> Result<Vec<PasskeyRow>, PageError> {
    Ok(state
        .latchkey
        .passkeys
        .list(user)
        .await?
        .into_iter()
        .map(PasskeyRow::from)
        .collect())
}

/// An answer to `static/passkey.js`: `{"error": "..."}` with a status, never a page.
struct JsonProblem(StatusCode, String);

impl IntoResponse for JsonProblem {
    fn into_response(self) -> Response {
        (
            self.0,
            [(header::CACHE_CONTROL, "no-store")],
            Json(json!({ "error": self.1 })),
        )
            .into_response()
    }
}

impl From<PageError> for JsonProblem {
    fn from(e: PageError) -> Self {
        JsonProblem(e.status, e.message)
    }
}

impl From<PageFailure> for JsonProblem {
    fn from(e: PageFailure) -> Self {
        match e {
            PageFailure::SignIn(_) => JsonProblem(
                StatusCode::UNAUTHORIZED,
                "Your session ended. Reload the page and sign in again.".into(),
            ),
            PageFailure::Page(e) => e.into(),
        }
    }
}

/// The challenge as the script reads it.
fn challenge_json(challenge: PasskeyChallenge) -> Response {
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({
            "ceremony": challenge.ceremony.to_string(),
            "publicKey": challenge.options,
            "mediation": challenge.mediation,
        })),
    )
        .into_response()
}

/// What a registration problem tells the person, and with which status.
fn registration_problem(e: PasskeyError) -> Result<(StatusCode, String), PageFailure> {
    Ok(match e {
        PasskeyError::SignInAgain => return Err(PageFailure::SignIn(REGISTER_PATH.into())),
        PasskeyError::StrongerMethodNeeded => (
            StatusCode::FORBIDDEN,
            "To add a security key or passkey, sign in with a Temporary Access Pass, your authenticator app or a passkey within the last 10 minutes. Sign out, sign in again that way, then choose Add method.".into(),
        ),
        PasskeyError::NotAllowed(message) => (StatusCode::FORBIDDEN, message),
        PasskeyError::Refused(message) => (StatusCode::BAD_REQUEST, message),
        PasskeyError::Invalid(message) => (StatusCode::BAD_REQUEST, message),
        PasskeyError::NotFound => (
            StatusCode::BAD_REQUEST,
            "This registration expired or was already used. Choose Continue to start again.".into(),
        ),
        PasskeyError::Store => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong on our side. Try again in a moment.".into(),
        ),
    })
}

/// Add method's own address: signing in again for it comes back here.
struct AddPasskey;

impl ReturnTo for AddPasskey {
    const PATH: &'static str = REGISTER_PATH;
}

#[derive(Template)]
#[template(path = "security_info_passkey.html")]
struct RegisterPage<'a> {
    csrf: &'a str,
    max_name: usize,
    error: Option<&'a str>,
}

fn register_page_with(
    state: &AppState,
    session: &latchkey_domain::session::Session,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let csrf = csrf_token(state, CsrfScope::Session(&session.id));
    let mut response = render_uncached(&RegisterPage {
        csrf: &csrf,
        max_name: MAX_NAME_CHARS,
        error,
    });
    *response.status_mut() = status;
    response
}

/// `GET /mysecurityinfo/passkey`: the page whose script runs the registration. It needs the
/// same recent, strong sign-in as every method addition, so a stale session signs in again
/// and comes back here.
async fn register_page(
    State(state): State<AppState>,
    SignedIn { session, user, .. }: SignedIn<AddPasskey>,
) -> Result<Response, PageFailure> {
    freshly_signed_in(&state, &session, REGISTER_PATH)?;
    if !state.latchkey.passkeys.may_register(&user).await? {
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            "Security keys and passkeys are not available",
            "Your organisation does not let you add a security key or passkey yourself. Ask your administrator.",
        )
        .into());
    }
    Ok(register_page_with(&state, &session, None, StatusCode::OK))
}

async fn begin_registration(
    State(state): State<AppState>,
    form: Result<SignedInForm<CsrfForm, AddPasskey>, PageFailure>,
) -> Result<Response, JsonProblem> {
    let SignedInForm { session, user, .. } = form?;
    match state
        .latchkey
        .passkeys
        .begin_registration(&session, &user)
        .await
    {
        Ok(challenge) => Ok(challenge_json(challenge)),
        Err(e) => {
            let (status, message) = registration_problem(e).map_err(JsonProblem::from)?;
            Err(JsonProblem(status, message))
        }
    }
}

#[derive(Deserialize)]
struct FinishRegistrationForm {
    csrf: String,
    ceremony: String,
    response: String,
    #[serde(default)]
    name: String,
}

crate::extract::csrf_field!(
    FinishRegistrationForm,
    FinishSignInForm,
    BeginSignInForm,
    RenameForm
);

/// The browser's answer, checked for size and shape only: too large → 413, not JSON → 400.
fn browser_answer(response: &str) -> Result<&str, PageError> {
    if response.len() > MAX_RESPONSE_BYTES {
        return Err(PageError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "That answer is too large",
            format!(
                "The security key's answer is larger than {} KiB, which no real key sends. Try again.",
                MAX_RESPONSE_BYTES / 1024
            ),
        ));
    }
    if serde_json::from_str::<serde_json::Value>(response).map_or(true, |v| !v.is_object()) {
        return Err(PageError::bad_request(
            "The browser's answer was not in the expected format. Reload the page and try again.",
        ));
    }
    Ok(response)
}

fn ceremony_id(raw: &str) -> Result<CeremonyId, PageError> {
    if raw.is_empty() || raw.len() > MAX_ID_LEN {
        return Err(PageError::bad_request(
            "That is not one of our ceremonies. Reload the page and try again.",
        ));
    }
    Ok(CeremonyId::from_string(raw))
}

async fn finish_registration(
    State(state): State<AppState>,
    SignedInForm {
        session,
        user,
        form,
        ..
    }: SignedInForm<FinishRegistrationForm, AddPasskey>,
) -> Result<Response, PageFailure> {
    let shown = |e: PageError| register_page_with(&state, &session, Some(&e.message), e.status);
    let (ceremony, response) = match (ceremony_id(&form.ceremony), browser_answer(&form.response)) {
        (Ok(ceremony), Ok(response)) => (ceremony, response),
        (Err(e), _) | (_, Err(e)) => return Ok(shown(e)),
    };
    let name = form.name.trim();
    if name.chars().count() > MAX_NAME_CHARS {
        return Ok(shown(PageError::bad_request(format!(
            "A name can be at most {MAX_NAME_CHARS} characters."
        ))));
    }
    let name = (!name.is_empty()).then_some(name);
    match state
        .latchkey
        .passkeys
        .finish_registration(&session, &user, &ceremony, response, name)
        .await
    {
        Ok(added) => {
            tracing::info!(user = %user.id, passkey = %added.id, kind = ?added.kind, "passkey registered");
            Ok(Redirect::to("/mysecurityinfo?added=passkey").into_response())
        }
        Err(e) => {
            let (status, message) = registration_problem(e)?;
            Ok(register_page_with(&state, &session, Some(&message), status))
        }
    }
}

fn passkey_id(raw: &str) -> Result<PasskeyId, PageError> {
    if raw.is_empty() || raw.len() > MAX_ID_LEN {
        return Err(not_yours());
    }
    Ok(PasskeyId::from_string(raw))
}

fn not_yours() -> PageError {
    PageError::new(
        StatusCode::NOT_FOUND,
        "Not found",
        "That security key or passkey is not registered to your account.",
    )
}

async fn one_of_theirs(
    state: &AppState,
    user: &UserId,
    id: &str,
) -> Result<RegisteredPasskey, PageError> {
    let id = passkey_id(id)?;
    state
        .latchkey
        .passkeys
        .list(user)
        .await?
        .into_iter()
        .find(|p| p.id == id)
        .ok_or_else(not_yours)
}

fn passkey_problem(e: PasskeyError) -> PageError {
    match e {
        PasskeyError::NotFound => not_yours(),
        PasskeyError::Invalid(message) | PasskeyError::Refused(message) => {
            PageError::bad_request(message)
        }
        PasskeyError::NotAllowed(message) => {
            PageError::new(StatusCode::FORBIDDEN, "Not allowed", message)
        }
        PasskeyError::SignInAgain | PasskeyError::StrongerMethodNeeded => PageError::new(
            StatusCode::FORBIDDEN,
            "Sign in again",
            "Sign in again, then try again.",
        ),
        PasskeyError::Store => PageError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "Something went wrong on our side. Try again in a moment.",
        ),
    }
}

#[derive(Template)]
#[template(path = "security_info_passkey_rename.html")]
struct RenamePage<'a> {
    csrf: &'a str,
    id: &'a str,
    label: &'a str,
    name: &'a str,
    max_name: usize,
    error: Option<&'a str>,
}

async fn rename_page(
    State(state): State<AppState>,
    SignedIn { session, user, .. }: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let passkey = one_of_theirs(&state, &user.id, &id).await?;
    let csrf = csrf_token(&state, CsrfScope::Session(&session.id));
    Ok(render(&RenamePage {
        csrf: &csrf,
        id: passkey.id.as_str(),
        label: passkey.kind.label(),
        name: &passkey.name,
        max_name: MAX_NAME_CHARS,
        error: None,
    }))
}

#[derive(Deserialize)]
struct RenameForm {
    csrf: String,
    name: String,
}

async fn rename(
    State(state): State<AppState>,
    Path(id): Path<String>,
    SignedInForm {
        session,
        user,
        form,
        ..
    }: SignedInForm<RenameForm>,
) -> Result<Response, PageError> {
    let passkey = one_of_theirs(&state, &user.id, &id).await?;
    let name = form.name.trim();
    let problem = if name.is_empty() {
        Some(PageError::bad_request("Enter a name."))
    } else if name.chars().count() > MAX_NAME_CHARS {
        Some(PageError::bad_request(format!(
            "A name can be at most {MAX_NAME_CHARS} characters."
        )))
    } else {
        match state
            .latchkey
            .passkeys
            .rename(&user.id, &passkey.id, name)
            .await
        {
            Ok(_) => return Ok(Redirect::to("/mysecurityinfo?renamed=1").into_response()),
            Err(PasskeyError::Invalid(message)) => Some(PageError::bad_request(message)),
            Err(e) => return Err(passkey_problem(e)),
        }
    };
    let problem = problem.map(|e| e.message);
    let csrf = csrf_token(&state, CsrfScope::Session(&session.id));
    let mut response = render(&RenamePage {
        csrf: &csrf,
        id: passkey.id.as_str(),
        label: passkey.kind.label(),
        name,
        max_name: MAX_NAME_CHARS,
        error: problem.as_deref(),
    });
    *response.status_mut() = StatusCode::BAD_REQUEST;
    Ok(response)
}

#[derive(Template)]
#[template(path = "security_info_passkey_remove.html")]
struct RemovePage<'a> {
    csrf: &'a str,
    id: &'a str,
    label: &'a str,
    name: &'a str,
}

async fn confirm_remove(
    State(state): State<AppState>,
    SignedIn { session, user, .. }: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let passkey = one_of_theirs(&state, &user.id, &id).await?;
    let csrf = csrf_token(&state, CsrfScope::Session(&session.id));
    Ok(render(&RemovePage {
        csrf: &csrf,
        id: passkey.id.as_str(),
        label: passkey.kind.label(),
        name: &passkey.name,
    }))
}

async fn remove(
    State(state): State<AppState>,
    Path(id): Path<String>,
    SignedInForm { user, .. }: SignedInForm<CsrfForm>,
) -> Result<Response, PageError> {
    let id = passkey_id(&id)?;
    state
        .latchkey
        .passkeys
        .remove(&user.id, &id)
        .await
        .map_err(passkey_problem)?;
    tracing::info!(user = %user.id, passkey = %id, "passkey removed");
    Ok(Redirect::to("/mysecurityinfo?removed=1").into_response())
}

/// Which sign-in ceremony the page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Ceremony {
    /// "Sign in with a passkey" on the first page: any discoverable credential.
    Discoverable,
    /// The first page's autofill (`mediation: "conditional"`).
    Conditional,
    /// After the user name: that user's credentials.
    Named,
    #[serde(other)]
    Unknown,
}

#[derive(Deserialize)]
struct BeginSignInForm {
    csrf: String,
    mode: Ceremony,
}

fn sign_in_problem(failure: SignInFailure) -> JsonProblem {
    match failure {
        SignInFailure::StartAgain(message) => JsonProblem(StatusCode::BAD_REQUEST, message),
        SignInFailure::TryAgain(message) | SignInFailure::Notice(message) => {
            JsonProblem(StatusCode::BAD_REQUEST, message)
        }
        SignInFailure::NotStrongEnough(message) => JsonProblem(StatusCode::FORBIDDEN, message),
        SignInFailure::OutOfOrder | SignInFailure::SecondFactor => JsonProblem(
            StatusCode::CONFLICT,
            "Your sign-in moved on in another tab. Reload the page.".into(),
        ),
    }
}

/// `POST /login/passkey/begin`: the options for the page's ceremony, bound to this browser's
/// sign-in (its CSRF token is checked against it).
async fn begin_sign_in(
    State(state): State<AppState>,
    jar: CookieJar,
    form: Result<SignInForm<BeginSignInForm>, PageError>,
) -> Result<Response, JsonProblem> {
    let SignInForm { id, form } = form?;
    let sign_in = &state.latchkey.sign_in;
    let begun = match form.mode {
        Ceremony::Named => sign_in.begin_passkey_sign_in(&id).await,
        Ceremony::Discoverable | Ceremony::Conditional => {
            let return_to = crate::pages::drafted_return_to(&state, &jar);
            sign_in
                .begin_discoverable_sign_in(
                    &id,
                    return_to.as_deref(),
                    form.mode == Ceremony::Conditional,
                )
                .await
        }
        Ceremony::Unknown => {
            return Err(JsonProblem(
                StatusCode::BAD_REQUEST,
                "Choose a way to sign in with a passkey.".into(),
            ));
        }
    };
    begun.map(challenge_json).map_err(sign_in_problem)
}

#[derive(Deserialize)]
struct FinishSignInForm {
    csrf: String,
    ceremony: String,
    response: String,
}

/// `POST /login/passkey/finish`: the browser's assertion. Signed in, it goes on exactly as the
/// other sign-ins do; refused, the page says why.
async fn finish_sign_in(
    State(state): State<AppState>,
    Origin(context): Origin,
    jar: CookieJar,
    SignInForm { id, form }: SignInForm<FinishSignInForm>,
) -> Result<Response, PageError> {
    let ceremony = ceremony_id(&form.ceremony)?;
    let response = browser_answer(&form.response)?;
    match state
        .latchkey
        .sign_in
        .finish_passkey_sign_in(&id, &ceremony, response, context.clone())
        .await
    {
        Ok(signed_in) => {
            Metrics::inc(&state.metrics.sign_ins_succeeded);
            tracing::info!(user = %signed_in.user.id, method = ?signed_in.session.method, "signed in");
            crate::pages::finish_sign_in(&state, jar, signed_in, &context).await
        }
        Err(failure) => {
            Metrics::inc(&state.metrics.sign_ins_failed);
            crate::pages::failure_page(&state, jar, &id, failure, false).await
        }
    }
}
