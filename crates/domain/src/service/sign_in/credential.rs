//! The pass or password step: checking the credential, counting the attempt, and either a
//! session or the authenticator app as the second factor.

use latchkey_protocol::wire::ApprovalKind;

use super::strength;
use super::{ApprovalStart, CredentialInput, SignInFailure, SignIns, SignedIn};
use crate::clock::Timestamp;
use crate::credential::{DUMMY_PASSWORD_HASH, PassUnusable, verify_password};
use crate::error::StoreError;
use crate::ids::SignInId;
use crate::log::{AuthenticationStep, SignInContext, SignInError, SignInRecord, SignInStatus};
use crate::policy::MethodKind;
use crate::secret::TokenHash;
use crate::service::messages::{
    ALREADY_PENDING, DISABLED, STORE_TROUBLE, WRONG_CREDENTIAL, throttled,
};
use crate::session::AuthMethod;
use crate::signin::{MAX_FAILED_ATTEMPTS, SignInStage};
use crate::user::User;

impl SignIns {
    /// The user typed a pass or password. On success the sign-in ends and a session begins.
    /// Every outcome lands in the sign-in log in the same transaction as its effect.
    pub async fn submit_credential(
        &self,
        id: &SignInId,
        input: CredentialInput,
        context: &SignInContext,
    ) -> Result<SignedIn, SignInFailure> {
        let trouble = |_| SignInFailure::TryAgain(STORE_TROUBLE.into());
        let mut sign_in = self.sign_in(id).await?;
        let SignInStage::AwaitingCredential { upn, user_id, .. } = &sign_in.stage else {
            return Err(SignInFailure::OutOfOrder);
        };
        let typed_upn = upn.clone();
        if !strength::credential_may_meet(sign_in.required_strength) {
            // The page offers no pass or password for this strength; one posted anyway is
            // refused without being checked, and the page explains what would work.
            let message = self
                .strength_prompt(&sign_in)
                .await
                .map_err(trouble)?
                .map(|p| p.message)
                .unwrap_or_default();
            return Err(SignInFailure::TryAgain(message));
        }
        let user = match user_id {
            Some(id) => self.directory.lookup(id).await.map_err(trouble)?,
            None => None,
        };
        let now = self.now();
        let method_kind = match input {
            CredentialInput::Pass(_) => MethodKind::TemporaryAccessPass,
            CredentialInput::Password(_) => MethodKind::Password,
        };
        let attempt = self
            .throttles
            .credential_attempt(user.as_ref(), &typed_upn, context, now)
            .await
            .map_err(trouble)?;
        let verdict = if !attempt.allowed {
            Ok(Err(SignInError::Throttled))
        } else {
            self.check_credential(user.as_ref(), &input, now).await
        }
        .map_err(trouble)?;
        let app = match &sign_in.authorization {
            Some(request) => self
                .applications
                .cached(&request.client_id)
                .await
                .map_err(trouble)?,
            None => None,
        };
        let mut record = SignInRecord {
            id: self.random.hex(16),
            created_date_time: now,
            user_id: user.as_ref().map(|u| u.id.clone()),
            user_principal_name: user
                .as_ref()
                .map(|u| u.upn.to_string())
                .unwrap_or(typed_upn),
            user_display_name: user.as_ref().map(|u| u.display_name.clone()),
            app_id: app.as_ref().map(|a| a.client_id.clone()),
            app_display_name: app.as_ref().map(|a| a.display_name.clone()),
            ip_address: context.ip_address.map(|ip| ip.to_string()),
            location: context.location.clone(),
            authentication_method: method_kind.id().to_string(),
            status: SignInStatus::success(),
            authentication_details: vec![],
        };
        let step = |succeeded: bool, detail: &str| AuthenticationStep {
            authentication_method: method_kind.label().to_string(),
            authentication_method_detail: None,
            authentication_step_date_time: now.to_rfc3339(),
            authentication_step_result_detail: detail.to_string(),
            succeeded,
        };
        let Verified { method, ends_by } = match verdict {
            Ok(verified) => verified,
            Err(error) => {
                sign_in.failed_attempts += 1;
                let ended = sign_in.failed_attempts >= MAX_FAILED_ATTEMPTS;
                let error = if ended {
                    SignInError::TooManyAttempts
                } else {
                    error
                };
                record.status.fail(error);
                record
                    .authentication_details
                    .push(step(false, error.failure_reason()));
                self.store
                    .fail_sign_in(&sign_in, ended, &record)
                    .await
                    .map_err(trouble)?;
                let wait = self.throttles.limits.credential_wait_seconds(now.0);
                let message = user_message(error, method_kind, wait);
                return Err(if ended {
                    SignInFailure::StartAgain(message)
                } else {
                    SignInFailure::TryAgain(message)
                });
            }
        };
        let user = user.expect("a credential only verifies for a known user");
        self.throttles
            .credential_succeeded(attempt, now)
            .await
            .map_err(trouble)?;
        if method == AuthMethod::Password {
            match self
                .request_approval(ApprovalKind::MfaPush, &sign_in, &user, context)
                .await
                .map_err(trouble)?
            {
                // The sign-in was stored at the number page with the request.
                ApprovalStart::Sent(_) => return Err(SignInFailure::SecondFactor),
                ApprovalStart::AlreadyPending => {
                    return Err(SignInFailure::Notice(ALREADY_PENDING.into()));
                }
                ApprovalStart::Throttled(_) => {
                    let wait = self.throttles.limits.notification_wait_seconds(now.0);
                    return Err(SignInFailure::Notice(throttled(wait)));
                }
                ApprovalStart::NotApplicable => {}
            }
        }
        if let Some(strength) = sign_in.required_strength
            && !strength.allows(method)
        {
            // A password alone, for a user without the authenticator app: the credential was
            // right, but the application requires more than it.
            return Err(self
                .refuse_for_strength(&sign_in, strength, user.upn.as_str(), Some(&user), context)
                .await
                .map_err(trouble)?);
        }
        let (mut session, cookie_secret) = self.new_session(&user, method, now);
        if let Some(end) = ends_by {
            session.end_no_later_than(end);
        }
        record
            .authentication_details
            .push(step(true, "Correct credential"));
        self.finish_sign_in(
            sign_in,
            user,
            (session, cookie_secret),
            &record,
            context.browser.as_ref(),
            now,
            trouble,
        )
        .await
    }

    /// Ok(Ok(method)) when the credential proves the user and policy allows the method;
    /// Ok(Err(why)) otherwise. Specific reasons (expired pass, disabled account, policy) are
    /// given only to someone who presented the right secret, so they reveal nothing to a
    /// guesser.
    async fn check_credential(
        &self,
        user: Option<&User>,
        input: &CredentialInput,
        now: Timestamp,
    ) -> Result<Result<Verified, SignInError>, StoreError> {
        let wrong = || Ok(Err(SignInError::InvalidCredential));
        match input {
            CredentialInput::Pass(secret) => {
                let pass = match user {
                    Some(user) => self.directory.pass_of(&user.id).await?,
                    None => None,
                };
                // Compare against a dummy hash when there is no pass, so timing is the same.
                let stored = pass
                    .as_ref()
                    .map(|p| p.hash.clone())
                    .unwrap_or_else(|| TokenHash::of(""));
                let typed = self
                    .keys
                    .pass_hash(secret.expose())
                    .await
                    .map_err(|e| StoreError::Backend(e.to_string()))?;
                let matches =
                    stored.same_as(&typed) && pass.is_some() && secret.expose().len() <= 64;
                let (Some(pass), Some(user), true) = (pass, user, matches) else {
                    return wrong();
                };
                if let Err(reason) = pass.usability(now) {
                    return Ok(Err(match reason {
                        PassUnusable::Expired => SignInError::PassExpired,
                        PassUnusable::NotYetValid => SignInError::PassNotYetValid,
                        PassUnusable::OneTimeUsed => SignInError::PassAlreadyUsed,
                    }));
                }
                if !user.enabled {
                    return Ok(Err(SignInError::UserDisabled));
                }
                if !self
                    .access
                    .method_allowed(&user.id, MethodKind::TemporaryAccessPass)
                    .await?
                {
                    return Ok(Err(SignInError::MethodNotAllowed));
                }
                if !self
                    .directory
                    .mark_pass_used(&user.id, &pass.hash, now)
                    .await?
                {
                    return Ok(Err(SignInError::PassAlreadyUsed));
                }
                // A session started with a pass ends no later than the pass does.
                Ok(Ok(Verified {
                    method: AuthMethod::TemporaryAccessPass,
                    ends_by: Some(pass.expires_at()),
                }))
            }
            CredentialInput::Password(secret) => {
                let stored = match user {
                    Some(user) => self.directory.password_hash(&user.id).await?,
                    None => None,
                };
                let has_password = stored.is_some();
                let hash = stored.unwrap_or_else(|| DUMMY_PASSWORD_HASH.into());
                let secret = secret.clone();
                let verified = self
                    .hashers
                    .run(move || verify_password(&hash, secret.expose()))
                    .await
                    .unwrap_or(false);
                match (user, verified && has_password) {
                    (Some(user), true) if !user.enabled => Ok(Err(SignInError::UserDisabled)),
                    (Some(user), true) => {
                        if self
                            .access
                            .method_allowed(&user.id, MethodKind::Password)
                            .await?
                        {
                            Ok(Ok(Verified {
                                method: AuthMethod::Password,
                                ends_by: None,
                            }))
                        } else {
                            Ok(Err(SignInError::MethodNotAllowed))
                        }
                    }
                    _ => wrong(),
                }
            }
        }
    }
}

/// A credential that proved the user: how, and when a session it starts must end at the latest.
struct Verified {
    method: AuthMethod,
    ends_by: Option<Timestamp>,
}

/// What the sign-in page says for each refusal.
/// `throttled_wait`: seconds until the credential throttles' windows end.
fn user_message(error: SignInError, method: MethodKind, throttled_wait: i64) -> String {
    match error {
        SignInError::InvalidCredential => WRONG_CREDENTIAL.to_string(),
        SignInError::UserDisabled => DISABLED.to_string(),
        SignInError::TooManyAttempts => "That was the last try for this sign-in. Start again, and ask your administrator for a new pass if you need one.".to_string(),
        SignInError::PassExpired => PassUnusable::Expired.message().to_string(),
        SignInError::PassNotYetValid => PassUnusable::NotYetValid.message().to_string(),
        SignInError::PassAlreadyUsed => PassUnusable::OneTimeUsed.message().to_string(),
        SignInError::Throttled => throttled(throttled_wait),
        SignInError::PasskeyRefused | SignInError::KeyRestricted => {
            error.failure_reason().to_string()
        }
        SignInError::ApprovalDenied
        | SignInError::StrengthNotMet
        | SignInError::NotAssigned
        | SignInError::ApprovalReported
        | SignInError::WrongNumber
        | SignInError::ApprovalTimedOut => error.failure_reason().to_string(),
        SignInError::MethodNotAllowed => format!(
            "Your organisation doesn't let your account sign in with a {}. Use another way to sign in, or ask your administrator.",
            method.label().to_lowercase()
        ),
    }
}
