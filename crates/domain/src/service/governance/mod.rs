//! Governance: the authentication methods policy, the sign-in and audit logs, user risk,
//! administrator API tokens and the administrator role.

mod admin_role;
mod admin_tokens;
mod risk;

use std::sync::Arc;

use serde_json::Value;

pub use admin_role::{ADMINISTRATORS_GROUP_NAME, Administrator};
pub use admin_tokens::NewAdminToken;

use super::access::MethodAccess;
use super::directory::Directory;
use super::shared::{AuditTrail, ServerKeys};
use crate::clock::{Clock, Timestamp};
use crate::error::{DomainError, StoreError};
use crate::ids::{GroupId, UserId};
use crate::log::{Actor, AuditCategory, AuditEvent, LogQuery, SignInRecord};
use crate::notify::EventBus;
use crate::policy::{
    AuthenticationMethodsPolicy, Evaluation, MethodConfiguration, MethodKind, RegistrationCampaign,
    default_config, evaluate,
};
use crate::random::RandomSource;
use crate::store::{AdminTokenStore, GovernanceStore, GroupStore};

pub struct Governance {
    pub(crate) store: Arc<dyn GovernanceStore>,
    /// Only for the administrator role's binding; groups themselves are the directory's.
    pub(crate) groups: Arc<dyn GroupStore>,
    pub(crate) admin_tokens: Arc<dyn AdminTokenStore>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) random: Arc<dyn RandomSource>,
    pub(crate) events: Arc<dyn EventBus>,
    pub(crate) audit: Arc<AuditTrail>,
    pub(crate) keys: Arc<ServerKeys>,
    pub(crate) access: Arc<MethodAccess>,
    pub(crate) directory: Arc<Directory>,
}

impl Governance {
    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The policy in force: the saved one, or the documented defaults before the first save.
    pub async fn policy(&self) -> Result<AuthenticationMethodsPolicy, DomainError> {
        Ok(self.access.policy().await?)
    }

    /// "Effective policy": every method's evaluation for the user, with reasons.
    pub async fn effective_policy(&self, user: &UserId) -> Result<Vec<Evaluation>, DomainError> {
        self.directory.user(user).await?;
        let policy = self.policy().await?;
        let groups = self.access.user_groups(user).await?;
        Ok(MethodKind::ALL
            .into_iter()
            .map(|m| evaluate(&policy, m, &groups))
            .collect())
    }

    /// Replaces one method's configuration. The whole policy is validated first; an invalid
    /// one is refused with a message naming the field and nothing is saved. A concurrent
    /// change by someone else is refused as a conflict.
    pub async fn set_method_configuration(
        &self,
        actor: &Actor,
        method: MethodKind,
        configuration: Value,
    ) -> Result<AuthenticationMethodsPolicy, DomainError> {
        self.set_method_configuration_at(actor, method, configuration, None)
            .await
    }

    /// Like [`Governance::set_method_configuration`], refused as a conflict unless the policy is
    /// still at `expected_version` (the version the administrator's change was based on).
    pub async fn set_method_configuration_at(
        &self,
        actor: &Actor,
        method: MethodKind,
        configuration: Value,
        expected_version: Option<u64>,
    ) -> Result<AuthenticationMethodsPolicy, DomainError> {
        let configuration = MethodConfiguration::from_json(method, configuration)?;
        let current = self.policy().await?;
        if let Some(expected) = expected_version
            && expected != current.version
        {
            return Err(DomainError::Conflict(format!(
                "the policy is at version {}, not {expected}; reload it and apply your change again",
                current.version
            )));
        }
        self.save_configuration(
            actor,
            method,
            configuration,
            "Update authentication method configuration",
        )
        .await
    }

    /// Restores one method's documented default configuration.
    pub async fn reset_method_configuration(
        &self,
        actor: &Actor,
        method: MethodKind,
    ) -> Result<AuthenticationMethodsPolicy, DomainError> {
        self.save_configuration(
            actor,
            method,
            default_config(method),
            "Reset authentication method configuration",
        )
        .await
    }

    async fn save_configuration(
        &self,
        actor: &Actor,
        method: MethodKind,
        configuration: MethodConfiguration,
        activity: &str,
    ) -> Result<AuthenticationMethodsPolicy, DomainError> {
        let current = self.policy().await?;
        let mut next = current.with(configuration);
        next.version = current.version + 1;
        self.validate_against_groups(&next).await?;
        let event = AuditEvent::new(
            self.now(),
            actor,
            AuditCategory::Policy,
            activity,
            method.id(),
            serde_json::to_value(current.configuration(method)).ok(),
            serde_json::to_value(next.configuration(method)).ok(),
        );
        self.save_policy_version(&next, &event).await?;
        Ok(next)
    }

    /// Replaces the registration campaign (Graph's `registrationEnforcement.
    /// authenticationMethodsRegistrationCampaign`), validated with the whole policy and audited
    /// like a method's configuration; refused as a conflict unless the policy is still at
    /// `expected_version` when one is given.
    pub async fn set_registration_campaign(
        &self,
        actor: &Actor,
        campaign: Value,
        expected_version: Option<u64>,
    ) -> Result<AuthenticationMethodsPolicy, DomainError> {
        let campaign = RegistrationCampaign::from_json(campaign)?;
        self.save_campaign(
            actor,
            campaign,
            expected_version,
            "Update registration campaign",
        )
        .await
    }

    /// Restores the campaign's default (off).
    pub async fn reset_registration_campaign(
        &self,
        actor: &Actor,
    ) -> Result<AuthenticationMethodsPolicy, DomainError> {
        self.save_campaign(
            actor,
            RegistrationCampaign::default(),
            None,
            "Reset registration campaign",
        )
        .await
    }

    async fn save_campaign(
        &self,
        actor: &Actor,
        campaign: RegistrationCampaign,
        expected_version: Option<u64>,
        activity: &str,
    ) -> Result<AuthenticationMethodsPolicy, DomainError> {
        let current = self.policy().await?;
        if let Some(expected) = expected_version
            && expected != current.version
        {
            return Err(DomainError::Conflict(format!(
                "the policy is at version {}, not {expected}; reload it and apply your change again",
                current.version
            )));
        }
        let mut next = current.clone();
        next.registration_enforcement
            .authentication_methods_registration_campaign = campaign;
        next.version = current.version + 1;
        self.validate_against_groups(&next).await?;
        let event = AuditEvent::new(
            self.now(),
            actor,
            AuditCategory::Policy,
            activity,
            "registrationCampaign",
            serde_json::to_value(
                &current
                    .registration_enforcement
                    .authentication_methods_registration_campaign,
            )
            .ok(),
            serde_json::to_value(
                &next
                    .registration_enforcement
                    .authentication_methods_registration_campaign,
            )
            .ok(),
        );
        self.save_policy_version(&next, &event).await?;
        Ok(next)
    }

    /// Validates a candidate policy against the groups that exist now.
    async fn validate_against_groups(
        &self,
        next: &AuthenticationMethodsPolicy,
    ) -> Result<(), DomainError> {
        let groups: Vec<GroupId> = self
            .directory
            .list_groups()
            .await?
            .into_iter()
            .map(|g| g.id)
            .collect();
        next.validate(&|id: &GroupId| groups.contains(id))?;
        Ok(())
    }

    /// Stores the next policy version with its audit event; a concurrent save surfaces as a
    /// conflict the admin can resolve by reloading.
    async fn save_policy_version(
        &self,
        next: &AuthenticationMethodsPolicy,
        event: &AuditEvent,
    ) -> Result<(), DomainError> {
        self.store
            .save_policy(next, event)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => DomainError::Conflict(
                    "the policy was changed by someone else meanwhile; reload it and try again"
                        .into(),
                ),
                other => other.into(),
            })
    }

    pub async fn sign_in_log(&self, query: LogQuery) -> Result<Vec<SignInRecord>, DomainError> {
        check_range(&query)?;
        Ok(self.store.sign_in_records(&query.normalised()).await?)
    }

    pub async fn audit_log(&self, query: LogQuery) -> Result<Vec<AuditEvent>, DomainError> {
        check_range(&query)?;
        Ok(self.store.audit_events(&query.normalised()).await?)
    }

    /// Removes log records older than the retention.
    pub async fn purge_old_logs(&self, retention_days: i64) -> Result<u64, DomainError> {
        let cutoff = self.now().plus_seconds(-retention_days * 86_400);
        Ok(self.store.purge_logs(cutoff).await?)
    }
}

fn check_range(query: &LogQuery) -> Result<(), DomainError> {
    if let (Some(since), Some(until)) = (query.since, query.until)
        && since > until
    {
        return Err(DomainError::invalid("since", "must not be after until"));
    }
    for (field, value) in [
        ("user", &query.user),
        ("app", &query.app),
        ("method", &query.method),
        ("category", &query.category),
    ] {
        if value.as_ref().is_some_and(|v| v.len() > 256) {
            return Err(DomainError::invalid(field, "is longer than 256 characters"));
        }
    }
    Ok(())
}
