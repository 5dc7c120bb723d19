//! Phone sign-in proved by WebAuthn: protocol v1's second passwordless proof, which the web
//! authenticator app uses.
//!
//! The web app cannot keep a key under a PIN the way the terminal app does, but the phone has
//! a platform authenticator that asks for a fingerprint, face or screen lock. So turning phone
//! sign-in on makes a WebAuthn credential on the phone with user verification required
//! (`begin_phone_sign_in_passkey` / `finish_phone_sign_in_passkey`), and approving a phone
//! sign-in needs, besides the device key's signature, an assertion of that credential whose
//! challenge is SHA-256 of the answer's signing input (request id, server nonce, decision,
//! typed number, context digest). webauthn-rs draws its own challenges, so the server starts an
//! authentication for the device's credential and puts the expected challenge into the
//! serialised state before finishing it. A copy of the app's storage (the device key) cannot
//! approve: the assertion needs the phone's authenticator and its user verification.

use base64::Engine;
use latchkey_protocol::wire::{EnablePasskey, PasskeyOptions};
use webauthn_rs::prelude::{
    Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Uuid,
};

use super::{DeviceApiError, DeviceErrorKind, Devices};
use crate::authenticator::{Device, DeviceCredential};
use crate::ids::{CeremonyId, DeviceId};
use crate::passkey::{CEREMONY_LIFETIME_SECONDS, CeremonyPurpose, PasskeyCeremony};
use crate::service::passkeys::refusal_detail;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub(super) fn already_enabled() -> DeviceApiError {
    DeviceApiError::new(
        DeviceErrorKind::Conflict,
        "phone_sign_in_already_enabled",
        "phone sign-in is already on for this device; turn it off first",
    )
}

fn bad_assertion(detail: &str) -> DeviceApiError {
    DeviceApiError::unauthenticated(
        "bad_assertion",
        &format!("the assertion was refused: {detail}"),
    )
}

fn internal(detail: impl Into<String>) -> DeviceApiError {
    DeviceApiError {
        kind: DeviceErrorKind::Internal,
        code: "internal",
        message: crate::service::messages::STORE_TROUBLE.into(),
        detail: Some(detail.into()),
    }
}

/// The WebAuthn user handle of a device's credential: its own, never the user's, so the
/// credential cannot stand in for (or, on a phone that keeps one credential per account,
/// replace) the user's passkey for signing in.
fn device_handle(device: &DeviceId) -> Uuid {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(b"latchkey device webauthn handle\0")
        .chain_update(device.as_str().as_bytes())
        .finalize();
    Uuid::from_bytes(digest[..16].try_into().expect("16 bytes"))
}

/// webauthn-rs's authentication state with `challenge` in place of the one it drew. The state
/// serialises (feature `danger-allow-state-serialisation`) as
/// `{"ast": {"credentials": […], "policy": …, "challenge": "<base64url>", …}}`.
fn with_challenge(
    state: &PasskeyAuthentication,
    challenge: &[u8],
) -> Result<PasskeyAuthentication, DeviceApiError> {
    let mut value = serde_json::to_value(state).map_err(|e| internal(e.to_string()))?;
    let slot = value
        .get_mut("ast")
        .and_then(|ast| ast.get_mut("challenge"))
        .ok_or_else(|| internal("webauthn-rs's authentication state has no challenge"))?;
    *slot = serde_json::Value::String(B64.encode(challenge));
    serde_json::from_value(value).map_err(|e| internal(e.to_string()))
}

impl Devices {
    /// `POST /phone-sign-in/passkey/options`: the creation options for the device's credential,
    /// under the same conditions as `POST /phone-sign-in`. User verification is required.
    pub async fn begin_phone_sign_in_passkey(
        &self,
        device: &Device,
    ) -> Result<PasskeyOptions, DeviceApiError> {
        if device.has_phone_sign_in() {
            return Err(already_enabled());
        }
        self.enable_allowed(device).await?;
        self.phone_sign_in_policy(device).await?;
        let webauthn = self.webauthn()?;
        let user = self.directory.user(&device.user_id).await?;
        let display = format!("{} ({})", user.display_name, device.name);
        let (challenge, state) = webauthn
            .start_passkey_registration(
                device_handle(&device.id),
                user.upn.as_str(),
                &display,
                None,
            )
            .map_err(|e| internal(format!("could not start a WebAuthn registration: {e}")))?;
        let public_key =
            serde_json::to_value(&challenge.public_key).map_err(|e| internal(e.to_string()))?;
        let now = self.now();
        let ceremony = PasskeyCeremony {
            id: CeremonyId::generate(self.random.as_ref()),
            purpose: CeremonyPurpose::DevicePhoneSignIn {
                device_id: device.id.clone(),
            },
            state: serde_json::to_string(&state).map_err(|e| internal(e.to_string()))?,
            created_at: now,
            expires_at: now.plus_seconds(CEREMONY_LIFETIME_SECONDS),
        };
        self.ceremonies.put_ceremony(&ceremony).await?;
        Ok(PasskeyOptions {
            ceremony: ceremony.id.to_string(),
            public_key,
        })
    }

    /// `POST /phone-sign-in/passkey`: keeps the credential the phone made and turns phone
    /// sign-in on with proof `webauthn`. The ceremony is used once, whatever the outcome.
    pub async fn finish_phone_sign_in_passkey(
        &self,
        device: &Device,
        request: &EnablePasskey,
    ) -> Result<(), DeviceApiError> {
        let credential: RegisterPublicKeyCredential =
            serde_json::from_value(request.credential.clone()).map_err(|_| {
                DeviceApiError::new(
                    DeviceErrorKind::Invalid,
                    "invalid_input",
                    "credential is not a WebAuthn credential (credential.toJSON())",
                )
            })?;
        let unknown = || {
            DeviceApiError::new(
                DeviceErrorKind::Invalid,
                "invalid_ceremony",
                "the ceremony is unknown, expired or already used; ask for new options",
            )
        };
        if request.ceremony.is_empty() || request.ceremony.len() > 64 {
            return Err(unknown());
        }
        let taken = self
            .ceremonies
            .take_ceremony(&CeremonyId::from_string(&request.ceremony), self.now())
            .await?
            .ok_or_else(unknown)?;
        match &taken.purpose {
            CeremonyPurpose::DevicePhoneSignIn { device_id } if device_id == &device.id => {}
            _ => return Err(unknown()),
        }
        if device.has_phone_sign_in() {
            return Err(already_enabled());
        }
        self.enable_allowed(device).await?;
        self.phone_sign_in_policy(device).await?;
        let state: PasskeyRegistration =
            serde_json::from_str(&taken.state).map_err(|e| internal(e.to_string()))?;
        let passkey: Passkey = self
            .webauthn()?
            .finish_passkey_registration(&credential, &state)
            .map_err(|e| {
                DeviceApiError::unauthenticated(
                    "bad_credential",
                    &format!("the credential was refused: {}", refusal_detail(&e)),
                )
            })?;
        let internals: webauthn_rs::prelude::Credential = passkey.clone().into();
        let mut updated = device.clone();
        updated.webauthn = Some(DeviceCredential {
            credential_id: B64.encode(passkey.cred_id()),
            passkey: serde_json::to_string(&passkey).map_err(|e| internal(e.to_string()))?,
            counter: internals.counter,
        });
        updated.passwordless_key = None;
        updated.phone_sign_in_at = Some(self.now());
        self.store.set_phone_sign_in(&updated, None).await?;
        self.device_audit(&updated, "Enable phone sign-in (WebAuthn)", false)
            .await
    }

    /// Checks an assertion of the device's WebAuthn credential over `challenge` (user
    /// verification required, the device's own credential, a counter that moved forward) and
    /// records its counter. `None`: `401 user_verification_required`; anything refused:
    /// `401 bad_assertion`.
    pub(crate) async fn verify_device_assertion(
        &self,
        device: &Device,
        challenge: &[u8],
        assertion: Option<&serde_json::Value>,
    ) -> Result<(), DeviceApiError> {
        let Some(stored) = &device.webauthn else {
            return Err(DeviceApiError::new(
                DeviceErrorKind::Forbidden,
                "phone_sign_in_not_enabled",
                "phone sign-in is not enabled on this device",
            ));
        };
        let Some(assertion) = assertion else {
            return Err(DeviceApiError::unauthenticated(
                "user_verification_required",
                "this device approves phone sign-in with a WebAuthn assertion made with user verification",
            ));
        };
        let assertion: PublicKeyCredential = serde_json::from_value(assertion.clone())
            .map_err(|_| bad_assertion("not a WebAuthn assertion (credential.toJSON())"))?;
        let mut passkey: Passkey =
            serde_json::from_str(&stored.passkey).map_err(|e| internal(e.to_string()))?;
        let webauthn = self.webauthn()?;
        let (_, state) = webauthn
            .start_passkey_authentication(std::slice::from_ref(&passkey))
            .map_err(|e| internal(format!("could not start a WebAuthn check: {e}")))?;
        let state = with_challenge(&state, challenge)?;
        let result = webauthn
            .finish_passkey_authentication(&assertion, &state)
            .map_err(|e| bad_assertion(refusal_detail(&e)))?;
        if !result.user_verified() {
            return Err(bad_assertion("user verification required"));
        }
        let counter = result.counter();
        if (stored.counter != 0 || counter != 0) && counter <= stored.counter {
            return Err(bad_assertion("counter went backwards"));
        }
        passkey.update_credential(&result);
        let text = serde_json::to_string(&passkey).map_err(|e| internal(e.to_string()))?;
        // Another answer with this credential moved the counter since it was read.
        if !self
            .store
            .record_device_webauthn_use(
                &device.id,
                &stored.credential_id,
                stored.counter,
                counter,
                &text,
            )
            .await?
        {
            return Err(bad_assertion("counter went backwards"));
        }
        Ok(())
    }

    fn webauthn(&self) -> Result<&webauthn_rs::prelude::Webauthn, DeviceApiError> {
        self.relying_party.webauthn().map_err(|_| {
            DeviceApiError::new(
                DeviceErrorKind::Forbidden,
                "webauthn_unavailable",
                "WebAuthn cannot be used with this server's address (its host is not a domain name)",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::passkeys::RelyingParty;

    #[test]
    fn the_expected_challenge_replaces_the_one_webauthn_rs_drew() {
        // The shape of webauthn-rs's serialised state is not public API: this fails loudly
        // if an upgrade moves the challenge.
        let rp = RelyingParty::new("https://login.contoso.example", &[]);
        let webauthn = rp.webauthn().unwrap();
        // A real state needs a real passkey: one made by the software authenticator.
        use webauthn_authenticator_rs::WebauthnAuthenticator;
        use webauthn_authenticator_rs::softpasskey::SoftPasskey;
        let origin = url::Url::parse("https://login.contoso.example").unwrap();
        let mut phone = SoftPasskey::new(true);
        let (ccr, reg) = webauthn
            .start_passkey_registration(device_handle(&DeviceId::from_string("d")), "a", "a", None)
            .unwrap();
        let made = phone.do_registration(origin.clone(), ccr).unwrap();
        let passkey = webauthn.finish_passkey_registration(&made, &reg).unwrap();
        let (rcr, state) = webauthn
            .start_passkey_authentication(std::slice::from_ref(&passkey))
            .unwrap();
        let challenge = [7u8; 32];
        let replaced = with_challenge(&state, &challenge).unwrap();
        let text = serde_json::to_value(&replaced).unwrap();
        assert_eq!(
            text.pointer("/ast/challenge").and_then(|c| c.as_str()),
            Some(B64.encode(challenge).as_str())
        );
        // An assertion over the drawn challenge no longer finishes the replaced state...
        let drawn = phone.do_authentication(origin.clone(), rcr).unwrap();
        assert!(
            webauthn
                .finish_passkey_authentication(&drawn, &replaced)
                .is_err()
        );
        // ...and one over the expected challenge does.
        let (mut rcr, _) = webauthn
            .start_passkey_authentication(std::slice::from_ref(&passkey))
            .unwrap();
        rcr.public_key.challenge = challenge.to_vec();
        let expected = phone.do_authentication(origin, rcr).unwrap();
        let result = webauthn
            .finish_passkey_authentication(&expected, &replaced)
            .unwrap();
        assert!(result.user_verified());
    }

    #[test]
    fn a_devices_credential_has_its_own_user_handle() {
        let a = DeviceId::from_string("a");
        assert_eq!(device_handle(&a), device_handle(&a));
        assert_ne!(
            device_handle(&a),
            device_handle(&DeviceId::from_string("b"))
        );
    }
}
