//! The registration campaign's interrupt page ("Set up the authenticator app"), shown after a
//! pass or password sign-in to users the campaign targets. Where the browser was going is kept
//! on the server with the interrupt, so no form field can turn "Not now" into a redirect
//! elsewhere; every form is bound to the session by its CSRF token, and "Not now" spends the
//! interrupt, so a replayed post finds nothing.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use latchkey_domain::campaign::Continuation;
use latchkey_domain::log::SignInContext;
use latchkey_domain::service::CampaignRefusal;
use latchkey_domain::session::Session;
use latchkey_domain::signin::safe_return_path;
use latchkey_domain::user::User;

use crate::AppState;
use crate::cookies::{CsrfScope, csrf_token};
use crate::error::{PageError, PageFailure, render_uncached};
use crate::extract::{CsrfForm, Origin, SignedIn, SignedInForm};

pub const PATH: &str = "/login/registration-campaign";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(PATH, get(interrupt_page))
        .route("/login/registration-campaign/not-now", post(not_now))
        .route("/login/registration-campaign/set-up", post(set_up))
        .route("/login/registration-campaign/continue", post(go_on))
}

#[derive(Template)]
#[template(path = "registration_campaign.html")]
struct InterruptPage<'a> {
    csrf: &'a str,
    upn: &'a str,
    can_snooze: bool,
    /// How many more times it can be skipped, when that is limited.
    snooze_note: Option<String>,
    snooze_days: u32,
}

async fn interrupt_page(
    State(state): State<AppState>,
    SignedIn { session, user, .. }: SignedIn,
) -> Result<Response, PageError> {
    let Some(prompt) = state.latchkey.campaign.prompt(&user, &session.id).await? else {
        // Nothing to ask (answered, expired, or never shown): on to My Apps.
        return Ok(Redirect::to("/myapps").into_response());
    };
    let csrf = csrf_token(&state, CsrfScope::Session(&session.id));
    Ok(render_uncached(&InterruptPage {
        csrf: &csrf,
        upn: user.upn.as_str(),
        can_snooze: prompt.can_snooze,
        snooze_note: prompt.snoozes_left.map(|left| match left {
            0 => "This is the last time you can skip this.".to_string(),
            1 => "You can skip this 1 more time after this one.".to_string(),
            n => format!("You can skip this {n} more times after this one."),
        }),
        snooze_days: prompt.snooze_days,
    }))
}

fn refused(refusal: CampaignRefusal) -> PageFailure {
    match refusal {
        CampaignRefusal::NothingPending => PageError::new(
            StatusCode::CONFLICT,
            "Nothing to skip",
            "There is no request to set up the authenticator app waiting in this browser. It may have been answered already or expired. Go back to the application and sign in again.",
        )
        .into(),
        CampaignRefusal::NoSnoozesLeft => PageError::new(
            StatusCode::FORBIDDEN,
            "Set up the authenticator app to continue",
            "Your organisation requires you to set up the authenticator app now; it can no longer be skipped. Choose Set it up now.",
        )
        .into(),
    }
}

/// Where the browser goes on to: the application (a code is issued only now) or a local page.
async fn continue_to(
    state: &AppState,
    session: &Session,
    user: &User,
    continuation: Continuation,
    context: &SignInContext,
) -> Result<Response, PageFailure> {
    let target = match continuation.authorization {
        Some(request) => {
            state
                .latchkey
                .tokens
                .issue_code(&request, session, user, context)
                .await?
        }
        None => continuation
            .return_to
            .as_deref()
            .and_then(safe_return_path)
            .unwrap_or_else(|| "/myapps".into()),
    };
    Ok(Redirect::to(&target).into_response())
}

/// "Not now".
async fn not_now(
    State(state): State<AppState>,
    Origin(context): Origin,
    SignedInForm { session, user, .. }: SignedInForm<CsrfForm>,
) -> Result<Response, PageFailure> {
    match state.latchkey.campaign.snooze(&user, &session.id).await? {
        Ok(continuation) => continue_to(&state, &session, &user, continuation, &context).await,
        Err(refusal) => Err(refused(refusal)),
    }
}

/// "Set it up now": to security info, which offers to go on once the app is added.
async fn set_up(
    State(state): State<AppState>,
    SignedInForm { session, user, .. }: SignedInForm<CsrfForm>,
) -> Result<Response, PageFailure> {
    match state
        .latchkey
        .campaign
        .set_up_now(&user, &session.id)
        .await?
    {
        Ok(()) => Ok(Redirect::to("/mysecurityinfo").into_response()),
        Err(refusal) => Err(refused(refusal)),
    }
}

/// Security info's "Continue": on to where the sign-in was going, once the app is set up (or
/// as a "Not now" while snoozes remain).
async fn go_on(
    State(state): State<AppState>,
    Origin(context): Origin,
    SignedInForm { session, user, .. }: SignedInForm<CsrfForm>,
) -> Result<Response, PageFailure> {
    match state.latchkey.campaign.resume(&user, &session.id).await? {
        Ok(continuation) => continue_to(&state, &session, &user, continuation, &context).await,
        Err(CampaignRefusal::NoSnoozesLeft) => {
            Ok(Redirect::to("/login/registration-campaign").into_response())
        }
        Err(refusal) => Err(refused(refusal)),
    }
}
