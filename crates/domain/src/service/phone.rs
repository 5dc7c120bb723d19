//! Use cases of the authenticator app: registering a device, enabling phone sign-in, signing
//! in with number matching (passwordless or as MFA push after a password), and answering.
//!
//! Every request a device makes after activation is signed with its device key and carries a
//! timestamp and a single-use nonce; [`Latchkey::authenticate_device`] checks all three before
//! anything else happens. Answers are settled by the store in one conditional write, so of
//! two racing answers exactly one counts.

use latchkey_protocol::wire::{
    AccountInfo, ActivateRequest, ActivateResponse, Answer, AnswerOutcome, AnswerResult,
    ApprovalKind, ApprovalRequest, DeviceEvent, DeviceStatus, DisablePhoneSignIn,
    EnablePhoneSignIn,
};
use latchkey_protocol::{
    ActivationLink, FRESHNESS_SECONDS, MAX_DEVICE_NAME_LEN, MAX_NONCE_LEN, MIN_NONCE_LEN,
    activation_proof_input, request_signing_input, verify_signature,
};

use super::pin::{PIN_LOCKED_MESSAGE, pin_verifier};
use super::{Latchkey, STORE_TROUBLE, SignInFailure, SignedIn};
use crate::anomaly::HeldBack;
use crate::authenticator::{
    ACTIVATION_LIFETIME_SECONDS, Activation, AnswerRefused, Approval, ApprovalContext,
    ApprovalState, Device, PinLock,
};
use crate::clock::Timestamp;
use crate::error::{DomainError, StoreError};
use crate::ids::{ActivationId, ApprovalId, DeviceId, SignInId, UserId};
use crate::location::is_private_network;
use crate::log::{
    Actor, AuditCategory, AuthenticationStep, SignInContext, SignInError, SignInRecord,
    SignInStatus,
};
use crate::notify::DomainEvent;
use crate::policy::{Feature, MethodKind};
use crate::secret::{TokenHash, random_token};
use crate::session::AuthMethod;
use crate::signin::{PendingSignIn, SignInStage};
use crate::user::{NO_REORDERING_CHARACTERS, User, reorders_or_breaks_lines};

/// Devices one user may register; enough for a phone, a tablet and spares.
pub const MAX_DEVICES_PER_USER: usize = 10;

/// Activations one user may have open (started, not yet used by a device, not expired). A
/// person adds one app at a time; five covers a page reloaded a few times, and bounds what
/// one stolen session can hold ready for parallel redemption.
pub const MAX_OPEN_ACTIVATIONS_PER_USER: u32 = 5;

/// Shown beside a location that came from the GeoIP database (DB-IP's CC BY 4.0 licence).
pub const LOCATION_ATTRIBUTION: &str = "IP Geolocation by DB-IP (https://db-ip.com)";

/// What the authenticator API answers when it refuses: a stable code and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceApiError {
    pub kind: DeviceErrorKind,
    pub code: &'static str,
    /// What the device is told.
    pub message: String,
    /// For the server's log only.
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceErrorKind {
    Invalid,
    Unauthenticated,
    Forbidden,
    NotFound,
    Conflict,
    Gone,
    /// Too many requests; try again later.
    Throttled,
    Internal,
}

impl DeviceApiError {
    pub(super) fn new(
        kind: DeviceErrorKind,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        DeviceApiError {
            kind,
            code,
            message: message.into(),
            detail: None,
        }
    }

    fn unauthenticated(code: &'static str, message: &str) -> Self {
        Self::new(DeviceErrorKind::Unauthenticated, code, message)
    }
}

/// The detail of an internal failure goes to the server's log (the edge logs `Internal`
/// errors' `detail`), never to the device.
impl From<StoreError> for DeviceApiError {
    fn from(e: StoreError) -> Self {
        DeviceApiError {
            kind: DeviceErrorKind::Internal,
            code: "internal",
            message: STORE_TROUBLE.into(),
            detail: Some(e.to_string()),
        }
    }
}

impl From<DomainError> for DeviceApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Store(e) => e.into(),
            DomainError::Invalid { .. } => {
                Self::new(DeviceErrorKind::Invalid, "invalid_input", e.to_string())
            }
            DomainError::NotFound(_) => {
                Self::new(DeviceErrorKind::NotFound, "not_found", e.to_string())
            }
            other => DeviceApiError {
                kind: DeviceErrorKind::Internal,
                code: "internal",
                message: STORE_TROUBLE.into(),
                detail: Some(other.to_string()),
            },
        }
    }
}

/// A request as the device signed it, taken apart by the web edge.
#[derive(Debug, Clone)]
pub struct SignedDeviceRequest<'a> {
    pub device_id: &'a str,
    pub timestamp: &'a str,
    pub nonce: &'a str,
    pub signature: &'a str,
    pub method: &'a str,
    /// Path and query, exactly as sent.
    pub path: &'a str,
    pub body: &'a [u8],
}

impl SignedDeviceRequest<'_> {
    /// The checks that need neither the store nor the device's key: all four headers present,
    /// a device id of sane length, a base64url nonce of the protocol's length, and a timestamp
    /// within [`FRESHNESS_SECONDS`] of `now`. Returns the timestamp.
    pub fn checked_timestamp(&self, now: Timestamp) -> Result<i64, DeviceApiError> {
        let missing = || {
            DeviceApiError::unauthenticated(
                "unsigned_request",
                "the request must carry the device id, timestamp, nonce and signature headers",
            )
        };
        if [self.device_id, self.timestamp, self.nonce, self.signature]
            .iter()
            .any(|h| h.is_empty())
        {
            return Err(missing());
        }
        if self.device_id.len() > 64 {
            return Err(DeviceApiError::unauthenticated(
                "unknown_device",
                "this device is not registered (it may have been removed); add the account again",
            ));
        }
        let timestamp: i64 = self.timestamp.parse().map_err(|_| {
            DeviceApiError::unauthenticated(
                "stale_request",
                "the timestamp must be whole seconds since the Unix epoch",
            )
        })?;
        let nonce_ok = (MIN_NONCE_LEN..=MAX_NONCE_LEN).contains(&self.nonce.len())
            && self
                .nonce
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !nonce_ok {
            return Err(DeviceApiError::unauthenticated(
                "bad_nonce",
                "the nonce must be 16 to 64 base64url characters",
            ));
        }
        if now.0.abs_diff(timestamp) > FRESHNESS_SECONDS.unsigned_abs() {
            return Err(DeviceApiError::unauthenticated(
                "stale_request",
                "the request's timestamp is too far from the server's clock; check the device's time",
            ));
        }
        Ok(timestamp)
    }
}

/// What the security-info page shows while a device is being added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActivationProgress {
    /// Not redeemed yet: show the QR code and the code.
    WaitingForDevice { activation: Activation },
    /// The device redeemed it: show the test notification's number.
    WaitingForTest { number: u8, device_name: String },
    /// The test was approved; the method is registered.
    Registered { device_name: String },
    /// Expired, denied, or the wrong number was entered: add the method again.
    Failed { message: String },
}

/// What asking for an approval did.
pub(super) enum ApprovalStart {
    /// The notification went out; the sign-in waits on the number page.
    Sent(SignInStage),
    /// Phone sign-in or push does not apply to this user now.
    NotApplicable,
    /// A notification for this user is already waiting: none is sent.
    AlreadyPending,
    /// A throttle stopped it; the attempt is in the sign-in log.
    Throttled,
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
}

impl Latchkey {
    // ----- registration ---------------------------------------------------------------

    /// Starts adding the authenticator app for a signed-in user. The code inside the link is
    /// shown once (as QR code and text) and kept only as a hash.
    pub async fn start_activation(
        &self,
        user: &UserId,
    ) -> Result<(Activation, ActivationLink), DomainError> {
        let user = self.user(user).await?;
        if !self
            .method_allowed(&user.id, MethodKind::MicrosoftAuthenticator)
            .await?
        {
            return Err(DomainError::Rejected(
                "Your organisation doesn't let your account use the authenticator app.".into(),
            ));
        }
        if self.store.devices_of_user(&user.id).await?.len() >= MAX_DEVICES_PER_USER {
            return Err(DomainError::Rejected(format!(
                "You already have {MAX_DEVICES_PER_USER} authenticator apps. Remove one first."
            )));
        }
        let now = self.now();
        let code = random_token();
        let activation = Activation {
            id: ActivationId::random(),
            code_hash: TokenHash::of(code.expose()),
            user_id: user.id,
            created_at: now,
            expires_at: now.plus_seconds(ACTIVATION_LIFETIME_SECONDS),
            device_id: None,
            test_approval: None,
        };
        if !self
            .store
            .put_activation_within(&activation, now, MAX_OPEN_ACTIVATIONS_PER_USER)
            .await?
        {
            return Err(DomainError::Rejected(format!(
                "You already have {MAX_OPEN_ACTIVATIONS_PER_USER} authenticator app activations waiting to be used. Use one of the codes you were shown, or wait {} minutes for them to expire, then add the app again.",
                ACTIVATION_LIFETIME_SECONDS / 60
            )));
        }
        let link = ActivationLink {
            server: self.settings.issuer.clone(),
            code: code.expose().to_string(),
        };
        Ok((activation, link))
    }

    /// An administrator (or their provisioning system) starts adding the authenticator app
    /// for a user, to hand over the QR code in person or in bulk. Same checks and lifetime as
    /// when the user starts it from security info; the registration is audited with who
    /// issued it.
    pub async fn issue_activation(
        &self,
        actor: &Actor,
        user: &UserId,
    ) -> Result<(Activation, ActivationLink), DomainError> {
        let (activation, link) = self.start_activation(user).await?;
        let upn = self.user(user).await?.upn;
        self.audit(
            actor,
            AuditCategory::UserAuthenticationMethods,
            "Issue authenticator activation",
            upn.as_str(),
            None,
            Some(serde_json::json!({
                "activationId": activation.id,
                "expiresDateTime": activation.expires_at.to_rfc3339(),
            })),
        )
        .await?;
        Ok((activation, link))
    }

    /// Where an activation the user started stands.
    pub async fn activation_progress(
        &self,
        user: &UserId,
        id: &ActivationId,
    ) -> Result<ActivationProgress, DomainError> {
        let activation = self
            .store
            .activation(id)
            .await?
            .filter(|a| &a.user_id == user)
            .ok_or(DomainError::NotFound("activation"))?;
        let now = self.now();
        let (Some(device_id), Some(test_id)) = (&activation.device_id, &activation.test_approval)
        else {
            if activation.is_usable(now) {
                return Ok(ActivationProgress::WaitingForDevice { activation });
            }
            return Ok(ActivationProgress::Failed {
                message:
                    "The activation code expired before your app used it. Add the method again."
                        .into(),
            });
        };
        let device_name = self
            .store
            .device(device_id)
            .await?
            .map(|d| d.name)
            .unwrap_or_default();
        let Some(test) = self.store.approval(test_id).await? else {
            return Err(DomainError::NotFound("test notification"));
        };
        let test = self.expire_if_due(test).await?;
        Ok(match test.state {
            ApprovalState::Pending => ActivationProgress::WaitingForTest {
                number: test.number,
                device_name,
            },
            ApprovalState::Approved => ActivationProgress::Registered { device_name },
            ApprovalState::WrongNumber => ActivationProgress::Failed {
                message: "The number entered in the app didn't match. Remove the account from your app and add the method again.".into(),
            },
            ApprovalState::Expired => ActivationProgress::Failed {
                message: "The test notification wasn't answered in time. Remove the account from your app and add the method again.".into(),
            },
            _ => ActivationProgress::Failed {
                message: "The test notification was declined. Add the method again if you want to use the app.".into(),
            },
        })
    }

    /// A device redeems an activation code, proving it holds the key it registers.
    pub async fn activate(
        &self,
        request: ActivateRequest,
    ) -> Result<ActivateResponse, DeviceApiError> {
        let invalid = |m: &str| DeviceApiError::new(DeviceErrorKind::Invalid, "invalid_input", m);
        let name = request.device_name.trim();
        if name.is_empty()
            || name.chars().count() > MAX_DEVICE_NAME_LEN
            || name.chars().any(char::is_control)
        {
            return Err(invalid(
                "device_name must be 1 to 64 characters without control characters",
            ));
        }
        if name.chars().any(reorders_or_breaks_lines) {
            return Err(invalid(&format!("device_name {NO_REORDERING_CHARACTERS}")));
        }
        if request.code.is_empty() || request.code.len() > 128 {
            return Err(invalid("code is not an activation code"));
        }
        if !verify_signature(
            &request.device_key,
            &activation_proof_input(&request.code, &request.device_key),
            &request.proof,
        ) {
            return Err(DeviceApiError::unauthenticated(
                "bad_signature",
                "the proof is not the device key's signature of the activation code",
            ));
        }
        let code_hash = TokenHash::of(&request.code);
        let now = self.now();
        let Some(pending) = self
            .store
            .activation_by_code(&code_hash)
            .await?
            .filter(|a| a.is_usable(now))
        else {
            return Err(invalid_code());
        };
        let user = self
            .store
            .user(&pending.user_id)
            .await?
            .filter(|u| u.enabled)
            .ok_or_else(invalid_code)?;
        let device = Device {
            id: DeviceId::random(),
            user_id: user.id.clone(),
            name: name.to_string(),
            key: request.device_key.clone(),
            passwordless_key: None,
            created_at: now,
            confirmed_at: None,
            phone_sign_in_at: None,
        };
        let test = Approval::new(
            ApprovalKind::RegistrationTest,
            user.id.clone(),
            None,
            vec![device.id.clone()],
            ApprovalContext {
                user_principal_name: user.upn.to_string(),
                application: Some("Security info".into()),
                location: None,
                location_attribution: None,
                report_allowed: false,
            },
            now,
            self.settings.approval_lifetime_seconds,
        );
        if self
            .store
            .redeem_activation(&code_hash, now, &device, &test, MAX_DEVICES_PER_USER as u32)
            .await?
            .is_none()
        {
            // Only the reason is read here; the limit itself held inside the store's write.
            if self.store.devices_of_user(&user.id).await?.len() >= MAX_DEVICES_PER_USER {
                return Err(DeviceApiError::new(
                    DeviceErrorKind::Conflict,
                    "too_many_devices",
                    format!(
                        "this account already has {MAX_DEVICES_PER_USER} authenticator apps; remove one on the security-info page, then add this one again"
                    ),
                ));
            }
            return Err(invalid_code());
        }
        self.audit(
            &Actor::user(user.upn.as_str()),
            AuditCategory::UserAuthenticationMethods,
            "Register authenticator app",
            user.upn.as_str(),
            None,
            Some(serde_json::json!({"deviceId": device.id, "deviceName": device.name})),
        )
        .await?;
        Ok(ActivateResponse {
            device_id: device.id.to_string(),
            account: self.account_info(&user),
            test_request: test.view,
        })
    }

    fn account_info(&self, user: &User) -> AccountInfo {
        AccountInfo {
            user_id: user.id.to_string(),
            user_principal_name: user.upn.to_string(),
            display_name: user.display_name.clone(),
            issuer: self.settings.issuer.clone(),
        }
    }

    // ----- signed device requests -----------------------------------------------------

    /// Checks a device's signed request: fresh timestamp, known device, valid signature, then
    /// a nonce never used before (recorded only after the signature verified, so forged
    /// requests cannot use up nonces).
    pub async fn authenticate_device(
        &self,
        signed: &SignedDeviceRequest<'_>,
    ) -> Result<Device, DeviceApiError> {
        let timestamp = signed.checked_timestamp(self.now())?;
        let device = self
            .store
            .device(&DeviceId::from_string(signed.device_id))
            .await?
            .ok_or_else(|| {
                DeviceApiError::unauthenticated(
                    "unknown_device",
                    "this device is not registered (it may have been removed); add the account again",
                )
            })?;
        let message = request_signing_input(
            signed.method,
            signed.path,
            timestamp,
            signed.nonce,
            signed.body,
        );
        if !verify_signature(&device.key, &message, signed.signature) {
            return Err(DeviceApiError::unauthenticated(
                "bad_signature",
                "the request is not signed by this device's key",
            ));
        }
        // Past this a replay fails the freshness check anyway, so the nonce can be forgotten.
        let keep_until = Timestamp(timestamp.saturating_add(FRESHNESS_SECONDS + 1));
        if !self
            .store
            .use_device_nonce(&device.id, signed.nonce, keep_until)
            .await?
        {
            return Err(DeviceApiError::unauthenticated(
                "replayed_request",
                "this request was already received",
            ));
        }
        match self.store.user(&device.user_id).await? {
            Some(user) if user.enabled => Ok(device),
            _ => Err(DeviceApiError::new(
                DeviceErrorKind::Forbidden,
                "account_disabled",
                "the account is disabled",
            )),
        }
    }

    pub async fn device_status(&self, device: &Device) -> Result<DeviceStatus, DeviceApiError> {
        let user = self.user(&device.user_id).await?;
        Ok(DeviceStatus {
            device_id: device.id.to_string(),
            device_name: device.name.clone(),
            account: self.account_info(&user),
            confirmed: device.is_confirmed(),
            phone_sign_in: device.has_phone_sign_in(),
            phone_sign_in_locked: self
                .store
                .pin_lock(&device.id)
                .await?
                .is_some_and(|l| l.is_locked()),
        })
    }

    /// Registers the device's passwordless key, if the policy lets this user sign in by phone.
    pub async fn enable_phone_sign_in(
        &self,
        device: &Device,
        request: &EnablePhoneSignIn,
    ) -> Result<String, DeviceApiError> {
        if !device.is_confirmed() {
            return Err(DeviceApiError::new(
                DeviceErrorKind::Conflict,
                "registration_incomplete",
                "answer the test notification first",
            ));
        }
        let window = self.settings.phone_sign_in_enable_window_seconds;
        // After a lock for wrong PINs, the window opens when the person allows it on the
        // security-info page (signed in another way), never by the device alone.
        let lock = self.store.pin_lock(&device.id).await?;
        let opened = match &lock {
            Some(lock) if lock.is_locked() => lock.reenable_allowed_at,
            _ => Some(device.confirmed_at.unwrap_or(device.created_at)),
        };
        if lock.as_ref().is_some_and(PinLock::is_locked) && opened.is_none() {
            return Err(DeviceApiError::new(
                DeviceErrorKind::Forbidden,
                "phone_sign_in_locked",
                PIN_LOCKED_MESSAGE,
            ));
        }
        let opened = opened.unwrap_or(device.created_at);
        if device.passwordless_key.is_none() && self.now().0 - opened.0 > window {
            return Err(DeviceApiError::new(
                DeviceErrorKind::Forbidden,
                "enable_window_passed",
                format!(
                    "phone sign-in can be turned on only within {} minutes of adding the app; remove the account and add it again from security info",
                    window / 60
                ),
            ));
        }
        if request.key == device.key {
            return Err(DeviceApiError::new(
                DeviceErrorKind::Invalid,
                "invalid_input",
                "the passwordless key must differ from the device key",
            ));
        }
        if !device.passwordless_change_ok(
            &request.key,
            &request.proof,
            request.previous_proof.as_deref(),
        ) {
            return Err(DeviceApiError::unauthenticated(
                "bad_proof",
                "the proof must be signed by the new key and, when it replaces one, by the current passwordless key",
            ));
        }
        let evaluation = self
            .evaluate_for(&device.user_id, MethodKind::MicrosoftAuthenticator)
            .await?;
        if !evaluation.allowed || !evaluation.mode.is_some_and(|m| m.allows_phone_sign_in()) {
            return Err(DeviceApiError::new(
                DeviceErrorKind::Forbidden,
                "phone_sign_in_not_allowed",
                "your organisation's policy does not allow phone sign-in for your account",
            ));
        }
        let verifier = pin_verifier(&request.pin_verifier)?;
        let mut updated = device.clone();
        updated.passwordless_key = Some(request.key.clone());
        updated.phone_sign_in_at = Some(self.now());
        let mac = self.pin_verifier_mac(&device.id, &verifier).await?;
        self.store.set_phone_sign_in(&updated, Some(&mac)).await?;
        self.device_audit(&updated, "Enable phone sign-in", false)
            .await?;
        self.unlock_secret(&updated).await
    }

    /// Turns phone sign-in off. Needs the PIN-protected key's signature over this request's
    /// nonce, so a copy of the device key alone cannot switch it off and on again with a key
    /// of its own. (Removing the device entirely needs only the device key; adding it back
    /// needs the user to sign in to security info.)
    pub async fn disable_phone_sign_in(
        &self,
        device: &Device,
        request_nonce: &str,
        request: Option<&DisablePhoneSignIn>,
    ) -> Result<(), DeviceApiError> {
        if device.passwordless_key.is_none() {
            return Ok(());
        }
        let proof = request.map(|r| r.proof.as_str()).unwrap_or_default();
        if !device.passwordless_off_ok(request_nonce, proof) {
            return Err(DeviceApiError::unauthenticated(
                "bad_proof",
                "turning phone sign-in off must be signed by the passwordless key",
            ));
        }
        let mut updated = device.clone();
        updated.passwordless_key = None;
        updated.phone_sign_in_at = None;
        self.store.set_phone_sign_in(&updated, None).await?;
        self.cancel_open_approvals_for(&updated, |kind| kind == ApprovalKind::PhoneSignIn)
            .await?;
        self.device_audit(device, "Disable phone sign-in", true)
            .await
    }

    /// The device removes itself (the account was removed from the app).
    pub async fn remove_device_by_itself(&self, device: &Device) -> Result<(), DeviceApiError> {
        self.remove_device_record(device).await?;
        self.device_audit(device, "Remove authenticator app", true)
            .await
    }

    /// The user removes a device on the security-info page.
    pub async fn remove_device(&self, user: &UserId, id: &DeviceId) -> Result<(), DomainError> {
        let device = self
            .store
            .device(id)
            .await?
            .filter(|d| &d.user_id == user)
            .ok_or(DomainError::NotFound("authenticator app"))?;
        self.remove_device_record(&device).await?;
        self.device_audit(&device, "Remove authenticator app", true)
            .await
            .map_err(|e| DomainError::Internal(e.message))
    }

    async fn remove_device_record(&self, device: &Device) -> Result<(), StoreError> {
        self.store.delete_device(&device.id).await?;
        self.notifier().forget(&device.id);
        self.cancel_open_approvals_for(device, |_| true).await
    }

    /// Requests of the given kinds that only this device could still answer are cancelled,
    /// and the browsers waiting on them learn it on their next look.
    pub(super) async fn cancel_open_approvals_for(
        &self,
        device: &Device,
        kinds: impl Fn(ApprovalKind) -> bool,
    ) -> Result<(), StoreError> {
        let remaining: Vec<DeviceId> = self
            .store
            .devices_of_user(&device.user_id)
            .await?
            .into_iter()
            .filter(|d| d.id != device.id)
            .map(|d| d.id)
            .collect();
        for approval in self.store.pending_approvals(&device.user_id).await? {
            if kinds(approval.kind())
                && approval.was_sent_to(&device.id)
                && !approval.device_ids.iter().any(|d| remaining.contains(d))
            {
                self.cancel_approval(&approval).await?;
            }
        }
        Ok(())
    }

    /// Cancels a pending approval and tells its devices; false if it was no longer pending.
    async fn cancel_approval(&self, approval: &Approval) -> Result<bool, StoreError> {
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

    /// Audits a change to a device; `removal` puts the device in `before` (it is gone after).
    pub(super) async fn device_audit(
        &self,
        device: &Device,
        activity: &str,
        removal: bool,
    ) -> Result<(), DeviceApiError> {
        let upn = self
            .store
            .user(&device.user_id)
            .await?
            .map(|u| u.upn.to_string())
            .unwrap_or_else(|| device.user_id.to_string());
        let summary = serde_json::json!({
            "deviceId": device.id,
            "deviceName": device.name,
            "phoneSignIn": device.has_phone_sign_in(),
        });
        self.audit(
            &Actor::user(&upn),
            AuditCategory::UserAuthenticationMethods,
            activity,
            &upn,
            removal.then(|| summary.clone()),
            (!removal).then_some(summary),
        )
        .await?;
        Ok(())
    }

    /// The user's registered authenticator apps, oldest first.
    pub async fn devices(&self, user: &UserId) -> Result<Vec<Device>, DomainError> {
        Ok(self.store.devices_of_user(user).await?)
    }

    // ----- requests and answers -------------------------------------------------------

    /// What is waiting for this device: open requests it may answer (an unconfirmed device
    /// sees only its registration test; phone sign-in requests only with phone sign-in on).
    pub async fn pending_for_device(
        &self,
        device: &Device,
    ) -> Result<Vec<ApprovalRequest>, DeviceApiError> {
        let now = self.now();
        let mut open = Vec::new();
        for approval in self.store.pending_approvals(&device.user_id).await? {
            let answerable =
                approval.kind() != ApprovalKind::PhoneSignIn || device.has_phone_sign_in();
            if !approval.was_sent_to(&device.id) || !answerable {
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
        device: &Device,
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
        if !self.answer_allowed(&device.id).await? {
            return Err(DeviceApiError::new(
                DeviceErrorKind::Throttled,
                "throttled",
                "this device sent too many answers; wait a minute",
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
        let elsewhere = DeviceEvent::AnsweredElsewhere {
            id: approval.view.id.clone(),
        };
        let notifier = self.notifier();
        for other in approval.device_ids.iter().filter(|d| *d != &device.id) {
            notifier.notify(other, &elsewhere);
        }
        if approval.kind() == ApprovalKind::RegistrationTest {
            self.finish_registration_test(device, state).await?;
        } else if matches!(state, ApprovalState::Denied | ApprovalState::Reported) {
            // Remembered for the policy switch that holds back requests after a refusal.
            self.remember_refusal(&approval.user_id).await?;
            if state == ApprovalState::Reported {
                self.user_reported(&approval, device).await?;
            }
        } else if state == ApprovalState::WrongNumber {
            self.count_wrong_number(&approval.user_id).await?;
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

    /// An approved test confirms the device; any other answer removes it, so a half-made
    /// registration never lingers.
    async fn finish_registration_test(
        &self,
        device: &Device,
        state: ApprovalState,
    ) -> Result<(), DeviceApiError> {
        if state == ApprovalState::Approved {
            let mut confirmed = device.clone();
            confirmed.confirmed_at = Some(self.now());
            self.store.update_device(&confirmed).await?;
        } else if !device.is_confirmed() {
            self.discard_unconfirmed(device).await?;
        }
        Ok(())
    }

    /// Removes a device whose registration test failed or expired, and says so in the audit
    /// log that recorded its registration.
    async fn discard_unconfirmed(&self, device: &Device) -> Result<(), StoreError> {
        self.store.delete_device(&device.id).await?;
        self.device_audit(device, "Discard unconfirmed authenticator app", true)
            .await
            .map_err(|e| StoreError::Backend(e.message))
    }

    /// Marks a pending approval past its expiry as expired (logging the timeout of its
    /// sign-in) and tells its devices. Returns the approval as it now stands.
    async fn expire_if_due(&self, approval: Approval) -> Result<Approval, StoreError> {
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
    pub(super) async fn expire_overdue_approvals(&self) -> Result<(), StoreError> {
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

    // ----- sign-in with the authenticator ---------------------------------------------

    /// After the user name (`PhoneSignIn`) or a correct password (`MfaPush`): if the policy
    /// and the user's devices allow it, sends the notification and moves the sign-in to the
    /// number page. `None` when it does not apply, and the sign-in goes on as before.
    pub(super) async fn try_approval(
        &self,
        kind: ApprovalKind,
        sign_in: &PendingSignIn,
        user: &User,
        context: &SignInContext,
    ) -> Result<ApprovalStart, StoreError> {
        if !user.enabled {
            return Ok(ApprovalStart::NotApplicable);
        }
        let policy = self.store.policy().await?.unwrap_or_default();
        let groups = self.user_groups(&user.id).await?;
        let evaluation =
            crate::policy::evaluate(&policy, MethodKind::MicrosoftAuthenticator, &groups);
        let phone = kind == ApprovalKind::PhoneSignIn;
        let mode_allows = |mode: crate::policy::AuthenticationMode| {
            if phone {
                mode.allows_phone_sign_in()
            } else {
                mode.allows_push()
            }
        };
        if !evaluation.allowed || !evaluation.mode.is_some_and(mode_allows) {
            return Ok(ApprovalStart::NotApplicable);
        }
        let devices: Vec<DeviceId> = self
            .store
            .devices_of_user(&user.id)
            .await?
            .into_iter()
            .filter(|d| {
                if phone {
                    d.has_phone_sign_in()
                } else {
                    d.is_confirmed()
                }
            })
            .map(|d| d.id)
            .collect();
        if devices.is_empty() {
            return Ok(ApprovalStart::NotApplicable);
        }
        // One waiting notification per user: a second sign-in attempt (perhaps an attacker's,
        // hoping the user taps Approve to make it stop) sends nothing new.
        let now = self.now();
        if self
            .store
            .pending_approvals(&user.id)
            .await?
            .iter()
            .any(|a| a.is_open(now) && a.kind() != ApprovalKind::RegistrationTest)
        {
            return Ok(ApprovalStart::AlreadyPending);
        }
        if !self.notification_allowed(&user.id, context, now).await? {
            let record = self.throttled_record(sign_in, user, context, now).await?;
            self.store.fail_sign_in(sign_in, false, &record).await?;
            return Ok(ApprovalStart::Throttled);
        }
        let Some((approval, held_back)) = self
            .send_approval(kind, sign_in, user, devices, &evaluation, context)
            .await?
        else {
            return Ok(ApprovalStart::AlreadyPending);
        };
        Ok(ApprovalStart::Sent(SignInStage::AwaitingApproval {
            upn: user.upn.to_string(),
            user_id: user.id.clone(),
            approval: approval.id,
            first_factor: (!phone).then_some(AuthMethod::Password),
            held_back,
        }))
    }

    /// Creates the request and pushes it to `devices`, unless it is held back (the reason is
    /// returned with it). `None` when another request of the user got in first.
    async fn send_approval(
        &self,
        kind: ApprovalKind,
        sign_in: &PendingSignIn,
        user: &User,
        devices: Vec<DeviceId>,
        evaluation: &crate::policy::Evaluation,
        context: &SignInContext,
    ) -> Result<Option<(Approval, Option<HeldBack>)>, StoreError> {
        let feature = |f: Feature| {
            evaluation
                .features
                .iter()
                .any(|e| e.feature == f && e.enabled)
        };
        let app = match &sign_in.authorization {
            Some(request) => self.cached_application(&request.client_id).await?,
            None => None,
        };
        let (location, location_attribution) = if feature(Feature::DisplayLocationInformation) {
            describe_location(context)
        } else {
            (None, None)
        };
        let shown = ApprovalContext {
            user_principal_name: user.upn.to_string(),
            application: if feature(Feature::DisplayAppInformation) {
                Some(
                    app.as_ref()
                        .map(|a| a.display_name.clone())
                        .unwrap_or_else(|| "Latchkey".into()),
                )
            } else {
                None
            },
            location,
            location_attribution,
            report_allowed: feature(Feature::ReportSuspiciousActivity),
        };
        let now = self.now();
        let mut approval = Approval::new(
            kind,
            user.id.clone(),
            Some(sign_in.id.clone()),
            devices,
            shown,
            now,
            self.settings.approval_lifetime_seconds,
        );
        let held_back = self.held_back(&user.id, evaluation, context, now).await?;
        let mut record = Self::authenticator_record(app.as_ref(), user, context, now);
        record.status.additional_details = held_back.map(|why| why.log_detail().to_string());
        approval.record = Some(record);
        if !self
            .store
            .put_approval_if_none_waiting(&approval, now)
            .await?
        {
            return Ok(None);
        }
        // A request held back (the user is at risk, or the sign-in is unusual and the policy
        // says so) still waits, and the app can pull it.
        if held_back.is_none() {
            let event = DeviceEvent::Request {
                request: approval.view.clone(),
            };
            let notifier = self.notifier();
            for device in &approval.device_ids {
                notifier.notify(device, &event);
            }
        }
        Ok(Some((approval, held_back)))
    }

    /// The sign-in log record of an authenticator sign-in for `user` from `context`: who,
    /// which application, from where; its outcome is filled in when it is known.
    fn authenticator_record(
        app: Option<&crate::application::Application>,
        user: &User,
        context: &SignInContext,
        now: Timestamp,
    ) -> SignInRecord {
        SignInRecord {
            id: crate::secret::random_hex(16),
            created_date_time: now,
            user_id: Some(user.id.clone()),
            user_principal_name: user.upn.to_string(),
            user_display_name: Some(user.display_name.clone()),
            app_id: app.map(|a| a.client_id.clone()),
            app_display_name: app.map(|a| a.display_name.clone()),
            ip_address: context.ip_address.map(|ip| ip.to_string()),
            location: context.location.clone(),
            authentication_method: MethodKind::MicrosoftAuthenticator.id().to_string(),
            status: SignInStatus::success(),
            authentication_details: vec![],
        }
    }

    /// The sign-in log record of a notification a throttle stopped.
    async fn throttled_record(
        &self,
        sign_in: &PendingSignIn,
        user: &User,
        context: &SignInContext,
        now: Timestamp,
    ) -> Result<SignInRecord, StoreError> {
        let error = SignInError::Throttled;
        let app = match &sign_in.authorization {
            Some(request) => self.cached_application(&request.client_id).await?,
            None => None,
        };
        let mut record = Self::authenticator_record(app.as_ref(), user, context, now);
        record.status.fail(error);
        record.authentication_details.push(AuthenticationStep {
            authentication_method: MethodKind::MicrosoftAuthenticator.label().into(),
            authentication_method_detail: None,
            authentication_step_date_time: now.to_rfc3339(),
            authentication_step_result_detail: error.failure_reason().into(),
            succeeded: false,
        });
        Ok(record)
    }

    /// The sign-in log record of a settled approval.
    fn approval_record(
        &self,
        approval: &Approval,
        state: ApprovalState,
        device: Option<&Device>,
        now: Timestamp,
    ) -> SignInRecord {
        let mut record = approval.record.clone().unwrap_or_else(|| SignInRecord {
            id: String::new(),
            created_date_time: now,
            user_id: Some(approval.user_id.clone()),
            user_principal_name: approval.view.user_principal_name.clone(),
            user_display_name: None,
            app_id: None,
            app_display_name: None,
            ip_address: None,
            location: None,
            authentication_method: MethodKind::MicrosoftAuthenticator.id().to_string(),
            status: SignInStatus::success(),
            authentication_details: vec![],
        });
        record.id = crate::secret::random_hex(16);
        record.created_date_time = now;
        let error = match state {
            ApprovalState::Approved => None,
            ApprovalState::Denied | ApprovalState::Cancelled => Some(SignInError::ApprovalDenied),
            ApprovalState::Reported => Some(SignInError::ApprovalReported),
            ApprovalState::WrongNumber => Some(SignInError::WrongNumber),
            ApprovalState::Expired | ApprovalState::Pending => Some(SignInError::ApprovalTimedOut),
        };
        let mfa_push = approval.kind() == ApprovalKind::MfaPush;
        if mfa_push {
            record.authentication_details.push(AuthenticationStep {
                authentication_method: MethodKind::Password.label().to_string(),
                authentication_method_detail: None,
                authentication_step_date_time: Timestamp(approval.view.created_at).to_rfc3339(),
                authentication_step_result_detail: "Correct password".into(),
                succeeded: true,
            });
        }
        record.authentication_details.push(AuthenticationStep {
            authentication_method: if mfa_push {
                "Authenticator app notification".into()
            } else {
                "Passwordless phone sign-in".into()
            },
            authentication_method_detail: device.map(|d| d.name.clone()),
            authentication_step_date_time: now.to_rfc3339(),
            authentication_step_result_detail: match error {
                None => "MFA successfully completed".into(),
                Some(e) => e.failure_reason().into(),
            },
            succeeded: error.is_none(),
        });
        if let Some(error) = error {
            record.status.fail(error);
        }
        record
    }

    /// What the number page shows, or `None` when the sign-in is not waiting for approval.
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
        let Some(approval) = self.store.approval(approval).await? else {
            return Ok(None);
        };
        Ok(Some(WaitingForApproval {
            upn: upn.clone(),
            number: approval.number,
            expires_at: approval.expires_at(),
            mfa_push: first_factor.is_some(),
            held_back: *held_back,
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
        let Some(approval) = self.store.approval(approval).await.map_err(trouble)? else {
            return Ok(false);
        };
        let approval = self.expire_if_due(approval).await.map_err(trouble)?;
        Ok(approval.state == ApprovalState::Pending)
    }

    /// Ends an approval stage: `Ok(None)` while the request is pending, a session when it was
    /// approved, and the reason (the sign-in ended) otherwise.
    /// The caller passes the sign-in as [`Latchkey::sign_in`] just returned it.
    pub async fn finish_approval(
        &self,
        sign_in: &PendingSignIn,
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
            .store
            .approval(approval)
            .await
            .map_err(trouble)?
            .ok_or(SignInFailure::OutOfOrder)?;
        let approval = self.expire_if_due(approval).await.map_err(trouble)?;
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
            .store
            .user(user_id)
            .await
            .map_err(trouble)?
            .filter(|u| u.enabled)
        else {
            let mut record =
                self.approval_record(&approval, ApprovalState::Approved, None, self.now());
            record.status.fail(SignInError::UserDisabled);
            self.store
                .fail_sign_in(sign_in, true, &record)
                .await
                .map_err(trouble)?;
            return Err(SignInFailure::StartAgain(super::DISABLED.into()));
        };
        let method = match first_factor {
            None => AuthMethod::PhoneSignIn,
            Some(_) => AuthMethod::PasswordAndPush,
        };
        let now = self.now();
        let (session, cookie_secret) = self.new_session(&user, method, now);
        let device = match &approval.answered_by {
            Some(id) => self.store.device(id).await.map_err(trouble)?,
            None => None,
        };
        let record = self.approval_record(&approval, ApprovalState::Approved, device.as_ref(), now);
        self.remember_sign_in_place(&record, now)
            .await
            .map_err(trouble)?;
        match self
            .store
            .complete_sign_in(&session, &sign_in.id, &record)
            .await
        {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => {
                return Err(SignInFailure::StartAgain(
                    "This sign-in already finished. Start again if you are not signed in.".into(),
                ));
            }
            Err(e) => return Err(trouble(e)),
        }
        self.events.publish(DomainEvent::SessionStarted {
            user: user.id.clone(),
            session: session.id.clone(),
        });
        Ok(Some(SignedIn {
            session,
            cookie_secret,
            user,
            sign_in: sign_in.clone(),
        }))
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
        if let Some(found) = self.store.approval(&approval).await.map_err(trouble)? {
            self.cancel_approval(&found).await.map_err(trouble)?;
        }
        self.store.put_sign_in(&sign_in).await.map_err(trouble)?;
        Ok(sign_in)
    }
}

fn invalid_code() -> DeviceApiError {
    DeviceApiError::new(
        DeviceErrorKind::Invalid,
        "invalid_activation_code",
        "the activation code is not valid, has expired or was already used; add the method again on the security-info page",
    )
}

fn already_answered() -> DeviceApiError {
    DeviceApiError::new(
        DeviceErrorKind::Conflict,
        "already_answered",
        "this request was already answered",
    )
}

/// The location a notification shows: the database's place, "Private network" for loopback
/// and private addresses, "Unknown location" otherwise.
fn describe_location(context: &SignInContext) -> (Option<String>, Option<String>) {
    if let Some(place) = context.location.as_ref().and_then(|l| l.display()) {
        return (Some(place), Some(LOCATION_ATTRIBUTION.to_string()));
    }
    match context.ip_address {
        Some(ip) if is_private_network(ip) => (Some("Private network".into()), None),
        _ => (Some("Unknown location".into()), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::location::Location;

    #[test]
    fn locations_say_private_network_or_unknown_when_not_placed() {
        let local = SignInContext {
            ip_address: Some("127.0.0.1".parse().unwrap()),
            location: None,
            ..Default::default()
        };
        assert_eq!(
            describe_location(&local).0.as_deref(),
            Some("Private network")
        );
        let lan = SignInContext {
            ip_address: Some("192.168.1.20".parse().unwrap()),
            location: None,
            ..Default::default()
        };
        assert_eq!(
            describe_location(&lan).0.as_deref(),
            Some("Private network")
        );
        let public = SignInContext {
            ip_address: Some("203.0.113.7".parse().unwrap()),
            location: None,
            ..Default::default()
        };
        assert_eq!(
            describe_location(&public).0.as_deref(),
            Some("Unknown location")
        );
        let placed = SignInContext {
            ip_address: Some("1.1.1.1".parse().unwrap()),
            location: Some(Location {
                city: Some("Sydney".into()),
                country: Some("Australia".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let (place, credit) = describe_location(&placed);
        assert_eq!(place.as_deref(), Some("Sydney, Australia"));
        assert!(credit.unwrap().contains("db-ip.com"));
    }
}
