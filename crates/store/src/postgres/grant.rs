//! PostgreSQL: the GrantStore port (not written yet).

use async_trait::async_trait;
use latchkey_domain::clock::Timestamp;
use latchkey_domain::ids::GrantId;
use latchkey_domain::ids::KeyId;
use latchkey_domain::ids::SessionId;
use latchkey_domain::keys::SigningKey;
use latchkey_domain::oidc::AccessToken;
use latchkey_domain::oidc::AuthorizationCode;
use latchkey_domain::oidc::Grant;
use latchkey_domain::oidc::Redeemed;
use latchkey_domain::oidc::RefreshToken;
use latchkey_domain::secret::TokenHash;
use latchkey_domain::store::{GrantStore, StoreResult};

use super::PostgresStore;

#[async_trait]
impl GrantStore for PostgresStore {
    #[allow(unused_variables)]
    async fn create_grant(&self, grant: &Grant) -> StoreResult<()> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn grant(&self, id: &GrantId) -> StoreResult<Option<Grant>> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn revoke_grant(&self, id: &GrantId) -> StoreResult<()> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn revoke_session_grants(&self, session: &SessionId) -> StoreResult<()> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn put_code(&self, code: &AuthorizationCode) -> StoreResult<()> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn redeem_code(&self, hash: &TokenHash) -> StoreResult<Redeemed<AuthorizationCode>> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn put_access_token(&self, token: &AccessToken) -> StoreResult<()> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn access_token(&self, hash: &TokenHash) -> StoreResult<Option<AccessToken>> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn put_refresh_token(&self, token: &RefreshToken) -> StoreResult<()> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn redeem_refresh_token(&self, hash: &TokenHash) -> StoreResult<Redeemed<RefreshToken>> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn code(&self, hash: &TokenHash) -> StoreResult<Option<AuthorizationCode>> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn refresh_token(&self, hash: &TokenHash) -> StoreResult<Option<RefreshToken>> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn put_signing_key(&self, key: &SigningKey) -> StoreResult<()> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn retire_signing_keys_except(&self, keep: &[KeyId], at: Timestamp) -> StoreResult<()> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn server_secret(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>> {
        todo!()
    }
}
