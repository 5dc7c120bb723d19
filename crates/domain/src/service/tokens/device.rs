//! The device authorization grant (RFC 8628): a device asks for codes, a signed-in user
//! confirms (or denies) the user code in a browser, the device polls the token endpoint.
//!
//! Any registered application may use it, public clients with their `client_id` alone, as
//! Entra allows any public client to. The confirmation page names the application, which is
//! the user's defence against a code someone else started (device-code phishing).
//!
//! The grant is tied to the browser session that approved it, as grants from `/authorize`
//! are: signing out of that browser (or "No, it's not me", or an administrator revoking the
//! user's sessions) revokes the device's tokens too.

use serde::Serialize;

use super::{ClientCredentials, OAuthError, TokenResponse, Tokens};
use crate::device_authorization::{
    DeviceAuthorization, DeviceAuthorizationState, SLOW_DOWN_SECONDS, display_user_code,
    new_user_code, normalise_user_code,
};
use crate::error::{DomainError, StoreError};
use crate::ids::GrantId;
use crate::log::SignInContext;
use crate::oidc::{Grant, OAuthErrorCode};
use crate::secret::TokenHash;
use crate::service::messages::throttled;
use crate::session::Session;
use crate::user::User;

/// The device authorization endpoint's answer (RFC 8628 §3.2).
#[derive(Debug, Clone, Serialize)]
pub struct DeviceAuthorizationResponse {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: i64,
    pub interval: i64,
}

/// What the confirmation page shows for a user code: who asks, and the code.
#[derive(Debug, Clone)]
pub struct DeviceConfirmation {
    /// The code as shown, `BCDF-GHJK`.
    pub user_code: String,
    /// The application's display name.
    pub application: String,
    pub scopes: Vec<String>,
}

/// The path of the verification page, under the issuer.
pub const VERIFICATION_PATH: &str = "/device";

const MALFORMED: &str = "That isn't a code we give out. Codes are 8 letters, like BCDF-GHJK: check the code your device shows and type it again.";
const UNKNOWN: &str =
    "We didn't find that code. Check the code your device shows and type it again.";
const EXPIRED: &str = "That code has expired. Start again on your device to get a new code.";
const ALREADY_USED: &str = "That code was already used. If you didn't use it yourself, start again on your device to get a new code.";

impl Tokens {
    /// `POST /device_authorization`: a device asks to be signed in. The client authenticates
    /// as at the token endpoint (a public client with its `client_id` alone).
    pub async fn start_device_authorization(
        &self,
        credentials: &ClientCredentials,
        scope: Option<&str>,
    ) -> Result<DeviceAuthorizationResponse, OAuthError> {
        let app = self.authenticate_client(credentials).await?;
        let scope = scope.unwrap_or_default();
        if scope.len() > 1024 {
            return Err(OAuthError::new(
                OAuthErrorCode::InvalidScope,
                "the scope is too long",
            ));
        }
        let scopes: Vec<String> = scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if !scopes.iter().any(|s| s == "openid") {
            return Err(OAuthError::new(
                OAuthErrorCode::InvalidScope,
                "the openid scope is required",
            ));
        }
        if scopes.len() > 20 {
            return Err(OAuthError::new(
                OAuthErrorCode::InvalidScope,
                "too many scopes",
            ));
        }
        let now = self.now();
        let lifetime = self.settings.device_code_lifetime_seconds;
        let interval = self.settings.device_poll_interval_seconds;
        // A new user code collides with a stored one about once in 2^34 tries per stored
        // code; a few attempts are plenty.
        for _ in 0..5 {
            let device_code = self.random.token();
            let user_code = new_user_code(self.random.as_ref());
            let authorization = DeviceAuthorization {
                device_code_hash: TokenHash::of(device_code.expose()),
                user_code_hash: self.keys.user_code_hash(&user_code).await?,
                client_id: app.client_id.clone(),
                scopes: scopes.clone(),
                created_at: now,
                expires_at: now.plus_seconds(lifetime),
                interval_seconds: interval,
                last_polled_at: None,
                state: DeviceAuthorizationState::Pending,
            };
            match self
                .device_authorizations
                .put_device_authorization(&authorization)
                .await
            {
                Ok(()) => {
                    let shown = display_user_code(&user_code);
                    let verification_uri = format!("{}{VERIFICATION_PATH}", self.settings.issuer);
                    return Ok(DeviceAuthorizationResponse {
                        device_code: device_code.expose().to_string(),
                        verification_uri_complete: format!("{verification_uri}?user_code={shown}"),
                        verification_uri,
                        user_code: shown,
                        expires_in: lifetime,
                        interval,
                    });
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(OAuthError::new(
            OAuthErrorCode::ServerError,
            "no free user code; try again",
        ))
    }

    /// The live, undecided authorization a typed user code names. Codes that match nothing
    /// count against the guessing throttles (per user, per address, for everyone), which are
    /// checked before the code is looked up at all.
    async fn pending_device_authorization(
        &self,
        typed: &str,
        user: &User,
        context: &SignInContext,
    ) -> Result<(DeviceAuthorization, String), DomainError> {
        let code =
            normalise_user_code(typed).ok_or_else(|| DomainError::Rejected(MALFORMED.into()))?;
        if !self.throttles.user_code_allowed(&user.id, context).await? {
            let wait = self.throttles.limits.user_code_wait_seconds(self.now().0);
            return Err(DomainError::Rejected(throttled(wait)));
        }
        let hash = self.keys.user_code_hash(&code).await?;
        let Some(found) = self
            .device_authorizations
            .device_authorization_by_user_code(&hash)
            .await?
        else {
            self.throttles
                .count_wrong_user_code(&user.id, context)
                .await?;
            return Err(DomainError::Rejected(UNKNOWN.into()));
        };
        if found.is_expired(self.now()) {
            return Err(DomainError::Rejected(EXPIRED.into()));
        }
        if found.state != DeviceAuthorizationState::Pending {
            return Err(DomainError::Rejected(ALREADY_USED.into()));
        }
        Ok((found, display_user_code(&code)))
    }

    async fn confirmation_of(
        &self,
        authorization: &DeviceAuthorization,
        user_code: String,
    ) -> Result<(DeviceConfirmation, crate::application::Application), DomainError> {
        let app = self
            .applications
            .cached(&authorization.client_id)
            .await?
            .ok_or_else(|| {
                DomainError::Rejected(
                    "The application that asked for this code is no longer registered.".into(),
                )
            })?;
        Ok((
            DeviceConfirmation {
                user_code,
                application: app.display_name.clone(),
                scopes: authorization.scopes.clone(),
            },
            app,
        ))
    }

    /// What the confirmation page shows for a typed user code.
    pub async fn device_confirmation(
        &self,
        typed: &str,
        user: &User,
        context: &SignInContext,
    ) -> Result<DeviceConfirmation, DomainError> {
        let (authorization, shown) = self
            .pending_device_authorization(typed, user, context)
            .await?;
        Ok(self.confirmation_of(&authorization, shown).await?.0)
    }

    /// The user approved the device on the confirmation page: the one place where a device
    /// authorization becomes a grant for a user. Every check on whether this user may have
    /// tokens for this application (its required strength today; application assignment when
    /// it comes) belongs here.
    pub async fn approve_device_authorization(
        &self,
        typed: &str,
        session: &Session,
        user: &User,
        context: &SignInContext,
    ) -> Result<DeviceConfirmation, DomainError> {
        let (authorization, shown) = self
            .pending_device_authorization(typed, user, context)
            .await?;
        let (confirmation, app) = self.confirmation_of(&authorization, shown).await?;
        if let Some(strength) = app.required_strength
            && !strength.allows(session.method)
        {
            return Err(DomainError::Rejected(format!(
                "{} Sign out, sign in again that way, and type the code again.",
                crate::service::sign_in::step_up_message_for(
                    Some(&app.display_name),
                    strength,
                    session.method,
                )
            )));
        }
        // An application that requires assignment refuses an unassigned user here as at
        // `/authorize`: the refusal is logged, and the device's next poll gets `access_denied`.
        if let Err(refused) = self
            .applications
            .ensure_assigned(&app, user, "deviceCode", context)
            .await
        {
            if matches!(refused, DomainError::NotAssigned(_)) {
                self.device_authorizations
                    .decide_device_authorization(&authorization.user_code_hash, None)
                    .await?;
            }
            return Err(refused);
        }
        let grant = Grant {
            id: GrantId::generate(self.random.as_ref()),
            user_id: user.id.clone(),
            client_id: authorization.client_id.clone(),
            session_id: session.id.clone(),
            scopes: authorization.scopes.clone(),
            nonce: None,
            auth_time: session.auth_time,
            method: session.method,
            created_at: self.now(),
            revoked: false,
        };
        self.store.create_grant(&grant, None).await?;
        if !self
            .device_authorizations
            .decide_device_authorization(&authorization.user_code_hash, Some(&grant.id))
            .await?
        {
            // Another tab decided first: this grant must never be used.
            self.store.revoke_grant(&grant.id).await?;
            return Err(DomainError::Rejected(ALREADY_USED.into()));
        }
        Ok(confirmation)
    }

    /// The user denied the device: its next poll gets `access_denied`.
    pub async fn deny_device_authorization(
        &self,
        typed: &str,
        user: &User,
        context: &SignInContext,
    ) -> Result<DeviceConfirmation, DomainError> {
        let (authorization, shown) = self
            .pending_device_authorization(typed, user, context)
            .await?;
        let (confirmation, _) = self.confirmation_of(&authorization, shown).await?;
        if !self
            .device_authorizations
            .decide_device_authorization(&authorization.user_code_hash, None)
            .await?
        {
            return Err(DomainError::Rejected(ALREADY_USED.into()));
        }
        Ok(confirmation)
    }

    /// The device-code grant at the token endpoint (RFC 8628 §3.4, §3.5). Who presents the
    /// code is checked before anything about it is recorded: another client can neither spend
    /// it nor slow its device down.
    pub async fn exchange_device_code(
        &self,
        credentials: &ClientCredentials,
        device_code: &str,
    ) -> Result<TokenResponse, OAuthError> {
        let app = self.authenticate_client(credentials).await?;
        let bad_grant = |why: &str| OAuthError::new(OAuthErrorCode::InvalidGrant, why);
        if device_code.is_empty() || device_code.len() > 128 {
            return Err(bad_grant("the device code is not valid"));
        }
        let hash = TokenHash::of(device_code);
        let found = self
            .device_authorizations
            .device_authorization(&hash)
            .await?
            .ok_or_else(|| bad_grant("the device code is not valid"))?;
        if found.client_id != app.client_id {
            return Err(bad_grant("the device code was issued to another client"));
        }
        let now = self.now();
        if found.is_expired(now) {
            return Err(OAuthError::new(
                OAuthErrorCode::ExpiredToken,
                "the device code has expired; start again",
            ));
        }
        let grant_id = match &found.state {
            DeviceAuthorizationState::Redeemed { .. } => {
                return Err(bad_grant("the device code was already used"));
            }
            DeviceAuthorizationState::Denied => {
                return Err(OAuthError::new(
                    OAuthErrorCode::AccessDenied,
                    "the user denied the request",
                ));
            }
            DeviceAuthorizationState::Pending => None,
            DeviceAuthorizationState::Approved { grant_id } => Some(grant_id.clone()),
        };
        if found.polled_too_soon(now) {
            let interval = found.interval_seconds + SLOW_DOWN_SECONDS;
            self.device_authorizations
                .record_device_poll(&hash, now, interval)
                .await?;
            return Err(OAuthError::new(
                OAuthErrorCode::SlowDown,
                format!("poll at most every {interval} seconds"),
            ));
        }
        self.device_authorizations
            .record_device_poll(&hash, now, found.interval_seconds)
            .await?;
        let Some(grant_id) = grant_id else {
            return Err(OAuthError::new(
                OAuthErrorCode::AuthorizationPending,
                "the user has not confirmed the code yet",
            ));
        };
        if !self
            .device_authorizations
            .redeem_device_authorization(&hash)
            .await?
        {
            return Err(bad_grant("the device code was already used"));
        }
        let (grant, user) = self
            .live_grant(&grant_id)
            .await?
            .ok_or_else(|| bad_grant("the grant was revoked"))?;
        self.issue_tokens(&app, &grant, &user, false).await
    }
}
