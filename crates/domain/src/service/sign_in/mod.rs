//! Sign-in: the state machine a browser goes through (user name, then a pass, a password or
//! the authenticator app, then perhaps a second factor), and the sessions it ends in.

mod approval;
mod credential;
mod passkey;
mod session;

use std::sync::Arc;

pub use approval::WaitingForApproval;

use super::access::MethodAccess;
use super::applications::Applications;
use super::devices::{ApprovalStart, Devices};
use super::directory::Directory;
use super::messages::{ALREADY_PENDING, STORE_TROUBLE, THROTTLED};
use super::settings::{Settings, USERNAME_STEP_FLOOR};
use super::shared::{Anomalies, Hashers, ServerKeys, Throttles};
use super::tokens::Tokens;
use crate::clock::{Clock, Timestamp};
use crate::error::{DomainError, StoreError};
use crate::ids::{SignInId, UserId};
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
    /// The request does not fit the stage the sign-in is at.
    OutOfOrder,
    /// The first factor was right; the sign-in now waits for the authenticator app.
    SecondFactor,
}

/// A browser that just signed in: the cookie secret is shown once, to the browser.
#[derive(Debug)]
pub struct SignedIn {
    pub session: Session,
    pub cookie_secret: Secret,
    pub user: User,
    pub sign_in: PendingSignIn,
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
    pub(crate) anomalies: Arc<Anomalies>,
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
        let sign_in = self.submit_username_unpadded(id, input, context).await?;
        if matches!(sign_in.stage, SignInStage::AwaitingCredential { .. }) {
            tokio::time::sleep_until(started + USERNAME_STEP_FLOOR).await;
        }
        Ok(sign_in)
    }

    async fn submit_username_unpadded(
        &self,
        id: &SignInId,
        input: &str,
        context: &SignInContext,
    ) -> Result<PendingSignIn, SignInFailure> {
        let mut sign_in = self.sign_in(id).await?;
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
        let phone = match &user {
            Some(user) => self
                .request_approval(ApprovalKind::PhoneSignIn, &sign_in, user, context)
                .await
                .map_err(|_| SignInFailure::TryAgain(STORE_TROUBLE.into()))?,
            None => {
                // The reads a known name without phone sign-in costs, so that the two take as
                // long even when the floor below is exceeded (a loaded machine).
                self.reads_of_a_name_without_phone(&UserId::generate(self.random.as_ref()))
                    .await
                    .map_err(|_| SignInFailure::TryAgain(STORE_TROUBLE.into()))?;
                ApprovalStart::NotApplicable
            }
        };
        // A user whose only usable methods are passkeys never sees a pass or password prompt.
        let passkeys_only = match (&phone, &user) {
            (ApprovalStart::NotApplicable, Some(user)) => self
                .passkeys_only(user)
                .await
                .map_err(|_| SignInFailure::TryAgain(STORE_TROUBLE.into()))?,
            _ => false,
        };
        sign_in.stage = match phone {
            ApprovalStart::Sent(stage) => stage,
            ApprovalStart::NotApplicable if passkeys_only => SignInStage::AwaitingPasskey {
                upn: upn.to_string(),
                user_id: user.map(|u| u.id).expect("only a known user has passkeys"),
            },
            ApprovalStart::NotApplicable => SignInStage::AwaitingCredential {
                upn: upn.to_string(),
                user_id: user.map(|u| u.id),
                notice: None,
            },
            ApprovalStart::AlreadyPending => SignInStage::AwaitingCredential {
                upn: upn.to_string(),
                user_id: user.map(|u| u.id),
                notice: Some(ALREADY_PENDING.into()),
            },
            ApprovalStart::Throttled(_) => SignInStage::AwaitingCredential {
                upn: upn.to_string(),
                user_id: user.map(|u| u.id),
                notice: Some(THROTTLED.into()),
            },
        };
        self.store
            .put_sign_in(&sign_in)
            .await
            .map_err(|_| SignInFailure::TryAgain(STORE_TROUBLE.into()))?;
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
        // A notification still waiting is cancelled first, so no device can answer it later.
        let mut sign_in = self.choose_other_way(id).await?;
        sign_in.stage = SignInStage::AwaitingUsername;
        self.store
            .put_sign_in(&sign_in)
            .await
            .map_err(|_| SignInFailure::TryAgain(STORE_TROUBLE.into()))?;
        Ok(sign_in)
    }
}
