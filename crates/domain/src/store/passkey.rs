//! Passkeys and security keys, and the server-side state of WebAuthn ceremonies.

use async_trait::async_trait;

use crate::clock::Timestamp;
use crate::ids::{CeremonyId, PasskeyId, UserId};
use crate::passkey::{PasskeyCeremony, RegisteredPasskey};

use super::StoreResult;

/// A credential's state after a sign-in: what `record_passkey_use` writes.
#[derive(Debug, Clone)]
pub struct PasskeyUse {
    /// The counter the sign-in read; the write happens only if it is still the stored one.
    pub expected_counter: u32,
    pub counter: u32,
    pub backup_state: bool,
    pub credential: webauthn_rs::prelude::Passkey,
    pub at: Timestamp,
}

/// Registered passkeys, and ceremonies in progress.
#[async_trait]
pub trait PasskeyStore: Send + Sync {
    /// `Conflict` when the credential id is already registered (to anyone) or the id is taken.
    async fn add_passkey(&self, passkey: &RegisteredPasskey) -> StoreResult<()>;
    async fn passkey(&self, id: &PasskeyId) -> StoreResult<Option<RegisteredPasskey>>;
    /// Oldest first.
    async fn passkeys_of_user(&self, user: &UserId) -> StoreResult<Vec<RegisteredPasskey>>;
    async fn passkey_by_credential_id(
        &self,
        credential_id: &[u8],
    ) -> StoreResult<Option<RegisteredPasskey>>;
    /// False when the user has no such passkey.
    async fn rename_passkey(&self, user: &UserId, id: &PasskeyId, name: &str) -> StoreResult<bool>;
    /// False when the user has no such passkey.
    async fn remove_passkey(&self, user: &UserId, id: &PasskeyId) -> StoreResult<bool>;
    /// Records a sign-in's counter, backup state and time, only if the stored counter is still
    /// `expected_counter`: of two sign-ins that read the same counter, one writes (true) and
    /// the other does not (false).
    async fn record_passkey_use(&self, id: &PasskeyId, used: &PasskeyUse) -> StoreResult<bool>;

    /// Keeps a ceremony's state until it expires (purged by `purge_expired`).
    async fn put_ceremony(&self, ceremony: &PasskeyCeremony) -> StoreResult<()>;
    /// Removes and returns the ceremony, atomically: of two concurrent takes, one gets it.
    /// An expired ceremony is removed and not returned.
    async fn take_ceremony(
        &self,
        id: &CeremonyId,
        now: Timestamp,
    ) -> StoreResult<Option<PasskeyCeremony>>;
}
