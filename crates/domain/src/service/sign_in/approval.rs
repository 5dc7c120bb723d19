//! The number page: waiting for the authenticator app's answer, and what ends the wait (an
//! answer, a timeout, or the user choosing another way).

use std::time::{Duration, Instant};

use super::{SignInFailure, SignIns, SignedIn};
use crate::anomaly::HeldBack;
use crate::authenticator::ApprovalState;
use crate::clock::Timestamp;
use crate::error::{DomainError, StoreError};
use crate::ids::{BrowserId, SignInId};
use crate::log::SignInError;
use crate::service::devices::WaitRefused;
use crate::service::messages::{DISABLED, STORE_TROUBLE};
use crate::session::AuthMethod;
use crate::signin::{PendingSignIn, SignInStage};

/// How often a waiting browser's approval is read again although nothing woke it: the safety
/// net under the wake-ups (a cross-instance notification lost, a sign-in deleted).
pub const RECHECK_EVERY: Duration = Duration::from_secs(3);

/// What the number page's long-poll answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApprovalWait {
    /// Still waiting for an answer; `false` means "reload the page".
    pub pending: bool,
    /// The server held the request (it was woken or its time ran out); `false` when a cap on
    /// waiters refused it and it answered as a plain poll, so the page falls back to polling.
    pub waited: bool,
    /// Which cap refused it, when one did.
    pub refused: Option<WaitRefused>,
}

impl ApprovalWait {
    fn settled() -> ApprovalWait {
        ApprovalWait {
            pending: false,
            waited: true,
            refused: None,
        }
    }
}

/// The number page's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingForApproval {
    pub upn: String,
    pub number: u8,
    pub expires_at: Timestamp,
    pub mfa_push: bool,
    /// Why the request was not pushed, when it was not: the page then tells the person to
    /// open the app and look for it.
    pub held_back: Option<HeldBack>,
    /// The application the user is signing in to, if any.
    pub app_name: Option<String>,
    /// How long a request waits for an answer.
    pub lifetime_seconds: i64,
}

impl SignIns {
    /// Everything the number page shows, or `None` when the sign-in is not waiting for
    /// approval: one call, so the page makes no decisions of its own.
    pub async fn waiting_for_approval(
        &self,
        sign_in: &PendingSignIn,
    ) -> Result<Option<WaitingForApproval>, DomainError> {
        let SignInStage::AwaitingApproval {
            upn,
            approval,
            first_factor,
            held_back,
            ..
        } = &sign_in.stage
        else {
            return Ok(None);
        };
        let Some(approval) = self.devices.approval(approval).await? else {
            return Ok(None);
        };
        let app_name = match &sign_in.authorization {
            Some(request) => self
                .applications
                .cached(&request.client_id)
                .await?
                .map(|a| a.display_name),
            None => None,
        };
        Ok(Some(WaitingForApproval {
            upn: upn.clone(),
            number: approval.number,
            expires_at: approval.expires_at(),
            mfa_push: first_factor.is_some(),
            held_back: *held_back,
            app_name,
            lifetime_seconds: self.settings.approval_lifetime_seconds,
        }))
    }

    /// Whether the approval behind a sign-in is still pending (expiring it when due). The
    /// number page polls this; anything but `true` means "reload the page".
    pub async fn approval_pending(&self, id: &SignInId) -> Result<bool, SignInFailure> {
        let trouble = |_| SignInFailure::TryAgain(STORE_TROUBLE.into());
        let sign_in = self.sign_in(id).await?;
        let SignInStage::AwaitingApproval { approval, .. } = &sign_in.stage else {
            return Ok(false);
        };
        let Some(approval) = self.devices.approval(approval).await.map_err(trouble)? else {
            return Ok(false);
        };
        let approval = self
            .devices
            .expire_if_due(approval)
            .await
            .map_err(trouble)?;
        Ok(approval.state == ApprovalState::Pending)
    }

    /// The number page's long-poll: waits up to `longest` for the approval behind a sign-in
    /// to settle, woken by whatever settles it (here or, on PostgreSQL, on another instance),
    /// re-reading the store every [`RECHECK_EVERY`] as a safety net and at the approval's
    /// expiry. Never polls the store in a tight loop.
    ///
    /// A sign-in that is gone, not waiting for approval, or whose approval is gone answers
    /// `pending: false` at once, as [`approval_pending`](Self::approval_pending) does. Past
    /// the caps on waiters (per approval and in all) it answers at once with `waited: false`.
    pub async fn wait_for_approval(
        &self,
        id: &SignInId,
        longest: Duration,
    ) -> Result<ApprovalWait, SignInFailure> {
        let trouble = |_| SignInFailure::TryAgain(STORE_TROUBLE.into());
        let sign_in = self.sign_in(id).await?;
        let SignInStage::AwaitingApproval { approval, .. } = &sign_in.stage else {
            return Ok(ApprovalWait::settled());
        };
        // Registered before the first read, so no settlement can fall between the two.
        let mut waiter = match self.devices.waiters.join(approval) {
            Ok(waiter) => waiter,
            Err(refused) => {
                return Ok(ApprovalWait {
                    pending: self.approval_pending(id).await?,
                    waited: false,
                    refused: Some(refused),
                });
            }
        };
        let deadline = Instant::now() + longest;
        loop {
            let Some(found) = self.devices.approval(approval).await.map_err(trouble)? else {
                return Ok(ApprovalWait::settled());
            };
            let found = self.devices.expire_if_due(found).await.map_err(trouble)?;
            if found.state != ApprovalState::Pending {
                return Ok(ApprovalWait::settled());
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(ApprovalWait {
                    pending: true,
                    waited: true,
                    refused: None,
                });
            }
            // The approval's expiry, in this clock's seconds, as a wait from now (at least a
            // little, so an expiry the store has not recorded yet cannot spin the loop).
            let to_expiry = found.expires_at().0.saturating_sub(self.now().0).max(0) as u64;
            let next = deadline
                .min(now + RECHECK_EVERY)
                .min(now + Duration::from_secs(to_expiry).max(Duration::from_millis(100)));
            tokio::select! {
                _ = waiter.woken() => {}
                _ = tokio::time::sleep_until(next.into()) => {}
            }
        }
    }

    /// Ends an approval stage: `Ok(None)` while the request is pending, a session when it was
    /// approved, and the reason (the sign-in ended) otherwise.
    /// The caller passes the sign-in as [`SignIns::sign_in`] just returned it, and the
    /// known-browser id of the browser it finishes in (checked, or minted for it), which
    /// becomes familiar for the user with the sign-in.
    pub async fn finish_approval(
        &self,
        sign_in: &PendingSignIn,
        browser: Option<&BrowserId>,
    ) -> Result<Option<SignedIn>, SignInFailure> {
        let trouble = |_| SignInFailure::TryAgain(STORE_TROUBLE.into());
        let SignInStage::AwaitingApproval {
            user_id,
            approval,
            first_factor,
            ..
        } = &sign_in.stage
        else {
            return Err(SignInFailure::OutOfOrder);
        };
        let approval = self
            .devices
            .approval(approval)
            .await
            .map_err(trouble)?
            .ok_or(SignInFailure::OutOfOrder)?;
        let approval = self
            .devices
            .expire_if_due(approval)
            .await
            .map_err(trouble)?;
        let lifetime = self.settings.approval_lifetime_seconds;
        let message = match approval.state {
            ApprovalState::Pending => return Ok(None),
            ApprovalState::Approved => None,
            ApprovalState::Denied => Some(
                "You denied the sign-in request in your authenticator app. If that was a mistake, start again.".to_string(),
            ),
            ApprovalState::Reported => Some(
                "You reported this sign-in as not yours, so we stopped it. If it was you after all, start again; if not, tell your administrator.".to_string(),
            ),
            ApprovalState::WrongNumber => Some(
                "The number entered in your authenticator app didn't match the number on this page. Start again, and enter the number shown here.".to_string(),
            ),
            ApprovalState::Expired => Some(format!(
                "We didn't get an answer from your authenticator app within {lifetime} seconds. Start again, and approve the request when it arrives."
            )),
            ApprovalState::Cancelled => Some(
                "This sign-in request was cancelled. Start again.".to_string(),
            ),
        };
        if let Some(message) = message {
            self.store
                .delete_sign_in(&sign_in.id)
                .await
                .map_err(trouble)?;
            return Err(SignInFailure::StartAgain(message));
        }
        let Some(user) = self
            .directory
            .lookup(user_id)
            .await
            .map_err(trouble)?
            .filter(|u| u.enabled)
        else {
            let mut record =
                self.devices
                    .approval_record(&approval, ApprovalState::Approved, None, self.now());
            record.status.fail(SignInError::UserDisabled);
            self.store
                .fail_sign_in(sign_in, true, &record)
                .await
                .map_err(trouble)?;
            return Err(SignInFailure::StartAgain(DISABLED.into()));
        };
        let method = match first_factor {
            None => AuthMethod::PhoneSignIn,
            Some(_) => AuthMethod::PasswordAndPush,
        };
        let now = self.now();
        let session = self.new_session(&user, method, now);
        let device = match &approval.answered_by {
            Some(id) => self.devices.device(id).await.map_err(trouble)?,
            None => None,
        };
        let record =
            self.devices
                .approval_record(&approval, ApprovalState::Approved, device.as_ref(), now);
        self.finish_sign_in(
            sign_in.clone(),
            user,
            session,
            &record,
            browser,
            now,
            |error| match error {
                StoreError::Conflict(_) => SignInFailure::StartAgain(
                    "This sign-in already finished. Start again if you are not signed in.".into(),
                ),
                other => trouble(other),
            },
        )
        .await
        .map(Some)
    }

    /// "Use your password instead", "Other ways to sign in", "I can't use my app right now":
    /// cancels the notification and moves to the pass or password step.
    pub async fn choose_other_way(&self, id: &SignInId) -> Result<PendingSignIn, SignInFailure> {
        let trouble = |_| SignInFailure::TryAgain(STORE_TROUBLE.into());
        let mut sign_in = self.sign_in(id).await?;
        let SignInStage::AwaitingApproval {
            upn,
            user_id,
            approval,
            first_factor,
            ..
        } = sign_in.stage.clone()
        else {
            return Ok(sign_in);
        };
        if first_factor.is_some() {
            // The second factor cannot be skipped: start again from the user name.
            sign_in.stage = SignInStage::AwaitingUsername;
        } else {
            sign_in.stage = SignInStage::AwaitingCredential {
                upn,
                user_id: Some(user_id),
                notice: None,
            };
        }
        // The sign-in moves on before its request is cancelled: the cancellation wakes the
        // number page's wait, which finishes a sign-in still waiting for an approval, and must
        // find this one no longer waiting rather than end it as cancelled.
        self.store.put_sign_in(&sign_in).await.map_err(trouble)?;
        if let Some(found) = self.devices.approval(&approval).await.map_err(trouble)? {
            self.devices
                .cancel_approval(&found)
                .await
                .map_err(trouble)?;
        }
        Ok(sign_in)
    }
}
