//! The authentication methods policy as the use cases read it: may this user use this method,
//! and how. Changing the policy is governance's; this only reads it, so every context can ask
//! without depending on governance.

use std::sync::Arc;

use crate::error::{DomainError, StoreError};
use crate::ids::UserId;
use crate::policy::{AuthenticationMethodsPolicy, Evaluation, MethodKind, UserGroups, evaluate};
use crate::store::{GovernanceStore, GroupStore};

pub(crate) struct MethodAccess {
    pub(crate) governance: Arc<dyn GovernanceStore>,
    pub(crate) groups: Arc<dyn GroupStore>,
}

impl MethodAccess {
    /// The policy in force: the saved one, or the documented defaults before the first save.
    pub(crate) async fn policy(&self) -> Result<AuthenticationMethodsPolicy, StoreError> {
        Ok(self.governance.policy().await?.unwrap_or_default())
    }

    /// The user's groups by id, with their names (the policy targets groups).
    pub(crate) async fn user_groups(&self, user: &UserId) -> Result<UserGroups, StoreError> {
        let mut groups = UserGroups::default();
        let ids = self.groups.groups_of_user(user).await?;
        for id in ids {
            let name = self
                .groups
                .group(&id)
                .await?
                .map(|g| g.display_name)
                .unwrap_or_else(|| id.to_string());
            groups.groups.insert(id, name);
        }
        Ok(groups)
    }

    /// The policy's answer for one user and one method.
    pub(crate) async fn evaluate_for(
        &self,
        user: &UserId,
        method: MethodKind,
    ) -> Result<Evaluation, DomainError> {
        let policy = self.policy().await?;
        Ok(evaluate(&policy, method, &self.user_groups(user).await?))
    }

    pub(crate) async fn method_allowed(
        &self,
        user: &UserId,
        method: MethodKind,
    ) -> Result<bool, StoreError> {
        let policy = self.policy().await?;
        Ok(evaluate(&policy, method, &self.user_groups(user).await?).allowed)
    }
}
