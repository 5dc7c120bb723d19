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
    /// A WebAuthn credential bound to one device (a FIDO2 security key, or a platform
    /// authenticator such as Windows Hello), unlocked by the user (user verification).
    DeviceBoundPasskey,
    /// A WebAuthn credential the authenticator may copy to the user's other devices (the
    /// backup-eligible flag), unlocked by the user.
    SyncedPasskey,
    /// A client certificate (smart card or soft certificate) the authentication methods policy
    /// counts as multi-factor (docs/certificates.md).
    CertificateMultiFactor,
    /// A client certificate the policy counts as single-factor: on its own it meets no
    /// authentication strength.
    CertificateSingleFactor,
}

impl AuthMethod {
    pub fn amr(self) -> &'static [&'static str] {
        match self {
            AuthMethod::TemporaryAccessPass => &["otp"],
            AuthMethod::Password => &["pwd"],
            // Software-secured key, unlocked by a PIN: two factors.
            AuthMethod::PhoneSignIn => &["swk", "pin", "mfa"],
            AuthMethod::PasswordAndPush => &["pwd", "swk", "mfa"],
            // A hardware-secured key (RFC 8176 `hwk`) or one that may be synchronised (`swk`),
            // with user verification: the user unlocked it (`user`), two factors (`mfa`). The
            // UV flag does not say whether a PIN or a biometric unlocked it.
            AuthMethod::DeviceBoundPasskey => &["hwk", "user", "mfa"],
            AuthMethod::SyncedPasskey => &["swk", "user", "mfa"],
            // RFC 8176 `sc`: a smart card or certificate; `mfa` when the policy says the
            // certificate is multi-factor (a smart card and its PIN, say).
            AuthMethod::CertificateMultiFactor => &["sc", "mfa"],
            AuthMethod::CertificateSingleFactor => &["sc"],
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
            AuthMethod::DeviceBoundPasskey
            | AuthMethod::SyncedPasskey
            | AuthMethod::CertificateMultiFactor => ACR_PHISHING_RESISTANT_MFA,
            AuthMethod::CertificateSingleFactor => ACR_SINGLE_FACTOR,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            AuthMethod::TemporaryAccessPass => "Temporary Access Pass",
            AuthMethod::Password => "Password",
            AuthMethod::PhoneSignIn => "Authenticator app (phone sign-in)",
            AuthMethod::PasswordAndPush => "Password and authenticator app",
            AuthMethod::DeviceBoundPasskey => "Passkey or security key",
            AuthMethod::SyncedPasskey => "Synced passkey",
            AuthMethod::CertificateMultiFactor => "Certificate (multi-factor)",
            AuthMethod::CertificateSingleFactor => "Certificate (single-factor)",
        }
    }
}

pub const ACR_SINGLE_FACTOR: &str = "urn:latchkey:acr:sfa";
pub const ACR_MFA: &str = "urn:latchkey:acr:mfa";
/// Multi-factor without any password (Entra's "Passwordless MFA" strength).
pub const ACR_PASSWORDLESS_MFA: &str = "urn:latchkey:acr:passwordless-mfa";
/// A passkey or security key with user verification (Entra's "Phishing-resistant MFA").
pub const ACR_PHISHING_RESISTANT_MFA: &str = "urn:latchkey:acr:phishing-resistant-mfa";

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

/// How recently a user must have signed in, and how, to add an authentication method
/// (Entra asks for a fresh sign-in with a pass or multifactor authentication).
pub const FRESH_SIGN_IN_FOR_REGISTRATION_SECONDS: i64 = 10 * 60;

/// Whether a session may add an authentication method now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationFreshness {
    /// Signed in within the window with a pass or multifactor authentication.
    Fresh,
    /// Signed in too long ago: sign in again first.
    SignInAgain,
    /// Signed in recently but with a single factor (a password alone): sign in again with a
    /// pass or the authenticator app.
    StrongerMethodNeeded,
}

impl Session {
    pub fn is_live(&self, now: Timestamp) -> bool {
        !self.revoked && now < self.expires_at
    }

    /// Shortens the session so that it ends at `end` at the latest (for example when the pass
    /// it was started with ends).
    pub fn end_no_later_than(&mut self, end: Timestamp) {
        self.expires_at = self.expires_at.min(end);
    }

    pub fn registration_freshness(&self, now: Timestamp) -> RegistrationFreshness {
        let strong = match self.method {
            AuthMethod::TemporaryAccessPass
            | AuthMethod::PhoneSignIn
            | AuthMethod::PasswordAndPush
            | AuthMethod::DeviceBoundPasskey
            | AuthMethod::SyncedPasskey
            | AuthMethod::CertificateMultiFactor => true,
            AuthMethod::Password | AuthMethod::CertificateSingleFactor => false,
        };
        let age = now.0 - self.auth_time.0;
        if !(0..=FRESH_SIGN_IN_FOR_REGISTRATION_SECONDS).contains(&age) {
            RegistrationFreshness::SignInAgain
        } else if !strong {
            RegistrationFreshness::StrongerMethodNeeded
        } else {
            RegistrationFreshness::Fresh
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(method: AuthMethod, auth_time: i64) -> Session {
        Session {
            id: SessionId::from_string("s"),
            token_hash: TokenHash::of("t"),
            user_id: UserId::from_string("u"),
            method,
            auth_time: Timestamp(auth_time),
            created_at: Timestamp(auth_time),
            expires_at: Timestamp(auth_time + 12 * 3600),
            revoked: false,
        }
    }

    #[test]
    fn adding_a_method_needs_a_strong_sign_in_within_ten_minutes() {
        let now = 1_000_000;
        let fresh = |m, t| session(m, t).registration_freshness(Timestamp(now));
        assert_eq!(
            fresh(AuthMethod::TemporaryAccessPass, now - 600),
            RegistrationFreshness::Fresh
        );
        assert_eq!(
            fresh(AuthMethod::PhoneSignIn, now),
            RegistrationFreshness::Fresh
        );
        assert_eq!(
            fresh(AuthMethod::PasswordAndPush, now - 30),
            RegistrationFreshness::Fresh
        );
        assert_eq!(
            fresh(AuthMethod::TemporaryAccessPass, now - 601),
            RegistrationFreshness::SignInAgain
        );
        assert_eq!(
            fresh(AuthMethod::Password, now - 10),
            RegistrationFreshness::StrongerMethodNeeded
        );
        // A sign-in time in the future (a clock moved back) is not trusted as fresh.
        assert_eq!(
            fresh(AuthMethod::PhoneSignIn, now + 5),
            RegistrationFreshness::SignInAgain
        );
    }

    #[test]
    fn a_session_ends_no_later_than_it_is_told() {
        let mut s = session(AuthMethod::TemporaryAccessPass, 0);
        s.end_no_later_than(Timestamp(600));
        assert_eq!(s.expires_at, Timestamp(600));
        s.end_no_later_than(Timestamp(99_999));
        assert_eq!(s.expires_at, Timestamp(600));
    }
}
