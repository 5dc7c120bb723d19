//! One place that builds the domain for a test (a clock the test moves, a seeded random
//! source) and the set-up most tests share (a user, a pass, a signed-in session, an
//! application, a phone with phone sign-in). When the services change shape, only this file
//! follows.

use std::sync::Arc;

use latchkey_domain::Latchkey;
use latchkey_domain::Settings;
use latchkey_domain::application::Application;
use latchkey_domain::clock::{Clock, ManualClock, Timestamp};
use latchkey_domain::credential::PassRequest;
use latchkey_domain::log::{Actor, SignInContext};
use latchkey_domain::random::SeededRandom;
use latchkey_domain::secret::{Secret, base64url, random_hex};
use latchkey_domain::service::{
    CredentialInput, DeviceApiError, NewApplication, NewUser, SignInFailure, SignedDeviceRequest,
    SignedIn,
};
use latchkey_domain::signin::PendingSignIn;
use latchkey_domain::user::User;
use latchkey_protocol::keys::DeviceKeyPair;
use latchkey_protocol::wire::{
    ActivateRequest, Answer, AnswerResult, ApprovalRequest, Decision, EnablePhoneSignIn,
};
use latchkey_protocol::{
    API_PREFIX, activation_proof_input, answer_signing_input, context_digest,
    passwordless_proof_input, request_signing_input,
};

pub const ISSUER: &str = "https://idp.test";
pub const REDIRECT: &str = "https://app.test/callback";

/// A fixed start, so that what a test prints and compares does not depend on the day.
pub const START: Timestamp = Timestamp(1_900_000_000);

pub struct World {
    pub latchkey: Arc<Latchkey>,
    pub clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

impl World {
    pub async fn new() -> World {
        Self::with_settings(|_| {}).await
    }

    /// The domain as `latchkey serve` prepares it (signing keys, My Apps, the administrators
    /// group), after `adjust` has changed its settings.
    pub async fn with_settings(adjust: impl FnOnce(&mut Settings)) -> World {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = latchkey_store::SqliteStore::open(dir.path())
            .await
            .expect("store");
        let clock = Arc::new(ManualClock::new(START));
        let mut settings = Settings::with_issuer(ISSUER);
        adjust(&mut settings);
        let latchkey = Arc::new(Latchkey::build(
            Arc::new(store),
            clock.clone(),
            Arc::new(SeededRandom::new(14)),
            Arc::new(latchkey_domain::notify::NoEventBus),
            settings,
        ));
        latchkey.tokens.ensure_signing_keys().await.expect("keys");
        latchkey
            .applications
            .ensure_my_apps()
            .await
            .expect("my apps");
        latchkey
            .governance
            .ensure_administrators_group()
            .await
            .expect("administrators");
        World {
            latchkey,
            clock,
            _dir: dir,
        }
    }

    pub fn advance(&self, seconds: i64) {
        self.clock.advance(seconds);
    }

    pub async fn user(&self, local: &str) -> User {
        self.latchkey
            .directory
            .create_user(
                &Actor::system(),
                NewUser {
                    user_principal_name: format!("{local}@contoso.example"),
                    display_name: local.into(),
                    mail: None,
                    account_enabled: true,
                },
            )
            .await
            .expect("create user")
    }

    /// A Temporary Access Pass with the policy's defaults; returns its secret.
    pub async fn pass(&self, user: &User) -> Secret {
        self.pass_with(user, PassRequest::default()).await
    }

    pub async fn pass_with(&self, user: &User, request: PassRequest) -> Secret {
        self.latchkey
            .directory
            .issue_pass(&Actor::system(), &user.id, &request)
            .await
            .expect("pass")
            .1
    }

    /// A sign-in that has reached the page after the user name.
    pub async fn sign_in_as(&self, user: &User) -> PendingSignIn {
        // As the sign-in page does: a drafted sign-in, stored when the user name is posted.
        let sign_in = self.latchkey.sign_in.draft_sign_in(None);
        self.latchkey
            .sign_in
            .store_drafted_sign_in(&sign_in.id, None)
            .await
            .expect("start");
        self.latchkey
            .sign_in
            .submit_username(&sign_in.id, user.upn.as_str(), &context())
            .await
            .expect("user name")
    }

    /// Signs `user` in with a fresh pass.
    pub async fn signed_in(&self, user: &User) -> SignedIn {
        let pass = self.pass(user).await;
        self.signed_in_with(user, pass).await.expect("signed in")
    }

    /// Goes through the sign-in pages with `pass`.
    pub async fn signed_in_with(
        &self,
        user: &User,
        pass: Secret,
    ) -> Result<SignedIn, SignInFailure> {
        let sign_in = self.sign_in_as(user).await;
        self.latchkey
            .sign_in
            .submit_credential(&sign_in.id, CredentialInput::Pass(pass), &context())
            .await
    }

    /// A confidential application redirecting to [`REDIRECT`]; returns it and its secret.
    pub async fn confidential_app(&self) -> (Application, Secret) {
        let (app, secret) = self
            .latchkey
            .applications
            .register_application(
                &Actor::system(),
                NewApplication {
                    display_name: "Contoso Expenses".into(),
                    redirect_uris: vec![REDIRECT.into()],
                    post_logout_redirect_uris: vec![],
                    public_client: false,
                    id_token_signing_alg: None,
                    home_url: None,
                    required_strength: None,
                    allowed_origins: vec![],
                    groups_claim: None,
                    assignment_required: false,
                    backchannel_logout_uri: None,
                },
            )
            .await
            .expect("register");
        (app, secret.expect("a confidential client has a secret"))
    }

    /// Adds the authenticator app for `user` as the security-info page and the app do it
    /// (activation, the test notification answered with the page's number) and turns phone
    /// sign-in on.
    pub async fn phone(&self, user: &User) -> Phone {
        let latchkey = &self.latchkey;
        let (activation, link) = latchkey
            .devices
            .start_activation(&user.id)
            .await
            .expect("start");
        let device_key = DeviceKeyPair::generate().expect("key");
        let public = device_key.public_key();
        let activated = latchkey
            .devices
            .activate(ActivateRequest {
                code: link.code.clone(),
                device_name: "Bobby's phone".into(),
                proof: device_key.sign(&activation_proof_input(&link.code, &public)),
                device_key: public,
                app: None,
            })
            .await
            .expect("activate");
        let number = match latchkey
            .devices
            .activation_progress(&user.id, &activation.id)
            .await
            .expect("progress")
        {
            latchkey_domain::service::ActivationProgress::WaitingForTest { number, .. } => number,
            other => panic!("expected the test notification, not {other:?}"),
        };
        let phone = Phone {
            device_id: activated.device_id,
            device_key,
            passwordless_key: DeviceKeyPair::generate().expect("key"),
            latchkey: latchkey.clone(),
            clock: self.clock.clone(),
        };
        send_answer(
            latchkey,
            self.clock.now(),
            &phone.device_id,
            &phone.device_key,
            &activated.test_request.id,
            &sign(
                &phone.device_key,
                &activated.test_request,
                Decision::Approve,
                Some(number),
            ),
        )
        .await
        .expect("test answered");
        let proof_input =
            passwordless_proof_input(&phone.device_id, &phone.passwordless_key.public_key());
        latchkey
            .devices
            .enable_phone_sign_in(
                &phone.device().await,
                &EnablePhoneSignIn {
                    key: phone.passwordless_key.public_key(),
                    proof: phone.passwordless_key.sign(&proof_input),
                    previous_proof: None,
                    pin_verifier: base64url(&[7u8; 32]),
                },
            )
            .await
            .expect("phone sign-in on");
        phone
    }
}

/// The app's side of a device, as far as the use cases see it.
pub struct Phone {
    pub device_id: String,
    pub device_key: DeviceKeyPair,
    pub passwordless_key: DeviceKeyPair,
    latchkey: Arc<Latchkey>,
    clock: Arc<ManualClock>,
}

impl Phone {
    pub async fn device(&self) -> latchkey_domain::authenticator::Device {
        let mut found = None;
        for user in self.latchkey.directory.list_users().await.expect("users") {
            found = found.or(self
                .latchkey
                .devices
                .devices(&user.id)
                .await
                .expect("devices")
                .into_iter()
                .find(|d| d.id.as_str() == self.device_id));
        }
        found.expect("the device is registered")
    }

    /// The one request waiting for this phone.
    pub async fn only_request(&self) -> ApprovalRequest {
        let mut open = self
            .latchkey
            .devices
            .pending_for_device(&self.device().await)
            .await
            .expect("pending");
        assert_eq!(open.len(), 1, "{open:?}");
        open.remove(0)
    }

    /// Answers a phone sign-in request, signed with the passwordless key.
    pub async fn answer(
        &self,
        request: &ApprovalRequest,
        decision: Decision,
        number: Option<u8>,
    ) -> Result<latchkey_protocol::wire::AnswerOutcome, latchkey_domain::service::DeviceApiError>
    {
        send_answer(
            &self.latchkey,
            self.clock.now(),
            &self.device_id,
            &self.device_key,
            &request.id,
            &sign(&self.passwordless_key, request, decision, number),
        )
        .await
        .map(|r| r.outcome)
    }
}

/// Sends `answer` to request `request_id` as the app does: a request signed by the device key
/// (a fresh timestamp, a new nonce), checked as the edge has every answer checked, then judged.
pub async fn send_answer(
    latchkey: &Latchkey,
    now: Timestamp,
    device_id: &str,
    device_key: &DeviceKeyPair,
    request_id: &str,
    answer: &Answer,
) -> Result<AnswerResult, DeviceApiError> {
    let path = format!("{API_PREFIX}/requests/{request_id}/answer");
    let body = serde_json::to_vec(answer).expect("an answer is JSON");
    let nonce = random_hex(16);
    let signature = device_key.sign(&request_signing_input("POST", &path, now.0, &nonce, &body));
    let timestamp = now.0.to_string();
    let answering = latchkey
        .devices
        .authenticate_answer(&SignedDeviceRequest {
            device_id,
            timestamp: &timestamp,
            nonce: &nonce,
            signature: &signature,
            method: "POST",
            path: &path,
            body: &body,
        })
        .await?;
    latchkey
        .devices
        .answer(&answering, request_id, answer)
        .await
}

pub fn sign(
    key: &DeviceKeyPair,
    request: &ApprovalRequest,
    decision: Decision,
    number: Option<u8>,
) -> Answer {
    let digest = context_digest(request);
    Answer {
        decision,
        number,
        signature: key.sign(&answer_signing_input(
            &request.id,
            &request.nonce,
            decision,
            number,
            &digest,
        )),
        context_digest: digest,
        assertion: None,
    }
}

/// A sign-in from nowhere in particular.
pub fn context() -> SignInContext {
    SignInContext::default()
}
