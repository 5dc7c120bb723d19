//! What the maintenance loop and the readiness check need from the store as a whole.

use async_trait::async_trait;

use crate::clock::Timestamp;

use super::StoreResult;

/// Store-wide upkeep: expiry across every port, and whether the store answers at all.
#[async_trait]
pub trait MaintenanceStore: Send + Sync {
    /// Removes expired codes, tokens, sign-ins and sessions. Returns how many rows went.
    async fn purge_expired(&self, now: Timestamp) -> StoreResult<u64>;
    /// Whether the store answers (for readiness checks).
    async fn ping(&self) -> StoreResult<()>;
}
