//! Applications: registering and removing OpenID Connect clients, and Latchkey's own My Apps.

use std::sync::Arc;

use serde::Deserialize;

use super::applications_cache::AppCache;
use super::settings::{MY_APPS_CLIENT_ID, Settings};
use super::shared::AuditTrail;
use crate::application::{Application, ClientKind, SigningAlg, validate_redirect_uri};
use crate::clock::{Clock, Timestamp};
use crate::error::{DomainError, StoreError};
use crate::ids::ClientId;
use crate::log::{Actor, AuditCategory};
use crate::random::RandomSource;
use crate::secret::{Secret, TokenHash};
use crate::store::ApplicationStore;
use crate::strength::AuthStrength;
use crate::user::validate_display_name;

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
    /// The back-channel logout URI (https, or http on loopback); none for no back-channel logout.
    #[serde(default)]
    pub backchannel_logout_uri: Option<String>,
}

pub struct Applications {
    pub(crate) store: Arc<dyn ApplicationStore>,
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
        if client_id.as_str() == MY_APPS_CLIENT_ID {
            return Err(DomainError::Rejected(
                "My Apps is part of Latchkey and cannot be deleted".into(),
            ));
        }
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
    })
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
