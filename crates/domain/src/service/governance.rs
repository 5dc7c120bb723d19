//! Use cases around the authentication methods policy and the logs administrators read.

use serde_json::Value;

use super::Latchkey;
use crate::error::{DomainError, StoreError};
use crate::ids::{GroupId, UserId};
use crate::log::{Actor, AuditCategory, AuditEvent, LogQuery, SignInRecord};
use crate::policy::{
    AuthenticationMethodsPolicy, Evaluation, MethodConfiguration, MethodKind, UserGroups,
    default_config, evaluate,
};

impl Latchkey {
    /// The policy in force: the saved one, or the documented defaults before the first save.
    pub async fn policy(&self) -> Result<AuthenticationMethodsPolicy, DomainError> {
        Ok(self.store.policy().await?.unwrap_or_default())
    }

    pub(super) async fn user_groups(&self, user: &UserId) -> Result<UserGroups, StoreError> {
        let mut groups = UserGroups::default();
        let ids = self.store.groups_of_user(user).await?;
        for id in ids {
            let name = self
                .store
                .group(&id)
                .await?
                .map(|g| g.display_name)
                .unwrap_or_else(|| id.to_string());
            groups.groups.insert(id, name);
        }
        Ok(groups)
    }

    /// The policy's answer for one user and one method.
    pub async fn evaluate_for(
        &self,
        user: &UserId,
        method: MethodKind,
    ) -> Result<Evaluation, DomainError> {
        let policy = self.policy().await?;
        Ok(evaluate(&policy, method, &self.user_groups(user).await?))
    }

    pub(super) async fn method_allowed(
        &self,
        user: &UserId,
        method: MethodKind,
    ) -> Result<bool, StoreError> {
        let policy = self.store.policy().await?.unwrap_or_default();
        Ok(evaluate(&policy, method, &self.user_groups(user).await?).allowed)
    }

    /// "Effective policy": every method's evaluation for the user, with reasons.
    pub async fn effective_policy(&self, user: &UserId) -> Result<Vec<Evaluation>, DomainError> {
        self.user(user).await?;
        let policy = self.policy().await?;
        let groups = self.user_groups(user).await?;
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

    /// Like [`Latchkey::set_method_configuration`], refused as a conflict unless the policy is
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
        let groups: Vec<GroupId> = self
            .store
            .list_groups()
            .await?
            .into_iter()
            .map(|g| g.id)
            .collect();
        next.validate(&|id: &GroupId| groups.contains(id))?;
        let event = AuditEvent::new(
            self.now(),
            actor,
            AuditCategory::Policy,
            activity,
            method.id(),
            serde_json::to_value(current.configuration(method)).ok(),
            serde_json::to_value(next.configuration(method)).ok(),
        );
        self.store
            .save_policy(&next, &event)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => DomainError::Conflict(
                    "the policy was changed by someone else meanwhile; reload it and try again"
                        .into(),
                ),
                other => other.into(),
            })?;
        Ok(next)
    }

    pub async fn sign_in_log(&self, query: LogQuery) -> Result<Vec<SignInRecord>, DomainError> {
        check_range(&query)?;
        Ok(self.store.sign_in_records(&query.normalised()).await?)
    }

    pub async fn audit_log(&self, query: LogQuery) -> Result<Vec<AuditEvent>, DomainError> {
        check_range(&query)?;
        Ok(self.store.audit_events(&query.normalised()).await?)
    }

    /// Records an administrative change. Failures to audit fail the request: a change that
    /// cannot be audited should be retried, not silently lost from the record.
    pub(super) async fn audit(
        &self,
        actor: &Actor,
        category: AuditCategory,
        activity: &str,
        target: impl Into<String>,
        before: Option<Value>,
        after: Option<Value>,
    ) -> Result<(), DomainError> {
        let event = AuditEvent::new(self.now(), actor, category, activity, target, before, after);
        Ok(self.store.append_audit(&event).await?)
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
