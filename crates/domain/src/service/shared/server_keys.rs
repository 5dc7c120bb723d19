//! The server's secret keys, one per purpose. Each is its own random 32-byte server secret,
//! kept in the store, so no key can stand in for another (a pass hash is never an
//! administrator-token hash, nor a cookie tag).

use std::sync::Arc;

use crate::error::DomainError;
use crate::secret::TokenHash;
use crate::store::GrantStore;

/// The keys the services hash with, loaded from the store on first use.
pub(crate) struct PurposeKeys {
    admin_token: Vec<u8>,
    pass: Vec<u8>,
    user_code: Vec<u8>,
}

pub struct ServerKeys {
    pub(crate) store: Arc<dyn GrantStore>,
    pub(crate) keys: tokio::sync::OnceCell<PurposeKeys>,
}

impl ServerKeys {
    /// The server secret named `name`, made on first use (by whichever instance gets there
    /// first; the others read the same value).
    pub async fn server_secret(&self, name: &str) -> Result<Vec<u8>, DomainError> {
        // A key, so from the operating system, never from a test's fixed random source.
        let candidate = crate::secret::random_bytes::<32>();
        Ok(self.store.server_secret(name, &candidate).await?)
    }

    async fn purpose_keys(&self) -> Result<&PurposeKeys, DomainError> {
        self.keys
            .get_or_try_init(|| async {
                Ok::<_, DomainError>(PurposeKeys {
                    admin_token: self.server_secret("admin-token-hmac-key").await?,
                    pass: self.server_secret("pass-hmac-key").await?,
                    user_code: self.server_secret("device-user-code-hmac-key").await?,
                })
            })
            .await
    }

    /// The key Temporary Access Passes are stored under (HMAC-SHA-256).
    pub(crate) async fn pass_key(&self) -> Result<&[u8], DomainError> {
        Ok(&self.purpose_keys().await?.pass)
    }

    /// How a typed Temporary Access Pass is compared with the stored one.
    pub(crate) async fn pass_hash(&self, pass: &str) -> Result<TokenHash, DomainError> {
        Ok(TokenHash::keyed(self.pass_key().await?, pass))
    }

    /// How a device-grant user code (normalised) is stored and looked up: short enough to
    /// guess, so keyed like a pass.
    pub(crate) async fn user_code_hash(&self, code: &str) -> Result<TokenHash, DomainError> {
        Ok(TokenHash::keyed(
            &self.purpose_keys().await?.user_code,
            code,
        ))
    }

    /// How an administrator token is stored and looked up.
    pub(crate) async fn admin_token_hash(&self, token: &str) -> Result<TokenHash, DomainError> {
        Ok(TokenHash::keyed(
            &self.purpose_keys().await?.admin_token,
            token,
        ))
    }
}
