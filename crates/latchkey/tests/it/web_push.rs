//! Web Push (RFC 8030 + RFC 8291 + RFC 8292) against a push service stand-in: an HTTPS
//! endpoint on loopback, in the test, that checks what a real push service checks (TTL, the
//! content encoding, the VAPID JWT and its signature) and decrypts the message as the browser
//! would, with the subscription's own keys. The device side is the real authenticator client,
//! signing every request.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use latchkey_authenticator::client::DeviceClient;
use latchkey_domain::secret::{random_hex, sha256};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use web_push_native::jwt_simple::prelude::{
    ECDSAP256PublicKeyLike, ES256PublicKey, NoCustomClaims, VerificationOptions,
};
use web_push_native::p256::SecretKey;
use web_push_native::p256::elliptic_curve::sec1::ToEncodedPoint;

use crate::phone::{Person, Phone, number_on, start_sign_in};
use crate::support::TestServer;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What the stand-in does with the next message.
#[derive(Clone, Copy, Debug)]
enum Answer {
    Status(u16),
    /// Never answers: a hostile or broken push service.
    Hang,
}

/// One message as the push service received it.
#[derive(Debug)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Clone)]
struct StandIn {
    script: Arc<Mutex<VecDeque<Answer>>>,
    default: Answer,
    received: mpsc::UnboundedSender<Received>,
}

async fn receive(
    State(stand_in): State<StandIn>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let _ = stand_in.received.send(Received {
        path: id,
        headers,
        body,
    });
    let answer = stand_in
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(stand_in.default);
    match answer {
        Answer::Status(code) => StatusCode::from_u16(code).unwrap(),
        Answer::Hang => std::future::pending::<StatusCode>().await,
    }
}

/// An RFC 8030 push service on `https://localhost:{port}`, with a self-signed certificate the
/// Latchkey server is told to trust.
struct PushService {
    base: String,
    received: mpsc::UnboundedReceiver<Received>,
    script: Arc<Mutex<VecDeque<Answer>>>,
    cert_file: std::path::PathBuf,
    _dir: tempfile::TempDir,
    _handle: axum_server::Handle<std::net::SocketAddr>,
}

impl PushService {
    async fn start(default: Answer) -> PushService {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let cert_file = dir.path().join("push-service.pem");
        std::fs::write(&cert_file, cert.pem()).unwrap();
        let tls = axum_server::tls_rustls::RustlsConfig::from_pem(
            cert.pem().into_bytes(),
            key.serialize_pem().into_bytes(),
        )
        .await
        .unwrap();
        let (sender, received) = mpsc::unbounded_channel();
        let script = Arc::new(Mutex::new(VecDeque::new()));
        let app = axum::Router::new()
            .route("/push/{id}", axum::routing::post(receive))
            .with_state(StandIn {
                script: script.clone(),
                default,
                received: sender,
            });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let handle = axum_server::Handle::new();
        let server = axum_server::from_tcp_rustls(listener, tls)
            .unwrap()
            .handle(handle.clone());
        tokio::spawn(server.serve(app.into_make_service()));
        PushService {
            base: format!("https://localhost:{port}"),
            received,
            script,
            cert_file,
            _dir: dir,
            _handle: handle,
        }
    }

    fn answer_next(&self, answers: &[Answer]) {
        self.script.lock().unwrap().extend(answers.iter().copied());
    }

    async fn next(&mut self, within: Duration) -> Option<Received> {
        tokio::time::timeout(within, self.received.recv())
            .await
            .ok()
            .flatten()
    }

    /// Configures a server to push here.
    fn trust(&self, config: &mut latchkey::config::Config) {
        config.web_push.allow_private_endpoints = true;
        config.web_push.root_certificates = vec![self.cert_file.clone()];
        config.web_push.timeout_seconds = 2;
    }
}

/// A browser's push subscription: the keys only it holds, and what it sends the server.
struct BrowserSubscription {
    secret: SecretKey,
    auth: [u8; 16],
    endpoint: String,
}

impl BrowserSubscription {
    fn new(endpoint: String) -> BrowserSubscription {
        let secret = SecretKey::from_slice(&sha256(random_hex(32).as_bytes())).unwrap();
        let auth: [u8; 16] = sha256(random_hex(16).as_bytes())[..16].try_into().unwrap();
        BrowserSubscription {
            secret,
            auth,
            endpoint,
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "endpoint": self.endpoint,
            "expirationTime": null,
            "keys": {
                "p256dh": b64(self.secret.public_key().to_encoded_point(false).as_bytes()),
                "auth": b64(&self.auth),
            }
        })
    }

    fn decrypt(&self, body: &[u8]) -> Value {
        let plain = web_push_native::decrypt(
            body.to_vec(),
            &self.secret,
            web_push_native::Auth::from_slice(&self.auth),
        )
        .expect("the message decrypts with the subscription's keys");
        serde_json::from_slice(&plain).expect("JSON")
    }
}

fn nonce() -> String {
    random_hex(12)
}

/// A signed request from the device, as the authenticator app sends it.
async fn call(
    client: &DeviceClient,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let body = body.map(|b| serde_json::to_vec(&b).unwrap());
    let response = client.signed(method, path, body, nonce()).await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn subscribe(client: &DeviceClient, subscription: &BrowserSubscription) {
    let (status, body) = call(
        client,
        Method::PUT,
        "/push-subscription",
        Some(subscription.to_json()),
    )
    .await;
    assert_eq!(status, 204, "{body}");
}

async fn subscribed(client: &DeviceClient) -> bool {
    let (status, body) = call(client, Method::GET, "/push", None).await;
    assert_eq!(status, 200, "{body}");
    body["subscribed"].as_bool().unwrap()
}

/// Checks a received message as a push service does (RFC 8030 §5, RFC 8292 §2 and §3), and
/// decrypts it as the browser does.
fn check_message(
    received: &Received,
    vapid_public_key: &str,
    browser: &BrowserSubscription,
    lifetime: i64,
) -> Value {
    let header = |name: &str| {
        received
            .headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
            .to_string()
    };
    let ttl: i64 = header("ttl").parse().expect("TTL is a number");
    assert!(
        (1..=lifetime).contains(&ttl),
        "TTL {ttl} is the request's time left"
    );
    assert_eq!(header("content-encoding"), "aes128gcm");
    assert_eq!(header("urgency"), "high");
    let authorization = header("authorization");
    let rest = authorization
        .strip_prefix("vapid t=")
        .expect("Authorization: vapid t=…, k=…");
    let (token, k) = rest.split_once(", k=").expect("t and k");
    assert_eq!(
        k, vapid_public_key,
        "k is the key the device subscribed with"
    );
    let key_bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(k)
        .unwrap();
    let key = ES256PublicKey::from_bytes(&key_bytes).expect("k is a P-256 point");
    let claims = key
        .verify_token::<NoCustomClaims>(token, Some(VerificationOptions::default()))
        .expect("the VAPID JWT's ES256 signature verifies with k");
    let audiences = claims.audiences.expect("aud").into_set();
    assert!(
        audiences.contains("https://localhost"),
        "aud is the push service's origin without the port: {audiences:?}"
    );
    let expires = claims.expires_at.expect("exp").as_secs();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        expires > now && expires <= now + 24 * 3600,
        "exp within 24 hours"
    );
    assert!(claims.subject.is_some(), "sub names the server");
    browser.decrypt(&received.body)
}

/// A person with a phone that has phone sign-in on, subscribed to `push` at `/push/{tag}`.
async fn subscribed_phone(
    server: &TestServer,
    push: &PushService,
    local: &str,
) -> (Person, Phone, DeviceClient, BrowserSubscription) {
    let person = Person::new(server, local, "Push Person").await;
    let phone = Phone::with_phone_sign_in(&person, "Pixel").await;
    let client = phone.app.client(phone.account).unwrap();
    let browser = BrowserSubscription::new(format!("{}/push/{local}", push.base));
    subscribe(&client, &browser).await;
    assert!(subscribed(&client).await);
    (person, phone, client, browser)
}

#[tokio::test]
async fn a_phone_sign_in_is_pushed_encrypted_and_signed_to_the_subscription() {
    let mut push = PushService::start(Answer::Status(201)).await;
    let server = TestServer::start_with(|c| push.trust(c)).await;
    let person = Person::new(&server, "ada", "Ada Push").await;
    let mut phone = Phone::with_phone_sign_in(&person, "Pixel").await;
    let client = phone.app.client(phone.account).unwrap();

    let (status, status_body) = call(&client, Method::GET, "/push", None).await;
    assert_eq!(status, 200, "{status_body}");
    let vapid = status_body["vapid_public_key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(vapid.len(), 87, "an uncompressed P-256 point, base64url");
    assert_eq!(status_body["subscribed"], false);

    let browser = BrowserSubscription::new(format!("{}/push/ada", push.base));
    subscribe(&client, &browser).await;
    assert!(subscribed(&client).await);

    let sign_in = server.browser();
    let number_page = start_sign_in(&sign_in, &person.upn).await;
    let received = push
        .next(Duration::from_secs(10))
        .await
        .expect("the push service receives a message");
    assert_eq!(received.path, "ada");
    let message = check_message(&received, &vapid, &browser, 90);
    let request = phone.only_request().await;
    assert_eq!(
        message,
        json!({"type": "request", "id": request.id}),
        "the payload is the request id only"
    );
    // The app fetched the details over the signed API and approves as usual.
    phone.approve(&request, number_on(&number_page)).await;
    assert!(
        push.next(Duration::from_millis(500)).await.is_none(),
        "one push per request"
    );

    // The VAPID key is kept: a restart signs with the same key.
    let server = server.restart().await;
    let client = phone.app.client(phone.account).unwrap();
    let (_, again) = call(&client, Method::GET, "/push", None).await;
    assert_eq!(again["vapid_public_key"], vapid.as_str());
    assert_eq!(again["subscribed"], true);
    drop(server);
}

#[tokio::test]
async fn gone_subscriptions_410_and_404_are_removed() {
    let mut push = PushService::start(Answer::Status(201)).await;
    let server = TestServer::start_with(|c| push.trust(c)).await;
    for (local, status) in [("gone410", 410), ("gone404", 404)] {
        let (person, _phone, client, _browser) = subscribed_phone(&server, &push, local).await;
        push.answer_next(&[Answer::Status(status)]);
        start_sign_in(&server.browser(), &person.upn).await;
        let received = push.next(Duration::from_secs(10)).await.expect("pushed");
        assert_eq!(received.path, local);
        let deadline = Instant::now() + Duration::from_secs(10);
        while subscribed(&client).await {
            assert!(
                Instant::now() < deadline,
                "a {status} removes the subscription"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            push.next(Duration::from_millis(1500)).await.is_none(),
            "a {status} is not retried"
        );
    }
}

#[tokio::test]
async fn a_failing_push_service_500_is_retried_then_delivered() {
    let mut push = PushService::start(Answer::Status(201)).await;
    let server = TestServer::start_with(|c| push.trust(c)).await;
    let (person, phone, client, browser) = subscribed_phone(&server, &push, "retry").await;
    let (_, status_body) = call(&client, Method::GET, "/push", None).await;
    let vapid = status_body["vapid_public_key"]
        .as_str()
        .unwrap()
        .to_string();
    push.answer_next(&[Answer::Status(500), Answer::Status(429)]);
    start_sign_in(&server.browser(), &person.upn).await;
    let started = Instant::now();
    let mut messages = Vec::new();
    for _ in 0..3 {
        messages.push(push.next(Duration::from_secs(10)).await.expect("pushed"));
    }
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "retries wait (1 s, then 2 s)"
    );
    let id = phone.only_request().await.id;
    for received in &messages {
        assert_eq!(
            check_message(received, &vapid, &browser, 90),
            json!({"type": "request", "id": id}),
            "each try is a fresh, valid message"
        );
    }
    assert!(
        push.next(Duration::from_millis(1500)).await.is_none(),
        "delivered: no more tries"
    );
    assert!(
        subscribed(&client).await,
        "a 5xx does not remove the subscription"
    );
}

#[tokio::test]
async fn a_hostile_push_service_that_never_answers_does_not_block_sign_ins() {
    let mut push = PushService::start(Answer::Hang).await;
    let server = TestServer::start_with(|c| push.trust(c)).await;
    let (person, mut phone, _client, _browser) = subscribed_phone(&server, &push, "slow").await;
    let sign_in = server.browser();
    let started = Instant::now();
    let number_page = start_sign_in(&sign_in, &person.upn).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the sign-in does not wait for the push service ({:?})",
        started.elapsed()
    );
    push.next(Duration::from_secs(10))
        .await
        .expect("a push was attempted");
    // The device still gets the request by pulling, and the sign-in completes.
    let request = phone.only_request().await;
    phone.approve(&request, number_on(&number_page)).await;
    // A second sign-in while the first push still hangs is just as quick.
    let started = Instant::now();
    start_sign_in(&server.browser(), &person.upn).await;
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn ssrf_subscriptions_into_the_operators_network_are_refused() {
    // The default configuration: only public push services.
    let mut push = PushService::start(Answer::Status(201)).await;
    let server = TestServer::start().await;
    let person = Person::new(&server, "mallory", "Mallory").await;
    let phone = Phone::with_phone_sign_in(&person, "Pixel").await;
    let client = phone.app.client(phone.account).unwrap();
    for endpoint in [
        format!("{}/push/x", push.base),
        "https://127.0.0.1/push".into(),
        "https://10.0.0.8/push".into(),
        "https://192.168.1.1/push".into(),
        "https://169.254.169.254/latest/meta-data".into(),
        "https://[::1]/push".into(),
        "https://[::ffff:127.0.0.1]/push".into(),
        "https://localhost./push".into(),
        "https://metadata/computeMetadata".into(),
    ] {
        let subscription = BrowserSubscription::new(endpoint.clone());
        let (status, body) = call(
            &client,
            Method::PUT,
            "/push-subscription",
            Some(subscription.to_json()),
        )
        .await;
        assert_eq!(status, 400, "{endpoint}: {body}");
        assert_eq!(body["error"], "private_endpoint", "{endpoint}: {body}");
    }
    assert!(!subscribed(&client).await);

    // A subscription to a private address that got into the store anyway (planted, or stored
    // under an older rule) is checked again at send time: nothing is sent.
    let device = latchkey_domain::ids::DeviceId::from_string(client.device_id());
    let store = server.store_to_plant().await;
    store
        .put_push_subscription(&latchkey_domain::push::PushSubscription {
            device_id: device.clone(),
            endpoint: format!(
                "{}/push/planted",
                push.base.replace("localhost", "127.0.0.1")
            ),
            p256dh: BrowserSubscription::new(String::new()).to_json()["keys"]["p256dh"]
                .as_str()
                .unwrap()
                .into(),
            auth: b64(&[7u8; 16]),
            created_at: server.latchkey.now(),
        })
        .await
        .unwrap();
    start_sign_in(&server.browser(), &person.upn).await;
    assert!(
        push.next(Duration::from_secs(3)).await.is_none(),
        "the server never sends into its own network"
    );
}

#[tokio::test]
async fn malformed_oversized_unsigned_and_replayed_subscriptions_are_refused() {
    let push = PushService::start(Answer::Status(201)).await;
    let server = TestServer::start_with(|c| push.trust(c)).await;
    let person = Person::new(&server, "eve", "Eve").await;
    let mut phone = Phone::with_phone_sign_in(&person, "Pixel").await;
    let client = phone.app.client(phone.account).unwrap();
    let good = BrowserSubscription::new(format!("{}/push/eve", push.base)).to_json();

    let mut cases: Vec<(&str, Value, &str)> = Vec::new();
    let mut http = good.clone();
    http["endpoint"] = json!(format!("{}/push/eve", push.base.replace("https", "http")));
    cases.push(("http endpoint", http, "bad_endpoint"));
    let mut long = good.clone();
    long["endpoint"] = json!(format!("{}/push/{}", push.base, "a".repeat(2100)));
    cases.push(("endpoint over 2048 characters", long, "bad_endpoint"));
    let mut off_curve = good.clone();
    off_curve["keys"]["p256dh"] = json!(b64(&{
        let mut point = [0xffu8; 65];
        point[0] = 4;
        point
    }));
    cases.push(("p256dh not on the curve", off_curve, "bad_subscription"));
    let mut short_key = good.clone();
    short_key["keys"]["p256dh"] = json!(b64(&[4u8; 33]));
    cases.push(("p256dh of the wrong length", short_key, "bad_subscription"));
    let mut auth = good.clone();
    auth["keys"]["auth"] = json!(b64(&[1u8; 15]));
    cases.push(("auth of 15 bytes", auth, "bad_subscription"));
    let mut long_auth = good.clone();
    long_auth["keys"]["auth"] = json!(b64(&[1u8; 32]));
    cases.push(("auth of 32 bytes", long_auth, "bad_subscription"));
    let mut unknown = good.clone();
    unknown["topic"] = json!("x");
    cases.push(("unknown field", unknown, "invalid_json"));
    let mut unknown_key = good.clone();
    unknown_key["keys"]["extra"] = json!("x");
    cases.push(("unknown field in keys", unknown_key, "invalid_json"));
    let mut no_keys = good.clone();
    no_keys.as_object_mut().unwrap().remove("keys");
    cases.push(("no keys", no_keys, "invalid_json"));
    let mut expiry = good.clone();
    expiry["expirationTime"] = json!("tomorrow");
    cases.push(("expirationTime not a number", expiry, "invalid_json"));
    let mut padding = good.clone();
    padding["keys"]["pad"] = json!("x".repeat(9000));
    cases.push(("body over 8 KiB", padding, "body_too_large"));
    for (what, body, code) in cases {
        let (status, answer) = call(&client, Method::PUT, "/push-subscription", Some(body)).await;
        assert_eq!(status, 400, "{what}: {answer}");
        assert_eq!(answer["error"], code, "{what}: {answer}");
    }
    assert!(!subscribed(&client).await, "nothing was stored");

    // Unsigned: no device headers at all.
    let unsigned = reqwest::Client::new()
        .put(format!(
            "{}/authenticator/v1/push-subscription",
            server.base
        ))
        .json(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    let unsigned: Value = unsigned.json().await.unwrap();
    assert_eq!(unsigned["error"], "unsigned_request");

    // Replayed: the same signed request sent twice.
    let bytes = serde_json::to_vec(&good).unwrap();
    let nonce = nonce();
    let first = client
        .signed(
            Method::PUT,
            "/push-subscription",
            Some(bytes.clone()),
            nonce.clone(),
        )
        .await
        .unwrap();
    assert_eq!(first.status(), 204);
    let replay = client
        .signed(Method::PUT, "/push-subscription", Some(bytes), nonce)
        .await
        .unwrap();
    assert_eq!(replay.status(), 401);
    let replay: Value = replay.json().await.unwrap();
    assert_eq!(replay["error"], "replayed_request");

    // DELETE removes it; a body is refused.
    let (status, _) = call(
        &client,
        Method::DELETE,
        "/push-subscription",
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 400);
    assert!(subscribed(&client).await);
    let (status, _) = call(&client, Method::DELETE, "/push-subscription", None).await;
    assert_eq!(status, 204);
    assert!(!subscribed(&client).await);

    // A subscription goes with its device.
    subscribe(
        &client,
        &BrowserSubscription::new(format!("{}/push/eve", push.base)),
    )
    .await;
    let device = latchkey_domain::ids::DeviceId::from_string(client.device_id());
    assert!(
        server
            .latchkey
            .push
            .subscription(&device)
            .await
            .unwrap()
            .is_some()
    );
    phone.app.remove(phone.account).await.expect("removed");
    assert!(
        server
            .latchkey
            .push
            .subscription(&device)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn web_push_can_be_turned_off() {
    let server = TestServer::start_with(|c| c.web_push.enabled = false).await;
    let person = Person::new(&server, "off", "Off").await;
    let phone = Phone::register(&person, "Pixel").await;
    let client = phone.app.client(phone.account).unwrap();
    let (status, body) = call(&client, Method::GET, "/push", None).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"], "web_push_disabled");
}

#[tokio::test]
async fn no_web_push_for_a_request_held_back_while_the_user_is_at_risk() {
    let mut push = PushService::start(Answer::Status(201)).await;
    let server = TestServer::start_with(|c| push.trust(c)).await;
    let (person, mut phone, _client, _browser) = subscribed_phone(&server, &push, "risky").await;
    start_sign_in(&server.browser(), &person.upn).await;
    push.next(Duration::from_secs(10)).await.expect("pushed");
    let request = phone.only_request().await;
    assert!(request.report_allowed);
    assert_eq!(
        phone
            .answer(&request, latchkey_protocol::wire::Decision::Report, None)
            .await
            .unwrap(),
        latchkey_protocol::wire::AnswerOutcome::Reported
    );
    // Now at risk: the next request waits, held back, and is neither sent live nor pushed.
    let page = start_sign_in(&server.browser(), &person.upn).await;
    assert!(
        page.body.contains("Approve sign in request"),
        "{}",
        page.body
    );
    assert!(
        push.next(Duration::from_secs(2)).await.is_none(),
        "a held-back request is not pushed"
    );
    phone.only_request().await;
}
