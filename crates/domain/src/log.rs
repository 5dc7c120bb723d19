//! The sign-in log and the audit log: what administrators read afterwards.
//!
//! A sign-in record is shaped after Microsoft Graph's `signIn`; the error codes are stable and
//! documented in `docs/logs.md`. Records are written by the store in the same transaction as
//! the outcome they describe, so the log can never disagree with what happened.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::Timestamp;
use crate::ids::{ClientId, UserId};
use crate::location::Location;

/// Stable sign-in error codes. Where Microsoft Entra has a code for the same outcome, it is
/// reused; Latchkey's own start at 900000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SignInError {
    /// 50126: the pass or password was wrong (or the user does not exist).
    InvalidCredential,
    /// 50057: the account is disabled.
    UserDisabled,
    /// 50053: too many wrong attempts in one sign-in.
    TooManyAttempts,
    /// 900001
    PassExpired,
    /// 900002
    PassNotYetValid,
    /// 900003
    PassAlreadyUsed,
    /// 900010: the authentication methods policy does not allow this method for this user.
    MethodNotAllowed,
    /// 500121: the person denied the notification.
    ApprovalDenied,
    /// 500121 as well in Entra; Latchkey's 900020: "No, it's not me".
    ApprovalReported,
    /// 900021: the number typed in the app did not match the page.
    WrongNumber,
    /// 50074 in spirit; Latchkey's 900022: nobody answered before the request expired.
    ApprovalTimedOut,
    /// 900030: too many notifications, wrong numbers or failed attempts; nothing was tried.
    Throttled,
    /// 900040: the passkey's answer was refused (the step's result detail says why: counter
    /// went backwards, user verification required, wrong origin, replay, bad signature…).
    PasskeyRefused,
    /// 900041: the passkey's model (AAGUID) is blocked by the policy's key restrictions.
    KeyRestricted,
    /// 900050: the application (or the request's `acr_values`) requires an authentication
    /// strength the user has no way to meet, or the way they signed in does not meet.
    StrengthNotMet,
    /// 50105: the application requires assignment and the user is not assigned to it,
    /// directly or through a group.
    NotAssigned,
}

impl SignInError {
    pub fn code(self) -> u32 {
        match self {
            SignInError::InvalidCredential => 50126,
            SignInError::UserDisabled => 50057,
            SignInError::TooManyAttempts => 50053,
            SignInError::PassExpired => 900_001,
            SignInError::PassNotYetValid => 900_002,
            SignInError::PassAlreadyUsed => 900_003,
            SignInError::MethodNotAllowed => 900_010,
            SignInError::ApprovalDenied => 500_121,
            SignInError::ApprovalReported => 900_020,
            SignInError::WrongNumber => 900_021,
            SignInError::ApprovalTimedOut => 900_022,
            SignInError::Throttled => 900_030,
            SignInError::PasskeyRefused => 900_040,
            SignInError::KeyRestricted => 900_041,
            SignInError::StrengthNotMet => 900_050,
            SignInError::NotAssigned => 50105,
        }
    }

    pub fn failure_reason(self) -> &'static str {
        match self {
            SignInError::InvalidCredential => "Invalid user name, pass or password.",
            SignInError::UserDisabled => "The user account is disabled.",
            SignInError::TooManyAttempts => "Too many wrong attempts; the sign-in was ended.",
            SignInError::PassExpired => "The Temporary Access Pass has expired.",
            SignInError::PassNotYetValid => "The Temporary Access Pass is not valid yet.",
            SignInError::PassAlreadyUsed => "The one-time Temporary Access Pass was already used.",
            SignInError::MethodNotAllowed => {
                "The authentication methods policy does not allow this method for the user."
            }
            SignInError::ApprovalDenied => "MFA denied; user declined the authentication",
            SignInError::ApprovalReported => "MFA denied; Phone App Reported Fraud",
            SignInError::WrongNumber => "MFA denied; the number entered did not match",
            SignInError::ApprovalTimedOut => "user did not respond to mobile app notification",
            SignInError::Throttled => "authentication throttled",
            SignInError::PasskeyRefused => "The passkey or security key's answer was refused.",
            SignInError::KeyRestricted => "blocked by key restrictions",
            SignInError::StrengthNotMet => {
                "The sign-in does not meet the authentication strength the application requires."
            }
            SignInError::NotAssigned => {
                "The signed in user is not assigned to a role for the application."
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignInStatus {
    /// 0 for success.
    pub error_code: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// Graph's `additionalDetails`: something worth knowing that is not a failure, such as a
    /// notification that was not pushed (`HeldBack::log_detail`). Absent when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_details: Option<String>,
}

impl SignInStatus {
    pub fn success() -> SignInStatus {
        SignInStatus {
            error_code: 0,
            failure_reason: None,
            additional_details: None,
        }
    }

    /// Marks the status failed with `error`, keeping any additional details.
    pub fn fail(&mut self, error: SignInError) {
        self.error_code = error.code();
        self.failure_reason = Some(error.failure_reason().into());
    }
}

/// One step of a sign-in (Graph's `authenticationDetails`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationStep {
    pub authentication_method: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authentication_method_detail: Option<String>,
    pub authentication_step_date_time: String,
    pub authentication_step_result_detail: String,
    pub succeeded: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignInRecord {
    pub id: String,
    pub created_date_time: Timestamp,
    /// `None` when the name typed matches no user.
    pub user_id: Option<UserId>,
    /// The UPN, or the name typed when it matches no user.
    pub user_principal_name: String,
    pub user_display_name: Option<String>,
    pub app_id: Option<ClientId>,
    pub app_display_name: Option<String>,
    pub ip_address: Option<String>,
    pub location: Option<Location>,
    /// The method's id (`temporaryAccessPass`, `password`, …), for filtering.
    pub authentication_method: String,
    pub status: SignInStatus,
    pub authentication_details: Vec<AuthenticationStep>,
}

impl SignInRecord {
    pub fn succeeded(&self) -> bool {
        self.status.error_code == 0
    }
}

/// Where a sign-in comes from, as the web edge saw it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SignInContext {
    pub ip_address: Option<std::net::IpAddr>,
    pub location: Option<Location>,
    /// The browser's known-browser id, once the edge has checked its cookie's MAC.
    pub browser: Option<crate::ids::BrowserId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StatusFilter {
    Success,
    Failure,
}

/// Filters and paging for both logs. Newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogQuery {
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// A user id or UPN (sign-ins), or the actor or target (audit).
    pub user: Option<String>,
    pub app: Option<String>,
    pub status: Option<StatusFilter>,
    pub method: Option<String>,
    /// Audit only: the category.
    pub category: Option<String>,
    pub limit: u32,
    pub skip: u32,
}

impl LogQuery {
    pub const MAX_LIMIT: u32 = 1000;

    /// Clamps the page size to 1..=1000 (default 100).
    pub fn normalised(mut self) -> Self {
        self.limit = match self.limit {
            0 => 100,
            n => n.min(Self::MAX_LIMIT),
        };
        self
    }
}

/// Who made an administrative change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Actor(pub String);

impl Actor {
    pub fn api_token(name: &str) -> Actor {
        Actor(format!("api-token:{name}"))
    }

    pub fn user(upn: &str) -> Actor {
        Actor(format!("user:{upn}"))
    }

    pub fn system() -> Actor {
        Actor("system".into())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuditCategory {
    UserManagement,
    GroupManagement,
    ApplicationManagement,
    Policy,
    KeyManagement,
    /// Users adding and removing their own sign-in methods.
    UserAuthenticationMethods,
    /// User risk: reports of suspicious activity and their dismissal.
    IdentityProtection,
}

impl AuditCategory {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditCategory::UserManagement => "UserManagement",
            AuditCategory::GroupManagement => "GroupManagement",
            AuditCategory::ApplicationManagement => "ApplicationManagement",
            AuditCategory::Policy => "Policy",
            AuditCategory::KeyManagement => "KeyManagement",
            AuditCategory::UserAuthenticationMethods => "UserAuthenticationMethods",
            AuditCategory::IdentityProtection => "IdentityProtection",
        }
    }
}

/// One administrative change: who, when, what, and the state before and after. Secrets (passes,
/// client secrets, password hashes) never appear in `before` or `after`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    pub id: String,
    pub activity_date_time: Timestamp,
    pub actor: Actor,
    pub category: AuditCategory,
    pub activity: String,
    pub target: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

impl AuditEvent {
    pub fn new(
        at: Timestamp,
        actor: &Actor,
        category: AuditCategory,
        activity: &str,
        target: impl Into<String>,
        before: Option<Value>,
        after: Option<Value>,
    ) -> AuditEvent {
        AuditEvent {
            id: crate::secret::random_hex(16),
            activity_date_time: at,
            actor: actor.clone(),
            category,
            activity: activity.to_string(),
            target: target.into(),
            before,
            after,
        }
    }
}
