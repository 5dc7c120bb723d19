//! The registration campaign's per-user state: how many times a user has snoozed the nudge
//! and until when, and the interrupts waiting in signed-in browsers.

use async_trait::async_trait;

use crate::campaign::{CampaignInterrupt, CampaignStatus};
use crate::clock::Timestamp;
use crate::ids::{SessionId, UserId};

use super::StoreResult;

#[async_trait]
pub trait CampaignStore: Send + Sync {
    /// The user's snoozes so far (zero and none before the first).
    async fn campaign_status(&self, user: &UserId) -> StoreResult<CampaignStatus>;
    /// Counts one more snooze, lasting until `until`, only while the user has fewer than
    /// `allowed` (`None`: no limit). Returns the new count, or `None` (nothing changed) when
    /// the snoozes are used up. Atomic: two concurrent snoozes never both pass the limit.
    async fn snooze_campaign(
        &self,
        user: &UserId,
        at: Timestamp,
        until: Timestamp,
        allowed: Option<u32>,
    ) -> StoreResult<Option<u32>>;
    /// Stores the interrupt a session must pass (replacing one the session already had).
    /// `NotFound` when the user does not exist.
    async fn put_campaign_interrupt(&self, interrupt: &CampaignInterrupt) -> StoreResult<()>;
    /// The session's interrupt, if it has one that has not expired.
    async fn campaign_interrupt(
        &self,
        session: &SessionId,
        now: Timestamp,
    ) -> StoreResult<Option<CampaignInterrupt>>;
    /// Removes the session's interrupt and returns it, to exactly one caller; `None` if there
    /// is none (already taken, or never made) or it has expired.
    async fn take_campaign_interrupt(
        &self,
        session: &SessionId,
        now: Timestamp,
    ) -> StoreResult<Option<CampaignInterrupt>>;
}
