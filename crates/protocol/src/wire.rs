//! The JSON bodies of `/authenticator/v1`. Unknown fields are refused on what the server reads,
//! so a typo is an error rather than a silently ignored setting.

use serde::{Deserialize, Serialize};

use crate::keys::PublicKey;

/// `POST /activate`: a device redeems a one-time activation code.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivateRequest {
    pub code: String,
    pub device_name: String,
    pub device_key: PublicKey,
    /// The device key's signature of [`crate::activation_proof_input`].
    pub proof: String,
    /// Which kind of app redeems the code; absent means the terminal app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<AppKind>,
}

/// The kind of authenticator app, as security info names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppKind {
    /// The terminal program (`latchkey-authenticator`).
    Terminal,
    /// The web app at `/authenticator/app`.
    Web,
}

/// How a device proves the person for phone sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhoneSignInProof {
    /// A passwordless key sealed under the device PIN (`POST /phone-sign-in`).
    PinKey,
    /// A WebAuthn credential made on the phone with user verification
    /// (`POST /phone-sign-in/passkey`).
    Webauthn,
}

/// `POST /phone-sign-in/passkey/options`: the creation options for the device's WebAuthn
/// credential.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PasskeyOptions {
    /// Opaque: send it back with the credential.
    pub ceremony: String,
    /// The `publicKey` member of the creation options, for
    /// `PublicKeyCredential.parseCreationOptionsFromJSON`.
    pub public_key: serde_json::Value,
}

/// `POST /phone-sign-in/passkey`: the credential the phone made.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnablePasskey {
    pub ceremony: String,
    /// `credential.toJSON()` of `navigator.credentials.create`.
    pub credential: serde_json::Value,
}

/// The answer to `POST /phone-sign-in/passkey`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PasskeyEnabled {
    pub device: DeviceStatus,
}

/// `GET /device`'s description of a WebAuthn phone sign-in credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebauthnCredentialInfo {
    /// The relying party id the assertion must be made for.
    pub rp_id: String,
    /// base64url, for `allowCredentials`.
    pub credential_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountInfo {
    pub user_id: String,
    pub user_principal_name: String,
    pub display_name: String,
    /// The server's issuer URL.
    pub issuer: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActivateResponse {
    pub device_id: String,
    pub account: AccountInfo,
    /// The test notification that completes registration: answer it with the number the
    /// security-info page shows.
    pub test_request: ApprovalRequest,
}

/// `POST /phone-sign-in`: registers the passwordless key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnablePhoneSignIn {
    pub key: PublicKey,
    /// The new key's signature of [`crate::passwordless_proof_input`].
    pub proof: String,
    /// When the device already has a passwordless key: that key's signature of the same
    /// input. Without it, someone holding only the device key could swap in a key of their
    /// own and skip the PIN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_proof: Option<String>,
    /// The PIN verifier: base64url of the 32-byte argon2id hash of the new PIN under a salt
    /// that only the device keeps. The server stores a keyed hash of it and answers
    /// [`PinUnlock`] requests that carry the same value.
    pub pin_verifier: String,
}

/// The answer to `POST /phone-sign-in`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhoneSignInEnabled {
    pub device: DeviceStatus,
    /// The unlock secret (base64url, 32 bytes): with the PIN verifier it makes the key that
    /// seals the passwordless key. The device must not store it.
    pub unlock_secret: String,
}

/// `POST /phone-sign-in/unlock`: the device asks for the unlock secret with the PIN the person
/// typed. The server counts wrong ones and turns phone sign-in off after
/// [`crate::MAX_WRONG_PINS`] in a row.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinUnlock {
    /// Base64url of the argon2id hash of the typed PIN, as in [`EnablePhoneSignIn`].
    pub pin_verifier: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PinUnlocked {
    pub unlock_secret: String,
}

/// `DELETE /phone-sign-in`: turning phone sign-in off needs the PIN-protected key too.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisablePhoneSignIn {
    /// The passwordless key's signature of [`crate::passwordless_off_input`] (proof
    /// `pin_key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<String>,
    /// With proof `webauthn`: `credential.toJSON()` of an assertion whose challenge is
    /// [`crate::webauthn_challenge`] of [`crate::passwordless_off_input`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assertion: Option<serde_json::Value>,
}

/// `GET /device`: what the server knows of this device.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceStatus {
    pub device_id: String,
    pub device_name: String,
    pub account: AccountInfo,
    /// The test notification was answered.
    pub confirmed: bool,
    pub phone_sign_in: bool,
    /// Phone sign-in was turned off after too many wrong PINs; it can be turned on again once
    /// the person allows it on the security-info page.
    #[serde(default)]
    pub phone_sign_in_locked: bool,
    /// How phone sign-in is proved on this device, when it is on.
    #[serde(default)]
    pub phone_sign_in_proof: Option<PhoneSignInProof>,
    /// With proof `webauthn`: the credential to ask the phone for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webauthn: Option<WebauthnCredentialInfo>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalKind {
    /// Passwordless sign-in: answered with the passwordless key, after the device PIN.
    PhoneSignIn,
    /// A second factor after a password: answered with the device key.
    MfaPush,
    /// The notification that confirms a new registration.
    RegistrationTest,
    /// The person, signed in to security info, allows this device to turn phone sign-in on:
    /// answered with the device key and the number the page shows.
    PhoneSignInConsent,
}

impl ApprovalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalKind::PhoneSignIn => "phone_sign_in",
            ApprovalKind::MfaPush => "mfa_push",
            ApprovalKind::RegistrationTest => "registration_test",
            ApprovalKind::PhoneSignInConsent => "phone_sign_in_consent",
        }
    }
}

/// A request for approval, as the device receives and shows it. The number is never in it:
/// the person reads it from the browser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    pub id: String,
    pub kind: ApprovalKind,
    /// Single-use; the answer's signature covers it.
    pub nonce: String,
    pub user_principal_name: String,
    /// The application's name, when the policy shows it to this user.
    pub application: Option<String>,
    /// "Sydney, New South Wales, Australia", "Private network" or "Unknown location", when
    /// the policy shows it to this user.
    pub location: Option<String>,
    /// Credit the location's source asks for (outside the signed context).
    #[serde(default)]
    pub location_attribution: Option<String>,
    /// Where the GeoIP database puts the sign-in, in degrees (WGS 84), for the app's map: only
    /// when `location` is shown and the database knows coordinates, otherwise `null`. Outside
    /// the signed context (like the attribution): the place the person judges is `location`.
    #[serde(default, deserialize_with = "latitude")]
    pub latitude: Option<f64>,
    #[serde(default, deserialize_with = "longitude")]
    pub longitude: Option<f64>,
    /// Whether "No, it's not me" reports the request as suspicious (the policy's report
    /// suspicious activity feature); when false, a report counts as a plain denial.
    #[serde(default)]
    pub report_allowed: bool,
    /// Seconds since the Unix epoch.
    pub created_at: i64,
    pub expires_at: i64,
}

/// A coordinate as the wire carries it: degrees rounded to six decimals (about 0.1 m, far finer
/// than any GeoIP database), `None` when not finite or beyond `limit`. Rounded so that writing
/// it and reading it back gives exactly the same number.
pub fn coordinate(value: f64, limit: f64) -> Option<f64> {
    (value.is_finite() && value.abs() <= limit).then(|| (value * 1e6).round() / 1e6)
}

fn latitude<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.and_then(|v| coordinate(v, 90.0)))
}

fn longitude<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.and_then(|v| coordinate(v, 180.0)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Deny,
    /// "No, it's not me": deny and report the request as suspicious.
    Report,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Deny => "deny",
            Decision::Report => "report",
        }
    }
}

/// `POST /requests/{id}/answer`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    pub decision: Decision,
    /// The number the person typed; required to approve.
    #[serde(default)]
    pub number: Option<u8>,
    /// [`crate::context_digest`] of the request as the device showed it.
    pub context_digest: String,
    /// Signature of [`crate::answer_signing_input`], by the passwordless key for phone sign-in
    /// and by the device key otherwise (also for phone sign-in on a device whose proof is
    /// WebAuthn).
    pub signature: String,
    /// Approving a phone sign-in on a device whose proof is WebAuthn: `credential.toJSON()` of
    /// an assertion whose challenge is [`crate::webauthn_challenge`] of the signing input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assertion: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerOutcome {
    Approved,
    Denied,
    Reported,
    /// The number did not match: the request failed and the sign-in must start again.
    WrongNumber,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AnswerResult {
    pub outcome: AnswerOutcome,
}

/// `GET /requests`: what is waiting for this device.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PendingRequests {
    pub requests: Vec<ApprovalRequest>,
}

/// What the server sends on the live channel (`GET /stream`, a WebSocket), one JSON text
/// message each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DeviceEvent {
    Request {
        request: ApprovalRequest,
    },
    /// Another device answered first.
    AnsweredElsewhere {
        id: String,
    },
    Expired {
        id: String,
    },
    /// The person chose another way to sign in.
    Cancelled {
        id: String,
    },
}

/// Every error from `/authenticator/v1`: a stable code and a sentence.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
    pub message: String,
}

#[cfg(test)]
mod coordinate_tests {
    use super::*;

    fn request(extra: &str) -> String {
        format!(
            r#"{{"id":"a","kind":"phone_sign_in","nonce":"n","user_principal_name":"u","application":null,"location":"London","created_at":1,"expires_at":2{extra}}}"#
        )
    }

    #[test]
    fn coordinates_are_optional_rounded_and_round_trip_exactly() {
        let old: ApprovalRequest = serde_json::from_str(&request("")).unwrap();
        assert_eq!((old.latitude, old.longitude), (None, None));
        let json = serde_json::to_value(&old).unwrap();
        assert!(json["latitude"].is_null() && json["longitude"].is_null());
        let placed: ApprovalRequest = serde_json::from_str(&request(
            r#","latitude":51.50853123456789,"longitude":-0.12574"#,
        ))
        .unwrap();
        assert_eq!(placed.latitude, Some(51.508531));
        assert_eq!(placed.longitude, Some(-0.12574));
        let text = serde_json::to_string(&placed).unwrap();
        let again: ApprovalRequest = serde_json::from_str(&text).unwrap();
        assert_eq!(again, placed);
        assert_eq!(serde_json::to_string(&again).unwrap(), text);
        // Off the globe: dropped, not refused (an old app must still read the request).
        let off: ApprovalRequest =
            serde_json::from_str(&request(r#","latitude":91,"longitude":1e300"#)).unwrap();
        assert_eq!((off.latitude, off.longitude), (None, None));
    }
}
