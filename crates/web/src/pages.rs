//! Latchkey's own pages: sign-in (user name, pass or password, the number page, the passkey
//! page) and sign-out. The passkey ceremonies' endpoints are in `passkeys`.

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::cookie::{CookieJar, SameSite};
use latchkey_domain::ids::SignInId;
use latchkey_domain::log::SignInContext;
use latchkey_domain::secret::Secret;
use latchkey_domain::service::{CredentialInput, SignInFailure, SignedIn};
use latchkey_domain::signin::{PendingSignIn, SignInStage, safe_return_path};
use serde::Deserialize;

use crate::AppState;
use crate::cookies::{self, CsrfScope, csrf_token};
use crate::error::{PageError, render, render_uncached, uncached};
use crate::extract::{CsrfForm, Origin, SignInForm, SignedInForm};
use crate::metrics::{Metrics, SignInWait};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/myapps") }))
        .route("/login", get(login_page))
        .route("/login/username", post(submit_username))
        .route("/login/credential", post(submit_credential))
        .route("/login/restart", post(restart))
        .route("/login/status", get(approval_status))
        .route("/login/other-way", post(other_way))
        .route("/signout", post(sign_out))
}

#[derive(Template)]
#[template(path = "login_username.html")]
struct UsernamePage<'a> {
    csrf: &'a str,
    app_name: Option<&'a str>,
    username: &'a str,
    error: Option<&'a str>,
    /// Passkeys are on in the policy: the passkey button and the name field's autofill.
    passkeys: bool,
    /// Certificate sign-in is set up and on in the policy: "Use a certificate or smart card".
    certificates: bool,
}

#[derive(Template)]
#[template(path = "login_credential.html")]
struct CredentialPage<'a> {
    csrf: &'a str,
    app_name: Option<&'a str>,
    upn: &'a str,
    use_password: bool,
    /// A mistake in what the user typed: shown beside the field, which is marked invalid.
    error: Option<&'a str>,
    /// Why the sign-in did not go on by itself (a request already waiting, throttling): shown
    /// as a notice, the field left alone.
    notice: Option<&'a str>,
    /// Passkeys are on in the policy (the same for every name, so it tells nothing about this
    /// one): "Sign in with a passkey or security key".
    passkeys: bool,
    /// "Use a certificate or smart card" (the same for every name).
    certificates: bool,
}

/// Whether the policy has passkeys on at all, so that the pages offer them. Whether this user
/// may use one is the ceremony's to decide; trouble reading the policy hides the offer.
async fn passkeys_on(state: &AppState) -> bool {
    state
        .latchkey
        .governance
        .policy()
        .await
        .is_ok_and(|p| p.fido2.targeting.state == latchkey_domain::policy::MethodState::Enabled)
}

/// Whether the sign-in pages offer "Use a certificate or smart card": the certificate host is
/// configured and the policy has certificates on. Whether this user may use one is the
/// certificate service's to decide.
async fn certificates_on(state: &AppState) -> bool {
    state.certificate.is_some()
        && state.latchkey.governance.policy().await.is_ok_and(|p| {
            p.x509_certificate.targeting.state == latchkey_domain::policy::MethodState::Enabled
        })
}

/// A user whose only usable methods are passkeys: the page starts the ceremony itself.
#[derive(Template)]
#[template(path = "login_passkey.html")]
struct PasskeyPage<'a> {
    csrf: &'a str,
    app_name: Option<&'a str>,
    upn: &'a str,
    error: Option<&'a str>,
}

/// The pass-or-password stage of a sign-in that must meet a strength a pass or password
/// cannot: it offers only a passkey or security key, and says why.
#[derive(Template)]
#[template(path = "login_strength.html")]
struct StrengthPage<'a> {
    csrf: &'a str,
    app_name: Option<&'a str>,
    upn: &'a str,
    message: &'a str,
    offers_passkey: bool,
    /// A step-up that continues as this user name (the user-name form, pre-filled and hidden).
    continue_as: Option<&'a str>,
    add_method_hint: &'a str,
    error: Option<&'a str>,
    notice: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "login_number.html")]
struct NumberPage<'a> {
    csrf: &'a str,
    app_name: Option<&'a str>,
    upn: &'a str,
    number: u8,
    lifetime: i64,
    mfa_push: bool,
    /// False when the request was held back: the person must open the app and look for it.
    pushed: bool,
}

#[derive(Deserialize)]
struct LoginQuery {
    return_to: Option<String>,
    method: Option<Way>,
}

/// A way of signing in that a form or link asks for, by the pages' own names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Way {
    Pass,
    Password,
    /// The number page's "I can't use my app right now".
    CantUseApp,
    /// The number page's "Sign in another way" that starts over with a pass.
    Restart,
    /// Anything else: the form says which ways there are.
    #[serde(other)]
    Unknown,
}

crate::extract::csrf_field!(OtherWayForm, UsernameForm, CredentialForm);

/// Whether this browser's sign-in is only drafted (its cookie still carries the return path).
fn only_drafted(state: &AppState, jar: &CookieJar) -> bool {
    cookies::get(state, jar, cookies::SIGN_IN).is_some_and(|v| v.contains('.'))
}

/// A sign-in id as [`SignInId::random`] makes them (32 hex digits): a draft cookie is reused
/// only when it has that shape.
fn well_formed(id: &SignInId) -> bool {
    id.as_str().len() == 32 && id.as_str().bytes().all(|b| b.is_ascii_hexdigit())
}

pub(crate) fn drafted_return_to(state: &AppState, jar: &CookieJar) -> Option<String> {
    let (_, encoded) = cookies::get(state, jar, cookies::SIGN_IN)?.split_once('.')?;
    let bytes =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, encoded).ok()?;
    String::from_utf8(bytes).ok()
}

/// Shows whatever step this browser's sign-in is at. Without one it shows the user-name page
/// of a new sign-in that is stored only when the user name is posted, so that loading this page
/// writes nothing.
async fn login_page(
    State(state): State<AppState>,
    Origin(context): Origin,
    jar: CookieJar,
    query: Result<Query<LoginQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    let Query(query) = query?;
    let existing = match (cookies::sign_in_id(&state, &jar), &query.return_to) {
        (Some(id), None) if only_drafted(&state, &jar) && well_formed(&id) => {
            // Reloading (or a second tab) keeps the draft, so forms already shown still work.
            let mut draft = state
                .latchkey
                .sign_in
                .draft_sign_in(drafted_return_to(&state, &jar));
            draft.id = id;
            Some(draft)
        }
        (Some(id), None) => state.latchkey.sign_in.sign_in(&id).await.ok(),
        _ => None,
    };
    let (jar, sign_in) = match existing {
        Some(sign_in) => (jar, sign_in),
        None => {
            let return_to = query
                .return_to
                .as_deref()
                .and_then(safe_return_path)
                .unwrap_or_else(|| "/myapps".into());
            let encoded = latchkey_domain::secret::base64url(return_to.as_bytes());
            let sign_in = state.latchkey.sign_in.draft_sign_in(Some(return_to));
            let cookie = cookies::build(
                &state,
                cookies::SIGN_IN,
                format!("{}.{encoded}", sign_in.id),
                SameSite::Lax,
            );
            (jar.add(cookie), sign_in)
        }
    };
    let use_password = query.method == Some(Way::Password);
    if matches!(sign_in.stage, SignInStage::AwaitingApproval { .. }) {
        // Reloading the number page is how the browser learns the answer without scripts.
        return finish_waiting(&state, jar, &sign_in, &context).await;
    }
    Ok(render_stage(
        &state,
        jar,
        &sign_in,
        use_password,
        None,
        None,
        StatusCode::OK,
    )
    .await)
}

/// The number page's sign-in, once its approval may have settled: the signed-in redirect, the
/// page that says why it ended, or (still waiting) the number page again. `GET /login` and the
/// finishing long-poll both come here.
async fn finish_waiting(
    state: &AppState,
    jar: CookieJar,
    sign_in: &PendingSignIn,
    context: &SignInContext,
) -> Result<Response, PageError> {
    // The browser's known-browser id (a new one if it has none; its cookie is set only if it
    // signs in) becomes familiar for the user in the step that stores the sign-in.
    let (signing_in_jar, browser) = crate::known_browser::ensure(state, jar.clone());
    match state
        .latchkey
        .sign_in
        .finish_approval(sign_in, Some(&browser))
        .await
    {
        Ok(None) => Ok(render_stage(state, jar, sign_in, false, None, None, StatusCode::OK).await),
        Ok(Some(signed_in)) => {
            Metrics::inc(&state.metrics.sign_ins_succeeded);
            tracing::info!(user = %signed_in.user.id, method = ?signed_in.session.method, "signed in");
            finish_sign_in(state, signing_in_jar, signed_in, context).await
        }
        Err(failure) => {
            Metrics::inc(&state.metrics.sign_ins_failed);
            failure_page(state, jar, &sign_in.id, failure, false).await
        }
    }
}

/// The longest wait the number page asks for (`?wait=25`); the server may hold it less
/// ([`AppState::sign_in_wait_seconds`]).
pub const SIGN_IN_WAIT_SECONDS: u64 = 25;

#[derive(Deserialize)]
struct StatusQuery {
    /// Seconds to wait for the approval to settle: the long-poll. Absent: a plain poll.
    wait: Option<String>,
    /// `1`: a long-poll whose approval settles finishes the sign-in in its answer (what the
    /// number page's script asks). Anything else: the answer only says it settled.
    finish: Option<String>,
}

/// `GET /login/status`: whether the number page is still waiting: `{"pending": bool}`.
/// With `?wait=N` (1–25 seconds, larger values are cut to the longest) it is a long-poll:
/// the answer comes when the approval settles or after N seconds, with `"waited": true`;
/// `"waited": false` means the server answered at once (waiters capped, waiting off, a
/// malformed `wait`) and the page should fall back to polling every second. Without the
/// browser's valid sign-in cookie it answers `pending: false` at once, as the poll does.
///
/// With `&finish=1`, a wait whose approval settles answers with what `GET /login` would have
/// answered next, saving the browser that request: `{"pending": false, "next": URL}` with the
/// signed-in cookies when it is a redirect (an approval), or the page itself (a denial, an
/// expiry, an application's refusal) for the script to show in place of the number page.
async fn approval_status(
    State(state): State<AppState>,
    Origin(context): Origin,
    jar: CookieJar,
    Query(query): Query<StatusQuery>,
) -> Response {
    let Some(wait) = query.wait else {
        return status_answer(serde_json::json!({ "pending": poll_status(&state, &jar).await }));
    };
    let seconds = wait
        .parse::<u64>()
        .ok()
        .filter(|s| *s > 0)
        .map(|s| s.min(SIGN_IN_WAIT_SECONDS).min(state.sign_in_wait_seconds));
    let Some(id) = cookies::sign_in_id(&state, &jar) else {
        return status_answer(serde_json::json!({ "pending": false, "waited": true }));
    };
    let answer = match seconds {
        Some(seconds) if seconds > 0 => state
            .latchkey
            .sign_in
            .wait_for_approval(&id, std::time::Duration::from_secs(seconds))
            .await
            .ok(),
        _ => None,
    };
    let (pending, waited) = match answer {
        Some(answer) => {
            let finish = query.finish.as_deref() == Some("1");
            if finish && !answer.pending && answer.refused.is_none() {
                state.metrics.sign_in_wait(SignInWait::Finished);
                return finish_in_answer(&state, jar, &id, &context).await;
            }
            state.metrics.sign_in_wait(if answer.refused.is_some() {
                SignInWait::Refused
            } else if answer.pending {
                SignInWait::TimedOut
            } else {
                SignInWait::Settled
            });
            (answer.pending, answer.waited)
        }
        // Waiting off or a malformed `wait`: a plain poll's answer, and the page polls.
        None if seconds.is_none_or(|s| s == 0) => (poll_status(&state, &jar).await, false),
        // The sign-in is gone (or the store failed): reload, as the poll does.
        None => (false, true),
    };
    status_answer(serde_json::json!({ "pending": pending, "waited": waited }))
}

/// The finishing long-poll's answer once the approval settled (see [`approval_status`]).
async fn finish_in_answer(
    state: &AppState,
    jar: CookieJar,
    id: &SignInId,
    context: &SignInContext,
) -> Response {
    let sign_in = match state.latchkey.sign_in.sign_in(id).await {
        Ok(sign_in) if matches!(sign_in.stage, SignInStage::AwaitingApproval { .. }) => sign_in,
        // Gone, or moved on in another tab: the page reloads, as an unfinished answer says.
        _ => return status_answer(serde_json::json!({ "pending": false, "waited": true })),
    };
    let response = finish_waiting(state, jar, &sign_in, context)
        .await
        .unwrap_or_else(IntoResponse::into_response);
    if !response.status().is_redirection() {
        return uncached(response);
    }
    let (mut parts, _) = response.into_parts();
    // Only where a redirect may lead: a path here (as a return path must be), or an
    // application's https (or loopback http) redirect URI. The script checks the scheme again
    // before it goes.
    let next = parts
        .headers
        .remove(axum::http::header::LOCATION)
        .and_then(|value| value.to_str().ok().map(str::to_owned))
        .filter(|next| {
            safe_return_path(next).is_some()
                || next.starts_with("https://")
                || next.starts_with("http://")
        });
    // No redirect ever leads elsewhere; should one, the answer names nowhere (its cookies still
    // stand) and the page reloads rather than follow.
    let body = match next {
        Some(next) => serde_json::json!({ "pending": false, "waited": true, "next": next }),
        None => serde_json::json!({ "pending": false, "waited": true }),
    };
    let (body_parts, body) = status_answer(body).into_parts();
    parts.status = body_parts.status;
    parts.headers.extend(body_parts.headers);
    Response::from_parts(parts, body)
}

fn status_answer(body: serde_json::Value) -> Response {
    (
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        axum::Json(body),
    )
        .into_response()
}

/// The plain poll: whether the number page is still waiting.
async fn poll_status(state: &AppState, jar: &CookieJar) -> bool {
    match cookies::sign_in_id(state, jar) {
        Some(id) => state
            .latchkey
            .sign_in
            .approval_pending(&id)
            .await
            .unwrap_or(false),
        None => false,
    }
}

#[derive(Deserialize)]
struct OtherWayForm {
    csrf: String,
    method: Way,
}

/// The number page's other ways: cancel the notification and show the pass or password step.
async fn other_way(
    State(state): State<AppState>,
    jar: CookieJar,
    SignInForm { id, form }: SignInForm<OtherWayForm>,
) -> Result<Response, PageError> {
    if only_drafted(&state, &jar) {
        return Ok(Redirect::to("/login").into_response());
    }
    let target = match form.method {
        Way::Password => "/login?method=password",
        Way::Pass | Way::CantUseApp | Way::Restart => "/login?method=pass",
        Way::Unknown => return Err(PageError::bad_request("Choose another way to sign in.")),
    };
    match state.latchkey.sign_in.choose_other_way(&id).await {
        Ok(_) => Ok(Redirect::to(target).into_response()),
        Err(failure) => failure_page(&state, jar, &id, failure, false).await,
    }
}

/// A new sign-in's first page (the user name, or a step-up's "sign in again"), shown by the
/// authorization endpoint itself rather than after a redirect to `/login`: one round trip
/// fewer before every sign-in. Never cached (it holds the sign-in's form token); its script
/// puts `/login` in the address bar, where a reload shows the same sign-in.
pub(crate) async fn first_page(
    state: &AppState,
    jar: CookieJar,
    sign_in: &PendingSignIn,
) -> Response {
    debug_assert_eq!(sign_in.stage, SignInStage::AwaitingUsername);
    uncached(render_stage(state, jar, sign_in, false, None, None, StatusCode::OK).await)
}

async fn render_stage(
    state: &AppState,
    jar: CookieJar,
    sign_in: &PendingSignIn,
    use_password: bool,
    error: Option<&str>,
    notice: Option<&str>,
    status: StatusCode,
) -> Response {
    let csrf = csrf_token(state, CsrfScope::SignIn(&sign_in.id));
    let app_name = match &sign_in.authorization {
        Some(request) => state
            .latchkey
            .applications
            .application(&request.client_id)
            .await
            .ok()
            .map(|a| a.display_name),
        None => None,
    };
    // A sign-in that must meet a strength a pass or password cannot: the page says why and
    // offers only the passkey.
    let strength_prompt = match state.latchkey.sign_in.strength_prompt(sign_in).await {
        Ok(prompt) => prompt,
        Err(_) => return (jar, start_again_error()).into_response(),
    };
    let mut response = match &sign_in.stage {
        SignInStage::AwaitingUsername
            if strength_prompt
                .as_ref()
                .is_some_and(|p| p.continue_as.is_some()) =>
        {
            let prompt = strength_prompt.as_ref().expect("checked");
            render(&StrengthPage {
                csrf: &csrf,
                app_name: app_name.as_deref(),
                upn: prompt.continue_as.as_deref().unwrap_or_default(),
                message: &prompt.message,
                offers_passkey: false,
                continue_as: prompt.continue_as.as_deref(),
                add_method_hint: prompt.add_method_hint,
                error,
                notice,
            })
        }
        SignInStage::AwaitingUsername => render(&UsernamePage {
            csrf: &csrf,
            app_name: app_name.as_deref(),
            username: sign_in.login_hint().unwrap_or_default(),
            error,
            passkeys: passkeys_on(state).await,
            certificates: certificates_on(state).await,
        }),
        SignInStage::AwaitingCredential { upn, .. } | SignInStage::AwaitingPasskey { upn, .. }
            if strength_prompt.is_some() =>
        {
            let prompt = strength_prompt.as_ref().expect("checked");
            let notice = match &sign_in.stage {
                SignInStage::AwaitingCredential { notice: stage, .. } => {
                    notice.or(stage.as_deref())
                }
                _ => notice,
            };
            render(&StrengthPage {
                csrf: &csrf,
                app_name: app_name.as_deref(),
                upn,
                message: &prompt.message,
                offers_passkey: prompt.offers_passkey && passkeys_on(state).await,
                continue_as: None,
                add_method_hint: prompt.add_method_hint,
                error,
                notice: if error.is_some() { None } else { notice },
            })
        }
        SignInStage::AwaitingCredential {
            upn,
            notice: stage_notice,
            ..
        } => render(&CredentialPage {
            csrf: &csrf,
            app_name: app_name.as_deref(),
            upn,
            use_password,
            error,
            // A mistake just made outranks an older notice.
            notice: if error.is_some() {
                None
            } else {
                notice.or(stage_notice.as_deref())
            },
            passkeys: passkeys_on(state).await,
            certificates: certificates_on(state).await,
        }),
        SignInStage::AwaitingPasskey { upn, .. } => render(&PasskeyPage {
            csrf: &csrf,
            app_name: app_name.as_deref(),
            upn,
            error,
        }),
        SignInStage::AwaitingApproval { .. } => {
            match state.latchkey.sign_in.waiting_for_approval(sign_in).await {
                Ok(Some(waiting)) => render_uncached(&NumberPage {
                    csrf: &csrf,
                    app_name: waiting.app_name.as_deref(),
                    upn: &waiting.upn,
                    number: waiting.number,
                    lifetime: waiting.lifetime_seconds,
                    mfa_push: waiting.mfa_push,
                    pushed: waiting.held_back.is_none(),
                }),
                _ => start_again_error().into_response(),
            }
        }
    };
    *response.status_mut() = status;
    (jar, response).into_response()
}

#[derive(Deserialize)]
struct UsernameForm {
    csrf: String,
    username: String,
}

async fn submit_username(
    State(state): State<AppState>,
    Origin(context): Origin,
    jar: CookieJar,
    SignInForm { id, form }: SignInForm<UsernameForm>,
) -> Result<Response, PageError> {
    // The first user name posted stores the sign-in the page only drafted.
    if let Err(failure) = state
        .latchkey
        .sign_in
        .store_drafted_sign_in(&id, drafted_return_to(&state, &jar).as_deref())
        .await
    {
        return failure_page(&state, jar, &id, failure, false).await;
    }
    // Stored now: the cookie keeps only the id.
    let jar = jar.add(cookies::build(
        &state,
        cookies::SIGN_IN,
        id.to_string(),
        SameSite::Lax,
    ));
    match state
        .latchkey
        .sign_in
        .submit_username(&id, &form.username, &context)
        .await
    {
        // The number page is shown in the answer to the post, without a redirect to /login
        // first: one round trip fewer while the notification is on its way. Its script puts
        // /login in the address bar, so a reload shows the page again rather than posting
        // the name twice (and without scripts, its refresh goes to /login).
        Ok(sign_in) if matches!(sign_in.stage, SignInStage::AwaitingApproval { .. }) => Ok(
            uncached(render_stage(&state, jar, &sign_in, false, None, None, StatusCode::OK).await),
        ),
        Ok(_) => Ok((jar, Redirect::to("/login")).into_response()),
        Err(failure) => failure_page(&state, jar, &id, failure, false).await,
    }
}

#[derive(Deserialize)]
struct CredentialForm {
    csrf: String,
    method: Way,
    secret: String,
}

async fn submit_credential(
    State(state): State<AppState>,
    Origin(context): Origin,
    jar: CookieJar,
    SignInForm { id, form }: SignInForm<CredentialForm>,
) -> Result<Response, PageError> {
    // Out of order: no user name yet.
    if only_drafted(&state, &jar) {
        return Ok(Redirect::to("/login").into_response());
    }
    let use_password = form.method == Way::Password;
    let input = match form.method {
        Way::Pass => CredentialInput::Pass(Secret::new(form.secret.trim())),
        Way::Password => CredentialInput::Password(Secret::new(form.secret)),
        Way::CantUseApp | Way::Restart | Way::Unknown => {
            return Err(PageError::bad_request(
                "Choose a Temporary Access Pass or a password.",
            ));
        }
    };
    match state
        .latchkey
        .sign_in
        .submit_credential(&id, input, &context)
        .await
    {
        Ok(signed_in) => {
            Metrics::inc(&state.metrics.sign_ins_succeeded);
            tracing::info!(user = %signed_in.user.id, method = ?signed_in.session.method, "signed in");
            finish_sign_in(&state, jar, signed_in, &context).await
        }
        Err(failure) => {
            if failure != SignInFailure::SecondFactor {
                Metrics::inc(&state.metrics.sign_ins_failed);
            }
            failure_page(&state, jar, &id, failure, use_password).await
        }
    }
}

/// Starts the session and goes on: back to the application with a code, or to the page the
/// user was headed for.
pub(crate) async fn finish_sign_in(
    state: &AppState,
    jar: CookieJar,
    signed_in: SignedIn,
    context: &SignInContext,
) -> Result<Response, PageError> {
    let SignedIn {
        session,
        cookie_secret,
        user,
        sign_in,
        familiar_browser,
        code_redirect,
    } = signed_in;
    // Smart lockout: this browser is now familiar for the user. The sign-in remembered it
    // already when the handler named it; otherwise (a browser without the cookie yet) here.
    let (jar, browser) = crate::known_browser::ensure(state, jar);
    if familiar_browser.as_ref() != Some(&browser)
        && let Err(error) = state
            .latchkey
            .sign_in
            .remember_browser(&user.id, &browser)
            .await
    {
        // The sign-in stands; the browser is only not remembered as familiar this time.
        tracing::warn!(%error, "could not remember a known browser");
    }
    // A step-up or re-authentication in this browser: the session it replaces ends, and its
    // grants move to the new one (so signing out reaches them).
    if let Some(previous) = cookies::get(state, &jar, cookies::SESSION)
        && let Err(error) = state
            .latchkey
            .sign_in
            .supersede_session(previous, &session)
            .await
    {
        tracing::warn!(%error, "could not end the session a sign-in replaced");
    }
    let jar = jar
        .add(cookies::build(
            state,
            cookies::SESSION,
            cookie_secret.expose().to_string(),
            SameSite::Lax,
        ))
        .add(cookies::removal(state, cookies::SIGN_IN));
    // The sign-in stored the application's code with the session: nothing comes in between.
    if let Some(target) = code_redirect {
        return Ok((jar, Redirect::to(&target)).into_response());
    }
    // The registration campaign may stop the browser on the way: where it was going is kept
    // with the interrupt, and an application's code is issued only when it goes on.
    let continuation = latchkey_domain::campaign::Continuation {
        authorization: sign_in.authorization.clone(),
        return_to: sign_in.return_to.clone(),
    };
    match state
        .latchkey
        .campaign
        .interrupt_after_sign_in(&user, session.method, &session.id, continuation)
        .await
    {
        Ok(true) => return Ok((jar, Redirect::to(crate::campaign::PATH)).into_response()),
        Ok(false) => {}
        // The nudge never fails a sign-in.
        Err(error) => tracing::warn!(%error, "could not check the registration campaign"),
    }
    let target = match &sign_in.authorization {
        Some(request) => match state
            .latchkey
            .tokens
            .issue_code(request, &session, &user, context)
            .await
        {
            Ok(target) => target,
            // The user is signed in (the session stands and the browser keeps its cookie); only
            // this application refused, and the page says why.
            Err(refusal) => return Ok((jar, PageError::from(refusal)).into_response()),
        },
        None => sign_in
            .return_to
            .clone()
            .unwrap_or_else(|| "/myapps".into()),
    };
    Ok((jar, Redirect::to(&target)).into_response())
}

pub(crate) async fn failure_page(
    state: &AppState,
    jar: CookieJar,
    id: &SignInId,
    failure: SignInFailure,
    use_password: bool,
) -> Result<Response, PageError> {
    let is_notice = matches!(failure, SignInFailure::Notice(_));
    match failure {
        SignInFailure::StartAgain(message) => Err(PageError::new(
            StatusCode::BAD_REQUEST,
            "Start your sign-in again",
            message,
        )),
        SignInFailure::OutOfOrder | SignInFailure::SecondFactor => {
            Ok(Redirect::to("/login").into_response())
        }
        SignInFailure::NotStrongEnough(message) => Err(PageError::new(
            StatusCode::FORBIDDEN,
            "This application needs a stronger sign-in",
            message,
        )),
        SignInFailure::TryAgain(message) | SignInFailure::Notice(message) => {
            let sign_in = state
                .latchkey
                .sign_in
                .sign_in(id)
                .await
                .map_err(|_| start_again_error())?;
            let (error, notice, status) = if is_notice {
                (None, Some(message.as_str()), StatusCode::OK)
            } else {
                (Some(message.as_str()), None, StatusCode::UNAUTHORIZED)
            };
            Ok(render_stage(state, jar, &sign_in, use_password, error, notice, status).await)
        }
    }
}

fn start_again_error() -> PageError {
    PageError::new(
        StatusCode::BAD_REQUEST,
        "Start your sign-in again",
        "We couldn't find your sign-in. It may have finished or expired, or cookies may be blocked. Go back to the application and sign in again.",
    )
}

async fn restart(
    State(state): State<AppState>,
    jar: CookieJar,
    SignInForm { id, .. }: SignInForm<CsrfForm>,
) -> Result<Response, PageError> {
    if only_drafted(&state, &jar) {
        return Ok(Redirect::to("/login").into_response());
    }
    match state.latchkey.sign_in.restart_sign_in(&id).await {
        Ok(_) => Ok(Redirect::to("/login").into_response()),
        Err(failure) => failure_page(&state, jar, &id, failure, false).await,
    }
}

async fn sign_out(
    State(state): State<AppState>,
    jar: CookieJar,
    form: Option<SignedInForm<CsrfForm>>,
) -> Result<Response, PageError> {
    // With no session there is nothing to end, and nothing for a token to be bound to.
    if let Some(SignedInForm { session, .. }) = form {
        state.latchkey.sign_in.sign_out(&session.id).await?;
    }
    let jar = jar.add(cookies::removal(&state, cookies::SESSION));
    Ok((jar, crate::signed_out::page("/mysecurityinfo")).into_response())
}
