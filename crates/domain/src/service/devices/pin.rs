//! The device PIN of phone sign-in, checked by the server.
//!
//! The app seals its passwordless key under `HKDF(PIN verifier || unlock secret)`; the unlock
//! secret is released only here, to a request signed by the device key that carries the right
//! PIN verifier. So a copy of the device's files gives nothing to test PINs against offline:
//! every guess is a request, and the server counts them. After
//! [`MAX_WRONG_PINS`] wrong ones in a row it turns phone sign-in off on that device; the person
//! allows turning it on again from security info, signed in another way.
//!
//! Never logs or stores a verifier as sent: only its HMAC under a server key kept for this
//! purpose, compared in constant time.

use latchkey_protocol::wire::{ApprovalKind, PinUnlock, PinUnlocked};
use latchkey_protocol::{MAX_WRONG_PINS, PIN_VERIFIER_LEN};

use super::{DeviceApiError, DeviceErrorKind, Devices};
use crate::authenticator::{Device, PinCheck};
use crate::error::DomainError;
use crate::ids::{DeviceId, UserId};
use crate::secret::{keyed_mac, keyed_mac_matches};

/// One key per purpose: the verifiers' HMAC key and the unlock secrets' key.
const PIN_VERIFIER_KEY: &str = "phone-sign-in-pin-verifier";
const UNLOCK_SECRET_KEY: &str = "phone-sign-in-unlock-secret";

pub(crate) const PIN_LOCKED_MESSAGE: &str = "too many wrong PINs: phone sign-in is off on this device. Sign in another way, choose \"Allow phone sign-in again\" for this device on the security-info page, then run enable-phone-sign-in with a new PIN";

/// Reads a PIN verifier as sent: base64url of exactly [`PIN_VERIFIER_LEN`] bytes.
pub(crate) fn pin_verifier(text: &str) -> Result<Vec<u8>, DeviceApiError> {
    use base64::Engine;
    let invalid = || {
        DeviceApiError::new(
            DeviceErrorKind::Invalid,
            "invalid_input",
            format!("pin_verifier must be base64url of {PIN_VERIFIER_LEN} bytes"),
        )
    };
    if text.len() > 64 {
        return Err(invalid());
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| invalid())?;
    if bytes.len() != PIN_VERIFIER_LEN {
        return Err(invalid());
    }
    Ok(bytes)
}

fn verifier_message(device: &DeviceId, verifier: &[u8]) -> Vec<u8> {
    let mut message = format!("latchkey-pin-verifier-v1\n{device}\n").into_bytes();
    message.extend_from_slice(verifier);
    message
}

impl Devices {
    /// The keyed hash the server keeps of a device's PIN verifier.
    pub(crate) async fn pin_verifier_mac(
        &self,
        device: &DeviceId,
        verifier: &[u8],
    ) -> Result<String, DeviceApiError> {
        let key = self.keys.server_secret(PIN_VERIFIER_KEY).await?;
        Ok(keyed_mac(&key, &verifier_message(device, verifier)))
    }

    /// The device's unlock secret: derived from a server key, the device and its current
    /// passwordless key, so a new key (enabling again) gets a new secret and none is stored.
    pub(crate) async fn unlock_secret(&self, device: &Device) -> Result<String, DeviceApiError> {
        let key = self.keys.server_secret(UNLOCK_SECRET_KEY).await?;
        let passwordless = device
            .passwordless_key
            .as_ref()
            .map(|k| k.as_str())
            .unwrap_or_default();
        Ok(keyed_mac(
            &key,
            format!("latchkey-pin-unlock-v1\n{}\n{passwordless}", device.id).as_bytes(),
        ))
    }

    /// `POST /phone-sign-in/unlock`: checks the PIN verifier, counts a wrong one, and releases
    /// the unlock secret for a right one.
    pub async fn unlock_phone_sign_in(
        &self,
        device: &Device,
        request: &PinUnlock,
    ) -> Result<PinUnlocked, DeviceApiError> {
        let verifier = pin_verifier(&request.pin_verifier)?;
        let lock = self.store.pin_lock(&device.id).await?;
        let locked = || {
            DeviceApiError::new(
                DeviceErrorKind::Forbidden,
                "phone_sign_in_locked",
                PIN_LOCKED_MESSAGE,
            )
        };
        if lock.as_ref().is_some_and(|l| l.is_locked()) {
            return Err(locked());
        }
        if !device.has_phone_sign_in() {
            return Err(DeviceApiError::new(
                DeviceErrorKind::Conflict,
                "phone_sign_in_not_enabled",
                "phone sign-in is not enabled on this device; run enable-phone-sign-in",
            ));
        }
        let Some(stored) = lock.and_then(|l| l.verifier_mac) else {
            return Err(DeviceApiError::new(
                DeviceErrorKind::Conflict,
                "no_pin_verifier",
                "phone sign-in on this device predates PINs checked by the server; turn it on again with enable-phone-sign-in",
            ));
        };
        let key = self.keys.server_secret(PIN_VERIFIER_KEY).await?;
        let right = keyed_mac_matches(&key, &verifier_message(&device.id, &verifier), &stored);
        let now = self.now();
        match self
            .store
            .record_pin_check(&device.id, right, MAX_WRONG_PINS, now)
            .await?
        {
            PinCheck::Right => Ok(PinUnlocked {
                unlock_secret: self.unlock_secret(device).await?,
            }),
            PinCheck::Wrong { remaining } => Err(DeviceApiError::new(
                DeviceErrorKind::Forbidden,
                "wrong_pin",
                format!(
                    "that PIN is not right; {remaining} more wrong PIN(s) turn phone sign-in off on this device"
                ),
            )),
            PinCheck::LockedNow => {
                let mut off = device.clone();
                off.passwordless_key = None;
                off.phone_sign_in_at = None;
                self.cancel_open_approvals_for(&off, |kind| kind == ApprovalKind::PhoneSignIn)
                    .await?;
                self.device_audit(&off, "Phone sign-in turned off after wrong PINs", false)
                    .await?;
                Err(locked())
            }
            PinCheck::Locked => Err(locked()),
        }
    }

    /// The signed-in person allows a device locked for wrong PINs to turn phone sign-in on
    /// again (within the enable window). False when that device is not locked.
    pub async fn allow_phone_sign_in_again(
        &self,
        user: &UserId,
        id: &DeviceId,
    ) -> Result<bool, DomainError> {
        let device = self.own_device(user, id).await?;
        if !self
            .store
            .allow_phone_sign_in_again(&device.id, self.now())
            .await?
        {
            return Ok(false);
        }
        self.device_audit(&device, "Allow phone sign-in again", false)
            .await
            .map_err(|e| DomainError::Internal(e.message))?;
        Ok(true)
    }
}
