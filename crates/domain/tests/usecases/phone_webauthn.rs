//! Phone sign-in proved by WebAuthn (the web app): enabling it with a credential made with user
//! verification, approving with the device key's signature and an assertion over the answer,
//! and turning it off with an assertion over the request's nonce.

use latchkey_domain::authenticator::Device;
use latchkey_domain::clock::Clock;
use latchkey_domain::service::{ActivationProgress, DeviceApiError};
use latchkey_domain::session::AuthMethod;
use latchkey_domain::user::User;
use latchkey_protocol::wire::{
    ActivateRequest, Answer, AnswerOutcome, AnswerResult, AppKind, ApprovalRequest, Decision,
    DisablePhoneSignIn, EnablePasskey, PhoneSignInProof,
};
use latchkey_protocol::{
    DeviceKeyPair, activation_proof_input, answer_signing_input, context_digest,
    passwordless_off_input, webauthn_challenge,
};
use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

use crate::fixture::{ISSUER, World, send_answer, sign};

struct WebPhone {
    device_id: String,
    key: DeviceKeyPair,
    authenticator: SoftPasskey,
}

impl WebPhone {
    /// Sends `answer` as the web app does: a request signed by its device key.
    async fn send(
        &self,
        world: &World,
        request_id: &str,
        answer: &Answer,
    ) -> Result<AnswerResult, DeviceApiError> {
        send_answer(
            &world.latchkey,
            world.clock.now(),
            &self.device_id,
            &self.key,
            request_id,
            answer,
        )
        .await
    }

    async fn device(&self, world: &World) -> Device {
        world
            .latchkey
            .devices
            .registered_device(&latchkey_domain::ids::DeviceId::from_string(
                &self.device_id,
            ))
            .await
            .unwrap()
            .expect("registered")
    }

    fn assert_over(&mut self, device: &Device, challenge: &[u8]) -> Value {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let rcr: RequestChallengeResponse = serde_json::from_value(json!({"publicKey": {
            "challenge": b64.encode(challenge),
            "rpId": "idp.test",
            "allowCredentials": [{"type": "public-key", "id": device.webauthn.as_ref().unwrap().credential_id}],
            "userVerification": "required",
        }}))
        .unwrap();
        serde_json::to_value(
            self.authenticator
                .do_authentication(Url::parse(ISSUER).unwrap(), rcr)
                .unwrap(),
        )
        .unwrap()
    }
}

/// Bobby's web app, registered (test approved) and with phone sign-in on by WebAuthn.
async fn web_phone(world: &World, user: &User) -> WebPhone {
    let devices = &world.latchkey.devices;
    let (activation, link) = devices.start_activation(&user.id).await.unwrap();
    let key = DeviceKeyPair::generate().unwrap();
    let public = key.public_key();
    let activated = devices
        .activate(ActivateRequest {
            code: link.code.clone(),
            device_name: "Bobby's phone".into(),
            proof: key.sign(&activation_proof_input(&link.code, &public)),
            device_key: public,
            app: Some(AppKind::Web),
        })
        .await
        .unwrap();
    let ActivationProgress::WaitingForTest { number, .. } = devices
        .activation_progress(&user.id, &activation.id)
        .await
        .unwrap()
    else {
        panic!("the test notification waits");
    };
    let mut phone = WebPhone {
        device_id: activated.device_id.clone(),
        key,
        authenticator: SoftPasskey::new(true),
    };
    let device = phone.device(world).await;
    assert_eq!(device.app, AppKind::Web);
    let test = sign(
        &phone.key,
        &activated.test_request,
        Decision::Approve,
        Some(number),
    );
    phone
        .send(world, &activated.test_request.id, &test)
        .await
        .unwrap();
    let device = phone.device(world).await;
    let options = devices.begin_phone_sign_in_passkey(&device).await.unwrap();
    assert_eq!(
        options.public_key["authenticatorSelection"]["userVerification"],
        "required"
    );
    let ccr: CreationChallengeResponse =
        serde_json::from_value(json!({"publicKey": options.public_key})).unwrap();
    let credential = phone
        .authenticator
        .do_registration(Url::parse(ISSUER).unwrap(), ccr)
        .unwrap();
    devices
        .finish_phone_sign_in_passkey(
            &device,
            &EnablePasskey {
                ceremony: options.ceremony,
                credential: serde_json::to_value(credential).unwrap(),
            },
        )
        .await
        .unwrap();
    phone
}

fn challenge_of(request: &ApprovalRequest, decision: Decision, number: Option<u8>) -> [u8; 32] {
    webauthn_challenge(&answer_signing_input(
        &request.id,
        &request.nonce,
        decision,
        number,
        &context_digest(request),
    ))
}

#[tokio::test]
async fn a_web_app_approves_a_phone_sign_in_only_with_an_assertion_over_the_answer() {
    let world = World::new().await;
    let bobby = world.user("bobby").await;
    let mut phone = web_phone(&world, &bobby).await;
    let device = phone.device(&world).await;
    assert_eq!(
        device.phone_sign_in_proof(),
        Some(PhoneSignInProof::Webauthn)
    );
    let methods = world
        .latchkey
        .devices
        .registered_methods(&bobby.id)
        .await
        .unwrap();
    assert!(
        methods
            .iter()
            .any(|m| m.label == "Authenticator app (web) — Passwordless"),
        "{methods:?}"
    );

    let sign_in = world.sign_in_as(&bobby).await;
    let number = world
        .latchkey
        .sign_in
        .waiting_for_approval(&sign_in)
        .await
        .unwrap()
        .expect("the number page")
        .number;
    let devices = &world.latchkey.devices;
    let request = devices.pending_for_device(&device).await.unwrap().remove(0);
    let bare = sign(&phone.key, &request, Decision::Approve, Some(number));
    let refused = phone.send(&world, &request.id, &bare).await.unwrap_err();
    assert_eq!(refused.code, "user_verification_required");
    let mut wrong = bare.clone();
    wrong.assertion =
        Some(phone.assert_over(&device, &challenge_of(&request, Decision::Deny, None)));
    let refused = phone.send(&world, &request.id, &wrong).await.unwrap_err();
    assert_eq!(refused.code, "bad_assertion");
    let mut right = bare.clone();
    right.assertion = Some(phone.assert_over(
        &device,
        &challenge_of(&request, Decision::Approve, Some(number)),
    ));
    let outcome = phone.send(&world, &request.id, &right).await.unwrap();
    assert_eq!(outcome.outcome, AnswerOutcome::Approved);
    assert!(
        phone.device(&world).await.webauthn.unwrap().counter
            > device.webauthn.as_ref().unwrap().counter,
        "the counter moved"
    );
    let current = world.latchkey.sign_in.sign_in(&sign_in.id).await.unwrap();
    let signed_in = world
        .latchkey
        .sign_in
        .finish_approval(&current, None)
        .await
        .unwrap()
        .expect("signed in");
    assert_eq!(signed_in.session.method, AuthMethod::PhoneSignIn);

    // Off: only with an assertion over this request's nonce.
    let device = phone.device(&world).await;
    let refused = devices
        .disable_phone_sign_in(&device, "nonce-0123456789abcdef", None)
        .await
        .unwrap_err();
    assert_eq!(refused.code, "user_verification_required");
    let assertion = phone.assert_over(
        &device,
        &webauthn_challenge(&passwordless_off_input(
            &phone.device_id,
            "nonce-0123456789abcdef",
        )),
    );
    devices
        .disable_phone_sign_in(
            &device,
            "nonce-0123456789abcdef",
            Some(&DisablePhoneSignIn {
                proof: None,
                assertion: Some(assertion),
            }),
        )
        .await
        .unwrap();
    let device = phone.device(&world).await;
    assert_eq!(device.phone_sign_in_proof(), None);
    assert!(device.webauthn.is_none());
}
