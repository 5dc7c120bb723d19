//! Passkeys and security keys (WebAuthn credentials): what is registered for a user, the
//! server-side state of a ceremony in progress, and the rules that need no store (the kind of
//! a credential, the AAGUID in its authenticator data, the key restrictions).
//!
//! Nothing here verifies a signature: `webauthn-rs` does, in `service::passkeys`. A
//! ceremony's state names its challenge, so it is never logged or shown.

use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{Passkey, Uuid};

use crate::clock::Timestamp;
pub use crate::ids::{CeremonyId, PasskeyId};
use crate::ids::{SignInId, UserId};
use crate::policy::{EnforcementType, KeyRestrictions};

/// How long a browser has to finish a ceremony (webauthn-rs asks the authenticator for five
/// minutes; a little more covers the round trips).
pub const CEREMONY_LIFETIME_SECONDS: i64 = 6 * 60;

/// The longest WebAuthn answer (`credential.toJSON()`) accepted from a browser, in bytes: the
/// one cap, checked by the HTTP edge before anything else (413) and again by the domain before
/// it parses. A registration with attestation and its certificate chain is a few kilobytes;
/// anything near this is not a WebAuthn answer. (Every request body is also capped, at 64 KiB,
/// by the edge.)
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024;

/// The longest passkey name a user may choose, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// At most this many passkeys per user (the allow list of a sign-in carries all of them).
pub const MAX_PASSKEYS_PER_USER: usize = 20;

/// What kind of authenticator holds a credential, as the security-info page lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PasskeyKind {
    /// A roaming authenticator (USB, NFC, Bluetooth): a FIDO2 security key.
    SecurityKey,
    /// A platform authenticator bound to one device (the Windows Hello kind).
    Passkey,
    /// A credential the authenticator may copy to the user's other devices (backup eligible).
    SyncedPasskey,
}

impl PasskeyKind {
    pub fn label(self) -> &'static str {
        match self {
            PasskeyKind::SecurityKey => "Security key",
            PasskeyKind::Passkey => "Passkey",
            PasskeyKind::SyncedPasskey => "Synced passkey",
        }
    }

    /// Backup eligible → synced; else a platform attachment (or only the `internal`
    /// transport) → a device-bound passkey; else a security key.
    pub fn classify(
        backup_eligible: bool,
        attachment: Option<&str>,
        transports: &[String],
    ) -> Self {
        if backup_eligible {
            PasskeyKind::SyncedPasskey
        } else if attachment == Some("platform")
            || (attachment.is_none()
                && !transports.is_empty()
                && transports.iter().all(|t| t == "internal"))
        {
            PasskeyKind::Passkey
        } else {
            PasskeyKind::SecurityKey
        }
    }
}

/// A passkey or security key registered for a user.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegisteredPasskey {
    pub id: PasskeyId,
    pub user_id: UserId,
    /// User-chosen; defaults to the authenticator's name or the kind's label.
    pub name: String,
    pub kind: PasskeyKind,
    /// Lowercase, hyphenated; `None` when the authenticator sent all zeros.
    pub aaguid: Option<String>,
    /// From the shipped AAGUID table ([`crate::aaguid`]).
    pub authenticator_name: Option<String>,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    /// The credential id the authenticator chose (unique across all users).
    pub credential_id: Vec<u8>,
    /// The signature counter last seen (0 for authenticators that keep none).
    pub counter: u32,
    pub backup_eligible: bool,
    pub backup_state: bool,
    /// webauthn-rs's credential: the public key and what it checks at each sign-in.
    pub credential: Passkey,
}

impl RegisteredPasskey {
    /// The session method a sign-in with this credential gives.
    pub fn auth_method(&self) -> crate::session::AuthMethod {
        if self.backup_eligible {
            crate::session::AuthMethod::SyncedPasskey
        } else {
            crate::session::AuthMethod::DeviceBoundPasskey
        }
    }

    /// What the audit log shows of a passkey: never the key itself.
    pub fn audit_view(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "aaguid": self.aaguid,
            "authenticatorName": self.authenticator_name,
        })
    }
}

/// What the browser needs for one ceremony.
#[derive(Debug, Clone, PartialEq)]
pub struct PasskeyChallenge {
    pub ceremony: CeremonyId,
    /// The `publicKey` member of webauthn-rs's CreationChallengeResponse /
    /// RequestChallengeResponse: the browser feeds it to
    /// PublicKeyCredential.parseCreationOptionsFromJSON / parseRequestOptionsFromJSON.
    pub options: serde_json::Value,
    /// Some("conditional") for the first page's autofill ceremony, else None.
    pub mediation: Option<&'static str>,
}

/// Why a passkey use case did not succeed, as the page should tell it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasskeyError {
    /// Registration: the sign-in is older than 10 minutes.
    SignInAgain,
    /// Registration: signed in with a password only.
    StrongerMethodNeeded,
    /// Policy: method disabled or not targeted, self-service off (a message for the page).
    NotAllowed(String),
    /// The ceremony failed: attestation required, key blocked by restrictions, counter went
    /// backwards, wrong origin, bad signature, replay…
    Refused(String),
    /// No such passkey of this user, or no such ceremony (expired or used).
    NotFound,
    /// Malformed or oversized input (the message names what).
    Invalid(String),
    /// Storage trouble.
    Store,
}

impl std::fmt::Display for PasskeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PasskeyError::SignInAgain => f.write_str("Sign in again to add a security key or passkey."),
            PasskeyError::StrongerMethodNeeded => f.write_str(
                "Sign in again with a Temporary Access Pass or the authenticator app to add a security key or passkey.",
            ),
            PasskeyError::NotAllowed(m) | PasskeyError::Refused(m) | PasskeyError::Invalid(m) => {
                f.write_str(m)
            }
            PasskeyError::NotFound => f.write_str(
                "That passkey or ceremony was not found. It may have expired or been used; try again.",
            ),
            PasskeyError::Store => f.write_str(crate::service::messages::STORE_TROUBLE),
        }
    }
}

impl std::error::Error for PasskeyError {}

/// What a ceremony is for, so that a state started for one thing can finish nothing else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "purpose", rename_all = "snake_case")]
pub enum CeremonyPurpose {
    /// Adding a credential to this user (`attested`: the policy enforced attestation).
    Registration { user_id: UserId, attested: bool },
    /// Signing in after the user name: `user_id` is `None` for an unknown name or a user
    /// without passkeys (the options were a decoy).
    SignIn {
        sign_in: SignInId,
        user_id: Option<UserId>,
    },
    /// Signing in without a user name (a discoverable credential).
    Discoverable { sign_in: SignInId },
    /// An authenticator device (the web app) turning phone sign-in on with a WebAuthn
    /// credential made on the phone.
    DevicePhoneSignIn { device_id: crate::ids::DeviceId },
}

/// A ceremony's server-side state: taken from the store once, when the browser answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyCeremony {
    pub id: CeremonyId,
    pub purpose: CeremonyPurpose,
    /// webauthn-rs's serialised state (it holds the challenge: never logged).
    pub state: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

impl PasskeyCeremony {
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.expires_at
    }
}

/// The AAGUID in a registration's authenticator data: bytes 37..53 when the attested
/// credential data flag (AT, 0x40) is set. `Ok(None)` for all zeros (no model named).
pub fn aaguid_from_auth_data(auth_data: &[u8]) -> Result<Option<Uuid>, &'static str> {
    const FLAGS: usize = 32;
    const AT: u8 = 0x40;
    if auth_data.len() < 55 {
        return Err("the authenticator data is too short");
    }
    if auth_data[FLAGS] & AT == 0 {
        return Err("the authenticator data has no attested credential");
    }
    let bytes: [u8; 16] = auth_data[37..53].try_into().expect("16 bytes");
    let uuid = Uuid::from_bytes(bytes);
    Ok((!uuid.is_nil()).then_some(uuid))
}

/// Whether key restrictions let an authenticator with this AAGUID register or sign in. An
/// authenticator that names no model (all zeros) is not on any allow list.
pub fn restrictions_allow(restrictions: &KeyRestrictions, aaguid: Option<&str>) -> bool {
    if !restrictions.is_enforced {
        return true;
    }
    let listed = aaguid.is_some_and(|a| {
        restrictions
            .aa_guids
            .iter()
            .any(|l| l.trim().eq_ignore_ascii_case(a))
    });
    match restrictions.enforcement_type {
        EnforcementType::Allow => listed,
        EnforcementType::Block => !listed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_flags_then_the_attachment() {
        let none: &[String] = &[];
        assert_eq!(
            PasskeyKind::classify(true, Some("platform"), none),
            PasskeyKind::SyncedPasskey
        );
        assert_eq!(
            PasskeyKind::classify(false, Some("platform"), none),
            PasskeyKind::Passkey
        );
        assert_eq!(
            PasskeyKind::classify(false, None, &["internal".to_string()]),
            PasskeyKind::Passkey
        );
        assert_eq!(
            PasskeyKind::classify(false, None, &["internal".to_string(), "usb".to_string()]),
            PasskeyKind::SecurityKey
        );
        assert_eq!(
            PasskeyKind::classify(false, Some("cross-platform"), none),
            PasskeyKind::SecurityKey
        );
    }

    #[test]
    fn aaguid_is_read_only_from_attested_credential_data() {
        let mut data = vec![0u8; 60];
        assert!(aaguid_from_auth_data(&data).is_err(), "AT flag unset");
        data[32] = 0x45;
        assert_eq!(aaguid_from_auth_data(&data), Ok(None));
        data[37..53].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(
            aaguid_from_auth_data(&data).unwrap().unwrap().to_string(),
            "01020304-0506-0708-0102-030405060708"
        );
        assert!(aaguid_from_auth_data(&data[..40]).is_err());
    }

    #[test]
    fn key_restrictions_allow_or_block_listed_models() {
        let listed = "01020304-0506-0708-0102-030405060708";
        let mut r = KeyRestrictions {
            is_enforced: false,
            enforcement_type: EnforcementType::Block,
            aa_guids: vec![listed.to_uppercase()],
        };
        assert!(restrictions_allow(&r, Some(listed)));
        r.is_enforced = true;
        assert!(!restrictions_allow(&r, Some(listed)));
        assert!(restrictions_allow(&r, None));
        r.enforcement_type = EnforcementType::Allow;
        assert!(restrictions_allow(&r, Some(listed)));
        assert!(!restrictions_allow(&r, None));
        assert!(!restrictions_allow(
            &r,
            Some("0fb9bcbc-a0d4-4042-bbb0-559bc1631e28")
        ));
    }
}
