//! Tokens: signing keys, authorization codes, the token endpoint's grants, userinfo and
//! RP-initiated logout. What OpenID Connect asks of an identity provider, once a user is
//! signed in.

mod authorization;
mod backchannel;
mod device;
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
pub use device::{DeviceAuthorizationResponse, DeviceConfirmation};
pub use end_session::EndSession;
pub use revocation::{Introspection, TokenTypeHint};

use super::applications::Applications;
use super::directory::Directory;
use super::settings::Settings;
use super::shared::AuditTrail;
use super::shared::{ServerKeys, Throttles};
use crate::application::SigningAlg;
use crate::clock::{Clock, Timestamp};
use crate::error::{DomainError, StoreError};
use crate::ids::SessionId;
use crate::keys::{Keyring, SigningKey};
use crate::log::{Actor, AuditCategory};
use crate::oidc::OAuthErrorCode;
use crate::random::RandomSource;
use crate::secret::Secret;
use crate::store::{DeviceAuthorizationStore, GrantStore};

/// How long an instance keeps its keyring before reading the keys again (so that a rotation
/// by another instance is picked up).
pub const KEYRING_CACHE_SECONDS: i64 = 30;

/// How long clients may cache `/jwks` (its `Cache-Control: max-age`).
pub const JWKS_MAX_AGE_SECONDS: i64 = 60;

/// How long a rotated-in key is published before it signs: a JWKS an instance served from a
/// keyring read just before the rotation is at most `KEYRING_CACHE_SECONDS` old, and a client
/// keeps it at most `JWKS_MAX_AGE_SECONDS`; 30 more seconds cover clock skew between
/// instances and a shared cache's slack. After this, every client that honours the JWKS's
/// max-age holds the new key before it meets a token signed with it.
pub const KEY_PUBLICATION_LEAD_SECONDS: i64 = JWKS_MAX_AGE_SECONDS + KEYRING_CACHE_SECONDS + 30;

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
    pub(crate) device_authorizations: Arc<dyn DeviceAuthorizationStore>,
    pub(crate) throttles: Arc<Throttles>,
    pub(crate) keys: Arc<ServerKeys>,
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

    /// New keys for every algorithm. They are published at once but start signing only
    /// `KEY_PUBLICATION_LEAD_SECONDS` later, when the current keys stop signing; the current
    /// keys stay published until the tokens they signed have expired. Of two rotations at
    /// once (two instances, or the schedule and an administrator), one wins and the other
    /// finds the winner's keys and returns them.
    pub async fn rotate_signing_keys(&self, actor: &Actor) -> Result<Vec<SigningKey>, DomainError> {
        match self.rotate_if(actor, |_| true).await? {
            Some(fresh) => Ok(fresh),
            None => {
                // Another rotation got there first: its keys are the ones that will sign.
                let keys = self.store.signing_keys().await?;
                Ok(keys
                    .into_iter()
                    .filter(|k| k.retired_at.is_none())
                    .collect())
            }
        }
    }

    /// The configured rotation period in seconds (0: scheduled rotation is off).
    pub fn scheduled_rotation_seconds(&self) -> i64 {
        self.settings.signing_key_rotation_seconds
    }

    /// Scheduled rotation: rotates when the newest key started signing at least
    /// `every_seconds` ago. Safe to call from every instance: only one rotation happens.
    /// Returns the new keys when this call rotated.
    pub async fn rotate_signing_keys_if_due(
        &self,
        every_seconds: i64,
    ) -> Result<Option<Vec<SigningKey>>, DomainError> {
        let now = self.now();
        self.rotate_if(&Actor::system(), |current| {
            current
                .iter()
                .map(|k| k.created_at)
                .max()
                .is_none_or(|newest| now.0 - newest.0 >= every_seconds)
        })
        .await
    }

    /// Rotates when `due` says so about the keys that sign now (or will next), as one
    /// compare-and-swap in the store. `None` when not due or another rotation won.
    async fn rotate_if(
        &self,
        actor: &Actor,
        due: impl FnOnce(&[SigningKey]) -> bool,
    ) -> Result<Option<Vec<SigningKey>>, DomainError> {
        let now = self.now();
        let current: Vec<SigningKey> = self
            .store
            .signing_keys()
            .await?
            .into_iter()
            .filter(|k| k.retired_at.is_none())
            .collect();
        if !due(&current) {
            return Ok(None);
        }
        // The new keys sign after the lead, and never before the current ones started (a
        // second rotation within the lead does not move the handover back).
        let handover = current
            .iter()
            .map(|k| k.created_at)
            .chain([now])
            .max()
            .unwrap_or(now)
            .plus_seconds(KEY_PUBLICATION_LEAD_SECONDS);
        let mut fresh = Vec::new();
        for alg in SigningAlg::ALL {
            fresh.push(SigningKey::generate(alg, handover)?);
        }
        let expected: Vec<_> = current.iter().map(|k| k.kid.clone()).collect();
        let rotated = self
            .store
            .rotate_signing_keys(&expected, &fresh, handover)
            .await?;
        self.invalidate_keyring();
        if !rotated {
            return Ok(None);
        }
        let new_keys: Vec<_> = fresh.iter().map(|k| k.kid.clone()).collect();
        let after = serde_json::json!({"newKeys": new_keys, "signingFrom": handover.0});
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
        Ok(Some(fresh))
    }

    fn invalidate_keyring(&self) {
        if let Ok(mut cached) = self.keyring.write() {
            *cached = None;
        }
    }

    /// The current keyring, reloaded from the store at most every `KEYRING_CACHE_SECONDS` so
    /// that a rotation by another process is picked up. Which key signs is decided at each
    /// use (`Keyring::active` with the time), so a handover happens on time even within the
    /// cache's lifetime.
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

    /// How long a retired key stays published: the lifetime of the last ID token it signed
    /// (every instance stops signing with it exactly at its retirement, which each has read
    /// well before), plus a keyring reload as margin.
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
