//! PostgreSQL: the PasskeyStore port (not written yet).

use async_trait::async_trait;
use latchkey_domain::clock::Timestamp;
use latchkey_domain::ids::{CeremonyId, PasskeyId, UserId};
use latchkey_domain::passkey::{PasskeyCeremony, RegisteredPasskey};
use latchkey_domain::store::{PasskeyStore, PasskeyUse, StoreResult};

use super::PostgresStore;

#[async_trait]
impl PasskeyStore for PostgresStore {
    #[allow(unused_variables)]
    async fn add_passkey(&self, passkey: &RegisteredPasskey) -> StoreResult<()> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn passkey(&self, id: &PasskeyId) -> StoreResult<Option<RegisteredPasskey>> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn passkeys_of_user(&self, user: &UserId) -> StoreResult<Vec<RegisteredPasskey>> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn passkey_by_credential_id(
        &self,
        credential_id: &[u8],
    ) -> StoreResult<Option<RegisteredPasskey>> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn rename_passkey(&self, user: &UserId, id: &PasskeyId, name: &str) -> StoreResult<bool> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn remove_passkey(&self, user: &UserId, id: &PasskeyId) -> StoreResult<bool> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn record_passkey_use(&self, id: &PasskeyId, used: &PasskeyUse) -> StoreResult<bool> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn put_ceremony(&self, ceremony: &PasskeyCeremony) -> StoreResult<()> {
        todo!()
    }

    #[allow(unused_variables)]
    async fn take_ceremony(
        &self,
        id: &CeremonyId,
        now: Timestamp,
    ) -> StoreResult<Option<PasskeyCeremony>> {
        todo!()
    }
}
