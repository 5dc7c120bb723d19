//! Grants, the codes and tokens they issue, the signing keys and the server-wide secrets.

use async_trait::async_trait;

use crate::clock::Timestamp;
use crate::ids::GrantId;
use crate::ids::KeyId;
use crate::ids::SessionId;
use crate::ids::UserId;
use crate::keys::SigningKey;
use crate::oidc::AccessToken;
use crate::oidc::AuthorizationCode;
use crate::oidc::Grant;
use crate::oidc::IssuedTokens;
use crate::oidc::Redeemed;
use crate::oidc::RefreshToken;
use crate::secret::TokenHash;

use super::StoreResult;

/// Grants and the codes and tokens they issue; the keys that sign them; server-wide secrets.
#[async_trait]
pub trait GrantStore: Send + Sync {
    /// Stores a grant and, in the same write, the authorization code that will redeem it.
    async fn create_grant(
        &self,
        grant: &Grant,
        code: Option<&AuthorizationCode>,
    ) -> StoreResult<()>;
    async fn grant(&self, id: &GrantId) -> StoreResult<Option<Grant>>;
    async fn revoke_grant(&self, id: &GrantId) -> StoreResult<()>;
    async fn revoke_session_grants(&self, session: &SessionId) -> StoreResult<()>;
    /// Moves every grant of session `from` to session `to` (a step-up or re-authentication in
    /// the same browser replaced `from`), so that ending `to` revokes them too.
    async fn move_session_grants(&self, from: &SessionId, to: &SessionId) -> StoreResult<()>;
    /// The unrevoked grants of a session (whom to tell when it ends).
    async fn live_session_grants(&self, session: &SessionId) -> StoreResult<Vec<Grant>>;
    /// The unrevoked grants of a user, across their sessions.
    async fn live_user_grants(&self, user: &UserId) -> StoreResult<Vec<Grant>>;
    async fn put_code(&self, code: &AuthorizationCode) -> StoreResult<()>;
    /// Spends a code atomically and, only when it was unspent, stores `issue` in the same
    /// transaction. A replayed or unknown code stores nothing.
    async fn redeem_code(
        &self,
        hash: &TokenHash,
        issue: &IssuedTokens,
    ) -> StoreResult<Redeemed<AuthorizationCode>>;
    async fn put_access_token(&self, token: &AccessToken) -> StoreResult<()>;
    async fn access_token(&self, hash: &TokenHash) -> StoreResult<Option<AccessToken>>;
    /// Forgets one access token (RFC 7009 revocation); unknown hashes are no error.
    async fn delete_access_token(&self, hash: &TokenHash) -> StoreResult<()>;
    async fn put_refresh_token(&self, token: &RefreshToken) -> StoreResult<()>;
    /// Spends a refresh token atomically (rotation) and, only when it was unspent, stores
    /// `issue` in the same transaction.
    async fn redeem_refresh_token(
        &self,
        hash: &TokenHash,
        issue: &IssuedTokens,
    ) -> StoreResult<Redeemed<RefreshToken>>;

    // Reading a single-use secret without spending it, so that whoever presents it can be
    // checked first (client, secret, PKCE). Spent and expired rows are returned too.
    async fn code(&self, hash: &TokenHash) -> StoreResult<Option<AuthorizationCode>>;
    async fn refresh_token(&self, hash: &TokenHash) -> StoreResult<Option<RefreshToken>>;

    // Signing keys.
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>>;
    async fn put_signing_key(&self, key: &SigningKey) -> StoreResult<()>;
    /// Marks every unretired key as retired at `at`, except `keep`.
    async fn retire_signing_keys_except(&self, keep: &[KeyId], at: Timestamp) -> StoreResult<()>;
    /// A rotation as one compare-and-swap: when the unretired keys are exactly `current`,
    /// retires them at `retire_at` and stores `fresh`, and returns true; otherwise (another
    /// rotation won) writes nothing and returns false. Two instances rotating at once never
    /// both succeed.
    async fn rotate_signing_keys(
        &self,
        current: &[KeyId],
        fresh: &[SigningKey],
        retire_at: Timestamp,
    ) -> StoreResult<bool>;

    /// Server-wide secrets (for example the key that signs CSRF tokens), created once.
    /// Returns the stored value, inserting `candidate` if there was none.
    async fn server_secret(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>>;

    /// Remembers `mark` until `expires_at` (purged by `purge_expired`). Returns false if it was
    /// already remembered (a replayed logout token's `jti`), atomically across instances.
    async fn remember_once(&self, mark: &str, expires_at: Timestamp) -> StoreResult<bool>;
    /// Whether `mark` is remembered and not expired at `now`.
    async fn is_remembered(&self, mark: &str, now: Timestamp) -> StoreResult<bool>;
}
