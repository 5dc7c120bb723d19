//! The authenticator app as the server sees it: activations, registered devices, and the
//! approval requests that carry number matching.
//!
//! A device is one account on one phone. It holds a device key (registered at activation; it
//! signs every request the device makes and answers MFA pushes and the registration test) and,
//! once the person enables phone sign-in, a passwordless key that the device keeps encrypted
//! under its PIN and that alone can approve a passwordless sign-in.
//!
//! An approval request is created for a sign-in (or a registration), names a two-digit number
//! that only the browser shows, and is settled exactly once: the first valid answer wins.

use latchkey_protocol::wire::{AppKind, ApprovalKind, ApprovalRequest, Decision, PhoneSignInProof};
use latchkey_protocol::{
    PublicKey, answer_signing_input, context_digest, passwordless_off_input,
    passwordless_proof_input, verify_signature,
};
use serde::{Deserialize, Serialize};

use crate::anomaly::HeldBack;
use crate::clock::Timestamp;
use crate::ids::{ActivationId, ApprovalId, DeviceId, SignInId, UserId};
use crate::log::SignInRecord;
use crate::random::{OsRandom, RandomSource};
use crate::secret::{TokenHash, constant_time_eq, random_token};

/// How long an activation code shown on the security-info page stays redeemable.
pub const ACTIVATION_LIFETIME_SECONDS: i64 = 10 * 60;

/// A one-time activation: the QR code's secret is kept only as a hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activation {
    pub id: ActivationId,
    pub code_hash: TokenHash,
    pub user_id: UserId,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// Set when a device redeemed it.
    pub device_id: Option<DeviceId>,
    /// The test notification sent to that device.
    pub test_approval: Option<ApprovalId>,
}

impl Activation {
    pub fn is_usable(&self, now: Timestamp) -> bool {
        self.device_id.is_none() && now < self.expires_at
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub id: DeviceId,
    pub user_id: UserId,
    pub name: String,
    pub key: PublicKey,
    pub passwordless_key: Option<PublicKey>,
    pub created_at: Timestamp,
    /// When the registration test notification was answered; an unconfirmed device receives
    /// nothing but its test.
    pub confirmed_at: Option<Timestamp>,
    pub phone_sign_in_at: Option<Timestamp>,
    /// Which app redeemed the activation (security info names it).
    pub app: AppKind,
    /// Phone sign-in's WebAuthn credential, when its proof is WebAuthn (the web app) rather
    /// than a passwordless key. At most one of the two is set.
    pub webauthn: Option<DeviceCredential>,
}

/// A device's WebAuthn credential for phone sign-in, made on the phone with user
/// verification. No secret: the private key never leaves the phone's authenticator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceCredential {
    /// The credential id, base64url (what the app puts in `allowCredentials`).
    pub credential_id: String,
    /// webauthn-rs's serialised `Passkey` (public key, algorithm, flags).
    pub passkey: String,
    /// The signature counter last seen.
    pub counter: u32,
}

/// How the stores spell an app kind.
pub fn app_text(app: AppKind) -> &'static str {
    match app {
        AppKind::Terminal => "terminal",
        AppKind::Web => "web",
    }
}

/// An app kind as the stores spell it.
pub fn app_from_text(text: &str) -> Option<AppKind> {
    match text {
        "terminal" => Some(AppKind::Terminal),
        "web" => Some(AppKind::Web),
        _ => None,
    }
}

impl Device {
    pub fn is_confirmed(&self) -> bool {
        self.confirmed_at.is_some()
    }

    pub fn has_phone_sign_in(&self) -> bool {
        self.is_confirmed() && self.phone_sign_in_proof().is_some()
    }

    /// How phone sign-in is proved on this device, if it is on.
    pub fn phone_sign_in_proof(&self) -> Option<PhoneSignInProof> {
        if self.webauthn.is_some() {
            Some(PhoneSignInProof::Webauthn)
        } else if self.passwordless_key.is_some() {
            Some(PhoneSignInProof::PinKey)
        } else {
            None
        }
    }

    /// Whether the new passwordless key proved possession, bound to this device, and (when it
    /// replaces one) the current key agreed.
    pub fn passwordless_change_ok(
        &self,
        key: &PublicKey,
        proof: &str,
        previous_proof: Option<&str>,
    ) -> bool {
        let message = passwordless_proof_input(self.id.as_str(), key);
        let new_ok = verify_signature(key, &message, proof);
        let previous_ok = match &self.passwordless_key {
            None => true,
            Some(current) => previous_proof.is_some_and(|p| verify_signature(current, &message, p)),
        };
        new_ok && previous_ok
    }

    /// Whether the current passwordless key signed turning phone sign-in off.
    pub fn passwordless_off_ok(&self, request_nonce: &str, proof: &str) -> bool {
        self.passwordless_key.as_ref().is_some_and(|key| {
            verify_signature(
                key,
                &passwordless_off_input(self.id.as_str(), request_nonce),
                proof,
            )
        })
    }
}

/// What the server keeps to check a device's PIN for phone sign-in (the PIN itself never
/// reaches it): a keyed hash of the device's PIN verifier and the count of wrong PINs in a row.
/// Only here can the count live: a copy of the device's files would reset a count kept there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinLock {
    pub device_id: DeviceId,
    /// HMAC of the PIN verifier under the server's PIN key; `None` once locked or turned off.
    pub verifier_mac: Option<String>,
    pub wrong_pins: u32,
    /// Phone sign-in was turned off after [`latchkey_protocol::MAX_WRONG_PINS`] wrong PINs.
    pub locked_at: Option<Timestamp>,
    /// The person allowed turning it on again from security info (signed in another way).
    pub reenable_allowed_at: Option<Timestamp>,
}

impl PinLock {
    pub fn is_locked(&self) -> bool {
        self.locked_at.is_some()
    }
}

/// What the store did with one PIN check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinCheck {
    /// Right PIN: the count went back to zero.
    Right,
    /// Wrong PIN, counted; this many remain before the lock.
    Wrong { remaining: u32 },
    /// This wrong PIN reached the limit: phone sign-in is now off on the device.
    LockedNow,
    /// Already locked (or turned off meanwhile): nothing was checked or counted.
    Locked,
}

/// Where a request for approval stands. Only `Pending` moves, and only once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalState {
    Pending,
    Approved,
    Denied,
    Reported,
    WrongNumber,
    Expired,
    Cancelled,
}

impl ApprovalState {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalState::Pending => "pending",
            ApprovalState::Approved => "approved",
            ApprovalState::Denied => "denied",
            ApprovalState::Reported => "reported",
            ApprovalState::WrongNumber => "wrong_number",
            ApprovalState::Expired => "expired",
            ApprovalState::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<ApprovalState> {
        [
            ApprovalState::Pending,
            ApprovalState::Approved,
            ApprovalState::Denied,
            ApprovalState::Reported,
            ApprovalState::WrongNumber,
            ApprovalState::Expired,
            ApprovalState::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// A request for approval, with what only the server knows: the number, and who it went to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub id: ApprovalId,
    pub user_id: UserId,
    pub sign_in_id: Option<SignInId>,
    /// The devices it was sent to. Only they may answer.
    pub device_ids: Vec<DeviceId>,
    /// The two-digit number the browser shows (10–99).
    pub number: u8,
    /// What the devices receive and show.
    pub view: ApprovalRequest,
    pub state: ApprovalState,
    pub answered_by: Option<DeviceId>,
    pub settled_at: Option<Timestamp>,
    /// The sign-in log record to write when it settles (who, which app, where from).
    pub record: Option<SignInRecord>,
}

/// What a person sees about a request on their device, as policy allows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApprovalContext {
    pub user_principal_name: String,
    pub application: Option<String>,
    pub location: Option<String>,
    pub location_attribution: Option<String>,
    pub report_allowed: bool,
}

impl Approval {
    pub fn new(
        kind: ApprovalKind,
        user_id: UserId,
        sign_in_id: Option<SignInId>,
        device_ids: Vec<DeviceId>,
        context: ApprovalContext,
        now: Timestamp,
        lifetime_seconds: i64,
    ) -> Approval {
        let id = ApprovalId::random();
        Approval {
            view: ApprovalRequest {
                id: id.to_string(),
                kind,
                nonce: random_token().expose().to_string(),
                user_principal_name: context.user_principal_name,
                application: context.application,
                location: context.location,
                location_attribution: context.location_attribution,
                latitude: None,
                longitude: None,
                report_allowed: context.report_allowed,
                created_at: now.0,
                expires_at: now.0 + lifetime_seconds,
            },
            id,
            user_id,
            sign_in_id,
            device_ids,
            number: (&OsRandom as &dyn RandomSource).match_number(),
            state: ApprovalState::Pending,
            answered_by: None,
            settled_at: None,
            record: None,
        }
    }

    /// The same request with its id, nonce and number drawn from `random` (the services'
    /// random source, which a test can fix).
    pub fn drawn_from(mut self, random: &dyn RandomSource) -> Approval {
        self.id = ApprovalId::generate(random);
        self.view.id = self.id.to_string();
        self.view.nonce = random.token().expose().to_string();
        self.number = random.match_number();
        self
    }

    pub fn kind(&self) -> ApprovalKind {
        self.view.kind
    }

    pub fn expires_at(&self) -> Timestamp {
        Timestamp(self.view.expires_at)
    }

    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.expires_at()
    }

    pub fn is_open(&self, now: Timestamp) -> bool {
        self.state == ApprovalState::Pending && !self.is_expired(now)
    }

    pub fn was_sent_to(&self, device: &DeviceId) -> bool {
        self.device_ids.contains(device)
    }

    /// Whether the request was made without being announced to the devices (held back): its
    /// sign-in record says why, in [`HeldBack::log_detail`]'s words.
    pub fn was_held_back(&self) -> bool {
        let detail = self
            .record
            .as_ref()
            .and_then(|r| r.status.additional_details.as_deref());
        HeldBack::ALL.iter().any(|h| detail == Some(h.log_detail()))
    }

    /// Checks an answer's signature, its binding to this request and what the device showed,
    /// and decides the outcome. The number is compared in constant time.
    pub fn judge(
        &self,
        device: &Device,
        decision: Decision,
        number: Option<u8>,
        digest: &str,
        signature: &str,
    ) -> Result<ApprovalState, AnswerRefused> {
        // Keys that may sign this answer. Only approving a phone sign-in needs the person's
        // second factor; refusing one (deny, or "No, it's not me") takes the device key alone,
        // so a person under attack refuses in one step, without the PIN.
        let refusal = decision != Decision::Approve;
        let keys: Vec<&PublicKey> = match self.kind() {
            // With WebAuthn as the proof, the device key signs the answer and an assertion
            // over it proves the person (checked by the caller, which holds the relying party).
            ApprovalKind::PhoneSignIn if device.webauthn.is_some() => vec![&device.key],
            ApprovalKind::PhoneSignIn if refusal => std::iter::once(&device.key)
                .chain(&device.passwordless_key)
                .collect(),
            ApprovalKind::PhoneSignIn => vec![
                device
                    .passwordless_key
                    .as_ref()
                    .ok_or(AnswerRefused::NoPasswordlessKey)?,
            ],
            ApprovalKind::MfaPush
            | ApprovalKind::RegistrationTest
            | ApprovalKind::PhoneSignInConsent => vec![&device.key],
        };
        let expected_digest = context_digest(&self.view);
        if !constant_time_eq(expected_digest.as_bytes(), digest.as_bytes()) {
            return Err(AnswerRefused::ContextMismatch);
        }
        let message =
            answer_signing_input(&self.view.id, &self.view.nonce, decision, number, digest);
        if !keys
            .iter()
            .any(|key| verify_signature(key, &message, signature))
        {
            return Err(AnswerRefused::BadSignature);
        }
        Ok(match decision {
            Decision::Deny => ApprovalState::Denied,
            Decision::Report if self.view.report_allowed => ApprovalState::Reported,
            Decision::Report => ApprovalState::Denied,
            Decision::Approve => {
                let typed = [number.unwrap_or(0)];
                if number.is_some() && constant_time_eq(&typed, &[self.number]) {
                    ApprovalState::Approved
                } else {
                    ApprovalState::WrongNumber
                }
            }
        })
    }
}

/// Why an answer changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerRefused {
    /// The signature does not verify with the key this kind of request needs.
    BadSignature,
    /// The device signed a different context than the server sent.
    ContextMismatch,
    /// A phone sign-in answer from a device without phone sign-in.
    NoPasswordlessKey,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::SeededRandom;
    use latchkey_protocol::DeviceKeyPair;

    #[test]
    fn a_fixed_random_source_fixes_the_number_id_and_nonce() {
        let request = |seed| {
            let random = SeededRandom::new(seed);
            Approval::new(
                ApprovalKind::PhoneSignIn,
                UserId::from_string("u"),
                None,
                vec![DeviceId::from_string("d")],
                ApprovalContext {
                    user_principal_name: "bobby@contoso.example".into(),
                    application: None,
                    location: None,
                    location_attribution: None,
                    report_allowed: false,
                },
                Timestamp(100),
                90,
            )
            .drawn_from(&random)
        };
        let (a, b) = (request(1), request(1));
        assert_eq!(
            (a.number, &a.id, &a.view.nonce),
            (b.number, &b.id, &b.view.nonce)
        );
        assert_eq!(a.view.id, a.id.to_string());
        assert!((10..=99).contains(&a.number));
        assert_ne!(request(2).id, a.id);
    }

    fn device(key: &DeviceKeyPair, passwordless: Option<&DeviceKeyPair>) -> Device {
        Device {
            id: DeviceId::random(),
            user_id: UserId::random(),
            name: "phone".into(),
            key: key.public_key(),
            passwordless_key: passwordless.map(|k| k.public_key()),
            created_at: Timestamp(0),
            confirmed_at: Some(Timestamp(1)),
            phone_sign_in_at: None,
            app: AppKind::Terminal,
            webauthn: None,
        }
    }

    fn approval(kind: ApprovalKind, device: &Device) -> Approval {
        Approval::new(
            kind,
            device.user_id.clone(),
            None,
            vec![device.id.clone()],
            ApprovalContext {
                user_principal_name: "bobby@contoso.example".into(),
                application: Some("My Apps".into()),
                location: Some("Sydney, Australia".into()),
                location_attribution: None,
                report_allowed: true,
            },
            Timestamp(100),
            90,
        )
    }

    fn answer(
        signer: &DeviceKeyPair,
        approval: &Approval,
        decision: Decision,
        number: Option<u8>,
    ) -> (String, String) {
        let digest = context_digest(&approval.view);
        let sig = signer.sign(&answer_signing_input(
            &approval.view.id,
            &approval.view.nonce,
            decision,
            number,
            &digest,
        ));
        (digest, sig)
    }

    #[test]
    fn numbers_are_two_digits_and_cover_the_range() {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..5000 {
            let n = (&OsRandom as &dyn RandomSource).match_number();
            assert!((10..=99).contains(&n));
            seen.insert(n);
        }
        assert_eq!(seen.len(), 90, "every number from 10 to 99 is drawn");
    }

    #[test]
    fn phone_sign_in_needs_the_passwordless_key_and_the_right_number() {
        let device_key = DeviceKeyPair::generate().unwrap();
        let pwless = DeviceKeyPair::generate().unwrap();
        let d = device(&device_key, Some(&pwless));
        let a = approval(ApprovalKind::PhoneSignIn, &d);
        let (digest, sig) = answer(&pwless, &a, Decision::Approve, Some(a.number));
        assert_eq!(
            a.judge(&d, Decision::Approve, Some(a.number), &digest, &sig),
            Ok(ApprovalState::Approved)
        );
        let wrong = if a.number == 99 { 98 } else { a.number + 1 };
        let (digest, sig) = answer(&pwless, &a, Decision::Approve, Some(wrong));
        assert_eq!(
            a.judge(&d, Decision::Approve, Some(wrong), &digest, &sig),
            Ok(ApprovalState::WrongNumber)
        );
        // Signed with the device key instead of the PIN-protected one.
        let (digest, sig) = answer(&device_key, &a, Decision::Approve, Some(a.number));
        assert_eq!(
            a.judge(&d, Decision::Approve, Some(a.number), &digest, &sig),
            Err(AnswerRefused::BadSignature)
        );
    }

    #[test]
    fn refusing_a_phone_sign_in_needs_only_the_device_key_and_no_number() {
        let device_key = DeviceKeyPair::generate().unwrap();
        let pwless = DeviceKeyPair::generate().unwrap();
        let stranger = DeviceKeyPair::generate().unwrap();
        let d = device(&device_key, Some(&pwless));
        let a = approval(ApprovalKind::PhoneSignIn, &d);
        for (decision, state) in [
            (Decision::Deny, ApprovalState::Denied),
            (Decision::Report, ApprovalState::Reported),
        ] {
            for signer in [&device_key, &pwless] {
                let (digest, sig) = answer(signer, &a, decision, None);
                assert_eq!(a.judge(&d, decision, None, &digest, &sig), Ok(state));
            }
            let (digest, sig) = answer(&stranger, &a, decision, None);
            assert_eq!(
                a.judge(&d, decision, None, &digest, &sig),
                Err(AnswerRefused::BadSignature)
            );
        }
    }

    #[test]
    fn on_a_webauthn_device_the_device_key_signs_phone_sign_in_answers_and_no_pin_key_does() {
        let device_key = DeviceKeyPair::generate().unwrap();
        let other = DeviceKeyPair::generate().unwrap();
        let mut d = device(&device_key, None);
        assert_eq!(d.phone_sign_in_proof(), None);
        assert!(!d.has_phone_sign_in());
        d.webauthn = Some(DeviceCredential {
            credential_id: "Y3JlZA".into(),
            passkey: "{}".into(),
            counter: 0,
        });
        assert_eq!(d.phone_sign_in_proof(), Some(PhoneSignInProof::Webauthn));
        assert!(d.has_phone_sign_in());
        let a = approval(ApprovalKind::PhoneSignIn, &d);
        // The signature is only half of it: the caller then checks the assertion.
        let (digest, sig) = answer(&device_key, &a, Decision::Approve, Some(a.number));
        assert_eq!(
            a.judge(&d, Decision::Approve, Some(a.number), &digest, &sig),
            Ok(ApprovalState::Approved)
        );
        let (digest, sig) = answer(&other, &a, Decision::Approve, Some(a.number));
        assert_eq!(
            a.judge(&d, Decision::Approve, Some(a.number), &digest, &sig),
            Err(AnswerRefused::BadSignature)
        );
    }

    #[test]
    fn an_answer_signed_for_one_decision_cannot_be_replayed_as_another() {
        let device_key = DeviceKeyPair::generate().unwrap();
        let d = device(&device_key, None);
        let a = approval(ApprovalKind::MfaPush, &d);
        let (digest, sig) = answer(&device_key, &a, Decision::Deny, None);
        assert_eq!(
            a.judge(&d, Decision::Approve, Some(a.number), &digest, &sig),
            Err(AnswerRefused::BadSignature)
        );
        assert_eq!(
            a.judge(&d, Decision::Deny, None, &digest, &sig),
            Ok(ApprovalState::Denied)
        );
    }

    #[test]
    fn a_device_that_showed_another_context_is_refused() {
        let device_key = DeviceKeyPair::generate().unwrap();
        let d = device(&device_key, None);
        let a = approval(ApprovalKind::MfaPush, &d);
        let mut shown = a.view.clone();
        shown.location = Some("Somewhere else".into());
        let digest = context_digest(&shown);
        let sig = device_key.sign(&answer_signing_input(
            &a.view.id,
            &a.view.nonce,
            Decision::Approve,
            Some(a.number),
            &digest,
        ));
        assert_eq!(
            a.judge(&d, Decision::Approve, Some(a.number), &digest, &sig),
            Err(AnswerRefused::ContextMismatch)
        );
    }
}
