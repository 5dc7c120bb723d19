//! PostgreSQL: the SessionStore port (not written yet).

use async_trait::async_trait;
use latchkey_domain::clock::Timestamp;
use latchkey_domain::credential::TemporaryAccessPass;
use latchkey_domain::ids::SessionId;
use latchkey_domain::ids::SignInId;
use latchkey_domain::ids::UserId;
use latchkey_domain::log::SignInRecord;
use latchkey_domain::secret::TokenHash;
use latchkey_domain::session::Session;
use latchkey_domain::signin::PendingSignIn;
use latchkey_domain::store::{SessionStore, StoreResult};

use super::PostgresStore;

#[async_trait]
impl SessionStore for PostgresStore {
    #[allow(unused_variables)]
    async fn put_pass(&self, pass: &TemporaryAccessPass) -> StoreResult<()> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn pass_for_user(&self, user: &UserId) -> StoreResult<Option<TemporaryAccessPass>> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn mark_pass_used(
        &self,
        user: &UserId,
        hash: &TokenHash,
        at: Timestamp,
    ) -> StoreResult<bool> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn delete_pass(&self, user: &UserId) -> StoreResult<()> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn create_session(&self, session: &Session) -> StoreResult<()> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn session_by_token(&self, token_hash: &TokenHash) -> StoreResult<Option<Session>> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn session(&self, id: &SessionId) -> StoreResult<Option<Session>> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn revoke_session(&self, id: &SessionId) -> StoreResult<()> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn revoke_user_sessions_and_grants(&self, user: &UserId) -> StoreResult<()> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn put_sign_in(&self, sign_in: &PendingSignIn) -> StoreResult<()> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn sign_in(&self, id: &SignInId) -> StoreResult<Option<PendingSignIn>> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn delete_sign_in(&self, id: &SignInId) -> StoreResult<()> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn complete_sign_in(
        &self,
        session: &Session,
        sign_in: &SignInId,
        record: &SignInRecord,
    ) -> StoreResult<()> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn fail_sign_in(
        &self,
        sign_in: &PendingSignIn,
        ended: bool,
        record: &SignInRecord,
    ) -> StoreResult<()> {
        todo!()
    }
}
