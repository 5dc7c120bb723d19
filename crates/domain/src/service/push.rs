//! Web Push for the authenticator app: the server's VAPID key and the devices' subscriptions.
//! Sending is the web edge's (it owns HTTP and the encryption); this service decides what is
//! kept and for whom.

use std::sync::Arc;

use latchkey_protocol::push::PushSubscriptionBody;

use crate::authenticator::Device;
use crate::clock::Clock;
use crate::error::StoreError;
use crate::ids::DeviceId;
use crate::push::{CheckedSubscription, PushSubscription, VapidKey, check_subscription};
use crate::store::PushStore;

use super::devices::{DeviceApiError, DeviceErrorKind};

pub struct WebPush {
    pub(crate) store: Arc<dyn PushStore>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) vapid: tokio::sync::OnceCell<VapidKey>,
}

impl WebPush {
    /// The server's VAPID key, made by `make` at first start and kept in the store; every
    /// instance sharing the store gets the same one. Read once per process.
    pub async fn vapid_key(
        &self,
        make: impl FnOnce() -> (Vec<u8>, String),
    ) -> Result<VapidKey, StoreError> {
        self.vapid
            .get_or_try_init(|| async move {
                let (private_key, public_key) = make();
                let candidate = VapidKey {
                    private_key,
                    public_key,
                    created_at: self.clock.now(),
                };
                self.store.vapid_key(&candidate).await
            })
            .await
            .cloned()
    }

    /// Checks a subscription a device sent, without storing it (the edge then checks what needs
    /// the network and the curve).
    pub fn check(
        &self,
        body: &PushSubscriptionBody,
        allow_private: bool,
    ) -> Result<CheckedSubscription, DeviceApiError> {
        check_subscription(body, allow_private)
            .map_err(|r| DeviceApiError::new(DeviceErrorKind::Invalid, r.code, r.message))
    }

    /// Keeps `checked` as the device's subscription, replacing any it had.
    pub async fn subscribe(
        &self,
        device: &Device,
        checked: CheckedSubscription,
    ) -> Result<(), DeviceApiError> {
        let subscription = checked.into_subscription(device.id.clone(), self.clock.now());
        match self.store.put_push_subscription(&subscription).await {
            Ok(()) => Ok(()),
            Err(StoreError::NotFound) => Err(DeviceApiError::unauthenticated(
                "unknown_device",
                "the device was removed",
            )),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn unsubscribe(&self, device: &Device) -> Result<(), DeviceApiError> {
        self.store
            .delete_push_subscription(&device.id, None)
            .await?;
        Ok(())
    }

    pub async fn subscription(
        &self,
        device: &DeviceId,
    ) -> Result<Option<PushSubscription>, StoreError> {
        self.store.push_subscription(device).await
    }

    /// The push service said this subscription no longer exists (404 or 410): forget it,
    /// unless the device has registered another one since.
    pub async fn forget_gone(&self, device: &DeviceId, endpoint: &str) -> Result<bool, StoreError> {
        self.store
            .delete_push_subscription(device, Some(endpoint))
            .await
    }
}
