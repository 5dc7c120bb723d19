//! Web Push: the server's VAPID key and one push subscription per device.

use async_trait::async_trait;

use crate::ids::DeviceId;
use crate::push::{PushSubscription, VapidKey};

use super::StoreResult;

#[async_trait]
pub trait PushStore: Send + Sync {
    /// The VAPID key: the stored one, or else `candidate`, stored now. Of instances starting at
    /// once, every one gets the same key back (the first stored wins, the others' candidates
    /// are dropped).
    async fn vapid_key(&self, candidate: &VapidKey) -> StoreResult<VapidKey>;
    /// Stores the device's subscription, replacing the one it had. `NotFound` when the device
    /// does not exist (it was removed meanwhile).
    async fn put_push_subscription(&self, subscription: &PushSubscription) -> StoreResult<()>;
    async fn push_subscription(&self, device: &DeviceId) -> StoreResult<Option<PushSubscription>>;
    /// Removes the device's subscription; with `endpoint`, only while it is still that one (a
    /// push service's "gone" must not remove a newer subscription). True if one was removed.
    /// Removing a device removes its subscription too.
    async fn delete_push_subscription(
        &self,
        device: &DeviceId,
        endpoint: Option<&str>,
    ) -> StoreResult<bool>;
}
