//! The sign-in methods a user has, as the security-info page lists them: the directory's
//! pass and password, and the devices of this context.

use super::Devices;
use crate::clock::Timestamp;
use crate::error::DomainError;
use crate::ids::UserId;
use crate::session::AuthMethod;

/// A sign-in method a user has registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredMethod {
    /// "Temporary Access Pass", "Authenticator app — Passwordless", …
    pub label: String,
    pub detail: String,
    /// When it was added; `None` where that is not kept (the password).
    pub added_at: Option<Timestamp>,
    /// The authenticator device behind the method, which the user may remove.
    pub device: Option<crate::ids::DeviceId>,
    /// The device's phone sign-in was turned off after too many wrong PINs; the page offers
    /// to allow turning it on again.
    pub phone_sign_in_locked: bool,
    /// A device without phone sign-in (and not locked) whose user the policy lets sign in by
    /// phone: the page offers "Allow phone sign-in", confirmed on the device by number matching.
    pub phone_sign_in_allowable: bool,
}

impl Devices {
    /// The sign-in methods a user has, as the security-info page lists them.
    pub async fn registered_methods(
        &self,
        user: &UserId,
    ) -> Result<Vec<RegisteredMethod>, DomainError> {
        let mut methods = Vec::new();
        if let Some(pass) = self.directory.pass_for_user(user).await? {
            let state = match pass.usability(self.now()) {
                Ok(()) => "usable",
                Err(crate::credential::PassUnusable::Expired) => "expired",
                Err(crate::credential::PassUnusable::NotYetValid) => "not valid yet",
                Err(crate::credential::PassUnusable::OneTimeUsed) => "used",
            };
            methods.push(RegisteredMethod {
                label: AuthMethod::TemporaryAccessPass.label().into(),
                detail: format!("valid until {} ({state})", pass.expires_at().to_rfc3339()),
                added_at: Some(pass.created_at),
                device: None,
                phone_sign_in_locked: false,
                phone_sign_in_allowable: false,
            });
        }
        if self.directory.has_password(user).await? {
            methods.push(RegisteredMethod {
                label: AuthMethod::Password.label().into(),
                detail: "set by your administrator".into(),
                added_at: None,
                device: None,
                phone_sign_in_locked: false,
                phone_sign_in_allowable: false,
            });
        }
        let devices = self.store.devices_of_user(user).await?;
        let phone_sign_in_allowed = if devices.iter().any(|d| !d.has_phone_sign_in()) {
            self.phone_sign_in_allowed_for(user).await?
        } else {
            false
        };
        for device in devices {
            if !device.is_confirmed() {
                continue;
            }
            let kind = if device.has_phone_sign_in() {
                "Passwordless"
            } else {
                "MFA push"
            };
            let locked_at = self
                .store
                .pin_lock(&device.id)
                .await?
                .and_then(|lock| lock.locked_at);
            let detail = match locked_at {
                // Says why phone sign-in stopped, so a lock by someone else's guesses is seen.
                Some(at) => format!(
                    "{} — phone sign-in was turned off at {} after {} wrong PINs in a row",
                    device.name,
                    at.to_rfc3339(),
                    latchkey_protocol::MAX_WRONG_PINS
                ),
                None => device.name.clone(),
            };
            let app = match device.app {
                latchkey_protocol::wire::AppKind::Terminal => "Authenticator app",
                latchkey_protocol::wire::AppKind::Web => "Authenticator app (web)",
            };
            methods.push(RegisteredMethod {
                label: format!("{app} — {kind}"),
                detail,
                added_at: Some(device.created_at),
                device: Some(device.id.clone()),
                phone_sign_in_locked: locked_at.is_some(),
                phone_sign_in_allowable: phone_sign_in_allowed
                    && !device.has_phone_sign_in()
                    && locked_at.is_none(),
            });
        }
        Ok(methods)
    }
}
