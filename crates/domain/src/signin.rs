//! The sign-in state machine: one browser's way from "who are you?" to a session.
//!
//! Stages only move forward; a request for a stage the sign-in is not at is refused as out of
//! order, and changes nothing. Phone sign-in and MFA push wait in `AwaitingApproval` for the
//! user's device.

use serde::{Deserialize, Serialize};

use crate::anomaly::HeldBack;
use crate::clock::Timestamp;
use crate::ids::{ApprovalId, SignInId, UserId};
use crate::oidc::AuthorizationRequest;
use crate::session::AuthMethod;
use crate::strength::AuthStrength;

/// How long a browser may take between starting a sign-in and finishing it.
pub const SIGN_IN_LIFETIME_SECONDS: i64 = 15 * 60;
/// Wrong passes or passwords allowed in one sign-in before it must start again.
pub const MAX_FAILED_ATTEMPTS: u32 = 5;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum SignInStage {
    AwaitingUsername,
    /// The user name was entered. `user_id` is `None` for an unknown name: the page looks the
    /// same either way, so that it does not tell who has an account.
    AwaitingCredential {
        upn: String,
        user_id: Option<UserId>,
        /// Why the page offers a pass or password, when it is not the user's choice (for
        /// example, a notification is already waiting).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        notice: Option<String>,
    },
    /// The user name belongs to a user whose only usable methods are passkeys: the page offers
    /// the passkey button (and starts the ceremony itself), never a pass or password prompt.
    AwaitingPasskey {
        upn: String,
        user_id: UserId,
    },
    /// A request waits for the user's devices and the page shows its number.
    /// `first_factor` is `None` for phone sign-in and the password for MFA push.
    AwaitingApproval {
        upn: String,
        user_id: UserId,
        approval: ApprovalId,
        first_factor: Option<AuthMethod>,
        /// Why the request was not pushed (the page then says to open the app and look);
        /// `None` when it was. Sign-ins stored before this existed were all pushed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        held_back: Option<HeldBack>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingSignIn {
    pub id: SignInId,
    /// The application's request to resume once signed in; `None` for Latchkey's own pages.
    pub authorization: Option<AuthorizationRequest>,
    /// A local path to return to when there is no authorization request.
    pub return_to: Option<String>,
    pub stage: SignInStage,
    pub failed_attempts: u32,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// The authentication strength the session must meet (from the application and the
    /// request's `acr_values`): only methods that meet it are offered. Sign-ins stored before
    /// strengths existed have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_strength: Option<AuthStrength>,
    /// Set when this sign-in steps up a session that did not meet `required_strength`: how
    /// that session was signed in, so the page can say why it asks again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_up_from: Option<AuthMethod>,
    /// The certificate host's part of this sign-in (docs/certificates.md): the single-use
    /// reference the sign-in page handed out, and the certificate it accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateHandoff>,
}

/// A sign-in's hand-off to the certificate host and back. The browser carries only opaque
/// tokens; what they stand for stays here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateHandoff {
    /// SHA-256 of the reference's single-use nonce; `None` once the certificate host used it.
    pub nonce: Option<crate::secret::TokenHash>,
    /// The reference and the result are good until then.
    pub expires_at: Timestamp,
    /// The certificate the certificate host accepted, waiting for this browser to come back.
    pub accepted: Option<AcceptedCertificate>,
}

/// A certificate that proved `user_id`, as the certificate host recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedCertificate {
    pub user_id: UserId,
    /// The rule (or the default) made it multi-factor.
    pub multi_factor: bool,
    /// SHA-256 of the single-use result token the browser brings back to the main host.
    pub result: crate::secret::TokenHash,
    /// The sign-in log's step detail: subject, issuer, serial, binding and rule.
    pub detail: String,
}

impl PendingSignIn {
    pub fn start(
        authorization: Option<AuthorizationRequest>,
        return_to: Option<String>,
        now: Timestamp,
    ) -> Self {
        Self::start_as(SignInId::random(), authorization, return_to, now)
    }

    /// A new sign-in under an id the caller drew (from the services' random source).
    pub fn start_as(
        id: SignInId,
        authorization: Option<AuthorizationRequest>,
        return_to: Option<String>,
        now: Timestamp,
    ) -> Self {
        PendingSignIn {
            id,
            required_strength: authorization.as_ref().and_then(|a| a.required_strength),
            step_up_from: None,
            certificate: None,
            authorization,
            return_to,
            stage: SignInStage::AwaitingUsername,
            failed_attempts: 0,
            created_at: now,
            expires_at: now.plus_seconds(SIGN_IN_LIFETIME_SECONDS),
        }
    }

    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.expires_at
    }

    pub fn login_hint(&self) -> Option<&str> {
        self.authorization
            .as_ref()
            .and_then(|a| a.login_hint.as_deref())
    }
}

/// Only local absolute paths may be returned to, so a sign-in link can never send a user to
/// another site (open redirect).
pub fn safe_return_path(candidate: &str) -> Option<String> {
    let ok = candidate.starts_with('/')
        && !candidate.starts_with("//")
        && !candidate.starts_with("/\\")
        && candidate.len() <= 512
        && !candidate.chars().any(|c| c.is_control() || c == '\\');
    ok.then(|| candidate.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_paths_are_local_only() {
        assert_eq!(
            safe_return_path("/mysecurityinfo").as_deref(),
            Some("/mysecurityinfo")
        );
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "evil",
            "/a\nb",
        ] {
            assert_eq!(safe_return_path(bad), None, "{bad}");
        }
    }
}
