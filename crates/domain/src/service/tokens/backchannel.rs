//! OpenID Connect Back-Channel Logout 1.0: when a browser session ends (sign-out, an
//! administrator revoking sessions, the user disabled, a "No, it's not me" report), each
//! application that got a code or tokens in it and registered a `backchannel_logout_uri` is
//! sent a logout token. Sending is a port ([`LogoutSender`]) so that delivery happens off the
//! request path; nothing here ever fails the sign-out.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, RwLock};

use serde::Serialize;

use super::super::applications::Applications;
use super::super::settings::Settings;
use crate::clock::Clock;
use crate::error::DomainError;
use crate::ids::{ClientId, SessionId, UserId};
use crate::keys::Keyring;
use crate::oidc::Grant;
use crate::random::RandomSource;
use crate::store::GrantStore;

/// The `events` member that makes a JWT a logout token (§2.4).
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// The `typ` header of a logout token (§2.4, RFC 8417-style explicit typing).
pub const LOGOUT_TOKEN_TYPE: &str = "logout+jwt";
/// How long a logout token is valid: it is sent at once, so two minutes is plenty.
pub const LOGOUT_TOKEN_LIFETIME_SECONDS: i64 = 120;

/// One logout token to deliver. Its `Debug` never shows the token.
#[derive(Clone, PartialEq, Eq)]
pub struct LogoutDelivery {
    pub client_id: ClientId,
    pub uri: String,
    pub logout_token: String,
}

impl fmt::Debug for LogoutDelivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogoutDelivery")
            .field("client_id", &self.client_id)
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

/// Delivers logout tokens. Implementations must return at once (deliver in the background),
/// never follow redirects, and never log the token.
pub trait LogoutSender: Send + Sync {
    fn send(&self, delivery: LogoutDelivery);
}

/// Sends nothing (tests of the domain alone, tools).
pub struct NoLogoutSender;

impl LogoutSender for NoLogoutSender {
    fn send(&self, _delivery: LogoutDelivery) {}
}

#[derive(Debug, Serialize)]
struct LogoutTokenClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
    jti: String,
    sub: &'a str,
    sid: &'a str,
    events: serde_json::Value,
}

/// Builds and hands over logout tokens for the grants of ended sessions.
pub struct BackchannelLogouts {
    pub(crate) store: Arc<dyn GrantStore>,
    pub(crate) applications: Arc<Applications>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) random: Arc<dyn RandomSource>,
    pub(crate) settings: Arc<Settings>,
    pub(crate) sender: RwLock<Arc<dyn LogoutSender>>,
}

impl BackchannelLogouts {
    pub fn set_sender(&self, sender: Arc<dyn LogoutSender>) {
        if let Ok(mut current) = self.sender.write() {
            *current = sender;
        }
    }

    /// The grants a session's end will revoke, read before revoking them.
    pub(crate) async fn of_session(&self, session: &SessionId) -> Vec<Grant> {
        self.store
            .live_session_grants(session)
            .await
            .unwrap_or_default()
    }

    /// The grants revoking every session of a user will revoke, read before revoking them.
    pub(crate) async fn of_user(&self, user: &UserId) -> Vec<Grant> {
        self.store.live_user_grants(user).await.unwrap_or_default()
    }

    /// Sends one logout token per application and session among `grants` (now revoked).
    /// Failures are dropped: a logout notification never blocks or fails a sign-out.
    pub(crate) async fn notify(&self, grants: &[Grant]) {
        let targets: BTreeSet<(&str, &str, &str)> = grants
            .iter()
            .map(|g| {
                (
                    g.client_id.as_str(),
                    g.session_id.as_str(),
                    g.user_id.as_str(),
                )
            })
            .collect();
        if targets.is_empty() {
            return;
        }
        let Ok(ring) = self.keyring().await else {
            return;
        };
        let sender = match self.sender.read() {
            Ok(sender) => sender.clone(),
            Err(_) => return,
        };
        for (client, sid, sub) in targets {
            let Ok(Some(app)) = self
                .applications
                .cached(&ClientId::from_string(client))
                .await
            else {
                continue;
            };
            let Some(uri) = app.backchannel_logout_uri.clone() else {
                continue;
            };
            let now = self.clock.now();
            let Some(signer) = ring.active(app.id_token_alg, now) else {
                continue;
            };
            let claims = LogoutTokenClaims {
                iss: &self.settings.issuer,
                aud: client,
                iat: now.0,
                exp: now.0 + LOGOUT_TOKEN_LIFETIME_SECONDS,
                jti: self.random.hex(16),
                sub,
                sid,
                events: serde_json::json!({ BACKCHANNEL_LOGOUT_EVENT: {} }),
            };
            if let Ok(token) = signer.sign_typed_jwt(LOGOUT_TOKEN_TYPE, &claims) {
                sender.send(LogoutDelivery {
                    client_id: app.client_id.clone(),
                    uri,
                    logout_token: token,
                });
            }
        }
    }

    async fn keyring(&self) -> Result<Keyring, DomainError> {
        let keys = self.store.signing_keys().await?;
        Keyring::load(
            &keys,
            self.clock.now(),
            self.settings.id_token_lifetime_seconds,
        )
    }
}

/// What a relying party of this server that lives inside it (My Apps) remembers about the
/// logout tokens it received: which `jti`s it has seen, and which sessions (`sid`s) ended.
/// Kept in the store so that every instance agrees.
impl super::Tokens {
    /// Remembers a logout token's `jti` until `expires_at`; false if it was already seen (a
    /// replay). The mark is scoped to the receiving client.
    pub async fn remember_logout_token(
        &self,
        client: &ClientId,
        jti: &str,
        expires_at: crate::clock::Timestamp,
    ) -> Result<bool, DomainError> {
        let mark = format!("logout-jti:{}:{jti}", client.as_str());
        Ok(self.store.remember_once(&mark, expires_at).await?)
    }

    /// Records that `client`'s sessions of provider session `sid` ended, for as long as any
    /// session the client holds for it could still be alive.
    pub async fn end_client_session(
        &self,
        client: &ClientId,
        sid: &str,
    ) -> Result<(), DomainError> {
        let lifetime = self
            .settings
            .session_lifetime_seconds
            .max(self.settings.id_token_lifetime_seconds);
        let mark = format!("ended-sid:{}:{sid}", client.as_str());
        self.store
            .remember_once(&mark, self.clock.now().plus_seconds(lifetime))
            .await?;
        Ok(())
    }

    /// Whether `client` was told that provider session `sid` ended.
    pub async fn client_session_ended(
        &self,
        client: &ClientId,
        sid: &str,
    ) -> Result<bool, DomainError> {
        let mark = format!("ended-sid:{}:{sid}", client.as_str());
        Ok(self.store.is_remembered(&mark, self.clock.now()).await?)
    }
}
