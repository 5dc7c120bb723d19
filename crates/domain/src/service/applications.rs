//! Applications: registering and removing OpenID Connect clients, and Latchkey's own My Apps.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;

use super::applications_cache::AppCache;
use super::settings::{MY_APPS_CLIENT_ID, Settings};
use super::shared::AuditTrail;
use crate::application::{
    AppAssignment, Application, AssignedPrincipal, ClientKind, GroupsClaim, SigningAlg,
    validate_origin, validate_redirect_uri,
};
use crate::clock::{Clock, Timestamp};
use crate::error::{DomainError, StoreError};
use crate::ids::{ClientId, UserId};
use crate::log::{
    Actor, AuditCategory, AuthenticationStep, SignInContext, SignInError, SignInRecord,
    SignInStatus,
};
use crate::random::RandomSource;
use crate::secret::{Secret, TokenHash};
use crate::store::{ApplicationStore, GovernanceStore};
use crate::strength::AuthStrength;
use crate::user::{User, validate_display_name};

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
    /// The id of the authentication strength the application requires (`mfa`,
    /// `passwordlessMfa`, `phishingResistantMfa`); none accepts any sign-in.
    #[serde(default)]
    pub required_strength: Option<String>,
    /// Origins (`https://spa.example`) besides those of the redirect URIs from which a browser
    /// app may call the token endpoints (CORS).
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// `none` (the default), `ids` or `names`.
    #[serde(default)]
    pub groups_claim: Option<String>,
    #[serde(default)]
    pub assignment_required: bool,
    /// The back-channel logout URI (https, or http on loopback); none for no back-channel logout.
    #[serde(default)]
    pub backchannel_logout_uri: Option<String>,
}

/// What an administrator may change on a registered application; what is absent stays. The
/// required strength has its own use case ([`Applications::set_required_strength`]); the
/// client kind, its secret and the signing algorithm never change.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApplicationPatch {
    pub display_name: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// An empty string removes the home URL (the application leaves My Apps).
    pub home_url: Option<String>,
    pub groups_claim: Option<String>,
    pub assignment_required: Option<bool>,
    /// Replaces the whole list (may be empty).
    pub allowed_origins: Option<Vec<String>>,
    /// An empty string removes the back-channel logout URI.
    pub backchannel_logout_uri: Option<String>,
}

pub struct Applications {
    pub(crate) store: Arc<dyn ApplicationStore>,
    /// Where a refusal for want of assignment is logged.
    pub(crate) sign_in_log: Arc<dyn GovernanceStore>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) random: Arc<dyn RandomSource>,
    pub(crate) settings: Arc<Settings>,
    pub(crate) audit: Arc<AuditTrail>,
    pub(crate) apps: AppCache,
}

impl Applications {
    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Registers an application. A confidential client's secret is returned once and stored
    /// only as a hash.
    pub async fn register_application(
        &self,
        actor: &Actor,
        new: NewApplication,
    ) -> Result<(Application, Option<Secret>), DomainError> {
        let (app, secret) = self
            .register_application_with_id(ClientId::generate(self.random.as_ref()), new)
            .await?;
        let after = application_summary(&app);
        self.audit
            .record(
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
        let redirect_uris = redirect_uris(&new.redirect_uris)?;
        let post_logout_redirect_uris = post_logout_redirect_uris(&new.post_logout_redirect_uris)?;
        let allowed_origins = allowed_origins(&new.allowed_origins)?;
        let home_url = new
            .home_url
            .as_deref()
            .map(|u| validate_redirect_uri("homeUrl", u))
            .transpose()?;
        let backchannel_logout_uri = new
            .backchannel_logout_uri
            .as_deref()
            .filter(|u| !u.is_empty())
            .map(|u| validate_redirect_uri("backchannelLogoutUri", u))
            .transpose()?;
        let id_token_alg = match new.id_token_signing_alg.as_deref() {
            None => SigningAlg::RS256,
            Some(alg) => SigningAlg::parse(alg)?,
        };
        let required_strength = new
            .required_strength
            .as_deref()
            .map(parse_strength)
            .transpose()?;
        let (kind, secret) = if new.public_client {
            (ClientKind::Public, None)
        } else {
            let secret = self.random.token();
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
            required_strength,
            created_at: self.now(),
            allowed_origins,
            groups_claim: new
                .groups_claim
                .as_deref()
                .map(GroupsClaim::parse)
                .transpose()?
                .unwrap_or_default(),
            assignment_required: new.assignment_required,
            backchannel_logout_uri,
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
        self.apps.forget(&app.client_id);
        Ok((app, secret))
    }

    /// Registers (or re-registers after a change of base URL) Latchkey's own My Apps portal:
    /// a public client that signs users in through the same public flow as any application.
    pub async fn ensure_my_apps(&self) -> Result<Application, DomainError> {
        let base = &self.settings.issuer;
        let client_id = ClientId::from_string(MY_APPS_CLIENT_ID);
        let wanted_redirect = format!("{base}/myapps/callback");
        let wanted_logout = format!("{base}/myapps/signed-out");
        let wanted_backchannel = format!("{base}/myapps/backchannel-logout");
        if let Some(app) = self.store.application(&client_id).await? {
            if app.redirect_uris == [wanted_redirect.clone()]
                && app.post_logout_redirect_uris == [wanted_logout.clone()]
                && app.backchannel_logout_uri.as_deref() == Some(wanted_backchannel.as_str())
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
            required_strength: None,
            allowed_origins: Vec::new(),
            groups_claim: None,
            assignment_required: false,
            backchannel_logout_uri: Some(wanted_backchannel),
        };
        Ok(self.register_application_with_id(client_id, new).await?.0)
    }

    /// Sets or clears the authentication strength an application requires before it gets a
    /// code. Takes effect at once: the cache forgets the application.
    pub async fn set_required_strength(
        &self,
        actor: &Actor,
        client_id: &ClientId,
        strength: Option<&str>,
    ) -> Result<Application, DomainError> {
        let strength = strength.map(parse_strength).transpose()?;
        let before = self.application(client_id).await?;
        if !self
            .store
            .set_required_strength(client_id, strength)
            .await?
        {
            return Err(DomainError::NotFound("application"));
        }
        self.apps.forget(client_id);
        let after = Application {
            required_strength: strength,
            ..before.clone()
        };
        self.audit
            .record(
                actor,
                AuditCategory::ApplicationManagement,
                "Update application",
                client_id.as_str(),
                Some(application_summary(&before)),
                Some(application_summary(&after)),
            )
            .await?;
        Ok(after)
    }

    /// Changes a registered application's settings, validated as at registration. Takes
    /// effect at once on this instance (the cache forgets the application) and within
    /// [`super::APP_CACHE_SECONDS`] on others.
    pub async fn update_application(
        &self,
        actor: &Actor,
        client_id: &ClientId,
        patch: ApplicationPatch,
    ) -> Result<Application, DomainError> {
        refuse_my_apps(client_id, "changed")?;
        let before = self.stored(client_id).await?;
        let mut after = before.clone();
        if let Some(name) = &patch.display_name {
            after.display_name = validate_display_name("displayName", name)?;
        }
        if let Some(uris) = &patch.redirect_uris {
            after.redirect_uris = redirect_uris(uris)?;
        }
        if let Some(uris) = &patch.post_logout_redirect_uris {
            after.post_logout_redirect_uris = post_logout_redirect_uris(uris)?;
        }
        if let Some(home) = &patch.home_url {
            after.home_url = match home.as_str() {
                "" => None,
                url => Some(validate_redirect_uri("homeUrl", url)?),
            };
        }
        if let Some(claim) = &patch.groups_claim {
            after.groups_claim = GroupsClaim::parse(claim)?;
        }
        if let Some(required) = patch.assignment_required {
            after.assignment_required = required;
        }
        if let Some(origins) = &patch.allowed_origins {
            after.allowed_origins = allowed_origins(origins)?;
        }
        if let Some(uri) = &patch.backchannel_logout_uri {
            after.backchannel_logout_uri = match uri.as_str() {
                "" => None,
                uri => Some(validate_redirect_uri("backchannelLogoutUri", uri)?),
            };
        }
        if !self.store.update_application(&after).await? {
            return Err(DomainError::NotFound("application"));
        }
        self.apps.forget(client_id);
        self.audit
            .record(
                actor,
                AuditCategory::ApplicationManagement,
                "Update application",
                client_id.as_str(),
                Some(application_summary(&before)),
                Some(application_summary(&after)),
            )
            .await?;
        Ok(after)
    }

    /// The application's assignments, oldest first.
    pub async fn assignments(
        &self,
        client_id: &ClientId,
    ) -> Result<Vec<AppAssignment>, DomainError> {
        self.stored(client_id).await?;
        Ok(self.store.assignments(client_id).await?)
    }

    /// Assigns the application to a user or a group (Entra's app role assignment, default
    /// role). Audited.
    pub async fn assign(
        &self,
        actor: &Actor,
        client_id: &ClientId,
        principal: AssignedPrincipal,
    ) -> Result<AppAssignment, DomainError> {
        refuse_my_apps(client_id, "assigned")?;
        self.stored(client_id).await?;
        let assignment = AppAssignment {
            client_id: client_id.clone(),
            principal,
            created_at: self.now(),
        };
        self.store
            .add_assignment(&assignment)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => DomainError::Conflict(format!(
                    "that {} is already assigned to this application",
                    principal_kind(&assignment.principal)
                )),
                StoreError::NotFound => {
                    DomainError::NotFound(principal_kind(&assignment.principal))
                }
                other => other.into(),
            })?;
        self.audit
            .record(
                actor,
                AuditCategory::ApplicationManagement,
                "Add app role assignment",
                client_id.as_str(),
                None,
                Some(assignment_summary(&assignment)),
            )
            .await?;
        Ok(assignment)
    }

    /// Removes an assignment. Users who were assigned only through it are refused from their
    /// next authorization or refresh on. Audited.
    pub async fn unassign(
        &self,
        actor: &Actor,
        client_id: &ClientId,
        principal: AssignedPrincipal,
    ) -> Result<(), DomainError> {
        self.stored(client_id).await?;
        if !self.store.remove_assignment(client_id, &principal).await? {
            return Err(DomainError::NotFound("assignment"));
        }
        let removed = AppAssignment {
            client_id: client_id.clone(),
            principal,
            created_at: self.now(),
        };
        self.audit
            .record(
                actor,
                AuditCategory::ApplicationManagement,
                "Remove app role assignment",
                client_id.as_str(),
                Some(assignment_summary(&removed)),
                None,
            )
            .await
    }

    /// The applications `user` is assigned to, directly or through a group: what My Apps
    /// shows them.
    pub async fn assigned_to(&self, user: &UserId) -> Result<Vec<ClientId>, DomainError> {
        Ok(self.store.applications_assigned_to(user).await?)
    }

    /// THE assignment check: whether `user` may get a code or tokens for `app`. An application
    /// that does not require assignment admits everyone; one that does admits users assigned
    /// directly or through a group they are a member of, read from the store at each call
    /// (so a removal counts at once). A refusal is written to the sign-in log (50105) and
    /// comes back as [`DomainError::NotAssigned`], whose message the user is shown.
    ///
    /// Every path that issues a code or tokens for a user calls this and nothing else:
    /// `Tokens::issue_code` (a session reused at `/authorize`, a fresh sign-in, the
    /// registration campaign's continuation) and `Tokens::refresh`; a device grant's approval
    /// must call it too. The one exception, `Tokens::prepare_code`, asks
    /// [`Self::is_assigned`] and, when that says no, leaves the refusal to `issue_code`.
    /// `method` names how the user signed in, for the log.
    pub async fn ensure_assigned(
        &self,
        app: &Application,
        user: &User,
        method: &str,
        context: &SignInContext,
    ) -> Result<(), DomainError> {
        if self.is_assigned(app, user).await? {
            return Ok(());
        }
        let now = self.now();
        let error = SignInError::NotAssigned;
        let mut status = SignInStatus::success();
        status.fail(error);
        self.sign_in_log
            .append_sign_in_record(&SignInRecord {
                id: self.random.hex(16),
                created_date_time: now,
                user_id: Some(user.id.clone()),
                user_principal_name: user.upn.to_string(),
                user_display_name: Some(user.display_name.clone()),
                app_id: Some(app.client_id.clone()),
                app_display_name: Some(app.display_name.clone()),
                ip_address: context.ip_address.map(|ip| ip.to_string()),
                location: context.location.clone(),
                authentication_method: method.to_string(),
                status,
                authentication_details: vec![AuthenticationStep {
                    authentication_method: method.to_string(),
                    authentication_method_detail: None,
                    authentication_step_date_time: now.to_rfc3339(),
                    authentication_step_result_detail: error.failure_reason().into(),
                    succeeded: false,
                }],
            })
            .await?;
        Err(DomainError::NotAssigned(not_assigned_message(
            &app.display_name,
            user.upn.as_str(),
        )))
    }

    /// Whether `app` admits `user` (see [`Self::ensure_assigned`]), with nothing logged.
    pub(crate) async fn is_assigned(
        &self,
        app: &Application,
        user: &User,
    ) -> Result<bool, DomainError> {
        Ok(!app.assignment_required
            || self
                .store
                .applications_assigned_to(&user.id)
                .await?
                .contains(&app.client_id))
    }

    /// The application, read from the store (not the cache): what an administrator changes.
    async fn stored(&self, client_id: &ClientId) -> Result<Application, DomainError> {
        self.store
            .application(client_id)
            .await?
            .ok_or(DomainError::NotFound("application"))
    }

    pub async fn application(&self, client_id: &ClientId) -> Result<Application, DomainError> {
        self.cached(client_id)
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
        refuse_my_apps(client_id, "deleted")?;
        let app = self.application(client_id).await?;
        self.store.delete_application(client_id).await?;
        self.apps.forget(client_id);
        let before = application_summary(&app);
        self.audit
            .record(
                actor,
                AuditCategory::ApplicationManagement,
                "Delete application",
                client_id.as_str(),
                Some(before),
                None,
            )
            .await
    }

    /// Every registered application's browser origins (CORS), from memory when read in the
    /// last few seconds. Adding or deleting an application through this instance is seen at
    /// once; through another instance within `APP_CACHE_SECONDS`.
    pub async fn browser_origins(&self) -> Result<Arc<BrowserOrigins>, StoreError> {
        let now = self.now();
        if let Some(origins) = self.apps.origins(now) {
            return Ok(origins);
        }
        let mut by_origin: HashMap<String, Vec<ClientId>> = HashMap::new();
        for app in self.store.list_applications().await? {
            for origin in app.browser_origins() {
                by_origin
                    .entry(origin)
                    .or_default()
                    .push(app.client_id.clone());
            }
        }
        let origins = Arc::new(BrowserOrigins { by_origin });
        self.apps.put_origins(origins.clone(), now);
        Ok(origins)
    }

    /// The application with this client id, from memory when it was read in the last few
    /// seconds.
    pub(crate) async fn cached(&self, id: &ClientId) -> Result<Option<Application>, StoreError> {
        let now = self.now();
        if let Some(app) = self.apps.get(id, now) {
            return Ok(Some(app));
        }
        let app = self.store.application(id).await?;
        if let Some(app) = &app {
            self.apps.put(app, now);
        }
        Ok(app)
    }
}

/// The browser origins of all applications: which origins get CORS headers.
#[derive(Debug, Default)]
pub struct BrowserOrigins {
    by_origin: HashMap<String, Vec<ClientId>>,
}

impl BrowserOrigins {
    /// Whether some application runs on `origin` (exact match, as the browser sent it).
    pub fn is_known(&self, origin: &str) -> bool {
        self.by_origin.contains_key(origin)
    }
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
        "requiredStrength": app.required_strength.map(AuthStrength::id),
        "allowedOrigins": app.allowed_origins,
        "homeUrl": app.home_url,
        "groupsClaim": app.groups_claim.as_str(),
        "assignmentRequired": app.assignment_required,
    })
}

fn assignment_summary(assignment: &AppAssignment) -> serde_json::Value {
    serde_json::json!({
        "appId": assignment.client_id,
        "principal": assignment.principal,
    })
}

fn principal_kind(principal: &AssignedPrincipal) -> &'static str {
    match principal {
        AssignedPrincipal::User(_) => "user",
        AssignedPrincipal::Group(_) => "group",
    }
}

/// My Apps is Latchkey's own: every user may use it, and its settings follow the base URL.
fn refuse_my_apps(client_id: &ClientId, what: &str) -> Result<(), DomainError> {
    if client_id.as_str() == MY_APPS_CLIENT_ID {
        return Err(DomainError::Rejected(format!(
            "My Apps is part of Latchkey and cannot be {what}"
        )));
    }
    Ok(())
}

/// What a user who is not assigned is told, in the words of Entra's AADSTS50105.
pub fn not_assigned_message(app_name: &str, upn: &str) -> String {
    format!(
        "Your administrator has configured the application {app_name} to block users unless \
         they are specifically granted ('assigned') access to the application. The signed in \
         user '{upn}' is blocked because they are not a direct member of a group with access, \
         nor had access directly assigned by an administrator. Please contact your \
         administrator to assign access to this application."
    )
}

fn redirect_uris(uris: &[String]) -> Result<Vec<String>, DomainError> {
    if uris.is_empty() {
        return Err(DomainError::invalid(
            "redirectUris",
            "at least one redirect URI is required",
        ));
    }
    uri_list("redirectUris", uris)
}

fn post_logout_redirect_uris(uris: &[String]) -> Result<Vec<String>, DomainError> {
    uri_list("postLogoutRedirectUris", uris)
}

fn allowed_origins(origins: &[String]) -> Result<Vec<String>, DomainError> {
    if origins.len() > 20 {
        return Err(DomainError::invalid(
            "allowedOrigins",
            "at most 20 origins are allowed",
        ));
    }
    origins
        .iter()
        .map(|o| validate_origin("allowedOrigins", o))
        .collect()
}

fn uri_list(field: &'static str, uris: &[String]) -> Result<Vec<String>, DomainError> {
    if uris.len() > 20 {
        return Err(DomainError::invalid(field, "at most 20 URIs are allowed"));
    }
    uris.iter()
        .map(|u| validate_redirect_uri(field, u))
        .collect()
}

/// A strength id from the admin API, the command line or the console.
fn parse_strength(id: &str) -> Result<AuthStrength, DomainError> {
    AuthStrength::parse(id).ok_or_else(|| {
        let known: Vec<&str> = AuthStrength::ALL.iter().map(|s| s.id()).collect();
        DomainError::invalid(
            "requiredStrength",
            format!(
                "{:?} is not an authentication strength; use one of {}",
                id.chars().take(64).collect::<String>(),
                known.join(", ")
            ),
        )
    })
}
