//! Administrator API tokens: create, list, revoke, authenticate. Stored only as keyed hashes
//! under a server key kept for this purpose.

use serde::Deserialize;

use super::Governance;
use crate::admin_token::{
    AdminToken, AdminTokenStatus, INITIAL_TOKEN_NAME, LAST_USED_PRECISION_SECONDS,
    new_token_secret, validate_expiry, validate_token_name,
};
use crate::clock::{Timestamp, parse_time};
use crate::error::DomainError;
use crate::ids::AdminTokenId;
use crate::log::{Actor, AuditCategory};
use crate::secret::{Secret, TokenHash};

/// The longest bearer value looked at; anything longer is refused unread.
const MAX_PRESENTED_TOKEN_BYTES: usize = 256;

/// What an administrator asks for to create a token.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewAdminToken {
    pub display_name: String,
    /// RFC 3339 (`2027-01-31T00:00:00Z`) or a date; none means the token does not expire.
    #[serde(default)]
    pub expires_date_time: Option<String>,
}

impl Governance {
    /// Creates the token named "initial" on a server that never had one; returns it once.
    /// A server whose tokens were all revoked gets none: recovery is the offline command.
    pub async fn ensure_admin_token(&self) -> Result<Option<Secret>, DomainError> {
        if self.admin_tokens.count_admin_tokens().await? > 0 {
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
        let secret = new_token_secret(self.random.as_ref());
        let token = AdminToken {
            id: AdminTokenId::generate(self.random.as_ref()),
            name,
            hash: self.keys.admin_token_hash(secret.expose()).await?,
            legacy_sha256: false,
            created_at: now,
            created_by: actor.0.as_str().to_string(),
            expires_at,
            last_used_at: None,
            revoked_at: None,
            revoked_by: None,
        };
        self.admin_tokens.create_admin_token(&token).await?;
        self.audit
            .record(
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
        Ok(self.admin_tokens.list_admin_tokens().await?)
    }

    pub async fn admin_token(&self, id: &str) -> Result<AdminToken, DomainError> {
        if id.is_empty() || id.len() > 64 {
            return Err(DomainError::NotFound("administrator token"));
        }
        self.admin_tokens
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
            .admin_tokens
            .revoke_admin_token(&before.id, now, actor.0.as_str())
            .await?
        {
            return Err(DomainError::Conflict(format!(
                "the token {} is already revoked",
                before.name
            )));
        }
        let after = self.admin_token(before.id.as_str()).await?;
        self.audit
            .record(
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
        let keyed = self.keys.admin_token_hash(presented).await?;
        let token = match self.admin_tokens.admin_token_by_hash(&keyed).await? {
            Some(token) if !token.legacy_sha256 && token.hash.same_as(&keyed) => token,
            _ => {
                // A token made before keyed hashing: its row holds the bare SHA-256 until this
                // first use replaces it.
                let legacy = TokenHash::of(presented);
                match self.admin_tokens.admin_token_by_hash(&legacy).await? {
                    Some(token) if token.legacy_sha256 && token.hash.same_as(&legacy) => {
                        self.admin_tokens
                            .rehash_admin_token(&token.id, &keyed)
                            .await?;
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
            self.admin_tokens
                .touch_admin_token(
                    &token.id,
                    now,
                    now.plus_seconds(-LAST_USED_PRECISION_SECONDS),
                )
                .await?;
        }
        Ok(Some(token))
    }
}
