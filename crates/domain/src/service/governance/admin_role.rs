//! The administrator role: bound to a group by id, never by the group's name. A check of the
//! role returns an [`Administrator`], the proof the console's handlers take.

use super::Governance;
use crate::error::{DomainError, StoreError};
use crate::ids::{GroupId, UserId};
use crate::log::{Actor, AuditCategory};
use crate::user::Group;

/// The group that holds the administrator role on a new server.
pub const ADMINISTRATORS_GROUP_NAME: &str = "Latchkey Administrators";

/// Proof that a user held the administrator role when it was checked. Only
/// [`Governance::administrator`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Administrator {
    user: UserId,
}

impl Administrator {
    /// The user who holds the role.
    pub fn user(&self) -> &UserId {
        &self.user
    }
}

impl Governance {
    /// Binds the administrator role to a new group on a server that has no binding yet (first
    /// start). The group gets the familiar name when it is free; the binding, not the name,
    /// is what grants the role.
    pub async fn ensure_administrators_group(&self) -> Result<Group, DomainError> {
        if let Some(group) = self.administrators_group().await? {
            return Ok(group);
        }
        let description = "May use the admin console.";
        let group = match self
            .directory
            .create_group(&Actor::system(), ADMINISTRATORS_GROUP_NAME, description)
            .await
        {
            Ok(group) => group,
            // The name is taken by a group that does not hold the role: never adopt it.
            Err(DomainError::Conflict(_)) => {
                let name = format!("{ADMINISTRATORS_GROUP_NAME} ({})", self.random.hex(3));
                self.directory
                    .create_group(&Actor::system(), &name, description)
                    .await?
            }
            Err(e) => return Err(e),
        };
        self.groups.bind_administrators_group(&group.id).await?;
        Ok(group)
    }

    /// The group that holds the administrator role, if one is bound.
    pub async fn administrators_group(&self) -> Result<Option<Group>, DomainError> {
        match self.groups.administrators_group().await? {
            Some(id) => Ok(self.directory.group(&id).await?),
            None => Ok(None),
        }
    }

    /// Moves the administrator role to another group (by id), audited.
    pub async fn bind_administrators_group(
        &self,
        actor: &Actor,
        group: &GroupId,
    ) -> Result<Group, DomainError> {
        let before = self.administrators_group().await?;
        let group = self
            .directory
            .group(group)
            .await?
            .ok_or(DomainError::NotFound("group"))?;
        self.groups
            .bind_administrators_group(&group.id)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => DomainError::NotFound("group"),
                other => other.into(),
            })?;
        self.audit
            .record(
                actor,
                AuditCategory::GroupManagement,
                "Bind administrator role",
                &group.display_name,
                before.map(|g| serde_json::json!({"groupId": g.id, "displayName": g.display_name})),
                Some(serde_json::json!({"groupId": group.id, "displayName": group.display_name})),
            )
            .await?;
        Ok(group)
    }

    /// The administrator role of the user, if they hold it: a member of the group bound to the
    /// role. A group's display name plays no part.
    pub async fn administrator(&self, user: &UserId) -> Result<Option<Administrator>, DomainError> {
        let Some(admins) = self.groups.administrators_group().await? else {
            return Ok(None);
        };
        Ok(self
            .directory
            .groups_of(user)
            .await?
            .contains(&admins)
            .then(|| Administrator { user: user.clone() }))
    }
}
