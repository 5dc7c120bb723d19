//! Turning phone sign-in on for a device registered earlier: the person, signed in to security
//! info, asks for it; the device confirms with the number the page shows (a fresh proof that
//! the person holds the device and sees the page); then, within the enable window, the device
//! may turn phone sign-in on. Wrong number, denial and expiry allow nothing.
//!
//! Never opens the window for a device alone: the request is raised only from a signed-in
//! session (the web edge asks for a fresh, strong sign-in, as for adding a method), and the
//! number is shown only on that session's page.

use latchkey_protocol::wire::{ApprovalKind, DeviceEvent};

use super::{DeviceApiError, Devices};
use crate::authenticator::{Approval, ApprovalContext, ApprovalState, Device};
use crate::error::DomainError;
use crate::ids::{ApprovalId, DeviceId, UserId};
use crate::policy::MethodKind;

/// What the security-info page shows while a device confirms that it may turn phone sign-in on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsentProgress {
    /// Waiting for the device: show the number.
    Waiting { number: u8, device_name: String },
    /// Confirmed: the device may turn phone sign-in on for this many minutes.
    Allowed { device_name: String, minutes: i64 },
    /// Wrong number, declined, expired or cancelled: nothing was allowed.
    Failed { message: String },
}

impl Devices {
    /// Sends the user's own device (confirmed, without phone sign-in) a number-matching
    /// request asking whether it may turn phone sign-in on; an earlier such request still open
    /// for that device is cancelled. Someone else's device is "not found".
    pub async fn request_phone_sign_in_consent(
        &self,
        user: &UserId,
        id: &DeviceId,
    ) -> Result<ApprovalId, DomainError> {
        let device = self.own_device(user, id).await?;
        if !device.is_confirmed() {
            return Err(DomainError::Rejected(
                "That authenticator app is not added yet: answer its test notification first."
                    .into(),
            ));
        }
        if device.has_phone_sign_in() {
            return Err(DomainError::Rejected(
                "Phone sign-in is already on for that device.".into(),
            ));
        }
        if !self.phone_sign_in_allowed_for(user).await? {
            return Err(DomainError::Rejected(
                "Your organisation's policy does not allow phone sign-in for your account.".into(),
            ));
        }
        for open in self.store.pending_approvals(user).await? {
            if open.kind() == ApprovalKind::PhoneSignInConsent && open.was_sent_to(&device.id) {
                self.cancel_approval(&open).await?;
            }
        }
        let account = self.directory.user(user).await?;
        let approval = Approval::new(
            ApprovalKind::PhoneSignInConsent,
            user.clone(),
            None,
            vec![device.id.clone()],
            ApprovalContext {
                user_principal_name: account.upn.to_string(),
                application: Some("Security info".into()),
                location: None,
                location_attribution: None,
                report_allowed: false,
            },
            self.now(),
            self.settings.approval_lifetime_seconds,
        )
        .drawn_from(self.random.as_ref());
        self.store.put_approval(&approval).await?;
        self.notifier().notify(
            &device.id,
            &DeviceEvent::Request {
                request: approval.view.clone(),
            },
        );
        Ok(approval.id)
    }

    /// Whether the policy lets this user sign in by phone (the app allowed, mode Any or
    /// Passwordless): the page offers "Allow phone sign-in" only then.
    pub(super) async fn phone_sign_in_allowed_for(
        &self,
        user: &UserId,
    ) -> Result<bool, DomainError> {
        let evaluation = self
            .access
            .evaluate_for(user, MethodKind::MicrosoftAuthenticator)
            .await?;
        Ok(evaluation.allowed && evaluation.mode.is_some_and(|m| m.allows_phone_sign_in()))
    }

    /// Where the user's own confirmation request stands.
    pub async fn phone_sign_in_consent_progress(
        &self,
        user: &UserId,
        id: &ApprovalId,
    ) -> Result<ConsentProgress, DomainError> {
        let approval = self
            .store
            .approval(id)
            .await?
            .filter(|a| &a.user_id == user && a.kind() == ApprovalKind::PhoneSignInConsent)
            .ok_or(DomainError::NotFound("request"))?;
        let approval = self.expire_if_due(approval).await?;
        let device_name = match approval.device_ids.first() {
            Some(id) => self.store.device(id).await?.map(|d| d.name),
            None => None,
        }
        .unwrap_or_default();
        let failed = |message: &str| ConsentProgress::Failed {
            message: format!(
                "{message} Phone sign-in was not allowed. Choose Allow phone sign-in to try again."
            ),
        };
        Ok(match approval.state {
            ApprovalState::Pending => ConsentProgress::Waiting {
                number: approval.number,
                device_name,
            },
            ApprovalState::Approved => ConsentProgress::Allowed {
                device_name,
                minutes: (self.settings.phone_sign_in_enable_window_seconds + 59) / 60,
            },
            ApprovalState::WrongNumber => failed("The number entered in the app didn't match."),
            ApprovalState::Expired => failed("The request wasn't answered in time."),
            ApprovalState::Cancelled => {
                failed("The request was replaced by a newer one or the device was removed.")
            }
            ApprovalState::Denied | ApprovalState::Reported => {
                failed("The request was declined in the app.")
            }
        })
    }

    /// An approved confirmation (the right number, by the device it was sent to) opens the
    /// enable window for that device from now; any other answer changes nothing.
    pub(super) async fn finish_phone_sign_in_consent(
        &self,
        device: &Device,
        state: ApprovalState,
    ) -> Result<(), DeviceApiError> {
        if state != ApprovalState::Approved {
            return Ok(());
        }
        self.store
            .allow_enabling_phone_sign_in(&device.id, self.now())
            .await?;
        self.device_audit(device, "Allow phone sign-in", false)
            .await
    }
}
