//! Authentication strengths at sign-in: which ways of signing in a sign-in may offer when an
//! application (or the request's `acr_values`) requires a strength, what the page says about
//! it, the refusal when the user has no way to meet it, and the step-up of a session that is
//! not strong enough.
//!
//! The one check every path to a code passes is in `Tokens::issue_code`; what is here decides
//! what to offer so that a sign-in that cannot meet the strength never gets that far.

use super::{SignInFailure, SignIns};
use crate::error::StoreError;
use crate::ids::UserId;
use crate::log::{AuthenticationStep, SignInContext, SignInError, SignInRecord, SignInStatus};
use crate::policy::MethodKind;
use crate::session::AuthMethod;
use crate::signin::{PendingSignIn, SignInStage};
use crate::strength::AuthStrength;
use crate::user::User;

/// What the sign-in page shows for a sign-in that must meet a strength the pass or password
/// page cannot, or for a step-up: why it asks, and the route it offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrengthPrompt {
    pub strength: AuthStrength,
    /// "<App> requires phishing-resistant MFA. You signed in with …, which doesn't meet it.
    /// Sign in with a passkey or security key."
    pub message: String,
    /// Whether a passkey or security key meets the strength (always, for the three strengths;
    /// kept so the page does not decide).
    pub offers_passkey: bool,
    /// Where to add a method that would work, for a user who has none yet.
    pub add_method_hint: &'static str,
    /// A step-up that may push a notification: the user name the page continues as (the page
    /// posts it as the user-name step does, so nothing is pushed before the user asks).
    pub continue_as: Option<String>,
}

/// Whether a pass or a password (followed by the authenticator app where the user has it) may
/// be offered for `strength`: only multi-factor accepts them.
pub fn credential_may_meet(strength: Option<AuthStrength>) -> bool {
    strength.is_none_or(|s| {
        s.allows(AuthMethod::TemporaryAccessPass) || s.allows(AuthMethod::PasswordAndPush)
    })
}

/// Whether phone sign-in may be pushed for `strength`.
pub fn phone_may_meet(strength: Option<AuthStrength>) -> bool {
    strength.is_none_or(|s| s.allows(AuthMethod::PhoneSignIn))
}

/// The strength as a sentence says it: "phishing-resistant MFA".
pub fn strength_phrase(strength: AuthStrength) -> &'static str {
    match strength {
        AuthStrength::Mfa => "multifactor authentication",
        AuthStrength::PasswordlessMfa => "passwordless MFA",
        AuthStrength::PhishingResistantMfa => "phishing-resistant MFA",
    }
}

/// How a session was signed in, as a sentence says it: "the Authenticator app".
pub fn method_phrase(method: AuthMethod) -> &'static str {
    match method {
        AuthMethod::TemporaryAccessPass => "a Temporary Access Pass",
        AuthMethod::Password => "a password",
        AuthMethod::PhoneSignIn => "the Authenticator app",
        AuthMethod::PasswordAndPush => "a password and the Authenticator app",
        AuthMethod::DeviceBoundPasskey => "a passkey or security key",
        AuthMethod::SyncedPasskey => "a synced passkey",
        AuthMethod::CertificateMultiFactor | AuthMethod::CertificateSingleFactor => "a certificate",
    }
}

/// What would meet `strength`, as the page tells it.
fn what_works(strength: AuthStrength) -> &'static str {
    match strength {
        AuthStrength::Mfa => {
            "Sign in with the Authenticator app, a Temporary Access Pass, or a passkey or security key."
        }
        AuthStrength::PasswordlessMfa => {
            "Sign in with the Authenticator app (phone sign-in) or a passkey or security key."
        }
        AuthStrength::PhishingResistantMfa => "Sign in with a passkey or security key.",
    }
}

/// What to add on Security info so that `strength` can be met.
fn what_to_add(strength: AuthStrength) -> &'static str {
    match strength {
        AuthStrength::Mfa => {
            "set up the Authenticator app or add a passkey or security key on Security info"
        }
        AuthStrength::PasswordlessMfa => {
            "set up phone sign-in in the Authenticator app or add a passkey or security key on Security info"
        }
        AuthStrength::PhishingResistantMfa => "add a passkey or security key on Security info",
    }
}

/// "<App> requires <strength>." with the application's name, or "This application" when the
/// sign-in is for none (Latchkey's own pages never require one, but the text must not break).
fn requires(app_name: Option<&str>, strength: AuthStrength) -> String {
    format!(
        "{} requires {}.",
        app_name.unwrap_or("This application"),
        strength_phrase(strength)
    )
}

/// The step-up page's explanation.
pub fn step_up_message(app_name: Option<&str>, strength: AuthStrength, from: AuthMethod) -> String {
    format!(
        "{} You signed in with {}, which doesn't meet it. {}",
        requires(app_name, strength),
        method_phrase(from),
        what_works(strength)
    )
}

/// The refusal page's explanation: the user has no way of signing in that meets the strength.
pub fn refusal_message(app_name: Option<&str>, strength: AuthStrength) -> String {
    format!(
        "{} Your account has no way of signing in that meets it. To use {}, {}, then sign in again.",
        requires(app_name, strength),
        app_name.unwrap_or("this application"),
        what_to_add(strength)
    )
}

impl SignIns {
    /// The application's display name for a sign-in, if it is for one.
    pub(crate) async fn app_name(
        &self,
        sign_in: &PendingSignIn,
    ) -> Result<Option<String>, StoreError> {
        Ok(match &sign_in.authorization {
            Some(request) => self
                .applications
                .cached(&request.client_id)
                .await?
                .map(|a| a.display_name),
            None => None,
        })
    }

    /// What the pass-or-password stage shows instead of its forms when the sign-in requires a
    /// strength a pass or password cannot meet; `None` when the usual page applies.
    pub async fn strength_prompt(
        &self,
        sign_in: &PendingSignIn,
    ) -> Result<Option<StrengthPrompt>, StoreError> {
        let Some(strength) = sign_in.required_strength else {
            return Ok(None);
        };
        let continue_as = match (&sign_in.stage, sign_in.step_up_from) {
            (SignInStage::AwaitingUsername, Some(_)) => sign_in.login_hint().map(str::to_string),
            _ => None,
        };
        if continue_as.is_none() && credential_may_meet(Some(strength)) {
            return Ok(None);
        }
        let app_name = self.app_name(sign_in).await?;
        let message = match sign_in.step_up_from {
            Some(from) => step_up_message(app_name.as_deref(), strength, from),
            None => format!(
                "{} {}",
                requires(app_name.as_deref(), strength),
                what_works(strength)
            ),
        };
        Ok(Some(StrengthPrompt {
            strength,
            message,
            offers_passkey: continue_as.is_none()
                && strength.allows(AuthMethod::DeviceBoundPasskey),
            continue_as,
            add_method_hint: what_to_add(strength),
        }))
    }

    /// Whether the user has a passkey or security key the policy lets them sign in with.
    pub(crate) async fn has_passkey(&self, user: &UserId) -> Result<bool, StoreError> {
        if self.passkeys.store.passkeys_of_user(user).await?.is_empty() {
            return Ok(false);
        }
        self.access.method_allowed(user, MethodKind::Fido2).await
    }

    /// Ends a fresh sign-in that cannot meet its required strength: the log records why, and
    /// the page says what would work. `user` is `None` for a name that matches no account,
    /// which is refused the same way (it has no method either).
    pub(crate) async fn refuse_for_strength(
        &self,
        sign_in: &PendingSignIn,
        strength: AuthStrength,
        typed_upn: &str,
        user: Option<&User>,
        context: &SignInContext,
    ) -> Result<SignInFailure, StoreError> {
        let now = self.now();
        let app = match &sign_in.authorization {
            Some(request) => self.applications.cached(&request.client_id).await?,
            None => None,
        };
        let error = SignInError::StrengthNotMet;
        let mut status = SignInStatus::success();
        status.fail(error);
        status.additional_details = Some(format!(
            "The application requires {} ({}).",
            strength.label(),
            strength.acr()
        ));
        let record = SignInRecord {
            id: self.random.hex(16),
            created_date_time: now,
            user_id: user.map(|u| u.id.clone()),
            user_principal_name: user.map(|u| u.upn.to_string()).unwrap_or(typed_upn.into()),
            user_display_name: user.map(|u| u.display_name.clone()),
            app_id: app.as_ref().map(|a| a.client_id.clone()),
            app_display_name: app.as_ref().map(|a| a.display_name.clone()),
            ip_address: context.ip_address.map(|ip| ip.to_string()),
            location: context.location.clone(),
            authentication_method: "none".into(),
            status,
            authentication_details: vec![AuthenticationStep {
                authentication_method: strength.label().into(),
                authentication_method_detail: None,
                authentication_step_date_time: now.to_rfc3339(),
                authentication_step_result_detail: error.failure_reason().into(),
                succeeded: false,
            }],
        };
        self.store.fail_sign_in(sign_in, true, &record).await?;
        let app_name = app.map(|a| a.display_name);
        Ok(SignInFailure::NotStrongEnough(refusal_message(
            app_name.as_deref(),
            strength,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_step_up_page_says_what_the_app_requires_how_the_user_signed_in_and_what_works() {
        assert_eq!(
            step_up_message(
                Some("Payroll"),
                AuthStrength::PhishingResistantMfa,
                AuthMethod::PhoneSignIn
            ),
            "Payroll requires phishing-resistant MFA. You signed in with the Authenticator app, \
             which doesn't meet it. Sign in with a passkey or security key."
        );
        assert!(
            refusal_message(Some("Payroll"), AuthStrength::PhishingResistantMfa)
                .contains("add a passkey or security key on Security info")
        );
    }

    #[test]
    fn only_multifactor_accepts_a_pass_or_password_and_phishing_resistance_refuses_the_phone() {
        assert!(credential_may_meet(None));
        assert!(credential_may_meet(Some(AuthStrength::Mfa)));
        assert!(!credential_may_meet(Some(AuthStrength::PasswordlessMfa)));
        assert!(!credential_may_meet(Some(
            AuthStrength::PhishingResistantMfa
        )));
        assert!(phone_may_meet(Some(AuthStrength::PasswordlessMfa)));
        assert!(!phone_may_meet(Some(AuthStrength::PhishingResistantMfa)));
    }
}
