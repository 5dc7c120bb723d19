//! Maintenance the server runs on a timer: expiring what is overdue and removing what expired.

use std::sync::Arc;

use super::devices::Devices;
use crate::clock::Clock;
use crate::error::DomainError;
use crate::store::MaintenanceStore;

pub struct Maintenance {
    pub(crate) store: Arc<dyn MaintenanceStore>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) devices: Arc<Devices>,
}

impl Maintenance {
    /// Whether the store answers (the readiness probe).
    pub async fn ready(&self) -> Result<(), DomainError> {
        Ok(self.store.ping().await?)
    }

    /// Expires overdue notifications (logging their timeouts and telling their devices), then
    /// removes what has expired.
    pub async fn purge_expired(&self) -> Result<u64, DomainError> {
        let expired = self.devices.expire_overdue_approvals().await;
        // The purge runs whatever happened above, so one bad row cannot make tokens pile up.
        let purged = self.store.purge_expired(self.clock.now()).await?;
        expired?;
        Ok(purged)
    }
}
