//! Signing in with a passkey or security key: after the user name (the user's credentials in
//! the allow list) or without one (a discoverable credential). The ceremony's state is kept in
//! the store and taken once, so an answer can finish one ceremony of one sign-in, once.
//!
//! Every outcome after the ceremony is taken lands in the sign-in log, in the same write as
//! its effect, with the method ("Passkey (FIDO2)"), the authenticator's name and the detail.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use webauthn_rs::fake::{FakePasskeyDistribution, WebauthnFakeCredentialGenerator};
use webauthn_rs::prelude::{
    AuthenticationResult, DiscoverableAuthentication, PasskeyAuthentication, PublicKeyCredential,
};

use super::{SignInFailure, SignIns, SignedIn};
use crate::clock::Timestamp;
use crate::error::StoreError;
use crate::ids::{SignInId, UserId};
use crate::log::{AuthenticationStep, SignInContext, SignInError, SignInRecord, SignInStatus};
use crate::passkey::{
    CeremonyId, CeremonyPurpose, PasskeyChallenge, PasskeyError, RegisteredPasskey,
    restrictions_allow,
};
use crate::policy::{MethodKind, evaluate};
use crate::service::messages::{DISABLED, STORE_TROUBLE, throttled};
use crate::service::passkeys::{parse_response, refusal_detail, user_handle};
use crate::signin::{MAX_FAILED_ATTEMPTS, PendingSignIn, SignInStage};
use crate::store::PasskeyUse;
use crate::user::User;

/// The sign-in log's name for the method.
pub(crate) const PASSKEY_METHOD: &str = "Passkey (FIDO2)";

const CEREMONY_GONE: &str = "That passkey request expired or was already used. Try again.";
const NOT_ACCEPTED: &str =
    "That passkey or security key wasn't accepted. Try again, or use another way to sign in.";

fn trouble<E>(_: E) -> SignInFailure {
    SignInFailure::TryAgain(STORE_TROUBLE.into())
}

fn invalid(error: PasskeyError) -> SignInFailure {
    SignInFailure::TryAgain(error.to_string())
}

/// The webauthn-rs state a sign-in ceremony keeps.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum SignInState {
    WithName(PasskeyAuthentication),
    Discoverable(DiscoverableAuthentication),
}

/// Why a passkey sign-in failed after its ceremony was taken: the code, and the detail the
/// log step carries.
struct Refusal {
    error: SignInError,
    detail: String,
}

impl Refusal {
    fn new(error: SignInError, detail: impl Into<String>) -> Refusal {
        Refusal {
            error,
            detail: detail.into(),
        }
    }
}

impl SignIns {
    /// "Sign in with a passkey or security key" once a user name is entered (stages
    /// AwaitingCredential / AwaitingPasskey). For an unknown name, or a user without passkeys,
    /// the allow list is a stable decoy derived with a server key from the name (possibly
    /// empty, as webauthn-rs's fake-credential distribution makes it), so the answer does not
    /// tell who exists.
    pub async fn begin_passkey_sign_in(
        &self,
        id: &SignInId,
    ) -> Result<PasskeyChallenge, SignInFailure> {
        let sign_in = self.sign_in(id).await?;
        let (upn, user_id) = match &sign_in.stage {
            SignInStage::AwaitingCredential { upn, user_id, .. } => (upn.clone(), user_id.clone()),
            SignInStage::AwaitingPasskey { upn, user_id } => (upn.clone(), Some(user_id.clone())),
            _ => return Err(SignInFailure::OutOfOrder),
        };
        let webauthn = self.passkeys.relying_party.webauthn().map_err(invalid)?;
        let passkeys = match &user_id {
            Some(user) => self
                .passkeys
                .store
                .passkeys_of_user(user)
                .await
                .map_err(trouble)?,
            None => {
                // The read a known name makes.
                let nobody = UserId::generate(self.random.as_ref());
                self.passkeys
                    .store
                    .passkeys_of_user(&nobody)
                    .await
                    .map_err(trouble)?
            }
        };
        let credentials: Vec<_> = passkeys.iter().map(|p| p.credential.clone()).collect();
        let (challenge, state) = webauthn
            .start_passkey_authentication(&credentials)
            .map_err(trouble)?;
        let mut options = serde_json::to_value(&challenge.public_key).map_err(trouble)?;
        // Real entries lose their transport hints, which decoys could not imitate.
        if let Some(entries) = options
            .get_mut("allowCredentials")
            .and_then(|a| a.as_array_mut())
        {
            for entry in entries.iter_mut().filter_map(|e| e.as_object_mut()) {
                entry.remove("transports");
            }
        }
        if passkeys.is_empty() {
            let key = self
                .keys
                .server_secret("passkey-decoy-hmac-key")
                .await
                .map_err(trouble)?;
            let decoys = WebauthnFakeCredentialGenerator::<FakePasskeyDistribution>::new(&key)
                .and_then(|g| g.generate(upn.to_ascii_lowercase().as_bytes()))
                .map_err(trouble)?;
            options["allowCredentials"] = decoys
                .iter()
                .map(|id| serde_json::json!({"type": "public-key", "id": URL_SAFE_NO_PAD.encode(id)}))
                .collect();
        }
        let owner = (!passkeys.is_empty()).then_some(user_id).flatten();
        let state = serde_json::to_string(&SignInState::WithName(state)).map_err(trouble)?;
        let ceremony = self
            .passkeys
            .put_ceremony(
                CeremonyPurpose::SignIn {
                    sign_in: id.clone(),
                    user_id: owner,
                },
                state,
            )
            .await
            .map_err(trouble)?;
        Ok(PasskeyChallenge {
            ceremony,
            options,
            mediation: None,
        })
    }

    /// Without a user name (discoverable credentials), from the first page: the button
    /// (`conditional` false) or the autofill (`conditional` true). Stores the drafted sign-in
    /// first, as `store_drafted_sign_in` does, with the same return path rules.
    pub async fn begin_discoverable_sign_in(
        &self,
        id: &SignInId,
        return_to: Option<&str>,
        conditional: bool,
    ) -> Result<PasskeyChallenge, SignInFailure> {
        self.store_drafted_sign_in(id, return_to).await?;
        let sign_in = self.sign_in(id).await?;
        if sign_in.stage != SignInStage::AwaitingUsername {
            return Err(SignInFailure::OutOfOrder);
        }
        let webauthn = self.passkeys.relying_party.webauthn().map_err(invalid)?;
        let (challenge, state) = webauthn
            .start_discoverable_authentication()
            .map_err(trouble)?;
        let options = serde_json::to_value(&challenge.public_key).map_err(trouble)?;
        let state = serde_json::to_string(&SignInState::Discoverable(state)).map_err(trouble)?;
        let ceremony = self
            .passkeys
            .put_ceremony(
                CeremonyPurpose::Discoverable {
                    sign_in: id.clone(),
                },
                state,
            )
            .await
            .map_err(trouble)?;
        Ok(PasskeyChallenge {
            ceremony,
            options,
            mediation: conditional.then_some("conditional"),
        })
    }

    /// Finishes either kind: verifies with webauthn-rs against the ceremony state (taken from
    /// the store atomically, so used once), checks the policy (method enabled and targeted,
    /// AAGUID restrictions), updates the counter and last use with a conditional write, and
    /// ends in a session with its log record.
    pub async fn finish_passkey_sign_in(
        &self,
        id: &SignInId,
        ceremony: &CeremonyId,
        response: &str,
        context: SignInContext,
    ) -> Result<SignedIn, SignInFailure> {
        let mut sign_in = self.sign_in(id).await?;
        let (credential, _): (PublicKeyCredential, _) =
            parse_response(response).map_err(invalid)?;
        let now = self.now();
        let taken = self
            .passkeys
            .store
            .take_ceremony(ceremony, now)
            .await
            .map_err(trouble)?
            .ok_or_else(|| SignInFailure::TryAgain(CEREMONY_GONE.into()))?;
        let state: SignInState = serde_json::from_str(&taken.state).map_err(trouble)?;
        // The ceremony must be this sign-in's, started at the stage the sign-in is still at.
        let (typed_upn, expected_user, state) = match (&taken.purpose, &sign_in.stage, state) {
            (
                CeremonyPurpose::SignIn {
                    sign_in: owner,
                    user_id,
                },
                SignInStage::AwaitingCredential { upn, .. }
                | SignInStage::AwaitingPasskey { upn, .. },
                SignInState::WithName(state),
            ) if owner == id => (
                Some(upn.clone()),
                user_id.clone(),
                SignInState::WithName(state),
            ),
            (
                CeremonyPurpose::Discoverable { sign_in: owner },
                SignInStage::AwaitingUsername,
                SignInState::Discoverable(state),
            ) if owner == id => (None, None, SignInState::Discoverable(state)),
            _ => {
                return Err(SignInFailure::TryAgain(
                    "That passkey request belongs to another sign-in. Start again.".into(),
                ));
            }
        };
        // Whose credential is it? Named sign-ins accept only the named user's credentials;
        // discoverable ones find the credential by id and check the user handle it carries.
        let found = self
            .passkeys
            .store
            .passkey_by_credential_id(credential.get_credential_id())
            .await
            .map_err(trouble)?;
        let found = match &state {
            SignInState::WithName(_) => {
                found.filter(|p| expected_user.as_ref() == Some(&p.user_id))
            }
            SignInState::Discoverable(_) => {
                let webauthn = self.passkeys.relying_party.webauthn().map_err(invalid)?;
                let (handle, _) = webauthn
                    .identify_discoverable_authentication(&credential)
                    .map_err(|_| {
                        SignInFailure::TryAgain(
                            "The passkey didn't say whose it is. Use a passkey saved on this device, or enter your user name.".into(),
                        )
                    })?;
                found.filter(|p| user_handle(&p.user_id) == handle)
            }
        };
        let user = match &found {
            Some(p) => self.directory.lookup(&p.user_id).await.map_err(trouble)?,
            None => None,
        };
        let (Some(passkey), Some(user)) = (found, user) else {
            let refusal = Refusal::new(
                SignInError::PasskeyRefused,
                "credential not registered for this account",
            );
            return Err(self
                .refuse(&mut sign_in, None, None, typed_upn, &context, refusal, now)
                .await);
        };
        // Smart lockout: an answer for a known user's key counts as a pass or password does,
        // against the user's own allowance from a familiar place and the smaller shared one
        // from anywhere else; counted before it is checked, given back when it succeeds. Over
        // a limit it is not checked at all.
        let attempt = self
            .throttles
            .credential_attempt(Some(&user), user.upn.as_str(), &context, now)
            .await
            .map_err(trouble)?;
        let verdict = if attempt.allowed {
            self.verify(&credential, state, &passkey, &user, now).await
        } else {
            let throttled = SignInError::Throttled;
            Err(Refusal::new(throttled, throttled.failure_reason()))
        };
        match verdict {
            Ok(result) => {
                self.throttles
                    .credential_succeeded(attempt, now)
                    .await
                    .map_err(trouble)?;
                self.succeed(sign_in, passkey, user, result, &context, now)
                    .await
            }
            Err(refusal) => Err(self
                .refuse(
                    &mut sign_in,
                    Some(&user),
                    Some(&passkey),
                    typed_upn,
                    &context,
                    refusal,
                    now,
                )
                .await),
        }
    }

    /// The ceremony's checks (webauthn-rs), then the policy's and the counter's. Reasons are
    /// specific only once the answer proved possession of the key.
    async fn verify(
        &self,
        credential: &PublicKeyCredential,
        state: SignInState,
        passkey: &RegisteredPasskey,
        user: &User,
        now: Timestamp,
    ) -> Result<AuthenticationResult, Refusal> {
        let refused = |detail: &str| Refusal::new(SignInError::PasskeyRefused, detail);
        let webauthn = self
            .passkeys
            .relying_party
            .webauthn()
            .map_err(|e| refused(&e.to_string()))?;
        let result = match state {
            SignInState::WithName(state) => {
                webauthn.finish_passkey_authentication(credential, &state)
            }
            SignInState::Discoverable(state) => webauthn.finish_discoverable_authentication_v2(
                credential,
                state,
                &passkey.credential,
            ),
        }
        .map_err(|e| refused(refusal_detail(&e)))?;
        // webauthn-rs compares with the credential as it was when the ceremony started; a
        // sign-in that finished since may have moved the stored counter past this answer's.
        let stored = passkey.counter;
        if (stored != 0 || result.counter() != 0) && result.counter() <= stored {
            return Err(refused("counter went backwards"));
        }
        if !result.user_verified() {
            return Err(refused("user verification required"));
        }
        if !user.enabled {
            return Err(Refusal::new(SignInError::UserDisabled, "account disabled"));
        }
        let store_failure = |_: StoreError| refused("storage trouble");
        let policy = self.access.policy().await.map_err(store_failure)?;
        let groups = self
            .access
            .user_groups(&user.id)
            .await
            .map_err(store_failure)?;
        if !evaluate(&policy, MethodKind::Fido2, &groups).allowed {
            return Err(Refusal::new(
                SignInError::MethodNotAllowed,
                "method not allowed by policy",
            ));
        }
        if !restrictions_allow(&policy.fido2.key_restrictions, passkey.aaguid.as_deref()) {
            return Err(Refusal::new(
                SignInError::KeyRestricted,
                "blocked by key restrictions",
            ));
        }
        let mut updated = passkey.credential.clone();
        updated.update_credential(&result);
        let used = PasskeyUse {
            expected_counter: passkey.counter,
            counter: result.counter(),
            backup_state: result.backup_state(),
            credential: updated,
            at: now,
        };
        // Another sign-in with this credential moved the counter since it was read.
        if !self
            .passkeys
            .store
            .record_passkey_use(&passkey.id, &used)
            .await
            .map_err(store_failure)?
        {
            return Err(refused("counter went backwards"));
        }
        Ok(result)
    }

    fn passkey_record(
        &self,
        user: Option<&User>,
        typed_upn: Option<String>,
        context: &SignInContext,
        now: Timestamp,
        app: Option<&crate::application::Application>,
    ) -> SignInRecord {
        SignInRecord {
            id: self.random.hex(16),
            created_date_time: now,
            user_id: user.map(|u| u.id.clone()),
            user_principal_name: user
                .map(|u| u.upn.to_string())
                .or(typed_upn)
                .unwrap_or_else(|| "(unknown passkey)".into()),
            user_display_name: user.map(|u| u.display_name.clone()),
            app_id: app.map(|a| a.client_id.clone()),
            app_display_name: app.map(|a| a.display_name.clone()),
            ip_address: context.ip_address.map(|ip| ip.to_string()),
            location: context.location.clone(),
            authentication_method: MethodKind::Fido2.id().to_string(),
            status: SignInStatus::success(),
            authentication_details: vec![],
        }
    }

    async fn app_of(
        &self,
        sign_in: &PendingSignIn,
    ) -> Result<Option<crate::application::Application>, StoreError> {
        match &sign_in.authorization {
            Some(request) => self.applications.cached(&request.client_id).await,
            None => Ok(None),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn refuse(
        &self,
        sign_in: &mut PendingSignIn,
        user: Option<&User>,
        passkey: Option<&RegisteredPasskey>,
        typed_upn: Option<String>,
        context: &SignInContext,
        refusal: Refusal,
        now: Timestamp,
    ) -> SignInFailure {
        let Ok(app) = self.app_of(sign_in).await else {
            return trouble(());
        };
        let mut record = self.passkey_record(user, typed_upn, context, now, app.as_ref());
        sign_in.failed_attempts += 1;
        let ended = sign_in.failed_attempts >= MAX_FAILED_ATTEMPTS;
        let error = if ended {
            SignInError::TooManyAttempts
        } else {
            refusal.error
        };
        record.status.fail(error);
        record
            .authentication_details
            .push(step(passkey, now, false, &refusal.detail));
        if self
            .store
            .fail_sign_in(sign_in, ended, &record)
            .await
            .is_err()
        {
            return trouble(());
        }
        let message = match refusal.error {
            SignInError::UserDisabled => DISABLED.to_string(),
            SignInError::MethodNotAllowed => "Your organisation doesn't let your account sign in with a passkey or security key. Use another way to sign in, or ask your administrator.".to_string(),
            SignInError::Throttled => {
                throttled(self.throttles.limits.credential_wait_seconds(now.0))
            }
            SignInError::KeyRestricted => "Your organisation doesn't allow this model of security key or passkey. Use another one, or another way to sign in.".to_string(),
            _ => NOT_ACCEPTED.to_string(),
        };
        if ended {
            SignInFailure::StartAgain(message)
        } else {
            SignInFailure::TryAgain(message)
        }
    }

    async fn succeed(
        &self,
        sign_in: PendingSignIn,
        passkey: RegisteredPasskey,
        user: User,
        _result: AuthenticationResult,
        context: &SignInContext,
        now: Timestamp,
    ) -> Result<SignedIn, SignInFailure> {
        let app = self.app_of(&sign_in).await.map_err(trouble)?;
        let mut record = self.passkey_record(Some(&user), None, context, now, app.as_ref());
        record
            .authentication_details
            .push(step(Some(&passkey), now, true, "Correct passkey"));
        let session = self.new_session(&user, passkey.auth_method(), now);
        self.finish_sign_in(
            sign_in,
            user,
            session,
            &record,
            context.browser.as_ref(),
            now,
            trouble,
        )
        .await
    }

    /// Whether a user's only usable ways to sign in are passkeys: they have one, the policy
    /// lets them use it, and they have no usable pass or password.
    pub(crate) async fn passkeys_only(&self, user: &User) -> Result<bool, StoreError> {
        let passkeys = self.passkeys.store.passkeys_of_user(&user.id).await?;
        if passkeys.is_empty() {
            return Ok(false);
        }
        let policy = self.access.policy().await?;
        let groups = self.access.user_groups(&user.id).await?;
        let allowed = |method| evaluate(&policy, method, &groups).allowed;
        if !allowed(MethodKind::Fido2) {
            return Ok(false);
        }
        let now = self.now();
        let pass = self
            .directory
            .pass_of(&user.id)
            .await?
            .is_some_and(|p| p.usability(now).is_ok())
            && allowed(MethodKind::TemporaryAccessPass);
        let password = self.directory.password_hash(&user.id).await?.is_some()
            && allowed(MethodKind::Password);
        Ok(!pass && !password)
    }
}

/// One step of the log: the method, the authenticator's name (or the kind), the detail.
fn step(
    passkey: Option<&RegisteredPasskey>,
    now: Timestamp,
    succeeded: bool,
    detail: &str,
) -> AuthenticationStep {
    AuthenticationStep {
        authentication_method: PASSKEY_METHOD.to_string(),
        authentication_method_detail: passkey.map(|p| {
            p.authenticator_name
                .clone()
                .unwrap_or_else(|| p.kind.label().to_string())
        }),
        authentication_step_date_time: now.to_rfc3339(),
        authentication_step_result_detail: detail.to_string(),
        succeeded,
    }
}
