//! What a registered device asks for with a signed request: its status, turning phone sign-in
//! on and off, and removing itself; and the user removing a device from security info.

use latchkey_protocol::wire::{
    ApprovalKind, DeviceStatus, DisablePhoneSignIn, EnablePhoneSignIn, WebauthnCredentialInfo,
};
use latchkey_protocol::{
    FRESHNESS_SECONDS, passwordless_off_input, request_signing_input, verify_signature,
    webauthn_challenge,
};

use super::pin::{PIN_LOCKED_MESSAGE, pin_verifier};
use super::webauthn::already_enabled;
use super::{AnsweringDevice, DeviceApiError, DeviceErrorKind, Devices, SignedDeviceRequest};
use crate::authenticator::{Device, PinLock};
use crate::clock::Timestamp;
use crate::error::{DomainError, StoreError};
use crate::ids::{DeviceId, UserId};
use crate::policy::MethodKind;
use crate::store::NonceUse;

impl Devices {
    /// Checks a device's signed request: fresh timestamp, known device, valid signature, then
    /// a nonce never used before (recorded only after the signature verified, so forged
    /// requests cannot use up nonces).
    pub async fn authenticate_device(
        &self,
        signed: &SignedDeviceRequest<'_>,
    ) -> Result<Device, DeviceApiError> {
        self.authenticate(signed, false).await
    }

    /// Checks a device's signed answer as [`Self::authenticate_device`] does, and takes a slot
    /// of the device's answer throttle in the write that records the nonce: a device that sent
    /// too many answers this minute is refused before its answer is even read.
    pub async fn authenticate_answer(
        &self,
        signed: &SignedDeviceRequest<'_>,
    ) -> Result<AnsweringDevice, DeviceApiError> {
        self.authenticate(signed, true).await.map(AnsweringDevice)
    }

    async fn authenticate(
        &self,
        signed: &SignedDeviceRequest<'_>,
        answering: bool,
    ) -> Result<Device, DeviceApiError> {
        let now = self.now();
        let timestamp = signed.checked_timestamp(now)?;
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
        let slot = answering.then(|| self.throttles.answer_slot(&device.id));
        match self
            .store
            .use_device_nonce(&device.id, signed.nonce, keep_until, slot.as_ref(), now)
            .await?
        {
            NonceUse::Fresh => {}
            NonceUse::Replayed => {
                return Err(DeviceApiError::unauthenticated(
                    "replayed_request",
                    "this request was already received",
                ));
            }
            NonceUse::Throttled => {
                return Err(DeviceApiError::new(
                    DeviceErrorKind::Throttled,
                    "throttled",
                    "this device sent too many answers; wait a minute",
                ));
            }
        }
        match self.directory.lookup(&device.user_id).await? {
            Some(user) if user.enabled => Ok(device),
            _ => Err(DeviceApiError::new(
                DeviceErrorKind::Forbidden,
                "account_disabled",
                "the account is disabled",
            )),
        }
    }

    pub async fn device_status(&self, device: &Device) -> Result<DeviceStatus, DeviceApiError> {
        let user = self.directory.user(&device.user_id).await?;
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
            phone_sign_in_proof: device
                .has_phone_sign_in()
                .then(|| device.phone_sign_in_proof())
                .flatten(),
            webauthn: device.webauthn.as_ref().and_then(|w| {
                Some(WebauthnCredentialInfo {
                    rp_id: self.relying_party.rp_id()?.to_string(),
                    credential_id: w.credential_id.clone(),
                })
            }),
        })
    }

    /// Registers the device's passwordless key, if the policy lets this user sign in by phone.
    pub async fn enable_phone_sign_in(
        &self,
        device: &Device,
        request: &EnablePhoneSignIn,
    ) -> Result<String, DeviceApiError> {
        if device.webauthn.is_some() {
            return Err(already_enabled());
        }
        self.enable_allowed(device).await?;
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
        self.phone_sign_in_policy(device).await?;
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

    /// What both ways of turning phone sign-in on check first: a confirmed device, not locked
    /// for wrong PINs (or the person allowed it again), and, when the device has no proof yet,
    /// within the enable window.
    ///
    /// The window opens when the device is confirmed (its test notification approved) and
    /// again each time the person, signed in to security info, allows it: with a number-matching
    /// confirmation on the device, or after a lock for wrong PINs. Never by the device alone.
    pub(super) async fn enable_allowed(&self, device: &Device) -> Result<(), DeviceApiError> {
        if !device.is_confirmed() {
            return Err(DeviceApiError::new(
                DeviceErrorKind::Conflict,
                "registration_incomplete",
                "answer the test notification first",
            ));
        }
        let window = self.settings.phone_sign_in_enable_window_seconds;
        let lock = self.store.pin_lock(&device.id).await?;
        let allowed_at = lock.as_ref().and_then(|l| l.reenable_allowed_at);
        let opened = if lock.as_ref().is_some_and(PinLock::is_locked) {
            // After a lock only the person's allowing counts, not the registration.
            allowed_at.ok_or_else(|| {
                DeviceApiError::new(
                    DeviceErrorKind::Forbidden,
                    "phone_sign_in_locked",
                    PIN_LOCKED_MESSAGE,
                )
            })?
        } else {
            let confirmed = device.confirmed_at.unwrap_or(device.created_at);
            allowed_at.map_or(confirmed, |at| at.max(confirmed))
        };
        if device.passwordless_key.is_none() && self.now().0 - opened.0 > window {
            return Err(DeviceApiError::new(
                DeviceErrorKind::Forbidden,
                "enable_window_passed",
                format!(
                    "phone sign-in can be turned on only within {} minutes of adding the app or of allowing it on the security-info page; sign in there, choose \"Allow phone sign-in\" for this device, enter the number it shows in the app, then turn phone sign-in on again",
                    (window + 59) / 60
                ),
            ));
        }
        Ok(())
    }

    /// The policy must let this user sign in by phone (the app allowed, mode Any or
    /// Passwordless).
    pub(super) async fn phone_sign_in_policy(&self, device: &Device) -> Result<(), DeviceApiError> {
        let evaluation = self
            .access
            .evaluate_for(&device.user_id, MethodKind::MicrosoftAuthenticator)
            .await?;
        if !evaluation.allowed || !evaluation.mode.is_some_and(|m| m.allows_phone_sign_in()) {
            return Err(DeviceApiError::new(
                DeviceErrorKind::Forbidden,
                "phone_sign_in_not_allowed",
                "your organisation's policy does not allow phone sign-in for your account",
            ));
        }
        Ok(())
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
        if device.webauthn.is_some() {
            let challenge =
                webauthn_challenge(&passwordless_off_input(device.id.as_str(), request_nonce));
            self.verify_device_assertion(
                device,
                &challenge,
                request.and_then(|r| r.assertion.as_ref()),
            )
            .await?;
            let mut updated = device.clone();
            updated.webauthn = None;
            updated.phone_sign_in_at = None;
            self.store.set_phone_sign_in(&updated, None).await?;
            self.cancel_open_approvals_for(&updated, |kind| kind == ApprovalKind::PhoneSignIn)
                .await?;
            return self
                .device_audit(device, "Disable phone sign-in", true)
                .await;
        }
        if device.passwordless_key.is_none() {
            return Ok(());
        }
        let proof = request.and_then(|r| r.proof.as_deref()).unwrap_or_default();
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
        let device = self.own_device(user, id).await?;
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
    pub(crate) async fn cancel_open_approvals_for(
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
}
