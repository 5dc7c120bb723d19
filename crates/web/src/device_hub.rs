//! The live channel's switchboard: which devices are connected to this instance, and a queue
//! to each of their WebSockets.
//!
//! It is the web edge's [`Notifier`]. It is owned by the server's state, never a global, and
//! knows only this process's connections. On PostgreSQL the server also passes events to and
//! from the other instances (`latchkey::cross_instance`), which deliver here through
//! [`Notifier::notify`] as well.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use latchkey_domain::ids::DeviceId;
use latchkey_domain::notify::Notifier;
use latchkey_protocol::wire::DeviceEvent;
use tokio::sync::mpsc;

/// Events waiting for one slow connection before it is considered dead and dropped.
const QUEUE_DEPTH: usize = 64;
/// Live connections one device may hold; a new one beyond this closes the oldest, so a device
/// (or a copy of its key) cannot pile up connections.
pub const MAX_CONNECTIONS_PER_DEVICE: usize = 4;

/// One open connection: its number (to unregister it) and its queue.
///
/// The queue holds events behind an `Arc`: tokio allocates a channel's first block of 32 slots
/// when the channel is made, and at the event's own size (some 200 bytes) that block was most
/// of what an idle connection cost; a pointer's slot is 8 bytes, and a device with several
/// connections shares one copy of the event.
type Connection = (u64, mpsc::Sender<Arc<DeviceEvent>>);

#[derive(Default)]
pub struct DeviceHub {
    connections: Mutex<HashMap<DeviceId, Vec<Connection>>>,
    next_id: AtomicU64,
}

/// One registered connection; dropping it unregisters.
pub struct Subscription {
    hub: Arc<DeviceHub>,
    device: DeviceId,
    id: u64,
    pub events: mpsc::Receiver<Arc<DeviceEvent>>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.unsubscribe(&self.device, self.id);
    }
}

impl DeviceHub {
    pub fn subscribe(self: &Arc<Self>, device: &DeviceId) -> Subscription {
        let (sender, events) = mpsc::channel(QUEUE_DEPTH);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut connections) = self.connections.lock() {
            let list = connections.entry(device.clone()).or_default();
            list.push((id, sender));
            if list.len() > MAX_CONNECTIONS_PER_DEVICE {
                // Dropping its sender ends the oldest connection's relay.
                list.remove(0);
            }
        }
        Subscription {
            hub: self.clone(),
            device: device.clone(),
            id,
            events,
        }
    }

    fn unsubscribe(&self, device: &DeviceId, id: u64) {
        if let Ok(mut connections) = self.connections.lock()
            && let Some(list) = connections.get_mut(device)
        {
            list.retain(|(each, _)| *each != id);
            if list.is_empty() {
                connections.remove(device);
            }
        }
    }

    /// The devices with a connection open here.
    pub fn connected_devices(&self) -> Vec<DeviceId> {
        self.connections
            .lock()
            .map(|c| c.keys().cloned().collect())
            .unwrap_or_default()
    }

    pub fn is_connected(&self, device: &DeviceId) -> bool {
        self.connections
            .lock()
            .is_ok_and(|c| c.contains_key(device))
    }

    /// Closes every connection (the server is stopping): devices reconnect, to another
    /// instance if there is one, instead of holding a socket to a server that is gone.
    pub fn close_all(&self) {
        if let Ok(mut connections) = self.connections.lock() {
            connections.clear();
        }
    }

    /// How many connections are open, for metrics and the benchmark.
    pub fn connected(&self) -> usize {
        self.connections
            .lock()
            .map(|c| c.values().map(Vec::len).sum())
            .unwrap_or(0)
    }
}

impl Notifier for DeviceHub {
    fn forget(&self, device: &DeviceId) {
        if let Ok(mut connections) = self.connections.lock() {
            connections.remove(device);
        }
    }

    fn notify(&self, device: &DeviceId, event: &DeviceEvent) {
        let Ok(connections) = self.connections.lock() else {
            return;
        };
        let mut shared = None;
        for (_, sender) in connections.get(device).into_iter().flatten() {
            let event = shared.get_or_insert_with(|| Arc::new(event.clone()));
            // A full queue means the connection is stuck; the device will pull instead.
            let _ = sender.try_send(event.clone());
        }
    }
}
