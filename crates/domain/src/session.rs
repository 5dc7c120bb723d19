//! Browser sessions at the identity provider, and how the user proved who they are.

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::ids::{SessionId, UserId};
use crate::secret::TokenHash;

/// A way a user authenticated. Each maps to RFC 8176 `amr` values and an `acr`; the mapping is
/// documented in `docs/oidc.md` and must stay in step with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// An administrator-issued, time-limited passcode.
    TemporaryAccessPass,
    /// The legacy password (single factor).
    Password,
    /// Passwordless phone sign-in: the device's PIN-protected key approved a number match.
    PhoneSignIn,
    /// A password, then an approved number-matching push to the authenticator app.
    PasswordAndPush,
}

impl AuthMethod {
    pub fn amr(self) -> &'static [&'static str] {
        match self {
            AuthMethod::TemporaryAccessPass => &["otp"],
            AuthMethod::Password => &["pwd"],
            // Software-secured key, unlocked by a PIN: two factors.
            AuthMethod::PhoneSignIn => &["swk", "pin", "mfa"],
            AuthMethod::PasswordAndPush => &["pwd", "swk", "mfa"],
        }
    }

    /// Authentication context class: Entra counts a Temporary Access Pass as multi-factor
    /// (an administrator verified the person before issuing it); a password alone is not.
    pub fn acr(self) -> &'static str {
        match self {
            AuthMethod::TemporaryAccessPass => ACR_MFA,
            AuthMethod::Password => ACR_SINGLE_FACTOR,
            AuthMethod::PhoneSignIn => ACR_PASSWORDLESS_MFA,
            AuthMethod::PasswordAndPush => ACR_MFA,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            AuthMethod::TemporaryAccessPass => "Temporary Access Pass",
            AuthMethod::Password => "Password",
            AuthMethod::PhoneSignIn => "Authenticator app (phone sign-in)",
            AuthMethod::PasswordAndPush => "Password and authenticator app",
        }
    }
}

pub const ACR_SINGLE_FACTOR: &str = "urn:latchkey:acr:sfa";
pub const ACR_MFA: &str = "urn:latchkey:acr:mfa";
/// Multi-factor without any password (Entra's "Passwordless MFA" strength).
pub const ACR_PASSWORDLESS_MFA: &str = "urn:latchkey:acr:passwordless-mfa";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: SessionId,
    /// SHA-256 of the cookie value; the cookie itself is never stored.
    pub token_hash: TokenHash,
    pub user_id: UserId,
    pub method: AuthMethod,
    pub auth_time: Timestamp,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub revoked: bool,
}

impl Session {
    pub fn is_live(&self, now: Timestamp) -> bool {
        !self.revoked && now < self.expires_at
    }
}
