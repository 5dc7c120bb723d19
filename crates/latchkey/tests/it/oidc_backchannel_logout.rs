//! OpenID Connect Back-Channel Logout 1.0, as a relying party sees it: a test application (axum
//! on loopback) registers a back-channel logout URI and receives a signed logout token when
//! the session it got tokens in ends.

use std::time::Duration;

use axum::extract::{Form, State};
use axum::routing::post;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use latchkey_domain::log::Actor;
use latchkey_domain::service::NewApplication;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::support::{Browser, Page, TestServer};

/// A relying party's back-channel logout endpoint on loopback; every POSTed form arrives on
/// the receiver.
async fn relying_party() -> (String, mpsc::UnboundedReceiver<Vec<(String, String)>>) {
    let (sent, received) = mpsc::unbounded_channel();
    let app = axum::Router::new()
        .route(
            "/backchannel-logout",
            post(
                |State(sent): State<mpsc::UnboundedSender<Vec<(String, String)>>>,
                 Form(form): Form<Vec<(String, String)>>| async move {
                    let _ = sent.send(form);
                    axum::http::StatusCode::OK
                },
            ),
        )
        .with_state(sent);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (
        format!("http://127.0.0.1:{port}/backchannel-logout"),
        received,
    )
}

/// A confidential application with a back-channel logout URI; returns (client_id, secret).
async fn app_with_backchannel(server: &TestServer, uri: &str, alg: &str) -> (String, String) {
    let (app, secret) = server
        .latchkey
        .applications
        .register_application(
            &Actor::system(),
            NewApplication {
                display_name: "Contoso Payroll".into(),
                redirect_uris: vec!["http://localhost:9/callback".into()],
                post_logout_redirect_uris: vec![],
                public_client: false,
                id_token_signing_alg: Some(alg.into()),
                home_url: None,
                required_strength: None,
                backchannel_logout_uri: Some(uri.into()),
                allowed_origins: vec![],
                groups_claim: None,
                assignment_required: false,
            },
        )
        .await
        .expect("register app");
    (
        app.client_id.to_string(),
        secret.expect("secret").expose().to_string(),
    )
}

/// The next logout token the relying party receives (waiting at most a minute, so that a
/// missing delivery fails the test instead of hanging it).
async fn next_logout_token(
    received: &mut mpsc::UnboundedReceiver<Vec<(String, String)>>,
) -> String {
    let form = tokio::time::timeout(Duration::from_secs(60), received.recv())
        .await
        .expect("a logout token arrives")
        .expect("channel open");
    assert_eq!(form.len(), 1, "only logout_token is sent: {form:?}");
    assert_eq!(form[0].0, "logout_token");
    form[0].1.clone()
}

fn claims_of(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("json")
}

/// Verifies a logout token as an RP must (§2.6): signature by a key of the JWKS, `typ`,
/// `iss`, `aud`, `iat`/`exp`, `events`, `sid`, and no `nonce`. Returns its claims.
async fn verify_logout_token(server: &TestServer, token: &str, client: &str, alg: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).expect("header");
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
    assert_eq!(format!("{:?}", header.alg), alg);
    let jwks: JwkSet = reqwest::get(format!("{}/jwks", server.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().expect("kid"))
        .expect("the signing key is published");
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[server.base.as_str()]);
    validation.set_audience(&[client]);
    validation.set_required_spec_claims(&["iss", "aud", "exp", "iat"]);
    let claims = jsonwebtoken::decode::<Value>(
        token,
        &DecodingKey::from_jwk(jwk).expect("key"),
        &validation,
    )
    .expect("the signature and the standard claims hold")
    .claims;
    assert_eq!(
        claims["events"],
        serde_json::json!({"http://schemas.openid.net/event/backchannel-logout": {}})
    );
    assert!(claims.get("nonce").is_none(), "never a nonce: {claims}");
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert!(exp > iat && exp - iat <= 120, "short-lived: {claims}");
    claims
}

/// Bobby signs in to `client` through `browser`; returns his id and the ID token.
async fn bobby_gets_an_id_token(
    server: &TestServer,
    browser: &Browser,
    client: &str,
    secret: &str,
) -> (latchkey_domain::ids::UserId, String) {
    let (bobby, code) = server.bobby_signs_in_to(browser, client, None).await;
    let (status, tokens) = server.redeem_code(client, secret, &code).await;
    assert_eq!(status, 200, "{tokens}");
    (bobby, tokens["id_token"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn backchannel_signing_out_sends_the_application_a_signed_logout_token_for_the_id_tokens_sid()
{
    let server = TestServer::start().await;
    let (uri, mut received) = relying_party().await;
    let (client, secret) = app_with_backchannel(&server, &uri, "ES256").await;
    let browser = server.browser();
    let (bobby, id_token) = bobby_gets_an_id_token(&server, &browser, &client, &secret).await;
    let id_claims = claims_of(&id_token);

    // RP-initiated logout with the ID token as hint ends the session at once.
    let answer = browser
        .get(&format!("/logout?id_token_hint={id_token}"))
        .await;
    assert!(answer.status < 400, "{}", answer.body);

    let token = next_logout_token(&mut received).await;
    let claims = verify_logout_token(&server, &token, &client, "ES256").await;
    assert_eq!(claims["sid"], id_claims["sid"], "the sid of the ID token");
    assert_eq!(claims["sub"], bobby.as_str());
    assert_eq!(claims["sub"], id_claims["sub"]);
}

#[tokio::test]
async fn backchannel_disabling_a_user_sends_a_logout_token_for_each_of_their_sessions() {
    let server = TestServer::start().await;
    let (uri, mut received) = relying_party().await;
    let (client, secret) = app_with_backchannel(&server, &uri, "RS256").await;
    let browser = server.browser();
    let (bobby, id_token) = bobby_gets_an_id_token(&server, &browser, &client, &secret).await;

    server.disable_user(&bobby).await;

    let token = next_logout_token(&mut received).await;
    let claims = verify_logout_token(&server, &token, &client, "RS256").await;
    assert_eq!(claims["sid"], claims_of(&id_token)["sid"]);
}

#[tokio::test]
async fn a_logout_token_is_never_mistaken_for_an_id_token() {
    // A logout token carries `typ: logout+jwt`, `events` and no nonce; an ID token carries
    // none of these markers, so an RP checking `typ`/`events` tells them apart.
    let server = TestServer::start().await;
    let (uri, mut received) = relying_party().await;
    let (client, secret) = app_with_backchannel(&server, &uri, "ES256").await;
    let browser = server.browser();
    let (_, id_token) = bobby_gets_an_id_token(&server, &browser, &client, &secret).await;
    let id_header = jsonwebtoken::decode_header(&id_token).unwrap();
    assert_ne!(id_header.typ.as_deref(), Some("logout+jwt"));
    assert!(claims_of(&id_token).get("events").is_none());
    browser
        .get(&format!("/logout?id_token_hint={id_token}"))
        .await;
    let token = next_logout_token(&mut received).await;
    assert!(claims_of(&token).get("nonce").is_none());
    assert!(claims_of(&token).get("at_hash").is_none());
}

#[tokio::test]
async fn a_backchannel_logout_uri_must_be_https_or_loopback() {
    let server = TestServer::start().await;
    for bad in [
        "http://rp.example/logout",
        "https://rp.example/logout#frag",
        "not a url",
    ] {
        let result = server
            .latchkey
            .applications
            .register_application(
                &Actor::system(),
                NewApplication {
                    display_name: "Bad".into(),
                    redirect_uris: vec!["http://localhost:9/callback".into()],
                    post_logout_redirect_uris: vec![],
                    public_client: false,
                    id_token_signing_alg: None,
                    home_url: None,
                    required_strength: None,
                    backchannel_logout_uri: Some(bad.into()),
                    allowed_origins: vec![],
                    groups_claim: None,
                    assignment_required: false,
                },
            )
            .await;
        assert!(result.is_err(), "{bad} is refused");
    }
    // Through the admin API: set at creation and shown on the application.
    let (status, created) = server
        .api_call(
            reqwest::Method::POST,
            "/applications",
            Some(serde_json::json!({
                "displayName": "Contoso Wiki",
                "redirectUris": ["https://wiki.contoso.example/cb"],
                "backchannelLogoutUri": "https://wiki.contoso.example/backchannel-logout",
            })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        created["backchannelLogoutUri"],
        "https://wiki.contoso.example/backchannel-logout"
    );
    let (status, refused) = server
        .api_call(
            reqwest::Method::POST,
            "/applications",
            Some(serde_json::json!({
                "displayName": "Contoso Wiki",
                "redirectUris": ["https://wiki.contoso.example/cb"],
                "backchannelLogoutUri": "http://wiki.contoso.example/backchannel-logout",
            })),
        )
        .await;
    assert_eq!(status, 400, "{refused}");
}

// ----- My Apps as the receiver ----------------------------------------------------------------

const MY_APPS: &str = latchkey_domain::service::MY_APPS_CLIENT_ID;

/// A JWT signed with the server's active ES256 key, as the server would sign it.
async fn signed_by_the_server(server: &TestServer, typ: Option<&str>, claims: &Value) -> String {
    let keys = server.store_to_plant().await.signing_keys().await.unwrap();
    let now = server.latchkey.now();
    let ring = latchkey_domain::keys::Keyring::load(&keys, now, 3600).unwrap();
    let signer = ring
        .active(latchkey_domain::application::SigningAlg::ES256, now)
        .expect("an ES256 key");
    match typ {
        Some(typ) => signer.sign_typed_jwt(typ, claims).unwrap(),
        None => signer.sign_jwt(claims).unwrap(),
    }
}

/// The claims of a valid logout token for My Apps, with a fresh jti.
fn my_apps_logout_claims(server: &TestServer, sid: &str) -> Value {
    let now = server.latchkey.now().0;
    serde_json::json!({
        "iss": server.base,
        "aud": MY_APPS,
        "iat": now,
        "exp": now + 120,
        "jti": latchkey_domain::secret::random_hex(16),
        "sub": "someone",
        "sid": sid,
        "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
    })
}

/// POSTs a form to My Apps' back-channel logout endpoint; returns (status, cache-control, body).
async fn post_to_my_apps(server: &TestServer, form: &[(&str, &str)]) -> (u16, String, Value) {
    let answer = reqwest::Client::new()
        .post(format!("{}/myapps/backchannel-logout", server.base))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    let cache = answer
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = answer.json().await.unwrap_or(Value::Null);
    (status, cache, body)
}

async fn my_apps_session_ended(server: &TestServer, sid: &str) -> bool {
    server
        .latchkey
        .tokens
        .client_session_ended(&latchkey_domain::ids::ClientId::from_string(MY_APPS), sid)
        .await
        .unwrap()
}

/// Waits (at most a minute) until My Apps has recorded that `sid` ended.
async fn until_my_apps_records_the_end_of(server: &TestServer, sid: &str) {
    for _ in 0..600 {
        if my_apps_session_ended(server, sid).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("My Apps never received the back-channel logout for its session");
}

/// Bobby signs in to My Apps in `browser`; returns his id and the provider session (sid) of
/// My Apps' session.
async fn bobby_in_my_apps(
    server: &TestServer,
    browser: &Browser,
) -> (latchkey_domain::ids::UserId, String) {
    let (bobby, pass) = server.bobby_with_pass().await;
    let login = browser.follow(browser.get("/myapps").await).await;
    let answer = browser
        .sign_in_with_pass(login, "bobby@contoso.example", &pass)
        .await;
    let portal = browser.follow(answer).await;
    assert!(portal.body.contains("Bobby Smith"), "{}", portal.body);
    let grants = server
        .store_to_plant()
        .await
        .live_user_grants(&bobby)
        .await
        .unwrap();
    let grant = grants
        .iter()
        .find(|g| g.client_id.as_str() == MY_APPS)
        .expect("My Apps got tokens");
    (bobby, grant.session_id.to_string())
}

#[tokio::test]
async fn my_apps_registers_its_backchannel_logout_uri() {
    let server = TestServer::start().await;
    let app = server.latchkey.applications.ensure_my_apps().await.unwrap();
    assert_eq!(
        app.backchannel_logout_uri.as_deref(),
        Some(format!("{}/myapps/backchannel-logout", server.base).as_str())
    );
}

/// My Apps dropped its session: it sends the browser to sign in afresh (`prompt=login`), and
/// the page that follows is the sign-in page, not My Apps signed in.
async fn assert_my_apps_asks_for_a_fresh_sign_in(browser: &Browser, after: Page) {
    let location = after.location.clone().unwrap_or_default();
    assert!(
        location.contains("/authorize?") && location.contains("prompt=login"),
        "{location}"
    );
    let landed = browser.follow(after).await;
    assert!(!landed.body.contains("Signed in as"), "{}", landed.body);
    assert!(landed.body.contains("username"), "{}", landed.body);
}

#[tokio::test]
async fn disabling_a_user_signs_them_out_of_my_apps_through_the_back_channel() {
    let server = TestServer::start().await;
    let browser = server.browser();
    let (bobby, sid) = bobby_in_my_apps(&server, &browser).await;
    assert!(!my_apps_session_ended(&server, &sid).await);

    server.disable_user(&bobby).await;

    // My Apps received the logout token and recorded the sid: without the back channel this
    // never happens (the access-token check alone records nothing).
    until_my_apps_records_the_end_of(&server, &sid).await;
    let after = browser.get("/myapps").await;
    assert_my_apps_asks_for_a_fresh_sign_in(&browser, after).await;
}

#[tokio::test]
async fn my_apps_signs_out_a_session_whose_sid_ended_without_asking_the_provider() {
    // The access token still works; only the back-channel record ends the session.
    let server = TestServer::start().await;
    let browser = server.browser();
    let (_, sid) = bobby_in_my_apps(&server, &browser).await;
    let token = signed_by_the_server(
        &server,
        Some("logout+jwt"),
        &my_apps_logout_claims(&server, &sid),
    )
    .await;
    let (status, cache, body) = post_to_my_apps(&server, &[("logout_token", &token)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(cache, "no-store");
    let after = browser.get("/myapps").await;
    assert_my_apps_asks_for_a_fresh_sign_in(&browser, after).await;
}

#[tokio::test]
async fn a_replayed_logout_token_is_refused_by_my_apps() {
    let server = TestServer::start().await;
    let token = signed_by_the_server(
        &server,
        Some("logout+jwt"),
        &my_apps_logout_claims(&server, "some-sid"),
    )
    .await;
    let (status, _, _) = post_to_my_apps(&server, &[("logout_token", &token)]).await;
    assert_eq!(status, 200);
    let (status, cache, body) = post_to_my_apps(&server, &[("logout_token", &token)]).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(cache, "no-store");
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test]
async fn forged_logout_tokens_are_refused_by_my_apps() {
    let server = TestServer::start().await;
    let now = server.latchkey.now();
    let valid = my_apps_logout_claims(&server, "forged-sid");
    let with = |key: &str, value: Value| {
        let mut claims = my_apps_logout_claims(&server, "forged-sid");
        claims[key] = value;
        claims
    };
    let without = |key: &str| {
        let mut claims = my_apps_logout_claims(&server, "forged-sid");
        claims.as_object_mut().unwrap().remove(key);
        claims
    };
    // Signed by a key that is not the provider's.
    let stranger = latchkey_domain::keys::SigningKey::generate(
        latchkey_domain::application::SigningAlg::ES256,
        now,
    )
    .unwrap()
    .signer()
    .unwrap()
    .sign_typed_jwt("logout+jwt", &valid)
    .unwrap();
    let mut forged = vec![("a key not in the JWKS", stranger)];
    for (what, typ, claims) in [
        (
            "another audience",
            Some("logout+jwt"),
            with("aud", "contoso-payroll".into()),
        ),
        (
            "another issuer",
            Some("logout+jwt"),
            with("iss", "https://evil.example".into()),
        ),
        (
            "a nonce",
            Some("logout+jwt"),
            with("nonce", "n-0S6_WzA2Mj".into()),
        ),
        ("no events", Some("logout+jwt"), without("events")),
        (
            "another event",
            Some("logout+jwt"),
            with(
                "events",
                serde_json::json!({"http://example.com/other": {}}),
            ),
        ),
        ("neither sid nor sub", Some("logout+jwt"), {
            let mut c = without("sid");
            c.as_object_mut().unwrap().remove("sub");
            c
        }),
        ("no jti", Some("logout+jwt"), without("jti")),
        ("no typ (an ID token's shape)", None, valid.clone()),
        ("typ JWT", Some("JWT"), valid.clone()),
        (
            "expired",
            Some("logout+jwt"),
            with("exp", (now.0 - 3600).into()),
        ),
        (
            "issued in the future",
            Some("logout+jwt"),
            with("iat", (now.0 + 3600).into()),
        ),
    ] {
        forged.push((what, signed_by_the_server(&server, typ, &claims).await));
    }
    for (what, token) in forged {
        let (status, cache, body) = post_to_my_apps(&server, &[("logout_token", &token)]).await;
        assert_eq!(status, 400, "{what}: {body}");
        assert_eq!(cache, "no-store", "{what}");
        assert_eq!(body["error"], "invalid_request", "{what}");
    }
    assert!(
        !my_apps_session_ended(&server, "forged-sid").await,
        "no forged token ended the session"
    );
}

#[tokio::test]
async fn an_id_token_or_another_applications_logout_token_is_refused_by_my_apps() {
    let server = TestServer::start().await;
    let (uri, mut received) = relying_party().await;
    let (client, secret) = app_with_backchannel(&server, &uri, "ES256").await;
    let browser = server.browser();
    let (_, id_token) = bobby_gets_an_id_token(&server, &browser, &client, &secret).await;
    let (status, _, _) = post_to_my_apps(&server, &[("logout_token", &id_token)]).await;
    assert_eq!(status, 400, "an ID token is not a logout token");
    browser
        .get(&format!("/logout?id_token_hint={id_token}"))
        .await;
    let theirs = next_logout_token(&mut received).await;
    let (status, _, body) = post_to_my_apps(&server, &[("logout_token", &theirs)]).await;
    assert_eq!(status, 400, "a logout token for another audience: {body}");
    let sid = claims_of(&theirs)["sid"].as_str().unwrap().to_string();
    assert!(!my_apps_session_ended(&server, &sid).await);
}

#[tokio::test]
async fn malformed_and_oversized_logout_requests_are_refused_by_my_apps() {
    let server = TestServer::start().await;
    let huge = "a".repeat(9 * 1024);
    let huger = "a".repeat(64 * 1024);
    for (what, form) in [
        ("no logout_token", vec![("other", "x")]),
        ("an empty logout_token", vec![("logout_token", "")]),
        ("not a JWT", vec![("logout_token", "not.a.jwt")]),
        ("garbage", vec![("logout_token", "%%%")]),
        ("an oversized token", vec![("logout_token", huge.as_str())]),
        ("an oversized body", vec![("logout_token", huger.as_str())]),
    ] {
        let (status, _, body) = post_to_my_apps(&server, &form).await;
        // An oversized body is cut off before My Apps reads it (413); the rest are 400s.
        assert!(status == 400 || status == 413, "{what}: {status} {body}");
        if status == 400 {
            assert_eq!(body["error"], "invalid_request", "{what}");
        }
    }
    let json = reqwest::Client::new()
        .post(format!("{}/myapps/backchannel-logout", server.base))
        .json(&serde_json::json!({"logout_token": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), 400, "not a form");
}

#[tokio::test]
async fn no_its_not_me_sends_a_logout_token_to_the_application() {
    use crate::phone::{Person, Phone, number_on, start_sign_in};
    use latchkey_protocol::wire::{AnswerOutcome, Decision};

    let server = TestServer::start().await;
    let (uri, mut received) = relying_party().await;
    let (client, secret) = app_with_backchannel(&server, &uri, "ES256").await;
    let bobby = Person::new(&server, "bobby", "Bobby Smith").await;
    let mut phone = Phone::with_phone_sign_in(&bobby, "Bobby's phone").await;

    // Bobby signs in to the application with his phone.
    let browser = server.browser();
    let number_page = crate::phone::start_app_sign_in(&server, &browser, &client, &bobby.upn).await;
    let request = phone.only_request().await;
    phone
        .answer(&request, Decision::Approve, Some(number_on(&number_page)))
        .await
        .unwrap();
    let location = browser.get("/login").await.location.expect("redirect");
    let code = crate::support::query_param(&location, "code").expect("code");
    let (status, tokens) = server.redeem_code(&client, &secret, &code).await;
    assert_eq!(status, 200, "{tokens}");
    let id_token = tokens["id_token"].as_str().unwrap();

    // Someone else types Bobby's name; he answers "No, it's not me".
    let attacker = server.browser();
    start_sign_in(&attacker, &bobby.upn).await;
    let request = phone.only_request().await;
    assert_eq!(
        phone
            .answer(&request, Decision::Report, None)
            .await
            .unwrap(),
        AnswerOutcome::Reported
    );

    let token = next_logout_token(&mut received).await;
    let claims = verify_logout_token(&server, &token, &client, "ES256").await;
    assert_eq!(claims["sid"], claims_of(id_token)["sid"]);
}
