//! Administration: administrator API tokens (create, list, revoke, authenticate), the server
//! keys that hash stored secrets, and the administrator role, bound to a group by id.

use serde::Deserialize;

use super::Latchkey;
use crate::admin_token::{
    AdminToken, AdminTokenStatus, INITIAL_TOKEN_NAME, LAST_USED_PRECISION_SECONDS,
    new_token_secret, validate_expiry, validate_token_name,
};
use crate::clock::{Timestamp, parse_time};
use crate::error::{DomainError, StoreError};
use crate::ids::{AdminTokenId, GroupId, UserId};
use crate::log::{Actor, AuditCategory};
use crate::secret::{Secret, TokenHash};
use crate::user::Group;

/// The longest bearer value looked at; anything longer is refused unread.
const MAX_PRESENTED_TOKEN_BYTES: usize = 256;
/// The group that holds the administrator role on a new server.
pub const ADMINISTRATORS_GROUP_NAME: &str = crate::demo::ADMINISTRATORS_GROUP;

/// Server keys, one per purpose. Each is its own random 32-byte server secret, so no key can
/// stand in for another (a pass hash is never an administrator-token hash, nor a CSRF tag).
pub(super) struct PurposeKeys {
    admin_token: Vec<u8>,
    pass: Vec<u8>,
}

/// What an administrator asks for to create a token.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewAdminToken {
    pub display_name: String,
    /// RFC 3339 (`2027-01-31T00:00:00Z`) or a date; none means the token does not expire.
    #[serde(default)]
    pub expires_date_time: Option<String>,
}

impl Latchkey {
    async fn purpose_keys(&self) -> Result<&PurposeKeys, DomainError> {
        self.keys
            .get_or_try_init(|| async {
                Ok::<_, DomainError>(PurposeKeys {
                    admin_token: self.server_secret("admin-token-hmac-key").await?,
                    pass: self.server_secret("pass-hmac-key").await?,
                })
            })
            .await
    }

    /// The key Temporary Access Passes are stored under (HMAC-SHA-256).
    pub(super) async fn pass_key(&self) -> Result<&[u8], DomainError> {
        Ok(&self.purpose_keys().await?.pass)
    }

    /// How a typed Temporary Access Pass is compared with the stored one.
    pub(super) async fn pass_hash(&self, pass: &str) -> Result<TokenHash, DomainError> {
        Ok(TokenHash::keyed(self.pass_key().await?, pass))
    }

    async fn admin_token_hash(&self, token: &str) -> Result<TokenHash, DomainError> {
        Ok(TokenHash::keyed(
            &self.purpose_keys().await?.admin_token,
            token,
        ))
    }

    // ----- administrator API tokens ------------------------------------------------------

    /// Creates the token named "initial" on a server that never had one; returns it once.
    /// A server whose tokens were all revoked gets none: recovery is the offline command.
    pub async fn ensure_admin_token(&self) -> Result<Option<Secret>, DomainError> {
        if self.store.count_admin_tokens().await? > 0 {
            return Ok(None);
        }
        let (_, secret) = self
            .mint_admin_token(&Actor::system(), INITIAL_TOKEN_NAME.to_string(), None)
            .await?;
        Ok(Some(secret))
    }

    /// Creates a named token; its secret is returned once and stored only as a keyed hash.
    pub async fn create_admin_token(
        &self,
        actor: &Actor,
        new: NewAdminToken,
    ) -> Result<(AdminToken, Secret), DomainError> {
        let name = validate_token_name(&new.display_name)?;
        let now = self.now();
        let expires_at = match new.expires_date_time.as_deref() {
            None => None,
            Some(text) => {
                // Dates and date-times only: parse_time's spans count back from now.
                let parsed = text
                    .contains('-')
                    .then(|| parse_time(text, now))
                    .flatten()
                    .ok_or_else(|| {
                        DomainError::invalid(
                            "expiresDateTime",
                            "write it as an RFC 3339 date-time, for example 2027-01-31T00:00:00Z",
                        )
                    })?;
                Some(validate_expiry(parsed, now)?)
            }
        };
        self.mint_admin_token(actor, name, expires_at).await
    }

    async fn mint_admin_token(
        &self,
        actor: &Actor,
        name: String,
        expires_at: Option<Timestamp>,
    ) -> Result<(AdminToken, Secret), DomainError> {
        let now = self.now();
        let secret = new_token_secret();
        let token = AdminToken {
            id: AdminTokenId::random(),
            name,
            hash: self.admin_token_hash(secret.expose()).await?,
            legacy_sha256: false,
            created_at: now,
            created_by: actor.0.as_str().to_string(),
            expires_at,
            last_used_at: None,
            revoked_at: None,
            revoked_by: None,
        };
        self.store.create_admin_token(&token).await?;
        self.audit(
            actor,
            AuditCategory::KeyManagement,
            "Create administrator API token",
            &token.name,
            None,
            Some(token.summary(now)),
        )
        .await?;
        Ok((token, secret))
    }

    pub async fn list_admin_tokens(&self) -> Result<Vec<AdminToken>, DomainError> {
        Ok(self.store.list_admin_tokens().await?)
    }

    pub async fn admin_token(&self, id: &str) -> Result<AdminToken, DomainError> {
        if id.is_empty() || id.len() > 64 {
            return Err(DomainError::NotFound("administrator token"));
        }
        self.store
            .admin_token(&AdminTokenId::from_string(id))
            .await?
            .ok_or(DomainError::NotFound("administrator token"))
    }

    /// Revokes a token: its next request gets 401, and nothing brings it back.
    pub async fn revoke_admin_token(
        &self,
        actor: &Actor,
        id: &str,
    ) -> Result<AdminToken, DomainError> {
        let before = self.admin_token(id).await?;
        let now = self.now();
        if !self
            .store
            .revoke_admin_token(&before.id, now, actor.0.as_str())
            .await?
        {
            return Err(DomainError::Conflict(format!(
                "the token {} is already revoked",
                before.name
            )));
        }
        let after = self.admin_token(before.id.as_str()).await?;
        self.audit(
            actor,
            AuditCategory::KeyManagement,
            "Revoke administrator API token",
            &after.name,
            Some(before.summary(now)),
            Some(after.summary(now)),
        )
        .await?;
        Ok(after)
    }

    /// The token a request presents, if it is active. Looked up by its keyed hash and compared
    /// again in constant time; the last-used time is written at most once a minute.
    pub async fn authenticate_admin_token(
        &self,
        presented: &str,
    ) -> Result<Option<AdminToken>, DomainError> {
        if presented.is_empty() || presented.len() > MAX_PRESENTED_TOKEN_BYTES {
            return Ok(None);
        }
        let keyed = self.admin_token_hash(presented).await?;
        let token = match self.store.admin_token_by_hash(&keyed).await? {
            Some(token) if !token.legacy_sha256 && token.hash.same_as(&keyed) => token,
            _ => {
                // A token made before keyed hashing: its row holds the bare SHA-256 until this
                // first use replaces it.
                let legacy = TokenHash::of(presented);
                match self.store.admin_token_by_hash(&legacy).await? {
                    Some(token) if token.legacy_sha256 && token.hash.same_as(&legacy) => {
                        self.store.rehash_admin_token(&token.id, &keyed).await?;
                        token
                    }
                    _ => return Ok(None),
                }
            }
        };
        let now = self.now();
        if token.status(now) != AdminTokenStatus::Active {
            return Ok(None);
        }
        if token.last_use_is_stale(now) {
            self.store
                .touch_admin_token(
                    &token.id,
                    now,
                    now.plus_seconds(-LAST_USED_PRECISION_SECONDS),
                )
                .await?;
        }
        Ok(Some(token))
    }

    // ----- the administrator role --------------------------------------------------------

    /// Binds the administrator role to a new group on a server that has no binding yet (first
    /// start). The group gets the familiar name when it is free; the binding, not the name,
    /// is what grants the role.
    pub async fn ensure_administrators_group(&self) -> Result<Group, DomainError> {
        if let Some(group) = self.administrators_group().await? {
            return Ok(group);
        }
        let description = "May use the admin console.";
        let group = match self
            .create_group(&Actor::system(), ADMINISTRATORS_GROUP_NAME, description)
            .await
        {
            Ok(group) => group,
            // The name is taken by a group that does not hold the role: never adopt it.
            Err(DomainError::Conflict(_)) => {
                let name = format!(
                    "{ADMINISTRATORS_GROUP_NAME} ({})",
                    crate::secret::random_hex(3)
                );
                self.create_group(&Actor::system(), &name, description)
                    .await?
            }
            Err(e) => return Err(e),
        };
        self.store.bind_administrators_group(&group.id).await?;
        Ok(group)
    }

    /// The group that holds the administrator role, if one is bound.
    pub async fn administrators_group(&self) -> Result<Option<Group>, DomainError> {
        match self.store.administrators_group().await? {
            Some(id) => Ok(self.store.group(&id).await?),
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
            .store
            .group(group)
            .await?
            .ok_or(DomainError::NotFound("group"))?;
        self.store
            .bind_administrators_group(&group.id)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => DomainError::NotFound("group"),
                other => other.into(),
            })?;
        self.audit(
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

    /// Whether the user may use the admin console: a member of the group bound to the
    /// administrator role. A group's display name plays no part.
    pub async fn is_administrator(&self, user: &UserId) -> Result<bool, DomainError> {
        let Some(admins) = self.store.administrators_group().await? else {
            return Ok(false);
        };
        Ok(self.store.groups_of_user(user).await?.contains(&admins))
    }
}
