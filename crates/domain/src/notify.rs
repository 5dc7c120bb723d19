//! Ports for what happens outside a request: domain events other parts react to.
//!
//! Phone sign-in delivers notifications to devices through a [`Notifier`]: the web edge's live
//! channel, Web Push, and on PostgreSQL the other instances (the binary's `cross_instance`).
//! Delivery is best effort by design: whatever a device misses it pulls from the pending list,
//! so a lost notification delays a sign-in but never loses or changes one. The `EventBus`
//! carries session and user lifecycle events out (webhooks); the in-process implementation is
//! the default.

use std::sync::Mutex;

use latchkey_protocol::wire::DeviceEvent;

use crate::ids::{ApprovalId, DeviceId, SessionId, UserId};

#[derive(Debug, Clone, PartialEq)]
pub enum DomainEvent {
    SessionStarted {
        user: UserId,
        session: SessionId,
    },
    SessionEnded {
        session: SessionId,
    },
    UserDisabled {
        user: UserId,
    },
    /// A user answered "No, it's not me"; their risk is now high.
    UserReportedSuspiciousActivity {
        user: UserId,
        user_principal_name: String,
        detection: Box<crate::risk::RiskDetection>,
    },
}

pub trait EventBus: Send + Sync {
    fn publish(&self, event: DomainEvent);
}

/// Publishes to nobody: events are logged by the caller and otherwise dropped.
#[derive(Debug, Default)]
pub struct NoEventBus;

impl EventBus for NoEventBus {
    fn publish(&self, _event: DomainEvent) {}
}

/// Keeps every event in memory; for tests that assert on what was published.
#[derive(Debug, Default)]
pub struct RecordingEventBus {
    events: Mutex<Vec<DomainEvent>>,
}

impl RecordingEventBus {
    pub fn events(&self) -> Vec<DomainEvent> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl EventBus for RecordingEventBus {
    fn publish(&self, event: DomainEvent) {
        if let Ok(mut events) = self.events.lock() {
            events.push(event);
        }
    }
}

/// Delivers events to authenticator devices.
pub trait Notifier: Send + Sync {
    fn notify(&self, device: &DeviceId, event: &DeviceEvent);
    /// The device is gone: close whatever live channel it has.
    fn forget(&self, _device: &DeviceId) {}
    /// `approval` was settled (answered, cancelled or expired) here. Browsers waiting for it
    /// here were woken already; this tells other instances (see `cross_instance`).
    fn settled(&self, _approval: &ApprovalId) {}
}

/// Delivers nothing: devices find their requests by pulling.
#[derive(Debug, Default)]
pub struct PullOnly;

impl Notifier for PullOnly {
    fn notify(&self, _device: &DeviceId, _event: &DeviceEvent) {}
}
