//! Sessions: the one a sign-in ends in, finding it again from the browser's cookie, ending it,
//! and whether it answers an application's authorization request.

use super::{AuthorizeStep, SignInFailure, SignIns, SignedIn, strength, strength_phrase};
use crate::clock::Timestamp;
use crate::error::{DomainError, StoreError};
use crate::ids::{BrowserId, SessionId, UserId};
use crate::log::{SignInContext, SignInRecord};
use crate::notify::DomainEvent;
use crate::oidc::{AuthorizationRequest, OAuthErrorCode, Prompt};
use crate::secret::{Secret, TokenHash};
use crate::service::campaign;
use crate::service::shared::Anomalies;
use crate::service::tokens::error_redirect;
use crate::session::{AuthMethod, Session};
use crate::signin::PendingSignIn;
use crate::user::User;

impl SignIns {
    /// A new browser session for `user`, and the cookie secret that stands for it (shown once,
    /// to the browser; the store keeps only its hash).
    pub(crate) fn new_session(
        &self,
        user: &User,
        method: AuthMethod,
        now: Timestamp,
    ) -> (Session, Secret) {
        let cookie_secret = self.random.token();
        let session = Session {
            id: SessionId::generate(self.random.as_ref()),
            token_hash: TokenHash::of(cookie_secret.expose()),
            user_id: user.id.clone(),
            method,
            auth_time: now,
            created_at: now,
            expires_at: now.plus_seconds(self.settings.session_lifetime_seconds),
            revoked: false,
        };
        (session, cookie_secret)
    }

    /// The end of every successful sign-in, whatever proved the user: starts the session, logs
    /// the success and remembers where it came from (its address, country and browser, for the
    /// throttles and unusual-sign-in checks) in one store step, which fails if the sign-in
    /// already ended; then tells the rest of the system. An application's code is issued in
    /// that step too when nothing can come between the sign-in and the code (see
    /// [`SignedIn::code_redirect`]). `not_completed` says what the user sees when the store
    /// step fails.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn finish_sign_in(
        &self,
        sign_in: PendingSignIn,
        user: User,
        (session, cookie_secret): (Session, Secret),
        record: &SignInRecord,
        browser: Option<&BrowserId>,
        now: Timestamp,
        not_completed: impl FnOnce(StoreError) -> SignInFailure,
    ) -> Result<SignedIn, SignInFailure> {
        let familiar = Anomalies::familiar(record, browser, now);
        let code = match &sign_in.authorization {
            // Trouble reading the application leaves the code to the edge, which says so.
            Some(request) if !campaign::may_interrupt(session.method) => self
                .tokens
                .prepare_code(request, &session, &user)
                .await
                .ok()
                .flatten(),
            _ => None,
        };
        self.store
            .complete_sign_in(
                &session,
                &sign_in.id,
                record,
                &familiar,
                code.as_ref().map(|code| (&code.grant, &code.code)),
            )
            .await
            .map_err(not_completed)?;
        self.events.publish(DomainEvent::SessionStarted {
            user: user.id.clone(),
            session: session.id.clone(),
        });
        Ok(SignedIn {
            session,
            cookie_secret,
            user,
            sign_in,
            familiar_browser: browser.cloned(),
            code_redirect: code.map(|code| code.target),
        })
    }

    /// The session a browser cookie stands for, with its user, if both are still good.
    pub async fn session_for_cookie(
        &self,
        cookie_secret: &str,
    ) -> Result<Option<(Session, User)>, DomainError> {
        if cookie_secret.is_empty() || cookie_secret.len() > 128 {
            return Ok(None);
        }
        let Some(session) = self
            .store
            .session_by_token(&TokenHash::of(cookie_secret))
            .await?
        else {
            return Ok(None);
        };
        if !session.is_live(self.now()) {
            return Ok(None);
        }
        match self.directory.lookup(&session.user_id).await? {
            Some(user) if user.enabled => Ok(Some((session, user))),
            _ => Ok(None),
        }
    }

    /// Ends a browser session and revokes the tokens applications got through it.
    pub async fn sign_out(&self, session: &SessionId) -> Result<(), DomainError> {
        self.store.revoke_session(session).await?;
        self.tokens.revoke_session_grants(session).await?;
        self.events.publish(DomainEvent::SessionEnded {
            session: session.clone(),
        });
        Ok(())
    }

    /// The browser that just signed in as `new`'s user still sent the cookie of an earlier
    /// session (a step-up, or a re-authentication asked for with `prompt=login` or `max_age`):
    /// that session ends, and the grants applications got through it move to `new`, so that
    /// signing out later revokes every token this browser's sign-ins gave out. An earlier
    /// session of another user is left as it is (the browser only loses its cookie).
    pub async fn supersede_session(
        &self,
        previous_cookie: &str,
        new: &Session,
    ) -> Result<(), DomainError> {
        if previous_cookie.is_empty() || previous_cookie.len() > 128 {
            return Ok(());
        }
        let Some(previous) = self
            .store
            .session_by_token(&TokenHash::of(previous_cookie))
            .await?
        else {
            return Ok(());
        };
        if previous.id == new.id || previous.user_id != new.user_id {
            return Ok(());
        }
        // The grants move first: were the session ended first and the move then failed, its
        // tokens would belong to a session no sign-out can reach any more.
        self.tokens
            .move_session_grants(&previous.id, &new.id)
            .await?;
        self.store.revoke_session(&previous.id).await?;
        self.events.publish(DomainEvent::SessionEnded {
            session: previous.id.clone(),
        });
        Ok(())
    }

    /// Decides whether an existing session answers the request or the user must sign in.
    /// A session that does not meet the request's required strength is stepped up: a new
    /// sign-in for the same user offers only the methods that meet it, and the session stays
    /// until that sign-in replaces it. `context` is where the browser is, for a notification
    /// the step-up pushes.
    pub async fn continue_authorization(
        &self,
        request: AuthorizationRequest,
        current: Option<(Session, User)>,
        context: &SignInContext,
    ) -> Result<AuthorizeStep, DomainError> {
        let now = self.now();
        let usable = current.filter(|(session, user)| {
            let fresh_enough = request
                .max_age
                .is_none_or(|age| now.0 - session.auth_time.0 <= age);
            let hinted_user = request
                .login_hint
                .as_deref()
                .is_none_or(|hint| hint.eq_ignore_ascii_case(user.upn.as_str()));
            fresh_enough && hinted_user && request.prompt != Prompt::Login
        });
        match (usable, request.prompt) {
            (Some((session, user)), prompt) if meets(&request, session.method) => {
                match self
                    .tokens
                    .issue_code(&request, &session, &user, context)
                    .await
                {
                    Ok(target) => Ok(AuthorizeStep::Redirect(target)),
                    // A silent request cannot show the page that says why: the application
                    // hears `access_denied` instead.
                    Err(DomainError::NotAssigned(_)) if prompt == Prompt::None => {
                        Ok(AuthorizeStep::Redirect(error_redirect(
                            &request.redirect_uri,
                            OAuthErrorCode::AccessDenied,
                            "the user is not assigned to this application",
                            request.state.as_deref(),
                            &self.settings.issuer,
                        )))
                    }
                    Err(e) => Err(e),
                }
            }
            (Some(_), Prompt::None) => {
                let strength = request.required_strength.map(strength_phrase);
                let description = format!(
                    "the application requires {}, which the session does not meet",
                    strength.unwrap_or("a stronger sign-in")
                );
                Ok(AuthorizeStep::Redirect(error_redirect(
                    &request.redirect_uri,
                    OAuthErrorCode::InteractionRequired,
                    &description,
                    request.state.as_deref(),
                    &self.settings.issuer,
                )))
            }
            (Some((session, user)), _) => Ok(AuthorizeStep::SignIn(Box::new(
                self.step_up(request, &session, user, context).await?,
            ))),
            (None, Prompt::None) => Ok(AuthorizeStep::Redirect(error_redirect(
                &request.redirect_uri,
                OAuthErrorCode::LoginRequired,
                "the user must sign in",
                request.state.as_deref(),
                &self.settings.issuer,
            ))),
            (None, _) => Ok(AuthorizeStep::SignIn(Box::new(
                self.start_sign_in(Some(request), None).await?,
            ))),
        }
    }

    /// A new sign-in for the user of a session that is not strong enough for `request`: the
    /// user name is known, so it is not asked for again. When phone sign-in may meet the
    /// strength the page says why and continues as the user with one click (which pushes the
    /// notification); otherwise it goes straight to the passkey page that says why.
    async fn step_up(
        &self,
        request: AuthorizationRequest,
        session: &Session,
        user: User,
        context: &SignInContext,
    ) -> Result<PendingSignIn, DomainError> {
        let mut sign_in = self.start_sign_in(Some(request), None).await?;
        sign_in.step_up_from = Some(session.method);
        let upn = user.upn.to_string();
        if strength::phone_may_meet(sign_in.required_strength) {
            // Phone sign-in may meet the strength, but a notification is pushed only once the
            // user asks for it on the page (a form with a CSRF token), never because some site
            // sent the browser to /authorize. The page continues as this user.
            if let Some(request) = sign_in.authorization.as_mut() {
                request.login_hint = Some(upn);
            }
            self.store.put_sign_in(&sign_in).await?;
            return Ok(sign_in);
        }
        match self.offer_methods(sign_in, &upn, Some(user), context).await {
            Ok(sign_in) => Ok(sign_in),
            Err(
                SignInFailure::TryAgain(message)
                | SignInFailure::Notice(message)
                | SignInFailure::StartAgain(message)
                | SignInFailure::NotStrongEnough(message),
            ) => Err(DomainError::Rejected(message)),
            Err(SignInFailure::OutOfOrder | SignInFailure::SecondFactor) => Err(
                DomainError::Internal("a new step-up sign-in was out of order".into()),
            ),
        }
    }

    /// A browser just signed in as `user`: from now on it is a familiar place for them. The
    /// edge calls this only after a successful sign-in, with the id from the browser's
    /// known-browser cookie (checked, or just minted).
    pub async fn remember_browser(
        &self,
        user: &UserId,
        browser: &BrowserId,
    ) -> Result<(), DomainError> {
        self.throttles.remember_browser(user, browser).await
    }
}

/// Whether signing in with `method` meets what `request` requires.
pub(crate) fn meets(request: &AuthorizationRequest, method: AuthMethod) -> bool {
    request.required_strength.is_none_or(|s| s.allows(method))
}
