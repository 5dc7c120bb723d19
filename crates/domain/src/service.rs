//! The use cases: what administrators, users and applications can ask of Latchkey.
//!
//! [`Latchkey`] holds the ports (store, clock, event bus) and the settings, built once in `main`
//! and passed to the web edge. Every decision lives here; handlers only translate.

mod admin_tokens;
mod anomaly;
mod app_cache;
mod governance;
mod hashing;
mod phone;
mod pin;
mod risk;
mod throttling;

pub use admin_tokens::{ADMINISTRATORS_GROUP_NAME, NewAdminToken};
use phone::ApprovalStart;
pub use phone::{
    ActivationProgress, DeviceApiError, DeviceErrorKind, MAX_DEVICES_PER_USER,
    MAX_OPEN_ACTIVATIONS_PER_USER, SignedDeviceRequest, WaitingForApproval,
};

use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use url::Url;

use latchkey_protocol::wire::ApprovalKind;

use crate::application::{Application, ClientKind, SigningAlg, validate_redirect_uri};
use crate::clock::{Clock, Timestamp};
use crate::credential::{
    DUMMY_PASSWORD_HASH, PassRequest, PassUnusable, TemporaryAccessPass, hash_password, new_pass,
    verify_password,
};
use crate::error::{DomainError, StoreError};
use crate::ids::{ClientId, GrantId, GroupId, SessionId, SignInId, UserId};
use crate::keys::{Keyring, SigningKey};
use crate::log::{
    Actor, AuditCategory, AuthenticationStep, SignInContext, SignInError, SignInRecord,
    SignInStatus,
};
use crate::notify::{DomainEvent, EventBus, Notifier, PullOnly};
use crate::oidc::{
    AccessToken, AuthorizationCode, AuthorizationRequest, AuthorizeError, AuthorizeParams, Grant,
    Prompt, Redeemed, RefreshToken, UserClaims, id_token_claims, pkce_matches, user_claims,
    validate_authorize, validate_client_and_redirect,
};
use crate::policy::MethodKind;
use crate::secret::{Secret, TokenHash, random_token};
use crate::session::{AuthMethod, Session};
use crate::signin::{MAX_FAILED_ATTEMPTS, PendingSignIn, SignInStage};
use crate::store::Store;
use crate::user::{Group, Upn, User, validate_display_name, validate_email};

/// How long a notification waits for an answer unless configured otherwise: long enough to
/// find the phone and unlock it, short enough that a forgotten request does not linger.
pub const DEFAULT_APPROVAL_LIFETIME_SECONDS: i64 = 90;

/// The least time a user-name step that leads to the pass or password page takes. The work a
/// known name adds (its policy, groups and devices read) is well under a millisecond unloaded
/// but passed 15 ms on a test machine running five builds; 30 ms covers that, and a person does
/// not notice it.
pub const USERNAME_STEP_FLOOR: std::time::Duration = std::time::Duration::from_millis(30);

/// The client id of Latchkey's own My Apps portal.
pub const MY_APPS_CLIENT_ID: &str = "myapps";

/// Lifetimes and rules an administrator can configure.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    /// The issuer: the public base URL, without a trailing slash.
    pub issuer: String,
    pub session_lifetime_seconds: i64,
    pub code_lifetime_seconds: i64,
    pub access_token_lifetime_seconds: i64,
    pub id_token_lifetime_seconds: i64,
    pub refresh_token_lifetime_seconds: i64,
    /// How long a phone sign-in or MFA push request waits for an answer.
    pub approval_lifetime_seconds: i64,
    /// How long after its registration a device may first turn on phone sign-in. Later, only
    /// re-adding it from security info (which needs the user signed in) opens the window
    /// again, so a copy of a device key alone can never enable passwordless sign-in.
    pub phone_sign_in_enable_window_seconds: i64,
    pub throttle: crate::throttle::ThrottleLimits,
}

impl Settings {
    pub fn with_issuer(issuer: impl Into<String>) -> Self {
        Settings {
            issuer: issuer.into().trim_end_matches('/').to_string(),
            session_lifetime_seconds: 12 * 3600,
            code_lifetime_seconds: 60,
            access_token_lifetime_seconds: 3600,
            id_token_lifetime_seconds: 3600,
            refresh_token_lifetime_seconds: 14 * 86_400,
            approval_lifetime_seconds: DEFAULT_APPROVAL_LIFETIME_SECONDS,
            phone_sign_in_enable_window_seconds: 30 * 60,
            throttle: crate::throttle::ThrottleLimits::default(),
        }
    }
}

/// What an administrator supplies to create a user.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewUser {
    pub user_principal_name: String,
    pub display_name: String,
    #[serde(default)]
    pub mail: Option<String>,
    #[serde(default = "yes")]
    pub account_enabled: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserPatch {
    pub display_name: Option<String>,
    pub mail: Option<String>,
    pub account_enabled: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewApplication {
    pub display_name: String,
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Public clients (browser or native apps) get no secret and must use PKCE.
    #[serde(default)]
    pub public_client: bool,
    #[serde(default)]
    pub id_token_signing_alg: Option<String>,
    #[serde(default)]
    pub home_url: Option<String>,
}

/// A sign-in method a user has registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredMethod {
    /// "Temporary Access Pass", "Authenticator app — Passwordless", …
    pub label: String,
    pub detail: String,
    pub added_at: Timestamp,
    /// The authenticator device behind the method, which the user may remove.
    pub device: Option<crate::ids::DeviceId>,
    /// The device's phone sign-in was turned off after too many wrong PINs; the page offers
    /// to allow turning it on again.
    pub phone_sign_in_locked: bool,
}

/// How a client authenticated at the token endpoint.
#[derive(Debug, Clone, Default)]
pub struct ClientCredentials {
    pub client_id: Option<String>,
    pub secret: Option<Secret>,
}

/// An OAuth error for the token and userinfo endpoints (RFC 6749 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    fn new(error: &'static str, description: impl Into<String>) -> Self {
        OAuthError {
            error,
            description: description.into(),
        }
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        OAuthError::new("server_error", format!("storage: {e}"))
    }
}

impl From<DomainError> for OAuthError {
    fn from(e: DomainError) -> Self {
        OAuthError::new("server_error", e.to_string())
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

/// The credential a user typed on the sign-in page.
#[derive(Debug, Clone)]
pub enum CredentialInput {
    Pass(Secret),
    Password(Secret),
}

/// Why a sign-in step did not succeed, as the page should tell it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInFailure {
    /// The sign-in is gone (expired, finished, never existed): start again.
    StartAgain(String),
    /// The step was refused; the user may try again on the same page.
    TryAgain(String),
    /// The request does not fit the stage the sign-in is at.
    OutOfOrder,
    /// The first factor was right; the sign-in now waits for the authenticator app.
    SecondFactor,
}

/// A browser that just signed in: the cookie secret is shown once, to the browser.
#[derive(Debug)]
pub struct SignedIn {
    pub session: Session,
    pub cookie_secret: Secret,
    pub user: User,
    pub sign_in: PendingSignIn,
}

/// What `/authorize` should do next.
#[derive(Debug)]
pub enum AuthorizeStep {
    /// Send the browser back to the application.
    Redirect(String),
    /// The user must sign in first.
    SignIn(Box<PendingSignIn>),
}

const WRONG_CREDENTIAL: &str = "That pass or password isn't right. Check it and try again.";
const KEYRING_CACHE_SECONDS: i64 = 30;

pub struct Latchkey {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    events: Arc<dyn EventBus>,
    notifier: RwLock<Arc<dyn Notifier>>,
    settings: Settings,
    keyring: RwLock<Option<(Timestamp, Arc<Keyring>)>>,
    apps: app_cache::AppCache,
    /// The threads that hash passwords.
    hashers: hashing::Hashers,
    /// Server keys, one per purpose, loaded from the store on first use.
    keys: tokio::sync::OnceCell<admin_tokens::PurposeKeys>,
}

impl Latchkey {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        events: Arc<dyn EventBus>,
        settings: Settings,
    ) -> Self {
        Latchkey {
            store,
            clock,
            events,
            notifier: RwLock::new(Arc::new(PullOnly)),
            settings,
            keyring: RwLock::new(None),
            apps: app_cache::AppCache::default(),
            hashers: hashing::Hashers::new(),
            keys: tokio::sync::OnceCell::new(),
        }
    }

    /// Sets how notifications reach devices (the web edge's live channel). Until then devices
    /// only find requests by pulling.
    pub fn attach_notifier(&self, notifier: Arc<dyn Notifier>) {
        if let Ok(mut slot) = self.notifier.write() {
            *slot = notifier;
        }
    }

    fn notifier(&self) -> Arc<dyn Notifier> {
        self.notifier
            .read()
            .map(|n| n.clone())
            .unwrap_or_else(|_| Arc::new(PullOnly))
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    // ----- users and groups -------------------------------------------------------------

    pub async fn create_user(&self, actor: &Actor, new: NewUser) -> Result<User, DomainError> {
        let user = User {
            id: UserId::random(),
            upn: Upn::parse(&new.user_principal_name)?,
            display_name: validate_display_name("displayName", &new.display_name)?,
            email: new.mail.as_deref().map(validate_email).transpose()?,
            enabled: new.account_enabled,
            created_at: self.now(),
        };
        self.store.create_user(&user).await.map_err(|e| match e {
            StoreError::Conflict(_) => {
                DomainError::Conflict(format!("a user named {} already exists", user.upn))
            }
            other => other.into(),
        })?;
        let after = serde_json::to_value(&user).ok();
        self.audit(
            actor,
            AuditCategory::UserManagement,
            "Add user",
            user.upn.as_str(),
            None,
            after,
        )
        .await?;
        Ok(user)
    }

    pub async fn user(&self, id: &UserId) -> Result<User, DomainError> {
        self.store
            .user(id)
            .await?
            .ok_or(DomainError::NotFound("user"))
    }

    /// Finds a user by id or by user principal name.
    pub async fn find_user(&self, key: &str) -> Result<User, DomainError> {
        if key.contains('@') {
            let upn = Upn::parse(key)?;
            return self
                .store
                .user_by_upn(&upn)
                .await?
                .ok_or(DomainError::NotFound("user"));
        }
        self.user(&UserId::from_string(key)).await
    }

    pub async fn list_users(&self) -> Result<Vec<User>, DomainError> {
        Ok(self.store.list_users().await?)
    }

    /// Applies a change; disabling a user ends their sessions and revokes their tokens.
    pub async fn update_user(
        &self,
        actor: &Actor,
        id: &UserId,
        patch: UserPatch,
    ) -> Result<User, DomainError> {
        let mut user = self.user(id).await?;
        let before = serde_json::to_value(&user).ok();
        if let Some(name) = patch.display_name {
            user.display_name = validate_display_name("displayName", &name)?;
        }
        if let Some(mail) = patch.mail {
            user.email = if mail.trim().is_empty() {
                None
            } else {
                Some(validate_email(&mail)?)
            };
        }
        let disabling = patch.account_enabled == Some(false) && user.enabled;
        if let Some(enabled) = patch.account_enabled {
            user.enabled = enabled;
        }
        self.store.update_user(&user).await?;
        if disabling {
            self.store.revoke_user_sessions_and_grants(&user.id).await?;
            self.events.publish(DomainEvent::UserDisabled {
                user: user.id.clone(),
            });
        }
        let activity = if disabling {
            "Disable user"
        } else {
            "Update user"
        };
        let after = serde_json::to_value(&user).ok();
        self.audit(
            actor,
            AuditCategory::UserManagement,
            activity,
            user.upn.as_str(),
            before,
            after,
        )
        .await?;
        Ok(user)
    }

    pub async fn set_password(
        &self,
        actor: &Actor,
        id: &UserId,
        password: &Secret,
    ) -> Result<(), DomainError> {
        let user = self.user(id).await?;
        let password = password.clone();
        let hash = self
            .hashers
            .run(move || hash_password(&password))
            .await
            .unwrap_or_else(|| Err(DomainError::Internal("password hashing failed".into())))?;
        self.store.set_password_hash(&user.id, Some(&hash)).await?;
        self.audit(
            actor,
            AuditCategory::UserManagement,
            "Reset password",
            user.upn.as_str(),
            None,
            None,
        )
        .await
    }

    pub async fn create_group(
        &self,
        actor: &Actor,
        display_name: &str,
        description: &str,
    ) -> Result<Group, DomainError> {
        let description = description.trim();
        if description.chars().count() > 1024 {
            return Err(DomainError::invalid(
                "description",
                "is longer than 1024 characters",
            ));
        }
        let group = Group {
            id: GroupId::random(),
            display_name: validate_display_name("displayName", display_name)?,
            description: description.to_string(),
            created_at: self.now(),
        };
        self.store.create_group(&group).await.map_err(|e| match e {
            StoreError::Conflict(_) => DomainError::Conflict(format!(
                "a group named {} already exists",
                group.display_name
            )),
            other => other.into(),
        })?;
        let after = serde_json::to_value(&group).ok();
        self.audit(
            actor,
            AuditCategory::GroupManagement,
            "Add group",
            &group.display_name,
            None,
            after,
        )
        .await?;
        Ok(group)
    }

    /// Finds a group by id or by display name (case-insensitive).
    pub async fn find_group(&self, key: &str) -> Result<Group, DomainError> {
        if let Some(group) = self.store.group(&GroupId::from_string(key)).await? {
            return Ok(group);
        }
        let groups = self.store.list_groups().await?;
        groups
            .into_iter()
            .find(|g| g.display_name.eq_ignore_ascii_case(key.trim()))
            .ok_or(DomainError::NotFound("group"))
    }

    pub async fn list_groups(&self) -> Result<Vec<Group>, DomainError> {
        Ok(self.store.list_groups().await?)
    }

    pub async fn add_group_member(
        &self,
        actor: &Actor,
        group: &GroupId,
        user: &UserId,
    ) -> Result<(), DomainError> {
        let group = self
            .store
            .group(group)
            .await?
            .ok_or(DomainError::NotFound("group"))?;
        let user = self.user(user).await?;
        if self
            .store
            .groups_of_user(&user.id)
            .await?
            .contains(&group.id)
        {
            return Ok(());
        }
        self.store.add_group_member(&group.id, &user.id).await?;
        let after = serde_json::json!({"member": user.upn});
        self.audit(
            actor,
            AuditCategory::GroupManagement,
            "Add member to group",
            &group.display_name,
            None,
            Some(after),
        )
        .await
    }

    pub async fn remove_group_member(
        &self,
        actor: &Actor,
        group: &GroupId,
        user: &UserId,
    ) -> Result<(), DomainError> {
        let group = self
            .store
            .group(group)
            .await?
            .ok_or(DomainError::NotFound("group"))?;
        self.store.remove_group_member(&group.id, user).await?;
        let before = serde_json::json!({"member": user});
        self.audit(
            actor,
            AuditCategory::GroupManagement,
            "Remove member from group",
            &group.display_name,
            Some(before),
            None,
        )
        .await
    }

    pub async fn group_members(&self, group: &GroupId) -> Result<Vec<User>, DomainError> {
        self.store
            .group(group)
            .await?
            .ok_or(DomainError::NotFound("group"))?;
        let mut users = Vec::new();
        for id in self.store.group_members(group).await? {
            if let Some(user) = self.store.user(&id).await? {
                users.push(user);
            }
        }
        Ok(users)
    }

    /// The sign-in methods a user has, as the security-info page lists them.
    pub async fn registered_methods(
        &self,
        user: &UserId,
    ) -> Result<Vec<RegisteredMethod>, DomainError> {
        let mut methods = Vec::new();
        if let Some(pass) = self.store.pass_for_user(user).await? {
            let state = match pass.usability(self.now()) {
                Ok(()) => "usable",
                Err(crate::credential::PassUnusable::Expired) => "expired",
                Err(crate::credential::PassUnusable::NotYetValid) => "not valid yet",
                Err(crate::credential::PassUnusable::OneTimeUsed) => "used",
            };
            methods.push(RegisteredMethod {
                label: AuthMethod::TemporaryAccessPass.label().into(),
                detail: format!("valid until {} ({state})", pass.expires_at().to_rfc3339()),
                added_at: pass.created_at,
                device: None,
                phone_sign_in_locked: false,
            });
        }
        if self.store.password_hash(user).await?.is_some() {
            methods.push(RegisteredMethod {
                label: AuthMethod::Password.label().into(),
                detail: "set by your administrator".into(),
                added_at: Timestamp(0),
                device: None,
                phone_sign_in_locked: false,
            });
        }
        for device in self.store.devices_of_user(user).await? {
            if !device.is_confirmed() {
                continue;
            }
            let kind = if device.has_phone_sign_in() {
                "Passwordless"
            } else {
                "MFA push"
            };
            let locked_at = self
                .store
                .pin_lock(&device.id)
                .await?
                .and_then(|lock| lock.locked_at);
            let detail = match locked_at {
                // Says why phone sign-in stopped, so a lock by someone else's guesses is seen.
                Some(at) => format!(
                    "{} — phone sign-in was turned off at {} after {} wrong PINs in a row",
                    device.name,
                    at.to_rfc3339(),
                    latchkey_protocol::MAX_WRONG_PINS
                ),
                None => device.name.clone(),
            };
            methods.push(RegisteredMethod {
                label: format!("Authenticator app — {kind}"),
                detail,
                added_at: device.created_at,
                device: Some(device.id.clone()),
                phone_sign_in_locked: locked_at.is_some(),
            });
        }
        Ok(methods)
    }

    // ----- applications -----------------------------------------------------------------

    /// Registers an application. A confidential client's secret is returned once and stored
    /// only as a hash.
    pub async fn register_application(
        &self,
        actor: &Actor,
        new: NewApplication,
    ) -> Result<(Application, Option<Secret>), DomainError> {
        let (app, secret) = self
            .register_application_with_id(ClientId::random(), new)
            .await?;
        let after = application_summary(&app);
        self.audit(
            actor,
            AuditCategory::ApplicationManagement,
            "Add application",
            app.client_id.as_str(),
            None,
            Some(after),
        )
        .await?;
        Ok((app, secret))
    }

    async fn register_application_with_id(
        &self,
        client_id: ClientId,
        new: NewApplication,
    ) -> Result<(Application, Option<Secret>), DomainError> {
        if new.redirect_uris.is_empty() {
            return Err(DomainError::invalid(
                "redirectUris",
                "at least one redirect URI is required",
            ));
        }
        if new.redirect_uris.len() > 20 {
            return Err(DomainError::invalid(
                "redirectUris",
                "at most 20 URIs are allowed",
            ));
        }
        if new.post_logout_redirect_uris.len() > 20 {
            return Err(DomainError::invalid(
                "postLogoutRedirectUris",
                "at most 20 URIs are allowed",
            ));
        }
        let redirect_uris = new
            .redirect_uris
            .iter()
            .map(|u| validate_redirect_uri("redirectUris", u))
            .collect::<Result<Vec<_>, _>>()?;
        let post_logout_redirect_uris = new
            .post_logout_redirect_uris
            .iter()
            .map(|u| validate_redirect_uri("postLogoutRedirectUris", u))
            .collect::<Result<Vec<_>, _>>()?;
        let home_url = new
            .home_url
            .as_deref()
            .map(|u| validate_redirect_uri("homeUrl", u))
            .transpose()?;
        let id_token_alg = match new.id_token_signing_alg.as_deref() {
            None => SigningAlg::RS256,
            Some(alg) => SigningAlg::parse(alg)?,
        };
        let (kind, secret) = if new.public_client {
            (ClientKind::Public, None)
        } else {
            let secret = random_token();
            (
                ClientKind::Confidential {
                    secret_hash: TokenHash::of(secret.expose()),
                },
                Some(secret),
            )
        };
        let app = Application {
            client_id,
            display_name: validate_display_name("displayName", &new.display_name)?,
            redirect_uris,
            post_logout_redirect_uris,
            kind,
            id_token_alg,
            home_url,
            created_at: self.now(),
        };
        self.store
            .create_application(&app)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => {
                    DomainError::Conflict(format!("client id {} is taken", app.client_id))
                }
                other => other.into(),
            })?;
        Ok((app, secret))
    }

    /// Registers (or re-registers after a change of base URL) Latchkey's own My Apps portal:
    /// a public client that signs users in through the same public flow as any application.
    pub async fn ensure_my_apps(&self) -> Result<Application, DomainError> {
        let base = &self.settings.issuer;
        let client_id = ClientId::from_string(MY_APPS_CLIENT_ID);
        let wanted_redirect = format!("{base}/myapps/callback");
        let wanted_logout = format!("{base}/myapps/signed-out");
        if let Some(app) = self.store.application(&client_id).await? {
            if app.redirect_uris == [wanted_redirect.clone()]
                && app.post_logout_redirect_uris == [wanted_logout.clone()]
            {
                return Ok(app);
            }
            self.store.delete_application(&client_id).await?;
            self.apps.forget(&client_id);
        }
        let new = NewApplication {
            display_name: "My Apps".into(),
            redirect_uris: vec![wanted_redirect],
            post_logout_redirect_uris: vec![wanted_logout],
            public_client: true,
            id_token_signing_alg: Some("ES256".into()),
            home_url: None,
        };
        Ok(self.register_application_with_id(client_id, new).await?.0)
    }

    pub async fn application(&self, client_id: &ClientId) -> Result<Application, DomainError> {
        self.cached_application(client_id)
            .await?
            .ok_or(DomainError::NotFound("application"))
    }

    pub async fn list_applications(&self) -> Result<Vec<Application>, DomainError> {
        Ok(self.store.list_applications().await?)
    }

    pub async fn delete_application(
        &self,
        actor: &Actor,
        client_id: &ClientId,
    ) -> Result<(), DomainError> {
        if client_id.as_str() == MY_APPS_CLIENT_ID {
            return Err(DomainError::Rejected(
                "My Apps is part of Latchkey and cannot be deleted".into(),
            ));
        }
        let app = self.application(client_id).await?;
        self.store.delete_application(client_id).await?;
        self.apps.forget(client_id);
        let before = application_summary(&app);
        self.audit(
            actor,
            AuditCategory::ApplicationManagement,
            "Delete application",
            client_id.as_str(),
            Some(before),
            None,
        )
        .await
    }

    // ----- Temporary Access Passes ------------------------------------------------------

    /// Issues a pass, replacing any previous one. The secret is returned once.
    /// The rules come from the Temporary Access Pass configuration of the policy.
    pub async fn issue_pass(
        &self,
        actor: &Actor,
        user: &UserId,
        request: &PassRequest,
    ) -> Result<(TemporaryAccessPass, Secret), DomainError> {
        let user = self.user(user).await?;
        let rules = self.policy().await?.temporary_access_pass.rules();
        let key = self.pass_key().await?;
        let (pass, secret) = new_pass(&rules, user.id.clone(), request, self.now(), key)?;
        self.store.put_pass(&pass).await?;
        let after = serde_json::json!({
            "startDateTime": pass.starts_at.to_rfc3339(),
            "lifetimeInMinutes": pass.lifetime_minutes,
            "isUsableOnce": pass.usable_once,
        });
        self.audit(
            actor,
            AuditCategory::UserManagement,
            "Create Temporary Access Pass",
            user.upn.as_str(),
            None,
            Some(after),
        )
        .await?;
        Ok((pass, secret))
    }

    pub async fn pass_for_user(
        &self,
        user: &UserId,
    ) -> Result<Option<TemporaryAccessPass>, DomainError> {
        Ok(self.store.pass_for_user(user).await?)
    }

    pub async fn delete_pass(&self, actor: &Actor, user: &UserId) -> Result<(), DomainError> {
        let user = self.user(user).await?;
        self.store.delete_pass(&user.id).await?;
        self.audit(
            actor,
            AuditCategory::UserManagement,
            "Delete Temporary Access Pass",
            user.upn.as_str(),
            None,
            None,
        )
        .await
    }

    pub async fn server_secret(&self, name: &str) -> Result<Vec<u8>, DomainError> {
        let candidate = crate::secret::random_bytes::<32>();
        Ok(self.store.server_secret(name, &candidate).await?)
    }

    // ----- signing keys -----------------------------------------------------------------

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
        self.audit(
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

    // ----- browser sign-in --------------------------------------------------------------

    pub async fn start_sign_in(
        &self,
        authorization: Option<AuthorizationRequest>,
        return_to: Option<String>,
    ) -> Result<PendingSignIn, DomainError> {
        let sign_in = PendingSignIn::start(authorization, return_to, self.now());
        self.store.put_sign_in(&sign_in).await?;
        Ok(sign_in)
    }

    /// A new sign-in at the user-name step that is not stored: loading the sign-in page must
    /// not write a row per request, so only [`Self::store_drafted_sign_in`] stores it, when
    /// its user name is posted (with a token only the page that drafted it could hold).
    pub fn draft_sign_in(&self, return_to: Option<String>) -> PendingSignIn {
        PendingSignIn::start(None, return_to, self.now())
    }

    /// Stores the drafted sign-in `id` if nothing is stored under it yet; a sign-in already
    /// stored (live or expired) is left as it is for the next step to judge.
    pub async fn store_drafted_sign_in(
        &self,
        id: &SignInId,
        return_to: Option<&str>,
    ) -> Result<(), SignInFailure> {
        let trouble = |_| SignInFailure::StartAgain(STORE_TROUBLE.into());
        if self.store.sign_in(id).await.map_err(trouble)?.is_some() {
            return Ok(());
        }
        let return_to = return_to
            .and_then(crate::signin::safe_return_path)
            .unwrap_or_else(|| "/myapps".into());
        let mut sign_in = PendingSignIn::start(None, Some(return_to), self.now());
        sign_in.id = id.clone();
        self.store.put_sign_in(&sign_in).await.map_err(trouble)?;
        Ok(())
    }

    /// The sign-in this browser has in progress, if it is still alive.
    pub async fn sign_in(&self, id: &SignInId) -> Result<PendingSignIn, SignInFailure> {
        let found = self
            .store
            .sign_in(id)
            .await
            .map_err(|_| SignInFailure::StartAgain(STORE_TROUBLE.into()))?;
        match found {
            Some(sign_in) if !sign_in.is_expired(self.now()) => Ok(sign_in),
            Some(_) => Err(SignInFailure::StartAgain(
                "Your sign-in took too long and has expired. Start again.".into(),
            )),
            None => Err(SignInFailure::StartAgain(
                "We couldn't find your sign-in. It may have finished or expired. Start again."
                    .into(),
            )),
        }
    }

    /// The user typed a user name. Unknown names move on exactly like known ones; a user who
    /// can sign in by phone gets a notification and the number page instead.
    ///
    /// A step that ends at the pass or password page (as every unknown name does) takes at
    /// least [`USERNAME_STEP_FLOOR`], and an unknown name makes the reads a known one makes
    /// (policy, groups, devices), so the step's timing does not tell which names exist.
    pub async fn submit_username(
        &self,
        id: &SignInId,
        input: &str,
        context: &SignInContext,
    ) -> Result<PendingSignIn, SignInFailure> {
        let started = tokio::time::Instant::now();
        let sign_in = self.submit_username_unpadded(id, input, context).await?;
        if matches!(sign_in.stage, SignInStage::AwaitingCredential { .. }) {
            tokio::time::sleep_until(started + USERNAME_STEP_FLOOR).await;
        }
        Ok(sign_in)
    }

    async fn submit_username_unpadded(
        &self,
        id: &SignInId,
        input: &str,
        context: &SignInContext,
    ) -> Result<PendingSignIn, SignInFailure> {
        let mut sign_in = self.sign_in(id).await?;
        if sign_in.stage != SignInStage::AwaitingUsername {
            return Err(SignInFailure::OutOfOrder);
        }
        let upn = Upn::parse(input).map_err(|_| {
            SignInFailure::TryAgain(
                "Enter your user name in the form name@domain, for example bobby@contoso.example."
                    .into(),
            )
        })?;
        let user = self
            .store
            .user_by_upn(&upn)
            .await
            .map_err(|_| SignInFailure::TryAgain(STORE_TROUBLE.into()))?;
        let phone = match &user {
            Some(user) => self
                .try_approval(ApprovalKind::PhoneSignIn, &sign_in, user, context)
                .await
                .map_err(|_| SignInFailure::TryAgain(STORE_TROUBLE.into()))?,
            None => {
                // The reads a known name without phone sign-in costs, so that the two take as
                // long even when the floor below is exceeded (a loaded machine).
                self.reads_of_a_name_without_phone(&UserId::random())
                    .await
                    .map_err(|_| SignInFailure::TryAgain(STORE_TROUBLE.into()))?;
                ApprovalStart::NotApplicable
            }
        };
        sign_in.stage = match phone {
            ApprovalStart::Sent(stage) => stage,
            ApprovalStart::NotApplicable => SignInStage::AwaitingCredential {
                upn: upn.to_string(),
                user_id: user.map(|u| u.id),
                notice: None,
            },
            ApprovalStart::AlreadyPending => SignInStage::AwaitingCredential {
                upn: upn.to_string(),
                user_id: user.map(|u| u.id),
                notice: Some(ALREADY_PENDING.into()),
            },
            ApprovalStart::Throttled => SignInStage::AwaitingCredential {
                upn: upn.to_string(),
                user_id: user.map(|u| u.id),
                notice: Some(THROTTLED.into()),
            },
        };
        self.store
            .put_sign_in(&sign_in)
            .await
            .map_err(|_| SignInFailure::TryAgain(STORE_TROUBLE.into()))?;
        Ok(sign_in)
    }

    /// What `try_approval` reads for a user who cannot sign in by phone:
    /// the policy, the user's groups and devices.
    async fn reads_of_a_name_without_phone(&self, user: &UserId) -> Result<(), StoreError> {
        self.store.policy().await?;
        self.user_groups(user).await?;
        self.store.devices_of_user(user).await?;
        Ok(())
    }

    /// Goes back to the user-name step ("Sign in with another account").
    pub async fn restart_sign_in(&self, id: &SignInId) -> Result<PendingSignIn, SignInFailure> {
        // A notification still waiting is cancelled first, so no device can answer it later.
        let mut sign_in = self.choose_other_way(id).await?;
        sign_in.stage = SignInStage::AwaitingUsername;
        self.store
            .put_sign_in(&sign_in)
            .await
            .map_err(|_| SignInFailure::TryAgain(STORE_TROUBLE.into()))?;
        Ok(sign_in)
    }

    /// The user typed a pass or password. On success the sign-in ends and a session begins.
    /// Every outcome lands in the sign-in log in the same transaction as its effect.
    pub async fn submit_credential(
        &self,
        id: &SignInId,
        input: CredentialInput,
        context: &SignInContext,
    ) -> Result<SignedIn, SignInFailure> {
        let trouble = |_| SignInFailure::TryAgain(STORE_TROUBLE.into());
        let mut sign_in = self.sign_in(id).await?;
        let SignInStage::AwaitingCredential { upn, user_id, .. } = &sign_in.stage else {
            return Err(SignInFailure::OutOfOrder);
        };
        let typed_upn = upn.clone();
        let user = match user_id {
            Some(id) => self.store.user(id).await.map_err(trouble)?,
            None => None,
        };
        let now = self.now();
        let method_kind = match input {
            CredentialInput::Pass(_) => MethodKind::TemporaryAccessPass,
            CredentialInput::Password(_) => MethodKind::Password,
        };
        let attempt = self
            .credential_attempt(user.as_ref(), &typed_upn, context, now)
            .await
            .map_err(trouble)?;
        let verdict = if !attempt.allowed {
            Ok(Err(SignInError::Throttled))
        } else {
            self.check_credential(user.as_ref(), &input, now).await
        }
        .map_err(trouble)?;
        let app = match &sign_in.authorization {
            Some(request) => self
                .cached_application(&request.client_id)
                .await
                .map_err(trouble)?,
            None => None,
        };
        let mut record = SignInRecord {
            id: crate::secret::random_hex(16),
            created_date_time: now,
            user_id: user.as_ref().map(|u| u.id.clone()),
            user_principal_name: user
                .as_ref()
                .map(|u| u.upn.to_string())
                .unwrap_or(typed_upn),
            user_display_name: user.as_ref().map(|u| u.display_name.clone()),
            app_id: app.as_ref().map(|a| a.client_id.clone()),
            app_display_name: app.as_ref().map(|a| a.display_name.clone()),
            ip_address: context.ip_address.map(|ip| ip.to_string()),
            location: context.location.clone(),
            authentication_method: method_kind.id().to_string(),
            status: SignInStatus::success(),
            authentication_details: vec![],
        };
        let step = |succeeded: bool, detail: &str| AuthenticationStep {
            authentication_method: method_kind.label().to_string(),
            authentication_method_detail: None,
            authentication_step_date_time: now.to_rfc3339(),
            authentication_step_result_detail: detail.to_string(),
            succeeded,
        };
        let Verified { method, ends_by } = match verdict {
            Ok(verified) => verified,
            Err(error) => {
                sign_in.failed_attempts += 1;
                let ended = sign_in.failed_attempts >= MAX_FAILED_ATTEMPTS;
                let error = if ended {
                    SignInError::TooManyAttempts
                } else {
                    error
                };
                record.status.fail(error);
                record
                    .authentication_details
                    .push(step(false, error.failure_reason()));
                self.store
                    .fail_sign_in(&sign_in, ended, &record)
                    .await
                    .map_err(trouble)?;
                let message = user_message(error, method_kind);
                return Err(if ended {
                    SignInFailure::StartAgain(message)
                } else {
                    SignInFailure::TryAgain(message)
                });
            }
        };
        let user = user.expect("a credential only verifies for a known user");
        self.credential_succeeded(attempt, now)
            .await
            .map_err(trouble)?;
        if method == AuthMethod::Password {
            match self
                .try_approval(ApprovalKind::MfaPush, &sign_in, &user, context)
                .await
                .map_err(trouble)?
            {
                ApprovalStart::Sent(stage) => {
                    sign_in.stage = stage;
                    self.store.put_sign_in(&sign_in).await.map_err(trouble)?;
                    return Err(SignInFailure::SecondFactor);
                }
                ApprovalStart::AlreadyPending => {
                    return Err(SignInFailure::TryAgain(ALREADY_PENDING.into()));
                }
                ApprovalStart::Throttled => {
                    return Err(SignInFailure::TryAgain(THROTTLED.into()));
                }
                ApprovalStart::NotApplicable => {}
            }
        }
        let (mut session, cookie_secret) = self.new_session(&user, method, now);
        if let Some(end) = ends_by {
            session.end_no_later_than(end);
        }
        record
            .authentication_details
            .push(step(true, "Correct credential"));
        self.remember_sign_in_place(&record, now)
            .await
            .map_err(trouble)?;
        self.store
            .complete_sign_in(&session, &sign_in.id, &record)
            .await
            .map_err(trouble)?;
        self.events.publish(DomainEvent::SessionStarted {
            user: user.id.clone(),
            session: session.id.clone(),
        });
        Ok(SignedIn {
            session,
            cookie_secret,
            user,
            sign_in,
        })
    }

    /// Ok(Ok(method)) when the credential proves the user and policy allows the method;
    /// Ok(Err(why)) otherwise. Specific reasons (expired pass, disabled account, policy) are
    /// given only to someone who presented the right secret, so they reveal nothing to a
    /// guesser.
    async fn check_credential(
        &self,
        user: Option<&User>,
        input: &CredentialInput,
        now: Timestamp,
    ) -> Result<Result<Verified, SignInError>, StoreError> {
        let wrong = || Ok(Err(SignInError::InvalidCredential));
        match input {
            CredentialInput::Pass(secret) => {
                let pass = match user {
                    Some(user) => self.store.pass_for_user(&user.id).await?,
                    None => None,
                };
                // Compare against a dummy hash when there is no pass, so timing is the same.
                let stored = pass
                    .as_ref()
                    .map(|p| p.hash.clone())
                    .unwrap_or_else(|| TokenHash::of(""));
                let typed = self
                    .pass_hash(secret.expose())
                    .await
                    .map_err(|e| StoreError::Backend(e.to_string()))?;
                let matches =
                    stored.same_as(&typed) && pass.is_some() && secret.expose().len() <= 64;
                let (Some(pass), Some(user), true) = (pass, user, matches) else {
                    return wrong();
                };
                if let Err(reason) = pass.usability(now) {
                    return Ok(Err(match reason {
                        PassUnusable::Expired => SignInError::PassExpired,
                        PassUnusable::NotYetValid => SignInError::PassNotYetValid,
                        PassUnusable::OneTimeUsed => SignInError::PassAlreadyUsed,
                    }));
                }
                if !user.enabled {
                    return Ok(Err(SignInError::UserDisabled));
                }
                if !self
                    .method_allowed(&user.id, MethodKind::TemporaryAccessPass)
                    .await?
                {
                    return Ok(Err(SignInError::MethodNotAllowed));
                }
                if !self.store.mark_pass_used(&user.id, &pass.hash, now).await? {
                    return Ok(Err(SignInError::PassAlreadyUsed));
                }
                // A session started with a pass ends no later than the pass does.
                Ok(Ok(Verified {
                    method: AuthMethod::TemporaryAccessPass,
                    ends_by: Some(pass.expires_at()),
                }))
            }
            CredentialInput::Password(secret) => {
                let stored = match user {
                    Some(user) => self.store.password_hash(&user.id).await?,
                    None => None,
                };
                let has_password = stored.is_some();
                let hash = stored.unwrap_or_else(|| DUMMY_PASSWORD_HASH.into());
                let secret = secret.clone();
                let verified = self
                    .hashers
                    .run(move || verify_password(&hash, secret.expose()))
                    .await
                    .unwrap_or(false);
                match (user, verified && has_password) {
                    (Some(user), true) if !user.enabled => Ok(Err(SignInError::UserDisabled)),
                    (Some(user), true) => {
                        if self.method_allowed(&user.id, MethodKind::Password).await? {
                            Ok(Ok(Verified {
                                method: AuthMethod::Password,
                                ends_by: None,
                            }))
                        } else {
                            Ok(Err(SignInError::MethodNotAllowed))
                        }
                    }
                    _ => wrong(),
                }
            }
        }
    }

    /// A new browser session for `user`, and the cookie secret that stands for it (shown once,
    /// to the browser; the store keeps only its hash).
    fn new_session(&self, user: &User, method: AuthMethod, now: Timestamp) -> (Session, Secret) {
        let cookie_secret = random_token();
        let session = Session {
            id: SessionId::random(),
            token_hash: TokenHash::of(cookie_secret.expose()),
            user_id: user.id.clone(),
            method,
            auth_time: now,
            created_at: now,
            expires_at: now.plus_seconds(self.settings.session_lifetime_seconds),
            revoked: false,
        };
        (session, cookie_secret)
    }

    /// The session a browser cookie stands for, with its user, if both are still good.
    pub async fn session_for_cookie(
        &self,
        cookie_secret: &str,
    ) -> Result<Option<(Session, User)>, DomainError> {
        if cookie_secret.is_empty() || cookie_secret.len() > 128 {
            return Ok(None);
        }
        let Some(session) = self
            .store
            .session_by_token(&TokenHash::of(cookie_secret))
            .await?
        else {
            return Ok(None);
        };
        if !session.is_live(self.now()) {
            return Ok(None);
        }
        match self.store.user(&session.user_id).await? {
            Some(user) if user.enabled => Ok(Some((session, user))),
            _ => Ok(None),
        }
    }

    /// Ends a browser session and revokes the tokens applications got through it.
    pub async fn sign_out(&self, session: &SessionId) -> Result<(), DomainError> {
        self.store.revoke_session(session).await?;
        self.store.revoke_session_grants(session).await?;
        self.events.publish(DomainEvent::SessionEnded {
            session: session.clone(),
        });
        Ok(())
    }

    // ----- OpenID Connect ---------------------------------------------------------------

    /// Validates `/authorize` parameters. `NoRedirect` errors must be shown, never redirected.
    pub async fn authorization_request(
        &self,
        params: &AuthorizeParams,
    ) -> Result<AuthorizationRequest, AuthorizeError> {
        let app = match params.client_id.as_deref() {
            Some(id) if !id.is_empty() && id.len() <= 128 => self
                .cached_application(&ClientId::from_string(id))
                .await
                .map_err(|_| AuthorizeError::NoRedirect(STORE_TROUBLE.into()))?,
            _ => None,
        };
        match app {
            Some(app) => validate_authorize(params, &app),
            None => validate_client_and_redirect(params, None).map(|_| unreachable!()),
        }
    }

    /// Decides whether an existing session answers the request or the user must sign in.
    pub async fn continue_authorization(
        &self,
        request: AuthorizationRequest,
        current: Option<(Session, User)>,
    ) -> Result<AuthorizeStep, DomainError> {
        let now = self.now();
        let usable = current.filter(|(session, user)| {
            let fresh_enough = request
                .max_age
                .is_none_or(|age| now.0 - session.auth_time.0 <= age);
            let hinted_user = request
                .login_hint
                .as_deref()
                .is_none_or(|hint| hint.eq_ignore_ascii_case(user.upn.as_str()));
            fresh_enough && hinted_user && request.prompt != Prompt::Login
        });
        match (usable, request.prompt) {
            (Some((session, user)), _) => Ok(AuthorizeStep::Redirect(
                self.issue_code(&request, &session, &user).await?,
            )),
            (None, Prompt::None) => Ok(AuthorizeStep::Redirect(error_redirect(
                &request.redirect_uri,
                "login_required",
                "the user must sign in",
                request.state.as_deref(),
                &self.settings.issuer,
            ))),
            (None, _) => Ok(AuthorizeStep::SignIn(Box::new(
                self.start_sign_in(Some(request), None).await?,
            ))),
        }
    }

    /// Issues an authorization code for a signed-in user and returns the redirect to the app.
    pub async fn issue_code(
        &self,
        request: &AuthorizationRequest,
        session: &Session,
        user: &User,
    ) -> Result<String, DomainError> {
        let now = self.now();
        let grant = Grant {
            id: GrantId::random(),
            user_id: user.id.clone(),
            client_id: request.client_id.clone(),
            session_id: session.id.clone(),
            scopes: request.scopes.clone(),
            nonce: request.nonce.clone(),
            auth_time: session.auth_time,
            method: session.method,
            created_at: now,
            revoked: false,
        };
        self.store.create_grant(&grant).await?;
        let code = random_token();
        self.store
            .put_code(&AuthorizationCode {
                hash: TokenHash::of(code.expose()),
                grant_id: grant.id,
                client_id: request.client_id.clone(),
                redirect_uri: request.redirect_uri.clone(),
                code_challenge: request.code_challenge.clone(),
                expires_at: now.plus_seconds(self.settings.code_lifetime_seconds),
            })
            .await?;
        let mut url = Url::parse(&request.redirect_uri)
            .map_err(|_| DomainError::Internal("stored redirect URI".into()))?;
        url.query_pairs_mut().append_pair("code", code.expose());
        if let Some(state) = &request.state {
            url.query_pairs_mut().append_pair("state", state);
        }
        url.query_pairs_mut()
            .append_pair("iss", &self.settings.issuer);
        Ok(url.to_string())
    }

    /// Authenticates the client at the token endpoint.
    pub async fn authenticate_client(
        &self,
        credentials: &ClientCredentials,
    ) -> Result<Application, OAuthError> {
        let invalid = || OAuthError::new("invalid_client", "client authentication failed");
        let client_id = credentials
            .client_id
            .as_deref()
            .filter(|id| !id.is_empty() && id.len() <= 128)
            .ok_or_else(invalid)?;
        let app = self
            .cached_application(&ClientId::from_string(client_id))
            .await?
            .ok_or_else(invalid)?;
        match (&app.kind, &credentials.secret) {
            (ClientKind::Public, None) => Ok(app),
            (ClientKind::Confidential { secret_hash }, Some(secret))
                if secret_hash.matches(secret.expose()) =>
            {
                Ok(app)
            }
            _ => Err(invalid()),
        }
    }

    /// The authorization-code grant. A replayed code revokes everything it issued.
    ///
    /// Everything the presenter must prove (the client it was issued to, the redirect URI, the
    /// PKCE verifier) is checked before the code is spent: a thief without those proofs can
    /// neither burn the code nor make its real client's redemption look like a replay.
    pub async fn exchange_code(
        &self,
        credentials: &ClientCredentials,
        code: &str,
        redirect_uri: Option<&str>,
        code_verifier: Option<&str>,
    ) -> Result<TokenResponse, OAuthError> {
        let app = self.authenticate_client(credentials).await?;
        let bad_grant = |why: &str| OAuthError::new("invalid_grant", why);
        if code.is_empty() || code.len() > 128 {
            return Err(bad_grant("the code is not valid"));
        }
        let hash = TokenHash::of(code);
        let stored = self
            .store
            .code(&hash)
            .await?
            .ok_or_else(|| bad_grant("the code is not valid"))?;
        if stored.client_id != app.client_id {
            return Err(bad_grant("the code was issued to another client"));
        }
        if redirect_uri != Some(stored.redirect_uri.as_str()) {
            return Err(bad_grant(
                "redirect_uri does not match the authorization request",
            ));
        }
        match (&stored.code_challenge, code_verifier) {
            (Some(challenge), Some(verifier)) if pkce_matches(challenge, verifier) => {}
            (Some(_), _) => return Err(bad_grant("the PKCE code_verifier does not match")),
            (None, Some(_)) => return Err(bad_grant("no PKCE challenge was sent for this code")),
            (None, None) => {}
        }
        if stored.expires_at <= self.now() {
            return Err(bad_grant("the code has expired"));
        }
        // The presenter proved everything its real client could: only now is a second use a
        // replay worth revoking for.
        let code = match self.store.redeem_code(&hash).await? {
            Redeemed::Fresh(code) => code,
            Redeemed::Replayed(code) => {
                self.store.revoke_grant(&code.grant_id).await?;
                return Err(bad_grant(
                    "the code was already used; the tokens issued with it are revoked",
                ));
            }
            Redeemed::Unknown => return Err(bad_grant("the code is not valid")),
        };
        let grant = self
            .live_grant(&code.grant_id)
            .await?
            .ok_or_else(|| bad_grant("the grant was revoked"))?;
        self.issue_tokens(&app, &grant, true).await
    }

    /// The refresh-token grant with rotation: each refresh token works once; its own client
    /// presenting a spent one revokes the whole family (it was stolen or replayed). Another
    /// client presenting it is refused before anything is spent or revoked.
    pub async fn refresh(
        &self,
        credentials: &ClientCredentials,
        refresh_token: &str,
    ) -> Result<TokenResponse, OAuthError> {
        let app = self.authenticate_client(credentials).await?;
        let bad_grant = |why: &str| OAuthError::new("invalid_grant", why);
        if refresh_token.is_empty() || refresh_token.len() > 128 {
            return Err(bad_grant("the refresh token is not valid"));
        }
        let hash = TokenHash::of(refresh_token);
        let stored = self
            .store
            .refresh_token(&hash)
            .await?
            .ok_or_else(|| bad_grant("the refresh token is not valid"))?;
        let issued_to = self
            .store
            .grant(&stored.grant_id)
            .await?
            .map(|grant| grant.client_id)
            .ok_or_else(|| bad_grant("the refresh token is not valid"))?;
        if issued_to != app.client_id {
            return Err(bad_grant("the refresh token was issued to another client"));
        }
        if stored.expires_at <= self.now() {
            return Err(bad_grant("the refresh token has expired"));
        }
        let token = match self.store.redeem_refresh_token(&hash).await? {
            Redeemed::Fresh(token) => token,
            Redeemed::Replayed(token) => {
                self.store.revoke_grant(&token.grant_id).await?;
                return Err(bad_grant(
                    "the refresh token was already used; its family is revoked",
                ));
            }
            Redeemed::Unknown => return Err(bad_grant("the refresh token is not valid")),
        };
        let grant = self
            .live_grant(&token.grant_id)
            .await?
            .ok_or_else(|| bad_grant("the refresh token was revoked"))?;
        self.issue_tokens(&app, &grant, false).await
    }

    /// A grant that is neither revoked nor held by a disabled or deleted user.
    async fn live_grant(&self, id: &GrantId) -> Result<Option<Grant>, StoreError> {
        let Some(grant) = self.store.grant(id).await? else {
            return Ok(None);
        };
        if grant.revoked {
            return Ok(None);
        }
        match self.store.user(&grant.user_id).await? {
            Some(user) if user.enabled => Ok(Some(grant)),
            _ => Ok(None),
        }
    }

    async fn issue_tokens(
        &self,
        app: &Application,
        grant: &Grant,
        include_nonce: bool,
    ) -> Result<TokenResponse, OAuthError> {
        let now = self.now();
        let user = self
            .store
            .user(&grant.user_id)
            .await?
            .ok_or_else(|| OAuthError::new("invalid_grant", "user gone"))?;
        let access = random_token();
        self.store
            .put_access_token(&AccessToken {
                hash: TokenHash::of(access.expose()),
                grant_id: grant.id.clone(),
                expires_at: now.plus_seconds(self.settings.access_token_lifetime_seconds),
            })
            .await?;
        let refresh = if grant.scopes.iter().any(|s| s == "offline_access") {
            let refresh = random_token();
            self.store
                .put_refresh_token(&RefreshToken {
                    hash: TokenHash::of(refresh.expose()),
                    grant_id: grant.id.clone(),
                    expires_at: now.plus_seconds(self.settings.refresh_token_lifetime_seconds),
                })
                .await?;
            Some(refresh.expose().to_string())
        } else {
            None
        };
        let claims = id_token_claims(
            &self.settings.issuer,
            &user,
            grant,
            now,
            self.settings.id_token_lifetime_seconds,
            access.expose(),
            include_nonce,
        );
        let ring = self.keyring().await?;
        let signer = ring
            .active(app.id_token_alg)
            .ok_or_else(|| OAuthError::new("server_error", "no signing key"))?;
        Ok(TokenResponse {
            access_token: access.expose().to_string(),
            token_type: "Bearer",
            expires_in: self.settings.access_token_lifetime_seconds,
            id_token: signer.sign_jwt(&claims)?,
            refresh_token: refresh,
            scope: grant.scopes.join(" "),
        })
    }

    /// Claims for `/userinfo`, for a live access token.
    pub async fn userinfo(&self, access_token: &str) -> Result<UserClaims, OAuthError> {
        let invalid = || OAuthError::new("invalid_token", "the access token is not valid");
        if access_token.is_empty() || access_token.len() > 128 {
            return Err(invalid());
        }
        let token = self
            .store
            .access_token(&TokenHash::of(access_token))
            .await?
            .ok_or_else(invalid)?;
        if token.expires_at <= self.now() {
            return Err(OAuthError::new(
                "invalid_token",
                "the access token has expired",
            ));
        }
        let grant = self
            .live_grant(&token.grant_id)
            .await?
            .ok_or_else(invalid)?;
        let user = self.store.user(&grant.user_id).await?.ok_or_else(invalid)?;
        Ok(user_claims(&user, &grant.scopes))
    }

    /// RP-initiated logout: checks the hint and the post-logout redirect.
    /// Returns the client the request names (if any) and the validated redirect (if any).
    pub async fn end_session_request(
        &self,
        id_token_hint: Option<&str>,
        client_id: Option<&str>,
        post_logout_redirect_uri: Option<&str>,
    ) -> Result<EndSession, DomainError> {
        let hint = match id_token_hint.filter(|h| !h.is_empty()) {
            Some(token) if token.len() <= 8192 => Some(
                self.keyring()
                    .await?
                    .verify_own_token(token, &self.settings.issuer)?,
            ),
            Some(_) => return Err(DomainError::Rejected("id_token_hint is too long".into())),
            None => None,
        };
        let hinted_client = hint
            .as_ref()
            .and_then(|c| c["aud"].as_str().map(str::to_string));
        if let (Some(hinted), Some(named)) = (&hinted_client, client_id)
            && hinted != named
        {
            return Err(DomainError::Rejected(
                "client_id does not match the id_token_hint".into(),
            ));
        }
        let client = hinted_client.or(client_id.filter(|c| !c.is_empty()).map(str::to_string));
        let redirect = match post_logout_redirect_uri.filter(|u| !u.is_empty()) {
            None => None,
            Some(uri) => {
                let Some(client) = client.as_deref() else {
                    return Err(DomainError::Rejected(
                        "post_logout_redirect_uri needs an id_token_hint or client_id".into(),
                    ));
                };
                if client.len() > 128 {
                    return Err(DomainError::Rejected("client_id is too long".into()));
                }
                let app = self.application(&ClientId::from_string(client)).await?;
                if !app.accepts_post_logout_redirect_uri(uri) {
                    return Err(DomainError::Rejected(format!(
                        "the address to return to is not registered for {}",
                        app.display_name
                    )));
                }
                Some(uri.to_string())
            }
        };
        Ok(EndSession {
            client_id: client,
            verified_hint: hint.is_some(),
            hinted_sid: hint
                .as_ref()
                .and_then(|c| c["sid"].as_str().map(str::to_string)),
            redirect,
        })
    }

    // ----- maintenance ------------------------------------------------------------------

    /// Expires overdue notifications (logging their timeouts and telling their devices), then
    /// removes what has expired.
    pub async fn purge_expired(&self) -> Result<u64, DomainError> {
        let expired = self.expire_overdue_approvals().await;
        // The purge runs whatever happened above, so one bad row cannot make tokens pile up.
        let purged = self.store.purge_expired(self.now()).await?;
        expired?;
        Ok(purged)
    }
}

/// A credential that proved the user: how, and when a session it starts must end at the latest.
struct Verified {
    method: AuthMethod,
    ends_by: Option<Timestamp>,
}

/// A checked end-session request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndSession {
    /// The application the request names (by its hint or `client_id`); a confirmation form
    /// carries it back so that its redirect is checked against that application again.
    pub client_id: Option<String>,
    /// An `id_token_hint` we signed came with the request, so it came from the application
    /// and the user need not confirm.
    pub verified_hint: bool,
    /// The session the hint's `sid` names, if there was a verified hint.
    pub hinted_sid: Option<String>,
    pub redirect: Option<String>,
}

/// An application as the audit log shows it: never its secret's hash.
fn application_summary(app: &Application) -> serde_json::Value {
    serde_json::json!({
        "appId": app.client_id,
        "displayName": app.display_name,
        "redirectUris": app.redirect_uris,
        "postLogoutRedirectUris": app.post_logout_redirect_uris,
        "publicClient": app.is_public(),
        "idTokenSigningAlg": app.id_token_alg.as_str(),
    })
}

/// What the sign-in page says for each refusal.
fn user_message(error: SignInError, method: MethodKind) -> String {
    match error {
        SignInError::InvalidCredential => WRONG_CREDENTIAL.to_string(),
        SignInError::UserDisabled => DISABLED.to_string(),
        SignInError::TooManyAttempts => "That was the last try for this sign-in. Start again, and ask your administrator for a new pass if you need one.".to_string(),
        SignInError::PassExpired => PassUnusable::Expired.message().to_string(),
        SignInError::PassNotYetValid => PassUnusable::NotYetValid.message().to_string(),
        SignInError::PassAlreadyUsed => PassUnusable::OneTimeUsed.message().to_string(),
        SignInError::Throttled => THROTTLED.to_string(),
        SignInError::ApprovalDenied
        | SignInError::ApprovalReported
        | SignInError::WrongNumber
        | SignInError::ApprovalTimedOut => error.failure_reason().to_string(),
        SignInError::MethodNotAllowed => format!(
            "Your organisation doesn't let your account sign in with a {}. Use another way to sign in, or ask your administrator.",
            method.label().to_lowercase()
        ),
    }
}

/// Shown when a throttle stopped a notification or an attempt.
const THROTTLED: &str = "There have been too many sign-in attempts for this account or from this network. Wait a few minutes and try again, or ask your administrator.";
/// Shown instead of a second notification while one is waiting (push-fatigue defence).
const ALREADY_PENDING: &str = "A sign-in request is already waiting in your authenticator app. If you didn't start it, deny it there or choose \"No, it's not me\". Otherwise wait a minute and try again, or sign in another way.";
const STORE_TROUBLE: &str = "Something went wrong on our side. Try again in a moment.";
const DISABLED: &str = "Your account is disabled. Contact your administrator.";

/// An OAuth error redirect to an already-validated redirect URI.
pub fn error_redirect(
    redirect_uri: &str,
    error: &str,
    description: &str,
    state: Option<&str>,
    issuer: &str,
) -> String {
    let Ok(mut url) = Url::parse(redirect_uri) else {
        return redirect_uri.to_string();
    };
    url.query_pairs_mut()
        .append_pair("error", error)
        .append_pair("error_description", description);
    if let Some(state) = state {
        url.query_pairs_mut().append_pair("state", state);
    }
    url.query_pairs_mut().append_pair("iss", issuer);
    url.to_string()
}
