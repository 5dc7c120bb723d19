//! Tokens: signing keys, authorization codes, the token endpoint's grants, userinfo and
//! RP-initiated logout. What OpenID Connect asks of an identity provider, once a user is
//! signed in.

mod authorization;
mod backchannel;
mod end_session;
mod grants;
mod revocation;

use std::sync::{Arc, RwLock};

use serde::Serialize;

pub use authorization::error_redirect;
pub use backchannel::{
    BACKCHANNEL_LOGOUT_EVENT, BackchannelLogouts, LOGOUT_TOKEN_LIFETIME_SECONDS, LOGOUT_TOKEN_TYPE,
    LogoutDelivery, LogoutSender, NoLogoutSender,
};
pub use end_session::EndSession;
pub use revocation::{Introspection, TokenTypeHint};

use super::applications::Applications;
use super::directory::Directory;
use super::settings::Settings;
use super::shared::AuditTrail;
use crate::application::SigningAlg;
use crate::clock::{Clock, Timestamp};
use crate::error::{DomainError, StoreError};
use crate::ids::SessionId;
use crate::keys::{Keyring, SigningKey};
use crate::log::{Actor, AuditCategory};
use crate::oidc::OAuthErrorCode;
use crate::random::RandomSource;
use crate::secret::Secret;
use crate::store::GrantStore;

const KEYRING_CACHE_SECONDS: i64 = 30;

/// How a client authenticated at the token endpoint.
#[derive(Debug, Clone, Default)]
pub struct ClientCredentials {
    pub client_id: Option<String>,
    pub secret: Option<Secret>,
}

/// An OAuth error for the token and userinfo endpoints (RFC 6749 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub error: OAuthErrorCode,
    pub description: String,
}

impl OAuthError {
    pub(crate) fn new(error: OAuthErrorCode, description: impl Into<String>) -> Self {
        OAuthError {
            error,
            description: description.into(),
        }
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        OAuthError::new(OAuthErrorCode::ServerError, format!("storage: {e}"))
    }
}

impl From<DomainError> for OAuthError {
    fn from(e: DomainError) -> Self {
        OAuthError::new(OAuthErrorCode::ServerError, e.to_string())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub id_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub scope: String,
}

pub struct Tokens {
    pub(crate) store: Arc<dyn GrantStore>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) random: Arc<dyn RandomSource>,
    pub(crate) settings: Arc<Settings>,
    pub(crate) audit: Arc<AuditTrail>,
    pub(crate) applications: Arc<Applications>,
    pub(crate) directory: Arc<Directory>,
    pub(crate) keyring: RwLock<Option<(Timestamp, Arc<Keyring>)>>,
    pub(crate) logouts: Arc<BackchannelLogouts>,
}

impl Tokens {
    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Makes sure an RS256 and an ES256 key exist (first start).
    pub async fn ensure_signing_keys(&self) -> Result<(), DomainError> {
        let keys = self.store.signing_keys().await?;
        for alg in SigningAlg::ALL {
            if !keys.iter().any(|k| k.alg == alg && k.retired_at.is_none()) {
                self.store
                    .put_signing_key(&SigningKey::generate(alg, self.now())?)
                    .await?;
            }
        }
        self.invalidate_keyring();
        Ok(())
    }

    /// New keys for every algorithm; the old ones stay published until their tokens expire.
    pub async fn rotate_signing_keys(&self, actor: &Actor) -> Result<Vec<SigningKey>, DomainError> {
        let now = self.now();
        let mut fresh = Vec::new();
        for alg in SigningAlg::ALL {
            let key = SigningKey::generate(alg, now)?;
            self.store.put_signing_key(&key).await?;
            fresh.push(key);
        }
        let keep: Vec<_> = fresh.iter().map(|k| k.kid.clone()).collect();
        self.store.retire_signing_keys_except(&keep, now).await?;
        self.invalidate_keyring();
        let after = serde_json::json!({"newKeys": keep});
        self.audit
            .record(
                actor,
                AuditCategory::KeyManagement,
                "Rotate signing keys",
                "signing keys",
                None,
                Some(after),
            )
            .await?;
        Ok(fresh)
    }

    fn invalidate_keyring(&self) {
        if let Ok(mut cached) = self.keyring.write() {
            *cached = None;
        }
    }

    /// The current keyring, reloaded from the store at most every 30 seconds so that a
    /// rotation by another process is picked up.
    pub async fn keyring(&self) -> Result<Arc<Keyring>, DomainError> {
        let now = self.now();
        if let Ok(cached) = self.keyring.read()
            && let Some((loaded, ring)) = cached.as_ref()
            && now.0 - loaded.0 < KEYRING_CACHE_SECONDS
        {
            return Ok(ring.clone());
        }
        let keys = self.store.signing_keys().await?;
        let ring = Arc::new(Keyring::load(&keys, now, self.max_signed_token_lifetime())?);
        if let Ok(mut cached) = self.keyring.write() {
            *cached = Some((now, ring.clone()));
        }
        Ok(ring)
    }

    fn max_signed_token_lifetime(&self) -> i64 {
        self.settings.id_token_lifetime_seconds + KEYRING_CACHE_SECONDS
    }

    /// Where back-channel logout tokens go (the server delivers them over HTTP; by default
    /// nowhere).
    pub fn set_logout_sender(&self, sender: Arc<dyn LogoutSender>) {
        self.logouts.set_sender(sender);
    }

    /// Revokes the tokens applications got through a browser session (it ended).
    pub(crate) async fn revoke_session_grants(
        &self,
        session: &SessionId,
    ) -> Result<(), StoreError> {
        let ended = self.logouts.of_session(session).await;
        self.store.revoke_session_grants(session).await?;
        self.logouts.notify(&ended).await;
        Ok(())
    }

    /// Moves a replaced session's grants to the session that replaced it.
    pub(crate) async fn move_session_grants(
        &self,
        from: &SessionId,
        to: &SessionId,
    ) -> Result<(), StoreError> {
        self.store.move_session_grants(from, to).await
    }
}
