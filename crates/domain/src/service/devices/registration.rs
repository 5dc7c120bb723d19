//! Adding the authenticator app: the activation the security-info page shows, the device
//! redeeming it, and the test notification that confirms the device.

use latchkey_protocol::wire::{ActivateRequest, ActivateResponse, AppKind, ApprovalKind};
use latchkey_protocol::{
    ActivationLink, MAX_DEVICE_NAME_LEN, activation_proof_input, verify_signature,
};

use super::{
    ActivationProgress, DeviceApiError, DeviceErrorKind, Devices, MAX_DEVICES_PER_USER,
    MAX_OPEN_ACTIVATIONS_PER_USER,
};
use crate::authenticator::{
    ACTIVATION_LIFETIME_SECONDS, Activation, Approval, ApprovalContext, ApprovalState, Device,
};
use crate::error::{DomainError, StoreError};
use crate::ids::{ActivationId, DeviceId, UserId};
use crate::log::{Actor, AuditCategory};
use crate::policy::MethodKind;
use crate::secret::TokenHash;
use crate::user::{NO_REORDERING_CHARACTERS, reorders_or_breaks_lines};

impl Devices {
    /// Starts adding the authenticator app for a signed-in user. The code inside the link is
    /// shown once (as QR code and text) and kept only as a hash.
    pub async fn start_activation(
        &self,
        user: &UserId,
    ) -> Result<(Activation, ActivationLink), DomainError> {
        let user = self.directory.user(user).await?;
        if !self
            .access
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
        let code = self.random.token();
        let activation = Activation {
            id: ActivationId::generate(self.random.as_ref()),
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
        let upn = self.directory.user(user).await?.upn;
        self.audit
            .record(
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
            .directory
            .lookup(&pending.user_id)
            .await?
            .filter(|u| u.enabled)
            .ok_or_else(invalid_code)?;
        let device = Device {
            id: DeviceId::generate(self.random.as_ref()),
            user_id: user.id.clone(),
            name: name.to_string(),
            key: request.device_key.clone(),
            passwordless_key: None,
            created_at: now,
            confirmed_at: None,
            phone_sign_in_at: None,
            app: request.app.unwrap_or(AppKind::Terminal),
            webauthn: None,
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
        )
        .drawn_from(self.random.as_ref());
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
        self.audit
            .record(
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

    /// An approved test confirms the device; any other answer removes it, so a half-made
    /// registration never lingers.
    pub(super) async fn finish_registration_test(
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
    pub(super) async fn discard_unconfirmed(&self, device: &Device) -> Result<(), StoreError> {
        self.store.delete_device(&device.id).await?;
        self.device_audit(device, "Discard unconfirmed authenticator app", true)
            .await
            .map_err(|e| StoreError::Backend(e.message))
    }
}

fn invalid_code() -> DeviceApiError {
    DeviceApiError::new(
        DeviceErrorKind::Invalid,
        "invalid_activation_code",
        "the activation code is not valid, has expired or was already used; add the method again on the security-info page",
    )
}
