//! Passkeys and security keys on the security-info page: registering one (a WebAuthn
//! registration ceremony), listing, renaming and removing them. Signing in with one is the
//! sign-in context's (`sign_in::passkey`), which uses the relying party and rules kept here.
//!
//! Where each policy rule is enforced (docs/passkeys.md has the table): the method's state and
//! targets, self-service registration and attestation at `begin_registration` and again at
//! `finish_registration`; key restrictions at `finish_registration` (on the AAGUID read from
//! the signed authenticator data) and at every sign-in.

mod relying_party;

use std::sync::Arc;

use webauthn_rs::prelude::{
    AttestedPasskeyRegistration, Credential, Passkey, PasskeyRegistration,
    RegisterPublicKeyCredential, Uuid,
};

pub(crate) use relying_party::{RelyingParty, parse_response, refusal_detail, user_handle};

use super::access::MethodAccess;
use super::shared::AuditTrail;
use crate::clock::{Clock, Timestamp};
use crate::error::{DomainError, StoreError};
use crate::ids::UserId;
use crate::log::{Actor, AuditCategory};
use crate::passkey::{
    CEREMONY_LIFETIME_SECONDS, CeremonyId, CeremonyPurpose, MAX_NAME_CHARS, MAX_PASSKEYS_PER_USER,
    PasskeyCeremony, PasskeyChallenge, PasskeyError, PasskeyId, PasskeyKind, RegisteredPasskey,
    aaguid_from_auth_data, restrictions_allow,
};
use crate::policy::{AuthenticationMethodsPolicy, MethodKind, evaluate};
use crate::random::RandomSource;
use crate::session::{RegistrationFreshness, Session};
use crate::store::PasskeyStore;
use crate::user::User;

pub struct Passkeys {
    pub(crate) store: Arc<dyn PasskeyStore>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) random: Arc<dyn RandomSource>,
    pub(crate) audit: Arc<AuditTrail>,
    pub(crate) access: Arc<MethodAccess>,
    pub(crate) relying_party: Arc<RelyingParty>,
    pub(crate) directory: Arc<super::directory::Directory>,
}

fn store_trouble(_: StoreError) -> PasskeyError {
    PasskeyError::Store
}

fn domain_trouble(_: DomainError) -> PasskeyError {
    PasskeyError::Store
}

/// The webauthn-rs registration state kept with a ceremony.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum RegistrationState {
    Plain(PasskeyRegistration),
    Attested(AttestedPasskeyRegistration),
}

impl Passkeys {
    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The user acting on their own methods, by UPN as the audit log names users.
    async fn actor(&self, user: &UserId) -> Actor {
        match self.directory.lookup(user).await {
            Ok(Some(found)) => Actor::user(found.upn.as_str()),
            _ => Actor(format!("user-id:{user}")),
        }
    }

    /// Why passkeys cannot work with this server's configuration (empty when they can), for
    /// the server to report when it starts.
    pub fn configuration_problems(&self) -> Vec<String> {
        self.relying_party.problems()
    }

    /// The policy in force and whether it lets this user register: the method enabled and the
    /// user targeted, and self-service registration on.
    async fn registration_policy(
        &self,
        user: &UserId,
    ) -> Result<AuthenticationMethodsPolicy, PasskeyError> {
        let policy = self.access.policy().await.map_err(store_trouble)?;
        let groups = self.access.user_groups(user).await.map_err(store_trouble)?;
        if !evaluate(&policy, MethodKind::Fido2, &groups).allowed {
            return Err(PasskeyError::NotAllowed(
                "Your organisation doesn't let your account use security keys or passkeys. Ask your administrator.".into(),
            ));
        }
        if !policy.fido2.is_self_service_registration_allowed {
            return Err(PasskeyError::NotAllowed(
                "Your organisation doesn't let you add security keys or passkeys yourself. Ask your administrator.".into(),
            ));
        }
        Ok(policy)
    }

    fn check_freshness(&self, session: &Session, user: &User) -> Result<(), PasskeyError> {
        if session.user_id != user.id {
            return Err(PasskeyError::SignInAgain);
        }
        match session.registration_freshness(self.now()) {
            RegistrationFreshness::Fresh => Ok(()),
            RegistrationFreshness::SignInAgain => Err(PasskeyError::SignInAgain),
            RegistrationFreshness::StrongerMethodNeeded => Err(PasskeyError::StrongerMethodNeeded),
        }
    }

    pub(crate) async fn put_ceremony(
        &self,
        purpose: CeremonyPurpose,
        state: String,
    ) -> Result<CeremonyId, StoreError> {
        let now = self.now();
        let ceremony = PasskeyCeremony {
            id: CeremonyId::generate(self.random.as_ref()),
            purpose,
            state,
            created_at: now,
            expires_at: now.plus_seconds(CEREMONY_LIFETIME_SECONDS),
        };
        self.store.put_ceremony(&ceremony).await?;
        Ok(ceremony.id)
    }

    /// Starts adding a security key or passkey: needs a fresh, strong sign-in and the policy's
    /// leave. Asks for a discoverable credential with user verification, excluding the user's
    /// registered ones; with attestation enforced, for direct attestation.
    pub async fn begin_registration(
        &self,
        session: &Session,
        user: &User,
    ) -> Result<PasskeyChallenge, PasskeyError> {
        self.check_freshness(session, user)?;
        let policy = self.registration_policy(&user.id).await?;
        let webauthn = self.relying_party.webauthn()?;
        let existing = self
            .store
            .passkeys_of_user(&user.id)
            .await
            .map_err(store_trouble)?;
        if existing.len() >= MAX_PASSKEYS_PER_USER {
            return Err(PasskeyError::Refused(format!(
                "You already have {MAX_PASSKEYS_PER_USER} security keys and passkeys. Remove one to add another."
            )));
        }
        let exclude: Vec<_> = existing.iter().map(|p| p.credential_id.clone()).collect();
        let exclude = (!exclude.is_empty()).then_some(exclude);
        let handle = user_handle(&user.id);
        let upn = user.upn.to_string();
        let (challenge, state, attested) = if policy.fido2.is_attestation_enforced {
            let roots = self.relying_party.attestation_roots()?.clone();
            let (ccr, state) = webauthn
                .start_attested_passkey_registration(
                    handle,
                    &upn,
                    &user.display_name,
                    exclude,
                    roots,
                    None,
                )
                .map_err(|e| PasskeyError::Refused(format!("Could not start: {e}")))?;
            (ccr, RegistrationState::Attested(state), true)
        } else {
            let (ccr, state) = webauthn
                .start_passkey_registration(handle, &upn, &user.display_name, exclude)
                .map_err(|e| PasskeyError::Refused(format!("Could not start: {e}")))?;
            (ccr, RegistrationState::Plain(state), false)
        };
        let mut options =
            serde_json::to_value(&challenge.public_key).map_err(|_| PasskeyError::Store)?;
        // A discoverable credential, so that signing in without a user name works. webauthn-rs
        // asks for "discouraged" and does not check what it gets; the browser does as asked.
        if let Some(selection) = options
            .get_mut("authenticatorSelection")
            .and_then(|s| s.as_object_mut())
        {
            selection.insert("residentKey".into(), "required".into());
            selection.insert("requireResidentKey".into(), true.into());
        }
        let state = serde_json::to_string(&state).map_err(|_| PasskeyError::Store)?;
        let ceremony = self
            .put_ceremony(
                CeremonyPurpose::Registration {
                    user_id: user.id.clone(),
                    attested,
                },
                state,
            )
            .await
            .map_err(store_trouble)?;
        Ok(PasskeyChallenge {
            ceremony,
            options,
            mediation: None,
        })
    }

    /// Finishes adding a security key or passkey. `response` is the JSON text of the
    /// browser's `credential.toJSON()`. The ceremony is used once, whatever the outcome.
    pub async fn finish_registration(
        &self,
        session: &Session,
        user: &User,
        ceremony: &CeremonyId,
        response: &str,
        name: Option<&str>,
    ) -> Result<RegisteredPasskey, PasskeyError> {
        let (credential, raw): (RegisterPublicKeyCredential, _) = parse_response(response)?;
        let name = match name.map(str::trim).filter(|n| !n.is_empty()) {
            Some(name) => Some(valid_name(name)?),
            None => None,
        };
        self.check_freshness(session, user)?;
        let now = self.now();
        let taken = self
            .store
            .take_ceremony(ceremony, now)
            .await
            .map_err(store_trouble)?
            .ok_or(PasskeyError::NotFound)?;
        let CeremonyPurpose::Registration { user_id, attested } = &taken.purpose else {
            return Err(PasskeyError::Refused(
                "That request was not for adding a security key or passkey. Start again.".into(),
            ));
        };
        if *user_id != user.id {
            return Err(PasskeyError::Refused(
                "That request was started for another account. Start again.".into(),
            ));
        }
        let attested = *attested;
        let registered = match self
            .register_taken(user, attested, &taken, &credential, &raw, name, now)
            .await
        {
            Err(PasskeyError::Refused(reason)) => {
                // Refusals after the ceremony was spent (attestation, key restrictions, a
                // credential already registered…) are audited, so administrators see them.
                self.record_change(
                    &Actor::user(user.upn.as_str()),
                    &user.id,
                    "Register security key or passkey (refused)",
                    None,
                    Some(serde_json::json!({ "reason": reason })),
                )
                .await?;
                return Err(PasskeyError::Refused(reason));
            }
            other => other?,
        };
        self.record_change(
            &Actor::user(user.upn.as_str()),
            &user.id,
            "Register security key or passkey",
            None,
            Some(registered.audit_view()),
        )
        .await?;
        Ok(registered)
    }

    /// The checks and the write of a registration whose ceremony was taken.
    #[allow(clippy::too_many_arguments)]
    async fn register_taken(
        &self,
        user: &User,
        attested: bool,
        taken: &PasskeyCeremony,
        credential: &RegisterPublicKeyCredential,
        raw: &serde_json::Value,
        name: Option<String>,
        now: Timestamp,
    ) -> Result<RegisteredPasskey, PasskeyError> {
        let policy = self.registration_policy(&user.id).await?;
        if policy.fido2.is_attestation_enforced && !attested {
            // Enforcement was turned on during the ceremony: this key was never asked to attest.
            return Err(PasskeyError::Refused(
                "Your organisation now requires attested security keys (attestation required). Start again.".into(),
            ));
        }
        let state: RegistrationState =
            serde_json::from_str(&taken.state).map_err(|_| PasskeyError::Store)?;
        let webauthn = self.relying_party.webauthn()?;
        let passkey: Passkey = match &state {
            RegistrationState::Plain(state) => webauthn
                .finish_passkey_registration(credential, state)
                .map_err(|e| PasskeyError::Refused(refused_registration(&e)))?,
            RegistrationState::Attested(state) => webauthn
                .finish_attested_passkey_registration(credential, state)
                .map_err(|e| PasskeyError::Refused(refused_registration(&e)))?
                .into(),
        };
        // The AAGUID from the authenticator data the signature covered, never from anything
        // else the browser says.
        let aaguid = auth_data_of(&credential.response.attestation_object)
            .and_then(|data| aaguid_from_auth_data(&data).map_err(|e| e.to_string()))
            .map_err(|e| PasskeyError::Invalid(format!("The passkey response is malformed: {e}.")))?
            .map(|uuid: Uuid| uuid.hyphenated().to_string());
        if !restrictions_allow(&policy.fido2.key_restrictions, aaguid.as_deref()) {
            return Err(PasskeyError::Refused(
                "Your organisation doesn't allow this model of security key or passkey (blocked by key restrictions).".into(),
            ));
        }
        let internals: Credential = passkey.clone().into();
        let transports: Vec<String> = raw
            .pointer("/response/transports")
            .and_then(|t| t.as_array())
            .map(|t| {
                t.iter()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let attachment = raw.get("authenticatorAttachment").and_then(|a| a.as_str());
        let kind = PasskeyKind::classify(internals.backup_eligible, attachment, &transports);
        let authenticator_name = aaguid
            .as_deref()
            .and_then(crate::aaguid::authenticator_name)
            .map(str::to_string);
        let name = name.unwrap_or_else(|| {
            authenticator_name
                .clone()
                .unwrap_or_else(|| kind.label().to_string())
        });
        let registered = RegisteredPasskey {
            id: PasskeyId::generate(self.random.as_ref()),
            user_id: user.id.clone(),
            name,
            kind,
            aaguid,
            authenticator_name,
            created_at: now,
            last_used_at: None,
            credential_id: internals.cred_id.clone(),
            counter: internals.counter,
            backup_eligible: internals.backup_eligible,
            backup_state: internals.backup_state,
            credential: passkey,
        };
        match self.store.add_passkey(&registered).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => {
                return Err(PasskeyError::Refused(
                    "This security key or passkey is already registered.".into(),
                ));
            }
            Err(_) => return Err(PasskeyError::Store),
        }
        Ok(registered)
    }

    /// Records a change to `user`'s passkeys, made by `actor`, in the audit log.
    async fn record_change(
        &self,
        actor: &Actor,
        user: &UserId,
        activity: &str,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
    ) -> Result<(), PasskeyError> {
        self.audit
            .record(
                actor,
                AuditCategory::UserAuthenticationMethods,
                activity,
                user.to_string(),
                before,
                after,
            )
            .await
            .map_err(domain_trouble)
    }

    /// The user's passkey `id`: `NotFound` when it is unknown or another user's.
    async fn owned(
        &self,
        user: &UserId,
        id: &PasskeyId,
    ) -> Result<RegisteredPasskey, PasskeyError> {
        self.store
            .passkey(id)
            .await
            .map_err(store_trouble)?
            .filter(|p| p.user_id == *user)
            .ok_or(PasskeyError::NotFound)
    }

    /// The user's passkeys, oldest first.
    pub async fn list(&self, user: &UserId) -> Result<Vec<RegisteredPasskey>, DomainError> {
        Ok(self.store.passkeys_of_user(user).await?)
    }

    pub async fn rename(
        &self,
        user: &UserId,
        id: &PasskeyId,
        name: &str,
    ) -> Result<RegisteredPasskey, PasskeyError> {
        let name = valid_name(name.trim())?;
        let before = self.owned(user, id).await?;
        if !self
            .store
            .rename_passkey(user, id, &name)
            .await
            .map_err(store_trouble)?
        {
            return Err(PasskeyError::NotFound);
        }
        let mut after = before.clone();
        after.name = name;
        self.record_change(
            &self.actor(user).await,
            user,
            "Rename security key or passkey",
            Some(before.audit_view()),
            Some(after.audit_view()),
        )
        .await?;
        Ok(after)
    }

    pub async fn remove(&self, user: &UserId, id: &PasskeyId) -> Result<(), PasskeyError> {
        let before = self.owned(user, id).await?;
        if !self
            .store
            .remove_passkey(user, id)
            .await
            .map_err(store_trouble)?
        {
            return Err(PasskeyError::NotFound);
        }
        self.record_change(
            &self.actor(user).await,
            user,
            "Remove security key or passkey",
            Some(before.audit_view()),
            None,
        )
        .await?;
        Ok(())
    }

    /// Whether the policy lets this user register one now (for showing "Security key or
    /// passkey" in "Add method").
    pub async fn may_register(&self, user: &User) -> Result<bool, DomainError> {
        match self.registration_policy(&user.id).await {
            Ok(_) => Ok(self.relying_party.webauthn().is_ok()),
            Err(PasskeyError::NotAllowed(_)) => Ok(false),
            Err(_) => Err(DomainError::Store(StoreError::Backend(
                "reading the policy".into(),
            ))),
        }
    }
}

/// A passkey name a user chose: 1..=64 characters, no control characters.
fn valid_name(name: &str) -> Result<String, PasskeyError> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(PasskeyError::Invalid(format!(
            "A name is 1 to {MAX_NAME_CHARS} characters, without line breaks."
        )));
    }
    Ok(name.to_string())
}

/// The page's sentence for a refused registration.
fn refused_registration(error: &webauthn_rs::prelude::WebauthnError) -> String {
    match refusal_detail(error) {
        "attestation required" => "Your organisation requires a security key whose maker it trusts, and this one's attestation was not accepted (attestation required).".into(),
        "already registered" => "This security key or passkey is already registered.".into(),
        detail => format!("The security key or passkey was not accepted ({detail}). Try again."),
    }
}

/// The authenticator data inside a CBOR attestation object.
fn auth_data_of(attestation_object: &[u8]) -> Result<Vec<u8>, String> {
    use serde_cbor_2::Value;
    let value: Value = serde_cbor_2::from_slice(attestation_object)
        .map_err(|_| "the attestation object is not CBOR".to_string())?;
    let Value::Map(map) = value else {
        return Err("the attestation object is not a map".into());
    };
    match map.get(&Value::Text("authData".into())) {
        Some(Value::Bytes(data)) => Ok(data.clone()),
        _ => Err("the attestation object has no authenticator data".into()),
    }
}
