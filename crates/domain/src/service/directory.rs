//! The directory: users, groups, their passwords and Temporary Access Passes.
//!
//! Only this context writes users and groups; the others read a user through it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::access::MethodAccess;
use super::shared::{AuditTrail, Hashers, ServerKeys};
use crate::clock::{Clock, Timestamp};
use crate::credential::{PassRequest, TemporaryAccessPass, hash_password, new_pass};
use crate::error::{DomainError, StoreError};
use crate::ids::{GroupId, UserId};
use crate::log::{Actor, AuditCategory};
use crate::notify::{DomainEvent, EventBus};
use crate::random::RandomSource;
use crate::secret::Secret;
use crate::store::{GroupStore, SessionStore, UserStore};
use crate::user::{Group, Upn, User, validate_display_name, validate_email};

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

/// What the directory audits: users by sign-in name, groups by display name.
trait Audited {
    fn category(&self) -> AuditCategory;
    fn audit_name(&self) -> &str;
}

impl Audited for User {
    fn category(&self) -> AuditCategory {
        AuditCategory::UserManagement
    }
    fn audit_name(&self) -> &str {
        self.upn.as_str()
    }
}

impl Audited for Group {
    fn category(&self) -> AuditCategory {
        AuditCategory::GroupManagement
    }
    fn audit_name(&self) -> &str {
        &self.display_name
    }
}

/// Maps the store's conflict on creating a `what` to "the name is taken"; other store errors
/// pass through.
fn name_taken(what: &'static str, name: &str) -> impl FnOnce(StoreError) -> DomainError {
    let name = name.to_string();
    move |e| match e {
        StoreError::Conflict(_) => {
            DomainError::Conflict(format!("a {what} named {name} already exists"))
        }
        other => other.into(),
    }
}

pub struct Directory {
    pub(crate) users: Arc<dyn UserStore>,
    pub(crate) groups: Arc<dyn GroupStore>,
    /// Passes live beside sessions: both are what a user signs in with or holds.
    pub(crate) sessions: Arc<dyn SessionStore>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) random: Arc<dyn RandomSource>,
    pub(crate) events: Arc<dyn EventBus>,
    pub(crate) audit: Arc<AuditTrail>,
    pub(crate) keys: Arc<ServerKeys>,
    pub(crate) hashers: Arc<Hashers>,
    pub(crate) access: Arc<MethodAccess>,
    /// Tells applications (back-channel logout) when revoking sessions ends theirs.
    pub(crate) logouts: Arc<super::tokens::BackchannelLogouts>,
}

impl Directory {
    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Audits the addition of a user or a group, with all of it as the "after" value.
    async fn audit_added(
        &self,
        actor: &Actor,
        activity: &str,
        added: &(impl Audited + Serialize),
    ) -> Result<(), DomainError> {
        let after = serde_json::to_value(added).ok();
        self.audit_change(actor, activity, added, None, after).await
    }

    /// Audits a change to a user or a group, filed and named as the audit log shows it.
    async fn audit_change(
        &self,
        actor: &Actor,
        activity: &str,
        changed: &impl Audited,
        before: Option<Value>,
        after: Option<Value>,
    ) -> Result<(), DomainError> {
        let (category, target) = (changed.category(), changed.audit_name());
        self.audit
            .record(actor, category, activity, target, before, after)
            .await
    }

    pub async fn create_user(&self, actor: &Actor, new: NewUser) -> Result<User, DomainError> {
        let user = User {
            id: UserId::generate(self.random.as_ref()),
            upn: Upn::parse(&new.user_principal_name)?,
            display_name: validate_display_name("displayName", &new.display_name)?,
            email: new.mail.as_deref().map(validate_email).transpose()?,
            enabled: new.account_enabled,
            created_at: self.now(),
        };
        self.users
            .create_user(&user)
            .await
            .map_err(name_taken("user", user.upn.as_str()))?;
        self.audit_added(actor, "Add user", &user).await?;
        Ok(user)
    }

    pub async fn user(&self, id: &UserId) -> Result<User, DomainError> {
        self.users
            .user(id)
            .await?
            .ok_or(DomainError::NotFound("user"))
    }

    /// Finds a user by id or by user principal name.
    pub async fn find_user(&self, key: &str) -> Result<User, DomainError> {
        if key.contains('@') {
            let upn = Upn::parse(key)?;
            return self
                .users
                .user_by_upn(&upn)
                .await?
                .ok_or(DomainError::NotFound("user"));
        }
        self.user(&UserId::from_string(key)).await
    }

    pub async fn list_users(&self) -> Result<Vec<User>, DomainError> {
        Ok(self.users.list_users().await?)
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
        self.users.update_user(&user).await?;
        if disabling {
            self.revoke_sessions_and_grants(&user.id).await?;
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
        self.audit_change(actor, activity, &user, before, after)
            .await?;
        Ok(user)
    }

    /// The user's certificate user ids (what `certificateUserIds` bindings find them by).
    pub async fn certificate_user_ids(&self, id: &UserId) -> Result<Vec<String>, DomainError> {
        let user = self.user(id).await?;
        Ok(self.users.certificate_user_ids(&user.id).await?)
    }

    /// Replaces the user's certificate user ids (validated and normalised by
    /// [`crate::user::validate_certificate_user_ids`]). A value another user has is a
    /// conflict: one certificate never binds two accounts. Audited with the old and new lists.
    pub async fn set_certificate_user_ids(
        &self,
        actor: &Actor,
        id: &UserId,
        values: &[String],
    ) -> Result<Vec<String>, DomainError> {
        let user = self.user(id).await?;
        let values = crate::user::validate_certificate_user_ids(values)?;
        let before = self.users.certificate_user_ids(&user.id).await?;
        self.users
            .set_certificate_user_ids(&user.id, &values)
            .await?;
        self.audit_change(
            actor,
            "Update certificate user ids",
            &user,
            Some(serde_json::json!({ "certificateUserIds": before })),
            Some(serde_json::json!({ "certificateUserIds": values })),
        )
        .await?;
        Ok(values)
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
        self.users.set_password_hash(&user.id, Some(&hash)).await?;
        self.audit_change(actor, "Reset password", &user, None, None)
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
            id: GroupId::generate(self.random.as_ref()),
            display_name: validate_display_name("displayName", display_name)?,
            description: description.to_string(),
            created_at: self.now(),
        };
        self.groups
            .create_group(&group)
            .await
            .map_err(name_taken("group", &group.display_name))?;
        self.audit_added(actor, "Add group", &group).await?;
        Ok(group)
    }

    /// Finds a group by id or by display name (case-insensitive).
    pub async fn find_group(&self, key: &str) -> Result<Group, DomainError> {
        if let Some(group) = self.groups.group(&GroupId::from_string(key)).await? {
            return Ok(group);
        }
        let groups = self.groups.list_groups().await?;
        groups
            .into_iter()
            .find(|g| g.display_name.eq_ignore_ascii_case(key.trim()))
            .ok_or(DomainError::NotFound("group"))
    }

    /// The group with this id, or `NotFound`.
    async fn existing_group(&self, id: &GroupId) -> Result<Group, DomainError> {
        self.groups
            .group(id)
            .await?
            .ok_or(DomainError::NotFound("group"))
    }

    pub async fn list_groups(&self) -> Result<Vec<Group>, DomainError> {
        Ok(self.groups.list_groups().await?)
    }

    pub async fn add_group_member(
        &self,
        actor: &Actor,
        group: &GroupId,
        user: &UserId,
    ) -> Result<(), DomainError> {
        let group = self.existing_group(group).await?;
        let user = self.user(user).await?;
        if self
            .groups
            .groups_of_user(&user.id)
            .await?
            .contains(&group.id)
        {
            return Ok(());
        }
        self.groups.add_group_member(&group.id, &user.id).await?;
        let after = serde_json::json!({"member": user.upn});
        self.audit_change(actor, "Add member to group", &group, None, Some(after))
            .await
    }

    pub async fn remove_group_member(
        &self,
        actor: &Actor,
        group: &GroupId,
        user: &UserId,
    ) -> Result<(), DomainError> {
        let group = self.existing_group(group).await?;
        self.groups.remove_group_member(&group.id, user).await?;
        let before = serde_json::json!({"member": user});
        self.audit_change(
            actor,
            "Remove member from group",
            &group,
            Some(before),
            None,
        )
        .await
    }

    pub async fn group_members(&self, group: &GroupId) -> Result<Vec<User>, DomainError> {
        self.existing_group(group).await?;
        let mut users = Vec::new();
        for id in self.groups.group_members(group).await? {
            if let Some(user) = self.users.user(&id).await? {
                users.push(user);
            }
        }
        Ok(users)
    }

    /// Issues a pass, replacing any previous one. The secret is returned once.
    /// The rules come from the Temporary Access Pass configuration of the policy.
    pub async fn issue_pass(
        &self,
        actor: &Actor,
        user: &UserId,
        request: &PassRequest,
    ) -> Result<(TemporaryAccessPass, Secret), DomainError> {
        let user = self.user(user).await?;
        let rules = self.access.policy().await?.temporary_access_pass.rules();
        let key = self.keys.pass_key().await?;
        let (pass, secret) = new_pass(
            &rules,
            user.id.clone(),
            request,
            self.now(),
            key,
            self.random.as_ref(),
        )?;
        self.sessions.put_pass(&pass).await?;
        let after = serde_json::json!({
            "startDateTime": pass.starts_at.to_rfc3339(),
            "lifetimeInMinutes": pass.lifetime_minutes,
            "isUsableOnce": pass.usable_once,
        });
        self.audit_change(
            actor,
            "Create Temporary Access Pass",
            &user,
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
        Ok(self.sessions.pass_for_user(user).await?)
    }

    pub async fn delete_pass(&self, actor: &Actor, user: &UserId) -> Result<(), DomainError> {
        let user = self.user(user).await?;
        self.sessions.delete_pass(&user.id).await?;
        self.audit_change(actor, "Delete Temporary Access Pass", &user, None, None)
            .await
    }

    // ----- reads for the other contexts ------------------------------------------------

    /// The user with this id, if there is one (a read the other contexts' use cases make).
    pub(crate) async fn lookup(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        self.users.user(id).await
    }

    /// The user with this principal name, if there is one.
    pub(crate) async fn lookup_upn(&self, upn: &Upn) -> Result<Option<User>, StoreError> {
        self.users.user_by_upn(upn).await
    }

    /// The group with this id, if there is one.
    pub(crate) async fn group(&self, id: &GroupId) -> Result<Option<Group>, StoreError> {
        self.groups.group(id).await
    }

    /// The ids of the groups the user is a member of (the console's user page).
    pub async fn groups_of_user(&self, user: &UserId) -> Result<Vec<GroupId>, DomainError> {
        Ok(self.groups.groups_of_user(user).await?)
    }

    /// The ids of the groups the user is a member of.
    pub(crate) async fn groups_of(&self, user: &UserId) -> Result<Vec<GroupId>, StoreError> {
        self.groups.groups_of_user(user).await
    }

    /// Ends every session of the user and revokes every token applications got for them (the
    /// user was disabled, or reported a sign-in that was not theirs).
    pub(crate) async fn revoke_sessions_and_grants(&self, user: &UserId) -> Result<(), StoreError> {
        let ended = self.logouts.of_user(user).await;
        self.sessions.revoke_user_sessions_and_grants(user).await?;
        self.logouts.notify(&ended).await;
        Ok(())
    }

    /// The user's pass, if they have one (the sign-in's check).
    pub(crate) async fn pass_of(
        &self,
        user: &UserId,
    ) -> Result<Option<TemporaryAccessPass>, StoreError> {
        self.sessions.pass_for_user(user).await
    }

    /// Whether the user has a password.
    pub(crate) async fn has_password(&self, user: &UserId) -> Result<bool, StoreError> {
        Ok(self.users.password_hash(user).await?.is_some())
    }

    /// The stored password hash, for the sign-in's check.
    pub(crate) async fn password_hash(&self, user: &UserId) -> Result<Option<String>, StoreError> {
        self.users.password_hash(user).await
    }

    /// Spends a one-time pass; false when it was already spent (a race another sign-in won).
    pub(crate) async fn mark_pass_used(
        &self,
        user: &UserId,
        pass: &crate::secret::TokenHash,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.sessions.mark_pass_used(user, pass, now).await
    }
}
