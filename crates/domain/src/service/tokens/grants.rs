//! The token endpoint's grants (authorization code, refresh token) and userinfo.

use super::{ClientCredentials, OAuthError, TokenResponse, Tokens};
use crate::application::{Application, ClientKind, GroupsClaim};
use crate::clock::Timestamp;
use crate::error::{DomainError, StoreError};
use crate::ids::{ClientId, GrantId, UserId};
use crate::log::SignInContext;
use crate::oidc::{
    AccessToken, Grant, IssuedTokens, OAuthErrorCode, Redeemed, RefreshToken, UserClaims,
    id_token_claims, pkce_matches, user_claims,
};
use crate::secret::{Secret, TokenHash};
use crate::user::User;

/// Tokens made for a response: the values the client gets, and what the store keeps of them.
struct Minted {
    access: Secret,
    refresh: Option<Secret>,
    narrowed: Option<Vec<String>>,
    stored: IssuedTokens,
    now: Timestamp,
}

impl Tokens {
    /// Authenticates the client at the token endpoint.
    pub(super) async fn authenticate_client(
        &self,
        credentials: &ClientCredentials,
    ) -> Result<Application, OAuthError> {
        let invalid = || {
            OAuthError::new(
                OAuthErrorCode::InvalidClient,
                "client authentication failed",
            )
        };
        let client_id = credentials
            .client_id
            .as_deref()
            .filter(|id| !id.is_empty() && id.len() <= 128)
            .ok_or_else(invalid)?;
        let app = self
            .applications
            .cached(&ClientId::from_string(client_id))
            .await?
            .ok_or_else(invalid)?;
        match (&app.kind, &credentials.secret) {
            (ClientKind::Public, None) => Ok(app),
            (ClientKind::Confidential { secret_hash }, Some(secret))
                if secret_hash.matches(secret.expose()) =>
            {
                Ok(app)
            }
            _ => Err(invalid()),
        }
    }

    /// The authorization-code grant. A replayed code revokes everything it issued.
    ///
    /// Everything the presenter must prove (the client it was issued to, the redirect URI, the
    /// PKCE verifier) is checked before the code is spent: a thief without those proofs can
    /// neither burn the code nor make its real client's redemption look like a replay.
    pub async fn exchange_code(
        &self,
        credentials: &ClientCredentials,
        code: &str,
        redirect_uri: Option<&str>,
        code_verifier: Option<&str>,
    ) -> Result<TokenResponse, OAuthError> {
        let app = self.authenticate_client(credentials).await?;
        let bad_grant = |why: &str| OAuthError::new(OAuthErrorCode::InvalidGrant, why);
        if code.is_empty() || code.len() > 128 {
            return Err(bad_grant("the code is not valid"));
        }
        let hash = TokenHash::of(code);
        let stored = self
            .store
            .code(&hash)
            .await?
            .ok_or_else(|| bad_grant("the code is not valid"))?;
        if stored.client_id != app.client_id {
            return Err(bad_grant("the code was issued to another client"));
        }
        if redirect_uri != Some(stored.redirect_uri.as_str()) {
            return Err(bad_grant(
                "redirect_uri does not match the authorization request",
            ));
        }
        match (&stored.code_challenge, code_verifier) {
            (Some(challenge), Some(verifier)) if pkce_matches(challenge, verifier) => {}
            (Some(_), _) => return Err(bad_grant("the PKCE code_verifier does not match")),
            (None, Some(_)) => return Err(bad_grant("no PKCE challenge was sent for this code")),
            (None, None) => {}
        }
        if stored.expires_at <= self.now() {
            return Err(bad_grant("the code has expired"));
        }
        let (grant, user) = self
            .live_grant(&stored.grant_id)
            .await?
            .ok_or_else(|| bad_grant("the grant was revoked"))?;
        // The presenter proved everything its real client could: only now is a second use a
        // replay worth revoking for. The tokens are stored with the spend, so of two
        // redemptions racing, exactly one issues tokens and the other revokes them.
        let minted = self.mint(&grant, None);
        let redeemed = self.store.redeem_code(&hash, &minted.stored).await?;
        self.refuse_unless_fresh(
            redeemed.map(|code| code.grant_id),
            "the code was already used; the tokens issued with it are revoked",
            "the code is not valid",
        )
        .await?;
        self.respond(&app, &grant, &user, true, minted).await
    }

    /// The refresh-token grant with rotation: each refresh token works once; its own client
    /// presenting a spent one revokes the whole family (it was stolen or replayed). Another
    /// client presenting it is refused before anything is spent or revoked.
    ///
    /// `scope` may ask for less than the grant (RFC 6749 §6): the new access token (and ID
    /// token) carry only that; the new refresh token keeps the whole grant. A scope the grant
    /// does not hold is `invalid_scope`, refused before the refresh token is spent.
    pub async fn refresh(
        &self,
        credentials: &ClientCredentials,
        refresh_token: &str,
        scope: Option<&str>,
    ) -> Result<TokenResponse, OAuthError> {
        let app = self.authenticate_client(credentials).await?;
        let bad_grant = |why: &str| OAuthError::new(OAuthErrorCode::InvalidGrant, why);
        if refresh_token.is_empty() || refresh_token.len() > 128 {
            return Err(bad_grant("the refresh token is not valid"));
        }
        let hash = TokenHash::of(refresh_token);
        let stored = self
            .store
            .refresh_token(&hash)
            .await?
            .ok_or_else(|| bad_grant("the refresh token is not valid"))?;
        let issued = self
            .store
            .grant(&stored.grant_id)
            .await?
            .ok_or_else(|| bad_grant("the refresh token is not valid"))?;
        if issued.client_id != app.client_id {
            return Err(bad_grant("the refresh token was issued to another client"));
        }
        if stored.expires_at <= self.now() {
            return Err(bad_grant("the refresh token has expired"));
        }
        let narrowed = narrower_scope(scope, &issued.scopes)?;
        // Assignment is checked again at every refresh: a user whose assignment was removed
        // gets nothing more, and the grant ends (its access tokens with it), so the refusal is
        // logged once rather than at every retry.
        let (grant, user) = self
            .live_grant(&stored.grant_id)
            .await?
            .ok_or_else(|| bad_grant("the refresh token was revoked"))?;
        match self
            .applications
            .ensure_assigned(&app, &user, "refreshToken", &SignInContext::default())
            .await
        {
            Ok(()) => {}
            Err(DomainError::NotAssigned(_)) => {
                self.store.revoke_grant(&grant.id).await?;
                return Err(bad_grant(
                    "the user is not assigned to this application; the grant is revoked",
                ));
            }
            Err(other) => return Err(other.into()),
        }
        let minted = self.mint(&grant, narrowed);
        let redeemed = self
            .store
            .redeem_refresh_token(&hash, &minted.stored)
            .await?;
        self.refuse_unless_fresh(
            redeemed.map(|token| token.grant_id),
            "the refresh token was already used; its family is revoked",
            "the refresh token is not valid",
        )
        .await?;
        self.respond(&app, &grant, &user, false, minted).await
    }

    /// Goes on only after a first use; a replay revokes the grant it names (RFC 6749 section
    /// 4.1.2 for codes, rotation for refresh tokens) and is refused, as is an unknown value.
    async fn refuse_unless_fresh(
        &self,
        redeemed: Redeemed<GrantId>,
        replayed: &str,
        unknown: &str,
    ) -> Result<(), OAuthError> {
        let refused = |why: &str| OAuthError::new(OAuthErrorCode::InvalidGrant, why);
        match redeemed {
            Redeemed::Fresh(_) => Ok(()),
            Redeemed::Replayed(grant) => {
                self.store.revoke_grant(&grant).await?;
                Err(refused(replayed))
            }
            Redeemed::Unknown => Err(refused(unknown)),
        }
    }

    /// A grant that is neither revoked nor held by a disabled or deleted user, with that user.
    pub(super) async fn live_grant(
        &self,
        id: &GrantId,
    ) -> Result<Option<(Grant, User)>, StoreError> {
        let Some(grant) = self.store.grant(id).await? else {
            return Ok(None);
        };
        if grant.revoked {
            return Ok(None);
        }
        match self.directory.lookup(&grant.user_id).await? {
            Some(user) if user.enabled => Ok(Some((grant, user))),
            _ => Ok(None),
        }
    }

    /// Issues and stores tokens for `grant` outside any redemption (the device grant).
    pub(super) async fn issue_tokens(
        &self,
        app: &Application,
        grant: &Grant,
        user: &User,
        include_nonce: bool,
    ) -> Result<TokenResponse, OAuthError> {
        let minted = self.mint(grant, None);
        self.store.put_access_token(&minted.stored.access).await?;
        if let Some(refresh) = &minted.stored.refresh {
            self.store.put_refresh_token(refresh).await?;
        }
        self.respond(app, grant, user, include_nonce, minted).await
    }

    /// New tokens for `grant`, not yet stored; with `narrowed`, the access and ID tokens carry
    /// only those scopes (a subset of the grant's), while a refresh token keeps the whole grant.
    fn mint(&self, grant: &Grant, narrowed: Option<Vec<String>>) -> Minted {
        let now = self.now();
        let access = self.random.token();
        let refresh = grant
            .scopes
            .iter()
            .any(|s| s == "offline_access")
            .then(|| self.random.token());
        let stored = IssuedTokens {
            access: AccessToken {
                hash: TokenHash::of(access.expose()),
                grant_id: grant.id.clone(),
                expires_at: now.plus_seconds(self.settings.access_token_lifetime_seconds),
                scopes: narrowed.clone(),
            },
            refresh: refresh.as_ref().map(|refresh| RefreshToken {
                hash: TokenHash::of(refresh.expose()),
                grant_id: grant.id.clone(),
                expires_at: now.plus_seconds(self.settings.refresh_token_lifetime_seconds),
            }),
        };
        Minted {
            access,
            refresh,
            narrowed,
            stored,
            now,
        }
    }

    /// The token response for tokens already stored: the ID token is signed here.
    async fn respond(
        &self,
        app: &Application,
        grant: &Grant,
        user: &User,
        include_nonce: bool,
        minted: Minted,
    ) -> Result<TokenResponse, OAuthError> {
        let now = minted.now;
        // The ID token and the response's `scope` tell what the access token really grants.
        let scoped = Grant {
            scopes: minted.narrowed.unwrap_or_else(|| grant.scopes.clone()),
            ..grant.clone()
        };
        let groups = self.groups_claim(app, &user.id).await?;
        let mut claims = id_token_claims(
            &self.settings.issuer,
            user,
            &scoped,
            now,
            self.settings.id_token_lifetime_seconds,
            minted.access.expose(),
            include_nonce,
        );
        claims.set_groups(groups, &format!("{}/userinfo", self.settings.issuer));
        let ring = self.keyring().await?;
        let signer = ring
            .active(app.id_token_alg, now)
            .ok_or_else(|| OAuthError::new(OAuthErrorCode::ServerError, "no signing key"))?;
        Ok(TokenResponse {
            access_token: minted.access.expose().to_string(),
            token_type: "Bearer",
            expires_in: self.settings.access_token_lifetime_seconds,
            id_token: signer.sign_jwt(&claims)?,
            refresh_token: minted.refresh.map(|r| r.expose().to_string()),
            scope: scoped.scopes.join(" "),
        })
    }

    pub async fn userinfo(&self, access_token: &str) -> Result<UserClaims, OAuthError> {
        let invalid = || {
            OAuthError::new(
                OAuthErrorCode::InvalidToken,
                "the access token is not valid",
            )
        };
        if access_token.is_empty() || access_token.len() > 128 {
            return Err(invalid());
        }
        let token = self
            .store
            .access_token(&TokenHash::of(access_token))
            .await?
            .ok_or_else(invalid)?;
        if token.expires_at <= self.now() {
            return Err(OAuthError::new(
                OAuthErrorCode::InvalidToken,
                "the access token has expired",
            ));
        }
        let (grant, user) = self
            .live_grant(&token.grant_id)
            .await?
            .ok_or_else(invalid)?;
        let mut claims = user_claims(&user, token.scopes.as_ref().unwrap_or(&grant.scopes));
        if let Some(app) = self.applications.cached(&grant.client_id).await? {
            claims.groups = self.groups_claim(&app, &user.id).await?;
        }
        Ok(claims)
    }

    /// The `groups` claim the application asks for: the ids or the display names of the
    /// groups the user is a direct member of, sorted; `None` when it asks for none.
    async fn groups_claim(
        &self,
        app: &Application,
        user: &UserId,
    ) -> Result<Option<Vec<String>>, DomainError> {
        let ids = match app.groups_claim {
            GroupsClaim::None => return Ok(None),
            _ => self.directory.groups_of_user(user).await?,
        };
        let mut values: Vec<String> = match app.groups_claim {
            GroupsClaim::Names if !ids.is_empty() => self
                .directory
                .list_groups()
                .await?
                .into_iter()
                .filter(|group| ids.contains(&group.id))
                .map(|group| group.display_name)
                .collect(),
            _ => ids.iter().map(|id| id.to_string()).collect(),
        };
        values.sort();
        Ok(Some(values))
    }
}

/// The scope a refresh asks for, checked against the grant (RFC 6749 §6): absent or empty
/// keeps the grant's; anything the grant does not hold is `invalid_scope`. `openid` must stay
/// (every response carries an ID token).
fn narrower_scope(
    requested: Option<&str>,
    granted: &[String],
) -> Result<Option<Vec<String>>, OAuthError> {
    let invalid = |why: String| OAuthError::new(OAuthErrorCode::InvalidScope, why);
    let Some(requested) = requested.filter(|s| !s.trim().is_empty()) else {
        return Ok(None);
    };
    if requested.len() > 1024 {
        return Err(invalid("the scope is too long".into()));
    }
    let mut scopes: Vec<String> = Vec::new();
    for scope in requested.split(' ').filter(|s| !s.is_empty()) {
        if !granted.iter().any(|g| g == scope) {
            return Err(invalid(format!(
                "{:?} was not granted; a refresh may only narrow the scope",
                scope.chars().take(64).collect::<String>()
            )));
        }
        if !scopes.iter().any(|s| s == scope) {
            scopes.push(scope.to_string());
        }
    }
    if !scopes.iter().any(|s| s == "openid") {
        return Err(invalid("the scope must keep openid".into()));
    }
    // In the grant's order, so the response reads the same however the client wrote it.
    Ok(Some(
        granted
            .iter()
            .filter(|g| scopes.contains(g))
            .cloned()
            .collect(),
    ))
}
