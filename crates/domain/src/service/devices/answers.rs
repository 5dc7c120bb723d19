//! The devices' answers: what is waiting for a device, settling an answer, and expiring or
//! cancelling requests nobody can answer any more.

use latchkey_protocol::wire::{
    Answer, AnswerOutcome, AnswerResult, ApprovalKind, ApprovalRequest, Decision, DeviceEvent,
};
use latchkey_protocol::{answer_signing_input, webauthn_challenge};

use super::{DeviceApiError, DeviceErrorKind, Devices};
use crate::authenticator::{AnswerRefused, Approval, ApprovalState, Device};
use crate::error::StoreError;
use crate::ids::ApprovalId;

/// A device whose signed answer passed [`Devices::authenticate_answer`], a slot of its answer
/// throttle taken: the only way to [`Devices::answer`], so no answer skips the throttle.
#[derive(Debug)]
pub struct AnsweringDevice(pub(super) Device);

impl Devices {
    /// What is waiting for this device: open requests it may answer (an unconfirmed device
    /// sees only its registration test; phone sign-in requests only with phone sign-in on).
    pub async fn pending_for_device(
        &self,
        device: &Device,
    ) -> Result<Vec<ApprovalRequest>, DeviceApiError> {
        self.open_for_device(device, true).await
    }

    /// What the live channel may announce (again) to this device: the pending requests that
    /// were announced when made, not those held back (the user is at risk, or the sign-in was
    /// unusual), which wait only for the device to pull them. Another instance's lost
    /// notification is made up with this.
    pub async fn announced_for_device(
        &self,
        device: &Device,
    ) -> Result<Vec<ApprovalRequest>, DeviceApiError> {
        self.open_for_device(device, false).await
    }

    async fn open_for_device(
        &self,
        device: &Device,
        with_held_back: bool,
    ) -> Result<Vec<ApprovalRequest>, DeviceApiError> {
        let now = self.now();
        let mut open = Vec::new();
        for approval in self.store.pending_approvals(&device.user_id).await? {
            let answerable =
                approval.kind() != ApprovalKind::PhoneSignIn || device.has_phone_sign_in();
            if !approval.was_sent_to(&device.id)
                || !answerable
                || (!with_held_back && approval.was_held_back())
            {
                continue;
            }
            if approval.is_expired(now) {
                self.expire_if_due(approval).await?;
            } else {
                open.push(approval.view);
            }
        }
        Ok(open)
    }

    /// A device answers a request. Refusals change nothing; the first valid answer settles
    /// the request and the other devices are told it was answered elsewhere.
    pub async fn answer(
        &self,
        AnsweringDevice(device): &AnsweringDevice,
        approval_id: &str,
        answer: &Answer,
    ) -> Result<AnswerResult, DeviceApiError> {
        let not_found = || {
            DeviceApiError::new(
                DeviceErrorKind::NotFound,
                "unknown_request",
                "there is no such request",
            )
        };
        if approval_id.is_empty() || approval_id.len() > 64 {
            return Err(not_found());
        }
        let approval = self
            .store
            .approval(&ApprovalId::from_string(approval_id))
            .await?
            .ok_or_else(not_found)?;
        if !approval.was_sent_to(&device.id) || approval.user_id != device.user_id {
            return Err(DeviceApiError::new(
                DeviceErrorKind::Forbidden,
                "not_your_request",
                "this request was not sent to this device",
            ));
        }
        let approval = self.expire_if_due(approval).await?;
        match approval.state {
            ApprovalState::Pending => {}
            ApprovalState::Expired => {
                return Err(DeviceApiError::new(
                    DeviceErrorKind::Gone,
                    "request_expired",
                    "the request expired before it was answered",
                ));
            }
            ApprovalState::Cancelled => {
                return Err(DeviceApiError::new(
                    DeviceErrorKind::Gone,
                    "request_cancelled",
                    "the sign-in was cancelled or continued another way",
                ));
            }
            _ => return Err(already_answered()),
        }
        let state = approval
            .judge(
                device,
                answer.decision,
                answer.number,
                &answer.context_digest,
                &answer.signature,
            )
            .map_err(|refused| match refused {
                AnswerRefused::BadSignature => DeviceApiError::unauthenticated(
                    "bad_signature",
                    "the answer is not signed by the key this request needs",
                ),
                AnswerRefused::ContextMismatch => DeviceApiError::new(
                    DeviceErrorKind::Invalid,
                    "context_mismatch",
                    "the answer describes a different request than the one sent",
                ),
                AnswerRefused::NoPasswordlessKey => DeviceApiError::new(
                    DeviceErrorKind::Forbidden,
                    "phone_sign_in_not_enabled",
                    "phone sign-in is not enabled on this device",
                ),
            })?;
        // On a device whose phone sign-in proof is WebAuthn, approving also needs an assertion
        // over this very answer, made with the phone's user verification.
        if approval.kind() == ApprovalKind::PhoneSignIn
            && device.webauthn.is_some()
            && answer.decision == Decision::Approve
        {
            let challenge = webauthn_challenge(&answer_signing_input(
                &approval.view.id,
                &approval.view.nonce,
                answer.decision,
                answer.number,
                &answer.context_digest,
            ));
            self.verify_device_assertion(device, &challenge, answer.assertion.as_ref())
                .await?;
        }
        let now = self.now();
        let record = match state {
            ApprovalState::Approved => None,
            failed => approval
                .sign_in_id
                .as_ref()
                .map(|_| self.approval_record(&approval, failed, Some(device), now)),
        };
        if !self
            .store
            .settle_approval(&approval.id, state, Some(&device.id), now, record.as_ref())
            .await?
        {
            return Err(already_answered());
        }
        self.settled(&approval.id);
        let elsewhere = DeviceEvent::AnsweredElsewhere {
            id: approval.view.id.clone(),
        };
        let notifier = self.notifier();
        for other in approval.device_ids.iter().filter(|d| *d != &device.id) {
            notifier.notify(other, &elsewhere);
        }
        if approval.kind() == ApprovalKind::RegistrationTest {
            self.finish_registration_test(device, state).await?;
        } else if approval.kind() == ApprovalKind::PhoneSignInConsent {
            self.finish_phone_sign_in_consent(device, state).await?;
        } else if matches!(state, ApprovalState::Denied | ApprovalState::Reported) {
            // Remembered for the policy switch that holds back requests after a refusal.
            self.anomalies.remember_refusal(&approval.user_id).await?;
            if state == ApprovalState::Reported {
                self.governance.user_reported(&approval, device).await?;
            }
        } else if state == ApprovalState::WrongNumber {
            self.throttles.count_wrong_number(&approval.user_id).await?;
        }
        Ok(AnswerResult {
            outcome: match state {
                ApprovalState::Approved => AnswerOutcome::Approved,
                ApprovalState::Denied => AnswerOutcome::Denied,
                ApprovalState::Reported => AnswerOutcome::Reported,
                _ => AnswerOutcome::WrongNumber,
            },
        })
    }

    /// Cancels a pending approval and tells its devices; false if it was no longer pending.
    pub(crate) async fn cancel_approval(&self, approval: &Approval) -> Result<bool, StoreError> {
        let cancelled = self
            .store
            .settle_approval(
                &approval.id,
                ApprovalState::Cancelled,
                None,
                self.now(),
                None,
            )
            .await?;
        if cancelled {
            self.settled(&approval.id);
            let event = DeviceEvent::Cancelled {
                id: approval.view.id.clone(),
            };
            let notifier = self.notifier();
            for device in &approval.device_ids {
                notifier.notify(device, &event);
            }
        }
        Ok(cancelled)
    }

    /// Marks a pending approval past its expiry as expired (logging the timeout of its
    /// sign-in) and tells its devices. Returns the approval as it now stands.
    pub(crate) async fn expire_if_due(&self, approval: Approval) -> Result<Approval, StoreError> {
        let now = self.now();
        if approval.state != ApprovalState::Pending || !approval.is_expired(now) {
            return Ok(approval);
        }
        let record = approval
            .sign_in_id
            .as_ref()
            .map(|_| self.approval_record(&approval, ApprovalState::Expired, None, now));
        if self
            .store
            .settle_approval(
                &approval.id,
                ApprovalState::Expired,
                None,
                now,
                record.as_ref(),
            )
            .await?
        {
            self.settled(&approval.id);
            let event = DeviceEvent::Expired {
                id: approval.view.id.clone(),
            };
            let notifier = self.notifier();
            for device in &approval.device_ids {
                notifier.notify(device, &event);
            }
            if approval.kind() == ApprovalKind::RegistrationTest {
                for id in &approval.device_ids {
                    if let Some(device) = self.store.device(id).await?
                        && !device.is_confirmed()
                    {
                        self.discard_unconfirmed(&device).await?;
                    }
                }
            }
        }
        Ok(self.store.approval(&approval.id).await?.unwrap_or(approval))
    }

    /// Expires every overdue approval, a batch at a time.
    /// A failing row does not stop the others; the first failure is returned at the end (and
    /// the batch loop stops, so a row that keeps failing cannot spin it).
    pub(crate) async fn expire_overdue_approvals(&self) -> Result<(), StoreError> {
        loop {
            let overdue = self.store.overdue_approvals(self.now(), 100).await?;
            let full = overdue.len() == 100;
            let mut first_failure = None;
            for approval in overdue {
                if let Err(e) = self.expire_if_due(approval).await {
                    first_failure.get_or_insert(e);
                }
            }
            match first_failure {
                Some(e) => return Err(e),
                None if !full => return Ok(()),
                None => {}
            }
        }
    }
}

fn already_answered() -> DeviceApiError {
    DeviceApiError::new(
        DeviceErrorKind::Conflict,
        "already_answered",
        "this request was already answered",
    )
}
