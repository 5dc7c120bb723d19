//! Device events across instances sharing one PostgreSQL database.
//!
//! A device's live channel may sit on one instance while the sign-in that concerns it runs on
//! another. [`CrossInstanceNotifier`] delivers an event here as before (the live channel, and
//! Web Push for a new request, sent once, by the instance raising it) and publishes its ids
//! to the other instances; [`deliver_heard`] takes what the others publish and gives it to the
//! devices connected here, through the hub only, never Web Push again. A request is read back
//! from the database (only if it still waits for that device, and never one held back), and
//! after every reconnection of the listener everything announced and pending for the devices
//! connected here is reloaded, since notifications sent meanwhile are lost. An approval settled
//! here is announced too (its id only), to wake the browsers waiting for it on the number page
//! of another instance; after a reconnection every waiting browser here re-reads its approval. The PostgreSQL
//! side is `latchkey_store::postgres::events`; SQLite keeps the in-process hub alone.

use std::sync::Arc;

use latchkey_domain::Latchkey;
use latchkey_domain::ids::{ApprovalId, DeviceId};
use latchkey_domain::notify::Notifier;
use latchkey_protocol::wire::DeviceEvent;
use latchkey_store::postgres::events::{DeviceSignal, Heard, SignalPublisher};
use latchkey_web::DeviceHub;
use tokio::sync::mpsc;

/// Delivers here, then tells the other instances.
pub struct CrossInstanceNotifier {
    /// This instance's notifier: the hub, or the hub and Web Push.
    pub local: Arc<dyn Notifier>,
    pub publisher: SignalPublisher,
}

impl Notifier for CrossInstanceNotifier {
    fn notify(&self, device: &DeviceId, event: &DeviceEvent) {
        self.local.notify(device, event);
        self.publisher.publish(device, &DeviceSignal::of(event));
    }

    fn forget(&self, device: &DeviceId) {
        self.local.forget(device);
        self.publisher.publish(device, &DeviceSignal::Forget);
    }

    fn settled(&self, approval: &ApprovalId) {
        self.local.settled(approval);
        self.publisher.publish_settled(approval);
    }
}

/// Delivers what the listener hears to the devices connected to `hub`, until the listener
/// stops.
pub async fn deliver_heard(
    mut heard: mpsc::Receiver<Heard>,
    hub: Arc<DeviceHub>,
    latchkey: Arc<Latchkey>,
) {
    while let Some(heard) = heard.recv().await {
        match heard {
            Heard::Connected => {
                // Settlements sent while the listener was away are lost: every waiting
                // browser reads its approval again.
                latchkey.devices.wake_waiters(None);
                for device in hub.connected_devices() {
                    deliver_pending(&hub, &latchkey, &device, None).await;
                }
            }
            Heard::Settled { approval } => latchkey.devices.wake_waiters(Some(&approval)),
            Heard::Signal { device, signal } => {
                if !hub.is_connected(&device) {
                    continue;
                }
                let event = match signal {
                    DeviceSignal::Request { id } => {
                        deliver_pending(&hub, &latchkey, &device, Some(&id)).await;
                        continue;
                    }
                    DeviceSignal::Forget => {
                        hub.forget(&device);
                        continue;
                    }
                    DeviceSignal::AnsweredElsewhere { id } => DeviceEvent::AnsweredElsewhere { id },
                    DeviceSignal::Expired { id } => DeviceEvent::Expired { id },
                    DeviceSignal::Cancelled { id } => DeviceEvent::Cancelled { id },
                };
                hub.notify(&device, &event);
            }
        }
    }
}

/// Gives `device` what waits for it in the database (only request `only`, when given), as
/// the live channel would have announced it: a removed device, a request answered, expired or
/// not meant for this device meanwhile, and a request held back deliver nothing.
async fn deliver_pending(
    hub: &DeviceHub,
    latchkey: &Latchkey,
    device: &DeviceId,
    only: Option<&str>,
) {
    let pending = match latchkey.devices.registered_device(device).await {
        Ok(Some(registered)) => latchkey.devices.announced_for_device(&registered).await,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(device = %device, error = %e, "reading a device for another instance's event failed");
            return;
        }
    };
    let requests = match pending {
        Ok(requests) => requests,
        Err(e) => {
            tracing::warn!(device = %device, error = %e.message, detail = ?e.detail, "reading a device's pending requests for another instance's event failed");
            return;
        }
    };
    for request in requests {
        if only.is_none_or(|id| id == request.id) {
            hub.notify(device, &DeviceEvent::Request { request });
        }
    }
}
