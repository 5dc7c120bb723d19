//! Passkeys and security keys on the security-info page: registering one (a WebAuthn
//! registration ceremony), listing, renaming and removing them. Signing in with one is the
//! sign-in context's (`sign_in::passkey`), which asks this service for the ceremony rules.

use std::sync::Arc;

use super::access::MethodAccess;
use super::directory::Directory;
use super::settings::Settings;
use super::shared::AuditTrail;
use crate::clock::Clock;
use crate::error::DomainError;
use crate::ids::UserId;
use crate::passkey::{CeremonyId, PasskeyChallenge, PasskeyError, PasskeyId, RegisteredPasskey};
use crate::random::RandomSource;
use crate::session::Session;
use crate::store::PasskeyStore;
use crate::user::User;

pub struct Passkeys {
    pub(crate) store: Arc<dyn PasskeyStore>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) random: Arc<dyn RandomSource>,
    pub(crate) settings: Arc<Settings>,
    pub(crate) audit: Arc<AuditTrail>,
    pub(crate) access: Arc<MethodAccess>,
    pub(crate) directory: Arc<Directory>,
}

impl Passkeys {
    pub async fn begin_registration(
        &self,
        _session: &Session,
        _user: &User,
    ) -> Result<PasskeyChallenge, PasskeyError> {
        Err(PasskeyError::Store)
    }

    /// `response` is the JSON text of the browser's `credential.toJSON()`.
    pub async fn finish_registration(
        &self,
        _session: &Session,
        _user: &User,
        _ceremony: &CeremonyId,
        _response: &str,
        _name: Option<&str>,
    ) -> Result<RegisteredPasskey, PasskeyError> {
        Err(PasskeyError::Store)
    }

    pub async fn list(&self, user: &UserId) -> Result<Vec<RegisteredPasskey>, DomainError> {
        Ok(self.store.passkeys_of_user(user).await?)
    }

    pub async fn rename(
        &self,
        _user: &UserId,
        _id: &PasskeyId,
        _name: &str,
    ) -> Result<RegisteredPasskey, PasskeyError> {
        Err(PasskeyError::Store)
    }

    pub async fn remove(&self, _user: &UserId, _id: &PasskeyId) -> Result<(), PasskeyError> {
        Err(PasskeyError::Store)
    }

    /// Whether the policy lets this user register one now (for showing "Security key or
    /// passkey" in "Add method").
    pub async fn may_register(&self, _user: &User) -> Result<bool, DomainError> {
        Ok(false)
    }
}
