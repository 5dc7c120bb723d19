//! The registration campaign's state: what a user has snoozed, and the interrupt a signed-in
//! browser must pass before it goes on to where it was headed.

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::ids::{SessionId, UserId};
use crate::oidc::AuthorizationRequest;

/// How long an interrupt waits for an answer. The session may outlive it; after this the
/// browser is sent to My Apps instead of the application.
pub const INTERRUPT_LIFETIME_SECONDS: i64 = 30 * 60;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CampaignStatus {
    /// "Not now"s so far.
    pub snoozes: u32,
    /// The nudge is not shown again before this.
    pub snoozed_until: Option<Timestamp>,
}

/// Where the browser was going when the nudge stopped it: an application's authorization
/// request (a code is issued only when it goes on) or one of Latchkey's own pages. Kept on the
/// server, so nothing the browser posts can change it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Continuation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<AuthorizationRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_to: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignInterrupt {
    pub session_id: SessionId,
    pub user_id: UserId,
    pub continuation: Continuation,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}
