//! The web authenticator app's passwordless proof, over real HTTP without a browser: a device
//! key signing requests as the terminal app's client does, and webauthn-rs's software
//! authenticator (`SoftPasskey`, with user verification) standing in for the phone's platform
//! authenticator. What these tests defend: a phone sign-in on a web-app device is approved only
//! with an assertion, made with user verification by that device's own credential, over that
//! very answer; so a copy of the app's storage (the device key) cannot approve one.

use base64::Engine;
use latchkey_protocol::wire::{ApprovalRequest, Decision};
use latchkey_protocol::{
    API_PREFIX, DeviceKeyPair, HEADER_DEVICE, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP,
    MAX_BODY_BYTES, activation_proof_input, answer_signing_input, context_digest,
    passwordless_off_input, request_signing_input, webauthn_challenge,
};
use reqwest::Method;
use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse};

use crate::passkeys::{on_localhost, origin};
use crate::phone::{
    AUTHENTICATOR, Person, activation_link, another_number, number_on, progress_path,
};
use crate::support::{Browser, Page, TestServer, assert_signed_in_as, manual_clock};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The web app on a phone, as far as the server can tell: a device key (WebCrypto's P-256 key)
/// and the phone's authenticator.
struct WebPhone {
    base: String,
    origin: url::Url,
    now: Box<dyn Fn() -> i64 + Send + Sync>,
    device_id: String,
    key: DeviceKeyPair,
    authenticator: SoftPasskey,
    /// base64url, from `GET /device` once phone sign-in is on.
    credential_id: Option<String>,
    rp_id: Option<String>,
}

/// A reply: status and JSON body (`Null` when there is none).
struct Reply {
    status: u16,
    body: Value,
}

impl Reply {
    fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or_default()
    }
}

async fn server_on_localhost(
    clock: Option<std::sync::Arc<latchkey_domain::clock::ManualClock>>,
    window_seconds: Option<i64>,
) -> TestServer {
    let mut builder = TestServer::builder().config(move |c| {
        on_localhost(c);
        if let Some(window) = window_seconds {
            c.lifetimes.phone_sign_in_enable_seconds = window;
        }
    });
    if let Some(clock) = clock {
        builder = builder.clock(clock);
    }
    builder.start().await
}

impl WebPhone {
    /// Adds the web app from the security-info page's https link (`"app": "web"`) and approves
    /// the test notification.
    async fn register(server: &TestServer, person: &Person, name: &str) -> WebPhone {
        let page = person.start_adding_the_app().await;
        let link_text = crate::phone::element_text(&page.body, "activation-link").unwrap();
        let public = origin(server).to_string();
        assert!(
            link_text.starts_with(&format!(
                "{}/authenticator/app/activate#code=",
                public.trim_end_matches('/')
            )),
            "the QR link is the web app's https link: {link_text}"
        );
        let link = activation_link(&page);
        let key = DeviceKeyPair::generate().unwrap();
        let public_key = key.public_key();
        let activated = reqwest::Client::new()
            .post(format!("{}{API_PREFIX}/activate", server.base))
            .json(&json!({
                "code": link.code,
                "device_name": name,
                "device_key": public_key,
                "proof": key.sign(&activation_proof_input(&link.code, &public_key)),
                "app": "web",
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(activated.status().as_u16(), 201);
        let activated: Value = activated.json().await.unwrap();
        let latchkey = server.latchkey.clone();
        let phone = WebPhone {
            base: server.base.clone(),
            origin: origin(server),
            now: Box::new(move || latchkey.now().0),
            device_id: activated["device_id"].as_str().unwrap().to_string(),
            key,
            authenticator: SoftPasskey::new(true),
            credential_id: None,
            rp_id: None,
        };
        let test: ApprovalRequest =
            serde_json::from_value(activated["test_request"].clone()).unwrap();
        let number = number_on(&person.browser.get(&progress_path(&page)).await);
        let answer = phone.signed_answer(&test, Decision::Approve, Some(number));
        let reply = phone.answer(&test, &answer).await;
        assert_eq!(reply.body["outcome"], "approved", "{}", reply.body);
        phone
    }

    /// A request signed by the device key, with a fresh nonce.
    async fn send_with_nonce(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
        nonce: &str,
    ) -> Reply {
        let full = format!("{API_PREFIX}{path}");
        let ts = (self.now)();
        let signature = self.key.sign(&request_signing_input(
            method.as_str(),
            &full,
            ts,
            nonce,
            &body,
        ));
        let response = reqwest::Client::new()
            .request(method, format!("{}{full}", self.base))
            .header(HEADER_DEVICE, &self.device_id)
            .header(HEADER_TIMESTAMP, ts.to_string())
            .header(HEADER_NONCE, nonce)
            .header(HEADER_SIGNATURE, signature)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        Reply {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    async fn send(&self, method: Method, path: &str, body: Vec<u8>) -> Reply {
        let nonce = B64.encode(rand_bytes());
        self.send_with_nonce(method, path, body, &nonce).await
    }

    async fn send_json(&self, method: Method, path: &str, body: Value) -> Reply {
        self.send(method, path, serde_json::to_vec(&body).unwrap())
            .await
    }

    async fn status(&self) -> Value {
        let reply = self.send(Method::GET, "/device", vec![]).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body
    }

    /// The options, then the credential: what the app's "Enable phone sign-in" does.
    async fn try_enable(&mut self) -> Reply {
        let options = self
            .send_json(Method::POST, "/phone-sign-in/passkey/options", json!({}))
            .await;
        if options.status != 200 {
            return options;
        }
        let credential = self.create(&options.body["public_key"]);
        self.send_json(
            Method::POST,
            "/phone-sign-in/passkey",
            json!({"ceremony": options.body["ceremony"], "credential": credential}),
        )
        .await
    }

    async fn enable(&mut self) {
        let reply = self.try_enable().await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let device = &reply.body["device"];
        assert_eq!(device["phone_sign_in"], true, "{device}");
        assert_eq!(device["phone_sign_in_proof"], "webauthn", "{device}");
        self.credential_id = Some(device["webauthn"]["credential_id"].as_str().unwrap().into());
        self.rp_id = Some(device["webauthn"]["rp_id"].as_str().unwrap().into());
    }

    /// `navigator.credentials.create` with the server's options.
    fn create(&mut self, public_key: &Value) -> Value {
        let ccr: CreationChallengeResponse =
            serde_json::from_value(json!({ "publicKey": public_key })).unwrap();
        let credential = self
            .authenticator
            .do_registration(self.origin.clone(), ccr)
            .expect("the phone makes a credential");
        serde_json::to_value(credential).unwrap()
    }

    /// `navigator.credentials.get` over `challenge`, as the app builds the options itself.
    fn assert_over(&mut self, challenge: &[u8]) -> Value {
        let rcr: RequestChallengeResponse = serde_json::from_value(json!({"publicKey": {
            "challenge": B64.encode(challenge),
            "rpId": self.rp_id.as_deref().expect("phone sign-in is on"),
            "allowCredentials": [{"type": "public-key", "id": self.credential_id.as_deref().unwrap()}],
            "userVerification": "required",
        }}))
        .unwrap();
        let assertion = self
            .authenticator
            .do_authentication(self.origin.clone(), rcr)
            .expect("the phone makes an assertion");
        serde_json::to_value(assertion).unwrap()
    }

    /// An answer signed by the device key, without an assertion.
    fn signed_answer(
        &self,
        request: &ApprovalRequest,
        decision: Decision,
        number: Option<u8>,
    ) -> Value {
        let digest = context_digest(request);
        let signature = self.key.sign(&answer_signing_input(
            &request.id,
            &request.nonce,
            decision,
            number,
            &digest,
        ));
        let mut answer =
            json!({"decision": decision, "context_digest": digest, "signature": signature});
        if let Some(n) = number {
            answer["number"] = json!(n);
        }
        answer
    }

    /// The assertion whose challenge binds this answer.
    fn assertion_for(
        &mut self,
        request: &ApprovalRequest,
        decision: Decision,
        number: Option<u8>,
    ) -> Value {
        let input = answer_signing_input(
            &request.id,
            &request.nonce,
            decision,
            number,
            &context_digest(request),
        );
        self.assert_over(&webauthn_challenge(&input))
    }

    /// What the app sends to approve: the signed answer and the assertion over it.
    fn approval(&mut self, request: &ApprovalRequest, number: u8) -> Value {
        let mut answer = self.signed_answer(request, Decision::Approve, Some(number));
        answer["assertion"] = self.assertion_for(request, Decision::Approve, Some(number));
        answer
    }

    async fn answer(&self, request: &ApprovalRequest, answer: &Value) -> Reply {
        self.send_json(
            Method::POST,
            &format!("/requests/{}/answer", request.id),
            answer.clone(),
        )
        .await
    }

    async fn only_request(&self) -> ApprovalRequest {
        let reply = self.send(Method::GET, "/requests", vec![]).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let requests = reply.body["requests"].as_array().unwrap();
        assert_eq!(requests.len(), 1, "{}", reply.body);
        serde_json::from_value(requests[0].clone()).unwrap()
    }

    /// `DELETE /phone-sign-in` with the assertion over the passwordless-off input of `nonce`.
    async fn turn_off(&mut self, assertion_nonce: &str, request_nonce: &str) -> Reply {
        let challenge =
            webauthn_challenge(&passwordless_off_input(&self.device_id, assertion_nonce));
        let body = json!({"assertion": self.assert_over(&challenge)});
        self.send_with_nonce(
            Method::DELETE,
            "/phone-sign-in",
            serde_json::to_vec(&body).unwrap(),
            request_nonce,
        )
        .await
    }
}

fn rand_bytes() -> [u8; 18] {
    let mut bytes = [0u8; 18];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    bytes
}

/// Follows redirects, also to the server's public URL (on `localhost`, which the test
/// browser reaches at its own base).
async fn follow_here(browser: &Browser, public: &str, mut page: Page) -> Page {
    for _ in 0..10 {
        match page.location.clone() {
            Some(l) if l.starts_with('/') => page = browser.get(&l).await,
            Some(l) if l.starts_with(public) => page = browser.get(&l[public.len()..]).await,
            _ => return page,
        }
    }
    page
}

fn public_of(server: &TestServer) -> String {
    origin(server).to_string().trim_end_matches('/').to_string()
}

/// A browser types `upn` on the sign-in page: the page that follows (the number page).
async fn start_sign_in(server: &TestServer, browser: &Browser, upn: &str) -> Page {
    let login = browser.get("/login").await;
    assert_eq!(login.status, 200, "{}", login.body);
    let next = browser
        .post(
            "/login/username",
            &[("csrf", &login.csrf()), ("username", upn)],
        )
        .await;
    follow_here(browser, &public_of(server), next).await
}

/// Reloads the number page as its script does, following where it leads.
async fn reload(server: &TestServer, browser: &Browser) -> Page {
    let page = browser.get("/login").await;
    follow_here(browser, &public_of(server), page).await
}

/// Bobby signed in to security info, with the web app registered and phone sign-in on.
async fn bobby_with_the_web_app(server: &TestServer) -> (Person, WebPhone) {
    let bobby = Person::new(server, "bobby", "Bobby Smith").await;
    let mut phone = WebPhone::register(server, &bobby, "Bobby's phone").await;
    phone.enable().await;
    (bobby, phone)
}

#[tokio::test]
async fn the_web_app_activates_from_the_https_link_and_approves_a_phone_sign_in_with_user_verification()
 {
    let server = server_on_localhost(None, None).await;
    let bobby = Person::new(&server, "bobby", "Bobby Smith").await;
    let mut phone = WebPhone::register(&server, &bobby, "Bobby's phone").await;
    let info = bobby.browser.get("/mysecurityinfo").await;
    assert!(
        info.body.contains("Authenticator app (web) — MFA push"),
        "{}",
        info.body
    );
    let status = phone.status().await;
    assert_eq!(status["phone_sign_in"], false);
    assert_eq!(status["phone_sign_in_proof"], Value::Null);
    phone.enable().await;
    assert_eq!(phone.rp_id.as_deref(), Some("localhost"));
    let info = bobby.browser.get("/mysecurityinfo").await;
    assert!(
        info.body.contains("Authenticator app (web) — Passwordless"),
        "{}",
        info.body
    );

    // Step 5: a browser signs in by phone; the phone approves with the number and an
    // assertion made with user verification.
    let browser = server.browser();
    let number_page = start_sign_in(&server, &browser, &bobby.upn).await;
    let number = number_on(&number_page);
    let request = phone.only_request().await;
    assert_eq!(request.kind.as_str(), "phone_sign_in");
    let approval = phone.approval(&request, number);
    let reply = phone.answer(&request, &approval).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["outcome"], "approved");
    assert_signed_in_as(&reload(&server, &browser).await, "Bobby Smith");
    // The same answer again is no second approval.
    let again = phone.answer(&request, &approval).await;
    assert_eq!((again.status, again.error()), (409, "already_answered"));

    // Turning phone sign-in off takes an assertion over the request's own nonce.
    let nonce = B64.encode(rand_bytes());
    let reply = phone.turn_off(&nonce, &nonce).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["phone_sign_in"], false);
    assert_eq!(reply.body["phone_sign_in_proof"], Value::Null);
    let page = start_sign_in(&server, &server.browser(), &bobby.upn).await;
    assert!(
        page.body.contains("Temporary Access Pass"),
        "no phone sign-in any more: {}",
        page.body
    );
}

#[tokio::test]
async fn a_copy_of_the_web_apps_storage_cannot_approve_without_a_valid_assertion() {
    let server = server_on_localhost(None, None).await;
    let (bobby, mut phone) = bobby_with_the_web_app(&server).await;
    let browser = server.browser();
    let number = number_on(&start_sign_in(&server, &browser, &bobby.upn).await);
    let request = phone.only_request().await;

    // The device key's signature alone: what a copy of IndexedDB can make.
    let bare = phone.signed_answer(&request, Decision::Approve, Some(number));
    let reply = phone.answer(&request, &bare).await;
    assert_eq!(
        (reply.status, reply.error()),
        (401, "user_verification_required")
    );

    // An assertion for another decision, another number, or another request (challenge
    // mismatch).
    let mut for_deny = bare.clone();
    for_deny["assertion"] = phone.assertion_for(&request, Decision::Deny, None);
    let reply = phone.answer(&request, &for_deny).await;
    assert_eq!(
        (reply.status, reply.error()),
        (401, "bad_assertion"),
        "{}",
        reply.body
    );
    let mut for_other_number = bare.clone();
    for_other_number["assertion"] =
        phone.assertion_for(&request, Decision::Approve, Some(another_number(number)));
    let reply = phone.answer(&request, &for_other_number).await;
    assert_eq!((reply.status, reply.error()), (401, "bad_assertion"));
    let mut other_request = request.clone();
    other_request.nonce = "another-server-nonce".into();
    let mut for_other_request = bare.clone();
    for_other_request["assertion"] =
        phone.assertion_for(&other_request, Decision::Approve, Some(number));
    let reply = phone.answer(&request, &for_other_request).await;
    assert_eq!((reply.status, reply.error()), (401, "bad_assertion"));

    // The right assertion with the user-verified flag cleared (the signature no longer holds).
    let mut tampered = phone.approval(&request, number);
    let data = tampered["assertion"]["response"]["authenticatorData"]
        .as_str()
        .unwrap()
        .to_string();
    let mut bytes = B64.decode(&data).unwrap();
    bytes[32] &= !0x04;
    tampered["assertion"]["response"]["authenticatorData"] = json!(B64.encode(&bytes));
    let reply = phone.answer(&request, &tampered).await;
    assert_eq!((reply.status, reply.error()), (401, "bad_assertion"));

    // A credential of another device (Bobby's second web app) over the right challenge.
    let mut tablet = WebPhone::register(&server, &bobby, "Bobby's tablet").await;
    tablet.enable().await;
    let input = answer_signing_input(
        &request.id,
        &request.nonce,
        Decision::Approve,
        Some(number),
        &context_digest(&request),
    );
    let mut foreign = bare.clone();
    foreign["assertion"] = tablet.assert_over(&webauthn_challenge(&input));
    let reply = phone.answer(&request, &foreign).await;
    assert_eq!(
        (reply.status, reply.error()),
        (401, "bad_assertion"),
        "{}",
        reply.body
    );

    // Not one of these changed anything: the request still waits, and the real phone approves.
    let request_again = phone.only_request().await;
    assert_eq!(request_again.id, request.id);
    let approval = phone.approval(&request, number);
    let reply = phone.answer(&request, &approval).await;
    assert_eq!(reply.body["outcome"], "approved", "{}", reply.body);
    assert_signed_in_as(&reload(&server, &browser).await, "Bobby Smith");

    // A replayed assertion: the one that approved this sign-in, sent with the next one's
    // signed answer.
    let browser = server.browser();
    let number = number_on(&start_sign_in(&server, &browser, &bobby.upn).await);
    let next = phone.only_request().await;
    let mut replayed = phone.signed_answer(&next, Decision::Approve, Some(number));
    replayed["assertion"] = approval["assertion"].clone();
    let reply = phone.answer(&next, &replayed).await;
    assert_eq!((reply.status, reply.error()), (401, "bad_assertion"));
    // Deny needs only the device key.
    let deny = phone.signed_answer(&next, Decision::Deny, None);
    let reply = phone.answer(&next, &deny).await;
    assert_eq!(reply.body["outcome"], "denied", "{}", reply.body);
}

#[tokio::test]
async fn webauthn_phone_sign_in_is_refused_outside_the_window_in_push_mode_and_twice() {
    let clock = manual_clock();
    let server = server_on_localhost(Some(clock.clone()), Some(60)).await;
    let bobby = Person::new(&server, "bobby", "Bobby Smith").await;

    // Mode Push: no phone sign-in at all.
    let (status, body) = server
        .api_call(
            Method::PATCH,
            AUTHENTICATOR,
            Some(json!({"includeTargets": [{"targetType": "group", "id": "all_users", "authenticationMode": "push"}]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let mut phone = WebPhone::register(&server, &bobby, "Bobby's phone").await;
    let reply = phone.try_enable().await;
    assert_eq!(
        (reply.status, reply.error()),
        (403, "phone_sign_in_not_allowed")
    );
    let (status, body) = server
        .api_call(
            Method::PATCH,
            AUTHENTICATOR,
            Some(json!({"includeTargets": [{"targetType": "group", "id": "all_users", "authenticationMode": "any"}]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // A ceremony started for one device cannot finish on another, nor twice.
    let options = phone
        .send_json(Method::POST, "/phone-sign-in/passkey/options", json!({}))
        .await;
    assert_eq!(options.status, 200, "{}", options.body);
    let credential = phone.create(&options.body["public_key"]);
    let mut tablet = WebPhone::register(&server, &bobby, "Bobby's tablet").await;
    let stolen = tablet
        .send_json(
            Method::POST,
            "/phone-sign-in/passkey",
            json!({"ceremony": options.body["ceremony"], "credential": credential}),
        )
        .await;
    assert_eq!((stolen.status, stolen.error()), (400, "invalid_ceremony"));
    let spent = phone
        .send_json(
            Method::POST,
            "/phone-sign-in/passkey",
            json!({"ceremony": options.body["ceremony"], "credential": credential}),
        )
        .await;
    assert_eq!(
        (spent.status, spent.error()),
        (400, "invalid_ceremony"),
        "taken once, by the first try"
    );

    // Enabling twice: the second is refused, with either proof.
    phone.enable().await;
    let reply = phone.try_enable().await;
    assert_eq!(
        (reply.status, reply.error()),
        (409, "phone_sign_in_already_enabled")
    );
    let pin_key = DeviceKeyPair::generate().unwrap();
    let proof = pin_key.sign(&latchkey_protocol::passwordless_proof_input(
        &phone.device_id,
        &pin_key.public_key(),
    ));
    let reply = phone
        .send_json(
            Method::POST,
            "/phone-sign-in",
            json!({"key": pin_key.public_key(), "proof": proof,
                "pin_verifier": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}),
        )
        .await;
    assert_eq!(
        (reply.status, reply.error()),
        (409, "phone_sign_in_already_enabled")
    );

    // Outside the enable window (a minute here), a copy of the device key cannot turn it on.
    clock.advance(61);
    let reply = tablet.try_enable().await;
    assert_eq!((reply.status, reply.error()), (403, "enable_window_passed"));
}

#[tokio::test]
async fn malformed_and_oversized_webauthn_bodies_are_refused() {
    let server = server_on_localhost(None, None).await;
    let bobby = Person::new(&server, "bobby", "Bobby Smith").await;
    let mut phone = WebPhone::register(&server, &bobby, "Bobby's phone").await;
    let reply = phone
        .send_json(
            Method::POST,
            "/phone-sign-in/passkey/options",
            json!({"x": 1}),
        )
        .await;
    assert_eq!((reply.status, reply.error()), (400, "invalid_json"));
    let reply = phone
        .send(
            Method::POST,
            "/phone-sign-in/passkey/options",
            b"not json".to_vec(),
        )
        .await;
    assert_eq!((reply.status, reply.error()), (400, "invalid_json"));
    let reply = phone
        .send_json(
            Method::POST,
            "/phone-sign-in/passkey",
            json!({"ceremony": "x", "credential": {"id": 1}}),
        )
        .await;
    assert_eq!((reply.status, reply.error()), (400, "invalid_input"));
    let reply = phone
        .send_json(
            Method::POST,
            "/phone-sign-in/passkey",
            json!({"ceremony": "x"}),
        )
        .await;
    assert_eq!((reply.status, reply.error()), (400, "invalid_json"));
    let big = json!({"ceremony": "x", "credential": {"id": "A".repeat(MAX_BODY_BYTES)}});
    let reply = phone
        .send_json(Method::POST, "/phone-sign-in/passkey", big)
        .await;
    assert_eq!((reply.status, reply.error()), (400, "body_too_large"));

    // A well-formed credential with an unknown or overlong ceremony.
    let options = phone
        .send_json(Method::POST, "/phone-sign-in/passkey/options", json!({}))
        .await;
    let credential = phone.create(&options.body["public_key"]);
    for ceremony in ["no-such-ceremony".to_string(), "c".repeat(65)] {
        let reply = phone
            .send_json(
                Method::POST,
                "/phone-sign-in/passkey",
                json!({"ceremony": ceremony, "credential": credential}),
            )
            .await;
        assert_eq!((reply.status, reply.error()), (400, "invalid_ceremony"));
    }

    // Answers: an assertion that is not one, and an unknown field.
    let reply = phone
        .send_json(
            Method::POST,
            "/phone-sign-in/passkey",
            json!({"ceremony": options.body["ceremony"], "credential": credential}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    phone.credential_id = Some(
        reply.body["device"]["webauthn"]["credential_id"]
            .as_str()
            .unwrap()
            .into(),
    );
    phone.rp_id = Some("localhost".into());
    let number = number_on(&start_sign_in(&server, &server.browser(), &bobby.upn).await);
    let request = phone.only_request().await;
    let mut answer = phone.signed_answer(&request, Decision::Approve, Some(number));
    answer["assertion"] = json!("nope");
    let reply = phone.answer(&request, &answer).await;
    assert_eq!((reply.status, reply.error()), (401, "bad_assertion"));
    answer["assertion"] = json!({"id": "x", "rawId": "x", "type": "public-key"});
    let reply = phone.answer(&request, &answer).await;
    assert_eq!((reply.status, reply.error()), (401, "bad_assertion"));
    let mut extra = phone.approval(&request, number);
    extra["extra"] = json!(1);
    let reply = phone.answer(&request, &extra).await;
    assert_eq!((reply.status, reply.error()), (400, "invalid_json"));
    let approval = phone.approval(&request, number);
    let reply = phone.answer(&request, &approval).await;
    assert_eq!(reply.body["outcome"], "approved", "{}", reply.body);
}

#[tokio::test]
async fn turning_webauthn_phone_sign_in_off_needs_an_assertion_over_the_requests_nonce() {
    let server = server_on_localhost(None, None).await;
    let (_bobby, mut phone) = bobby_with_the_web_app(&server).await;
    let reply = phone.send(Method::DELETE, "/phone-sign-in", vec![]).await;
    assert_eq!(
        (reply.status, reply.error()),
        (401, "user_verification_required")
    );
    let reply = phone
        .send_json(Method::DELETE, "/phone-sign-in", json!({}))
        .await;
    assert_eq!(
        (reply.status, reply.error()),
        (401, "user_verification_required")
    );
    // An assertion made for another request's nonce (a captured one, replayed).
    let old = B64.encode(rand_bytes());
    let new = B64.encode(rand_bytes());
    let reply = phone.turn_off(&old, &new).await;
    assert_eq!((reply.status, reply.error()), (401, "bad_assertion"));
    assert_eq!(phone.status().await["phone_sign_in"], true, "still on");
    let reply = phone.turn_off(&new, &new).await;
    assert_eq!(
        (reply.status, reply.error()),
        (401, "replayed_request"),
        "the nonce is single-use"
    );
    let fresh = B64.encode(rand_bytes());
    let reply = phone.turn_off(&fresh, &fresh).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["phone_sign_in"], false);
}
