//! Device authorizations (RFC 8628): what a device asked for, the user's decision, the polls.

use async_trait::async_trait;

use crate::clock::Timestamp;
use crate::device_authorization::DeviceAuthorization;
use crate::ids::GrantId;
use crate::secret::TokenHash;

use super::StoreResult;

/// Device authorizations, kept by the hashes of their device and user codes.
#[async_trait]
pub trait DeviceAuthorizationStore: Send + Sync {
    /// Stores a new device authorization. `Conflict` when its device code or user code is
    /// already taken (expired rows included, until they are purged).
    async fn put_device_authorization(
        &self,
        authorization: &DeviceAuthorization,
    ) -> StoreResult<()>;
    /// The authorization with this device code hash, in whatever state (expired too).
    async fn device_authorization(
        &self,
        device_code: &TokenHash,
    ) -> StoreResult<Option<DeviceAuthorization>>;
    /// The authorization with this user code hash, in whatever state (expired too).
    async fn device_authorization_by_user_code(
        &self,
        user_code: &TokenHash,
    ) -> StoreResult<Option<DeviceAuthorization>>;
    /// Records the user's decision atomically: approved with `grant` (`Some`) or denied
    /// (`None`), only if the authorization is still pending. Returns whether this call
    /// decided it.
    async fn decide_device_authorization(
        &self,
        user_code: &TokenHash,
        grant: Option<&GrantId>,
    ) -> StoreResult<bool>;
    /// Notes a poll at `at`, and the interval the device must keep from now on.
    async fn record_device_poll(
        &self,
        device_code: &TokenHash,
        at: Timestamp,
        interval_seconds: i64,
    ) -> StoreResult<()>;
    /// Spends an approved authorization atomically (approved → redeemed). Returns whether
    /// this call spent it: of two concurrent polls, only one gets tokens.
    async fn redeem_device_authorization(&self, device_code: &TokenHash) -> StoreResult<bool>;
}
