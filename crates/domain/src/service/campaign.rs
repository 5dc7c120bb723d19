//! The registration campaign at sign-in: after a pass or password, a user the campaign targets
//! who has no authenticator app (and whom the policy lets use one) is stopped by a page asking
//! them to set it up, with "Not now" while their snoozes last. See docs/policy.md.

use std::sync::Arc;

use serde_json::json;

use super::access::MethodAccess;
use super::shared::AuditTrail;
use crate::campaign::{CampaignInterrupt, Continuation, INTERRUPT_LIFETIME_SECONDS};
use crate::clock::{Clock, Timestamp};
use crate::error::DomainError;
use crate::ids::SessionId;
use crate::log::{Actor, AuditCategory};
use crate::policy::{MethodKind, RegistrationCampaign};
use crate::session::AuthMethod;
use crate::store::{CampaignStore, DeviceStore};
use crate::user::User;

pub const ACTIVITY_SHOWN: &str = "Registration campaign: prompt shown";
pub const ACTIVITY_SNOOZED: &str = "Registration campaign: snoozed";
pub const ACTIVITY_SET_UP: &str = "Registration campaign: chose to set up";

/// Whether the campaign may ever stop a sign-in made with `method`: only a pass or a password
/// one, the sign-ins of users who have no app yet.
pub(crate) fn may_interrupt(method: AuthMethod) -> bool {
    matches!(
        method,
        AuthMethod::TemporaryAccessPass | AuthMethod::Password
    )
}

pub struct RegistrationCampaigns {
    pub(crate) store: Arc<dyn CampaignStore>,
    pub(crate) devices: Arc<dyn DeviceStore>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) audit: Arc<AuditTrail>,
    pub(crate) access: Arc<MethodAccess>,
}

/// What the interrupt page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignPrompt {
    /// "Not now" is offered.
    pub can_snooze: bool,
    /// Snoozes left after this one is used, when limited; `None` when unlimited.
    pub snoozes_left: Option<u32>,
    pub snooze_days: u32,
}

/// Why an answer to the interrupt was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CampaignRefusal {
    /// No interrupt waits for this session (never shown, already answered, or expired).
    NothingPending,
    /// The user's snoozes are used up: "Not now" is no longer offered.
    NoSnoozesLeft,
}

impl RegistrationCampaigns {
    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    async fn campaign(&self) -> Result<RegistrationCampaign, DomainError> {
        Ok(self
            .access
            .policy()
            .await?
            .registration_enforcement
            .authentication_methods_registration_campaign)
    }

    /// Whether the user is to be nudged now: a pass or password sign-in, targeted, allowed the
    /// app, no app yet, and not within a snooze. Never fails a sign-in: trouble reading the
    /// policy or the store is logged and means no nudge.
    async fn due(&self, user: &User, method: AuthMethod) -> Result<bool, DomainError> {
        if !may_interrupt(method) {
            return Ok(false);
        }
        let campaign = self.campaign().await?;
        if !campaign.is_on() {
            return Ok(false);
        }
        let groups = self.access.user_groups(&user.id).await?;
        if !campaign.targets(&groups).targeted {
            return Ok(false);
        }
        if !self
            .access
            .method_allowed(&user.id, MethodKind::MicrosoftAuthenticator)
            .await?
        {
            return Ok(false);
        }
        let devices = self.devices.devices_of_user(&user.id).await?;
        if devices.iter().any(|d| d.is_confirmed()) {
            return Ok(false);
        }
        let status = self.store.campaign_status(&user.id).await?;
        Ok(status.snoozed_until.is_none_or(|until| self.now() >= until))
    }

    /// After a sign-in: stores the interrupt and returns true when the browser is to be sent
    /// to the nudge instead of `continuation`.
    pub async fn interrupt_after_sign_in(
        &self,
        user: &User,
        method: AuthMethod,
        session: &SessionId,
        continuation: Continuation,
    ) -> Result<bool, DomainError> {
        if !self.due(user, method).await? {
            return Ok(false);
        }
        let now = self.now();
        let status = self.store.campaign_status(&user.id).await?;
        let campaign = self.campaign().await?;
        self.store
            .put_campaign_interrupt(&CampaignInterrupt {
                session_id: session.clone(),
                user_id: user.id.clone(),
                continuation,
                created_at: now,
                expires_at: now.plus_seconds(INTERRUPT_LIFETIME_SECONDS),
            })
            .await?;
        self.audit
            .record(
                &Actor::user(user.upn.as_str()),
                AuditCategory::UserAuthenticationMethods,
                ACTIVITY_SHOWN,
                user.upn.as_str(),
                None,
                Some(json!({
                    "snoozesUsed": status.snoozes,
                    "snoozesAllowed": campaign.allowed_snoozes(),
                    "signInMethod": method,
                })),
            )
            .await?;
        Ok(true)
    }

    /// The session's live interrupt, but only when it belongs to `user`.
    async fn interrupt_of(
        &self,
        user: &User,
        session: &SessionId,
        now: Timestamp,
    ) -> Result<Option<CampaignInterrupt>, DomainError> {
        Ok(self
            .store
            .campaign_interrupt(session, now)
            .await?
            .filter(|i| i.user_id == user.id))
    }

    /// The prompt for the session's interrupt, or `None` when there is none.
    pub async fn prompt(
        &self,
        user: &User,
        session: &SessionId,
    ) -> Result<Option<CampaignPrompt>, DomainError> {
        if self
            .interrupt_of(user, session, self.now())
            .await?
            .is_none()
        {
            return Ok(None);
        }
        let campaign = self.campaign().await?;
        let status = self.store.campaign_status(&user.id).await?;
        Ok(Some(prompt_for(&campaign, status.snoozes)))
    }

    /// "Not now": counts a snooze (while any are left) and hands back where the browser was
    /// going. The interrupt is spent first, so a replayed post finds nothing.
    pub async fn snooze(
        &self,
        user: &User,
        session: &SessionId,
    ) -> Result<Result<Continuation, CampaignRefusal>, DomainError> {
        let now = self.now();
        if self.interrupt_of(user, session, now).await?.is_none() {
            return Ok(Err(CampaignRefusal::NothingPending));
        }
        let campaign = self.campaign().await?;
        let status = self.store.campaign_status(&user.id).await?;
        if !prompt_for(&campaign, status.snoozes).can_snooze {
            return Ok(Err(CampaignRefusal::NoSnoozesLeft));
        }
        let Some(interrupt) = self.store.take_campaign_interrupt(session, now).await? else {
            return Ok(Err(CampaignRefusal::NothingPending));
        };
        let until = now.plus_seconds(i64::from(campaign.snooze_duration_in_days) * 86_400);
        let Some(count) = self
            .store
            .snooze_campaign(&user.id, now, until, campaign.allowed_snoozes())
            .await?
        else {
            // Another browser used the last snooze meanwhile: the interrupt stands again.
            self.store.put_campaign_interrupt(&interrupt).await?;
            return Ok(Err(CampaignRefusal::NoSnoozesLeft));
        };
        self.audit
            .record(
                &Actor::user(user.upn.as_str()),
                AuditCategory::UserAuthenticationMethods,
                ACTIVITY_SNOOZED,
                user.upn.as_str(),
                Some(json!({"snoozesUsed": status.snoozes})),
                Some(json!({
                    "snoozesUsed": count,
                    "snoozesAllowed": campaign.allowed_snoozes(),
                    "snoozedUntil": until,
                })),
            )
            .await?;
        Ok(Ok(interrupt.continuation))
    }

    /// "Set it up now": recorded; the interrupt stays until the browser goes on
    /// ([`RegistrationCampaigns::resume`]) from the security-info page.
    pub async fn set_up_now(
        &self,
        user: &User,
        session: &SessionId,
    ) -> Result<Result<(), CampaignRefusal>, DomainError> {
        if self
            .interrupt_of(user, session, self.now())
            .await?
            .is_none()
        {
            return Ok(Err(CampaignRefusal::NothingPending));
        }
        self.audit
            .record(
                &Actor::user(user.upn.as_str()),
                AuditCategory::UserAuthenticationMethods,
                ACTIVITY_SET_UP,
                user.upn.as_str(),
                None,
                None,
            )
            .await?;
        Ok(Ok(()))
    }

    /// Whether the session has an interrupt waiting (the security-info page then offers to go
    /// on to the application).
    pub async fn pending(&self, session: &SessionId) -> Result<bool, DomainError> {
        Ok(self
            .store
            .campaign_interrupt(session, self.now())
            .await?
            .is_some())
    }

    /// Goes on after "Set it up now": only once the user has an authenticator app (or is no
    /// longer nudged), otherwise the nudge stands.
    pub async fn resume(
        &self,
        user: &User,
        session: &SessionId,
    ) -> Result<Result<Continuation, CampaignRefusal>, DomainError> {
        let now = self.now();
        if self.interrupt_of(user, session, now).await?.is_none() {
            return Ok(Err(CampaignRefusal::NothingPending));
        }
        let registered = self
            .devices
            .devices_of_user(&user.id)
            .await?
            .iter()
            .any(|d| d.is_confirmed());
        if !registered && self.campaign().await?.is_on() {
            // Going on without the app counts as "Not now" (refused when none are left).
            return self.snooze(user, session).await;
        }
        match self.store.take_campaign_interrupt(session, now).await? {
            Some(interrupt) => Ok(Ok(interrupt.continuation)),
            None => Ok(Err(CampaignRefusal::NothingPending)),
        }
    }
}

fn prompt_for(campaign: &RegistrationCampaign, used: u32) -> CampaignPrompt {
    match campaign.allowed_snoozes() {
        Some(allowed) => CampaignPrompt {
            can_snooze: used < allowed,
            snoozes_left: Some(allowed.saturating_sub(used).saturating_sub(1)),
            snooze_days: campaign.snooze_duration_in_days,
        },
        None => CampaignPrompt {
            can_snooze: true,
            snoozes_left: None,
            snooze_days: campaign.snooze_duration_in_days,
        },
    }
}
