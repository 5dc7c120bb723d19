//! Token revocation (RFC 7009) and introspection (RFC 7662).
//!
//! Both endpoints authenticate the client as the token endpoint does, and a client only ever
//! acts on tokens issued to itself: another client's token is treated exactly like an unknown
//! one (revocation answers 200 and revokes nothing; introspection answers `active: false`), so
//! that neither endpoint tells a client whether a value is someone else's live token.

use serde::Serialize;

use super::{ClientCredentials, OAuthError, Tokens};
use crate::error::StoreError;
use crate::ids::{ClientId, GrantId};
use crate::oidc::{Grant, OAuthErrorCode};
use crate::secret::TokenHash;

/// The longest value that can be one of our tokens; anything longer is not one.
const MAX_TOKEN_LEN: usize = 128;

/// Which kind of token the client says it presents (`token_type_hint`). Only an ordering:
/// RFC 7009 §2.1 and RFC 7662 §2.1 say the server looks further when the hint is wrong, and
/// an unknown hint is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenTypeHint {
    AccessToken,
    RefreshToken,
    None,
}

impl TokenTypeHint {
    pub fn parse(hint: Option<&str>) -> Self {
        match hint {
            Some("access_token") => TokenTypeHint::AccessToken,
            Some("refresh_token") => TokenTypeHint::RefreshToken,
            _ => TokenTypeHint::None,
        }
    }
}

/// An RFC 7662 §2.2 introspection answer. An inactive token carries nothing but `active`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

impl Introspection {
    pub fn inactive() -> Self {
        Introspection::default()
    }
}

impl Tokens {
    /// RFC 7009. Revoking a refresh token revokes its whole grant (the family: every refresh
    /// and access token issued with it, §2.1's SHOULD); revoking an access token forgets that
    /// token only, so a client that drops an access token keeps its refresh token. Unknown,
    /// malformed, expired and other clients' tokens are answered with success and change
    /// nothing (§2.2).
    pub async fn revoke(
        &self,
        credentials: &ClientCredentials,
        token: &str,
        hint: TokenTypeHint,
    ) -> Result<(), OAuthError> {
        let app = self.authenticate_client(credentials).await?;
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Ok(());
        }
        let hash = TokenHash::of(token);
        let refresh_first = hint == TokenTypeHint::RefreshToken;
        for refresh in [refresh_first, !refresh_first] {
            if refresh {
                if let Some(stored) = self.store.refresh_token(&hash).await?
                    && self
                        .issued_to(&stored.grant_id, &app.client_id)
                        .await?
                        .is_some()
                {
                    self.store.revoke_grant(&stored.grant_id).await?;
                    return Ok(());
                }
            } else if let Some(stored) = self.store.access_token(&hash).await?
                && self
                    .issued_to(&stored.grant_id, &app.client_id)
                    .await?
                    .is_some()
            {
                self.store.delete_access_token(&hash).await?;
                return Ok(());
            }
        }
        Ok(())
    }

    /// RFC 7662. Only confidential clients may introspect (a public client's `client_id` is no
    /// proof of anything, so anyone could ask), and only about access tokens issued to
    /// themselves: an application's API checks the tokens its own sign-ins obtained, and no
    /// client learns about another's users through this endpoint. Refresh tokens are never
    /// introspected active: they are the client's own business and no resource server ever
    /// receives one.
    pub async fn introspect(
        &self,
        credentials: &ClientCredentials,
        token: &str,
        _hint: TokenTypeHint,
    ) -> Result<Introspection, OAuthError> {
        let app = self.authenticate_client(credentials).await?;
        if app.is_public() {
            return Err(OAuthError::new(
                OAuthErrorCode::InvalidClient,
                "only confidential clients may introspect tokens",
            ));
        }
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Ok(Introspection::inactive());
        }
        let Some(stored) = self.store.access_token(&TokenHash::of(token)).await? else {
            return Ok(Introspection::inactive());
        };
        let now = self.now();
        if stored.expires_at <= now {
            return Ok(Introspection::inactive());
        }
        let Some(grant) = self.issued_to(&stored.grant_id, &app.client_id).await? else {
            return Ok(Introspection::inactive());
        };
        let Some((grant, _)) = self.live_grant(&grant.id).await? else {
            return Ok(Introspection::inactive());
        };
        // Access tokens do not keep their issue time; their lifetime is fixed by the settings,
        // so it is the expiry less that lifetime (never after now).
        let iat = (stored.expires_at.0 - self.settings.access_token_lifetime_seconds).min(now.0);
        Ok(Introspection {
            active: true,
            scope: Some(grant.scopes.join(" ")),
            client_id: Some(app.client_id.to_string()),
            sub: Some(grant.user_id.to_string()),
            exp: Some(stored.expires_at.0),
            iat: Some(iat),
            token_type: Some("Bearer"),
            iss: Some(self.settings.issuer.clone()),
            aud: Some(app.client_id.to_string()),
        })
    }

    /// The grant, if it was issued to `client`.
    async fn issued_to(
        &self,
        grant: &GrantId,
        client: &ClientId,
    ) -> Result<Option<Grant>, StoreError> {
        Ok(self
            .store
            .grant(grant)
            .await?
            .filter(|g| &g.client_id == client))
    }
}
