//! Sign-in: the state machine a browser goes through (user name, then a pass, a password or
//! the authenticator app, then perhaps a second factor), and the sessions it ends in.

mod approval;
mod certificate;
mod credential;
mod passkey;
mod session;
mod strength;

use std::sync::Arc;

pub use approval::{ApprovalWait, RECHECK_EVERY, WaitingForApproval};
pub use certificate::{
    CertificateRefusal, MAX_REFERENCE_LENGTH as MAX_CERTIFICATE_REFERENCE_LENGTH,
    REFERENCE_LIFETIME_SECONDS, REFERENCE_REFUSED as CERTIFICATE_REFERENCE_REFUSED,
    RESULT_REFUSED as CERTIFICATE_RESULT_REFUSED, log_code as certificate_log_code,
};
pub use strength::{StrengthPrompt, step_up_message as step_up_message_for, strength_phrase};

use super::access::MethodAccess;
use super::applications::Applications;
use super::devices::{ApprovalStart, Devices};
use super::directory::Directory;
use super::messages::{ALREADY_PENDING, STORE_TROUBLE, throttled};
use super::settings::{Settings, USERNAME_STEP_FLOOR};
use super::shared::{Hashers, ServerKeys, Throttles};
use super::tokens::Tokens;
use crate::clock::{Clock, Timestamp};
use crate::error::{DomainError, StoreError};
use crate::ids::{BrowserId, SignInId, UserId};
use crate::log::SignInContext;
use crate::notify::EventBus;
use crate::oidc::AuthorizationRequest;
use crate::random::RandomSource;
use crate::secret::Secret;
use crate::session::Session;
use crate::signin::{PendingSignIn, SignInStage};
use crate::store::SessionStore;
use crate::user::{Upn, User};

use latchkey_protocol::wire::ApprovalKind;

/// The credential a user typed on the sign-in page.
#[derive(Debug, Clone)]
pub enum CredentialInput {
    Pass(Secret),
    Password(Secret),
}

/// Why a sign-in step did not succeed, as the page should tell it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInFailure {
    /// The sign-in is gone (expired, finished, never existed): start again.
    StartAgain(String),
    /// The step was refused; the user may try again on the same page.
    TryAgain(String),
    /// The step was right, but the sign-in cannot go on now (a request is already waiting in
    /// the app, or notifications are throttled): the page says why as a notice, not as a
    /// mistake in what the user typed.
    Notice(String),
    /// The request does not fit the stage the sign-in is at.
    OutOfOrder,
    /// The first factor was right; the sign-in now waits for the authenticator app.
    SecondFactor,
    /// The application requires an authentication strength this sign-in cannot meet; the
    /// sign-in ended and the message says why and what would work.
    NotStrongEnough(String),
}

/// A browser that just signed in: the cookie secret is shown once, to the browser.
#[derive(Debug)]
pub struct SignedIn {
    pub session: Session,
    pub cookie_secret: Secret,
    pub user: User,
    pub sign_in: PendingSignIn,
    /// The browser the sign-in made familiar for the user, if the edge named one.
    pub familiar_browser: Option<BrowserId>,
    /// For an application's sign-in, the redirect back to it with a code that was stored with
    /// the session. `None` leaves the code to the edge: there is no application, the
    /// registration campaign may stop the browser first, or the application refuses the user
    /// (`Tokens::issue_code` then says why, and logs it).
    pub code_redirect: Option<String>,
}

/// What `/authorize` should do next.
#[derive(Debug)]
pub enum AuthorizeStep {
    /// Send the browser back to the application.
    Redirect(String),
    /// The user must sign in first.
    SignIn(Box<PendingSignIn>),
}

pub struct SignIns {
    pub(crate) store: Arc<dyn SessionStore>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) random: Arc<dyn RandomSource>,
    pub(crate) settings: Arc<Settings>,
    pub(crate) events: Arc<dyn EventBus>,
    pub(crate) hashers: Arc<Hashers>,
    pub(crate) keys: Arc<ServerKeys>,
    pub(crate) throttles: Arc<Throttles>,
    pub(crate) access: Arc<MethodAccess>,
    pub(crate) directory: Arc<Directory>,
    pub(crate) applications: Arc<Applications>,
    pub(crate) tokens: Arc<Tokens>,
    pub(crate) devices: Arc<Devices>,
    pub(crate) passkeys: Arc<super::passkeys::Passkeys>,
}

impl SignIns {
    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub(crate) async fn start_sign_in(
        &self,
        authorization: Option<AuthorizationRequest>,
        return_to: Option<String>,
    ) -> Result<PendingSignIn, DomainError> {
        let sign_in = PendingSignIn::start_as(
            SignInId::generate(self.random.as_ref()),
            authorization,
            return_to,
            self.now(),
        );
        self.store.put_sign_in(&sign_in).await?;
        Ok(sign_in)
    }

    /// A new sign-in at the user-name step that is not stored: loading the sign-in page must
    /// not write a row per request, so only [`Self::store_drafted_sign_in`] stores it, when
    /// its user name is posted (with a token only the page that drafted it could hold).
    pub fn draft_sign_in(&self, return_to: Option<String>) -> PendingSignIn {
        PendingSignIn::start_as(
            SignInId::generate(self.random.as_ref()),
            None,
            return_to,
            self.now(),
        )
    }

    /// Stores the drafted sign-in `id` if nothing is stored under it yet; a sign-in already
    /// stored (live or expired) is left as it is for the next step to judge.
    pub async fn store_drafted_sign_in(
        &self,
        id: &SignInId,
        return_to: Option<&str>,
    ) -> Result<(), SignInFailure> {
        let trouble = |_| SignInFailure::StartAgain(STORE_TROUBLE.into());
        if self.store.sign_in(id).await.map_err(trouble)?.is_some() {
            return Ok(());
        }
        let return_to = return_to
            .and_then(crate::signin::safe_return_path)
            .unwrap_or_else(|| "/myapps".into());
        let mut sign_in = PendingSignIn::start_as(
            SignInId::generate(self.random.as_ref()),
            None,
            Some(return_to),
            self.now(),
        );
        sign_in.id = id.clone();
        self.store.put_sign_in(&sign_in).await.map_err(trouble)?;
        Ok(())
    }

    /// The sign-in this browser has in progress, if it is still alive.
    pub async fn sign_in(&self, id: &SignInId) -> Result<PendingSignIn, SignInFailure> {
        let found = self
            .store
            .sign_in(id)
            .await
            .map_err(|_| SignInFailure::StartAgain(STORE_TROUBLE.into()))?;
        match found {
            Some(sign_in) if !sign_in.is_expired(self.now()) => Ok(sign_in),
            Some(_) => Err(SignInFailure::StartAgain(
                "Your sign-in took too long and has expired. Start again.".into(),
            )),
            None => Err(SignInFailure::StartAgain(
                "We couldn't find your sign-in. It may have finished or expired. Start again."
                    .into(),
            )),
        }
    }

    /// The user typed a user name. Unknown names move on exactly like known ones; a user who
    /// can sign in by phone gets a notification and the number page instead.
    ///
    /// A step that ends at the pass or password page (as every unknown name does) takes at
    /// least [`USERNAME_STEP_FLOOR`], and an unknown name makes the reads a known one makes
    /// (policy, groups, devices), so the step's timing does not tell which names exist.
    pub async fn submit_username(
        &self,
        id: &SignInId,
        input: &str,
        context: &SignInContext,
    ) -> Result<PendingSignIn, SignInFailure> {
        let started = tokio::time::Instant::now();
        let result = self.submit_username_unpadded(id, input, context).await;
        // The refusal for a required strength ends unknown names too, so it is padded alike.
        let padded = match &result {
            Ok(sign_in) => matches!(sign_in.stage, SignInStage::AwaitingCredential { .. }),
            Err(failure) => matches!(failure, SignInFailure::NotStrongEnough(_)),
        };
        if padded {
            tokio::time::sleep_until(started + USERNAME_STEP_FLOOR).await;
        }
        result
    }

    async fn submit_username_unpadded(
        &self,
        id: &SignInId,
        input: &str,
        context: &SignInContext,
    ) -> Result<PendingSignIn, SignInFailure> {
        let sign_in = self.sign_in(id).await?;
        if sign_in.stage != SignInStage::AwaitingUsername {
            return Err(SignInFailure::OutOfOrder);
        }
        let upn = Upn::parse(input).map_err(|_| {
            SignInFailure::TryAgain(
                "Enter your user name in the form name@domain, for example bobby@contoso.example."
                    .into(),
            )
        })?;
        let user = self
            .directory
            .lookup_upn(&upn)
            .await
            .map_err(|_| SignInFailure::TryAgain(STORE_TROUBLE.into()))?;
        let mut sign_in = sign_in;
        if sign_in
            .login_hint()
            .is_none_or(|hint| !hint.eq_ignore_ascii_case(upn.as_str()))
        {
            // Another name than the step-up continues as: a fresh sign-in, not a step-up.
            sign_in.step_up_from = None;
        }
        self.offer_methods(sign_in, &upn.to_string(), user, context)
            .await
    }

    /// The user is known (or the name matches no one): pushes phone sign-in where it may meet
    /// the sign-in's required strength, else moves to the pass-or-password stage, whose page
    /// offers only what meets the strength. A fresh sign-in that nothing the user has could
    /// meet is refused here, before anything is tried.
    pub(crate) async fn offer_methods(
        &self,
        mut sign_in: PendingSignIn,
        upn: &str,
        user: Option<User>,
        context: &SignInContext,
    ) -> Result<PendingSignIn, SignInFailure> {
        let trouble = |_| SignInFailure::TryAgain(STORE_TROUBLE.into());
        let strength = sign_in.required_strength;
        let phone = match &user {
            Some(user) if strength::phone_may_meet(strength) => self
                .request_approval(ApprovalKind::PhoneSignIn, &sign_in, user, context)
                .await
                .map_err(trouble)?,
            // The reads a known name without phone sign-in costs, so that the two take as
            // long even when the floor below is exceeded (a loaded machine).
            Some(user) => {
                self.reads_of_a_name_without_phone(&user.id)
                    .await
                    .map_err(|_| SignInFailure::TryAgain(STORE_TROUBLE.into()))?;
                ApprovalStart::NotApplicable
            }
            None => {
                self.reads_of_a_name_without_phone(&UserId::generate(self.random.as_ref()))
                    .await
                    .map_err(|_| SignInFailure::TryAgain(STORE_TROUBLE.into()))?;
                ApprovalStart::NotApplicable
            }
        };
        // Only a passkey meets the strength: a fresh sign-in for a user without one ends here.
        let needs_passkey = strength.is_some_and(|s| !strength::credential_may_meet(Some(s)))
            && matches!(phone, ApprovalStart::NotApplicable);
        let has_passkey = match (&user, needs_passkey) {
            (Some(user), true) => self.has_passkey(&user.id).await.map_err(trouble)?,
            _ => false,
        };
        if needs_passkey && !has_passkey && sign_in.step_up_from.is_none() {
            return Err(self
                .refuse_for_strength(
                    &sign_in,
                    strength.expect("checked"),
                    upn,
                    user.as_ref(),
                    context,
                )
                .await
                .map_err(trouble)?);
        }
        // A user whose only usable methods are passkeys never sees a pass or password prompt.
        let passkeys_only = match (&phone, &user) {
            (ApprovalStart::NotApplicable, Some(user)) => self
                .passkeys_only(user)
                .await
                .map_err(|_| SignInFailure::TryAgain(STORE_TROUBLE.into()))?,
            _ => false,
        };
        let user_id = user.map(|u| u.id);
        sign_in.stage = match phone {
            // Stored at the number page with the request, in one write.
            ApprovalStart::Sent(moved) => return Ok(*moved),
            ApprovalStart::NotApplicable if passkeys_only => SignInStage::AwaitingPasskey {
                upn: upn.to_string(),
                user_id: user_id.expect("only a known user has passkeys"),
            },
            ApprovalStart::NotApplicable => SignInStage::AwaitingCredential {
                upn: upn.to_string(),
                user_id,
                notice: None,
            },
            ApprovalStart::AlreadyPending => SignInStage::AwaitingCredential {
                upn: upn.to_string(),
                user_id,
                notice: Some(ALREADY_PENDING.into()),
            },
            ApprovalStart::Throttled(_) => SignInStage::AwaitingCredential {
                upn: upn.to_string(),
                user_id,
                notice: Some(throttled(
                    self.throttles
                        .limits
                        .notification_wait_seconds(self.now().0),
                )),
            },
        };
        self.store.put_sign_in(&sign_in).await.map_err(trouble)?;
        Ok(sign_in)
    }

    /// Asks the devices context for a notification. A throttled one is logged here, with this
    /// sign-in's failure, because sign-ins are stored by this context.
    async fn request_approval(
        &self,
        kind: ApprovalKind,
        sign_in: &PendingSignIn,
        user: &User,
        context: &SignInContext,
    ) -> Result<ApprovalStart, StoreError> {
        let start = self
            .devices
            .try_approval(kind, sign_in, user, context)
            .await?;
        if let ApprovalStart::Throttled(record) = &start {
            self.store.fail_sign_in(sign_in, false, record).await?;
        }
        Ok(start)
    }

    /// What `try_approval` reads for a user who cannot sign in by phone:
    /// the policy, the user's groups, devices and passkeys.
    async fn reads_of_a_name_without_phone(&self, user: &UserId) -> Result<(), DomainError> {
        self.access.policy().await?;
        self.access.user_groups(user).await?;
        self.devices.devices(user).await?;
        self.passkeys.store.passkeys_of_user(user).await?;
        Ok(())
    }

    /// Goes back to the user-name step ("Sign in with another account").
    pub async fn restart_sign_in(&self, id: &SignInId) -> Result<PendingSignIn, SignInFailure> {
        // A notification still waiting is cancelled, so no device can answer it later.
        let mut sign_in = self.choose_other_way(id).await?;
        sign_in.stage = SignInStage::AwaitingUsername;
        // Another account is not the session being stepped up: it is a fresh sign-in.
        sign_in.step_up_from = None;
        self.store
            .put_sign_in(&sign_in)
            .await
            .map_err(|_| SignInFailure::TryAgain(STORE_TROUBLE.into()))?;
        Ok(sign_in)
    }
}
