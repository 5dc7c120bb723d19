//! The device authorization grant (RFC 8628): a command-line tool, driven by the `openidconnect`
//! crate, signs in while its user confirms the code in a browser with phone sign-in; and what
//! a device, a browser or a guesser can do wrong.

use std::sync::Arc;

use latchkey_domain::clock::ManualClock;
use openidconnect::core::{CoreClient, CoreDeviceAuthorizationResponse, CoreProviderMetadata};
use openidconnect::{
    ClientId, DeviceAuthorizationUrl, IssuerUrl, Nonce, OAuth2TokenResponse, Scope, TokenResponse,
};
use serde_json::Value;

use crate::oidc_flow::http;
use crate::phone::{Person, Phone, number_on};
use crate::support::{Browser, Page, TestServer, hidden, manual_clock, token_request};

const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A server whose clock the test moves, devices polling at most every second.
async fn server_with_clock() -> (TestServer, Arc<ManualClock>) {
    let clock = manual_clock();
    let server = TestServer::builder()
        .clock(clock.clone())
        .config(|c| c.lifetimes.device_poll_interval_seconds = 1)
        .start()
        .await;
    (server, clock)
}

/// `POST /device_authorization` as the public client `client`.
async fn start(server: &TestServer, client: &str) -> Value {
    let (status, body) =
        device_request(server, &[("client_id", client), ("scope", "openid")]).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn device_request(server: &TestServer, form: &[(&str, &str)]) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/device_authorization", server.base))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The device polls the token endpoint once.
async fn poll(server: &TestServer, client: &str, device_code: &str) -> (u16, Value) {
    token_request(
        &server.base,
        &[
            ("grant_type", DEVICE_CODE),
            ("device_code", device_code),
            ("client_id", client),
        ],
        None,
    )
    .await
}

fn error_of(answer: &(u16, Value)) -> &str {
    answer.1["error"].as_str().unwrap_or_default()
}

/// A browser signed in as Bobby with a pass.
async fn bobby_in_a_browser(server: &TestServer) -> Browser {
    let (_, pass) = server.bobby_with_pass().await;
    let browser = server.browser();
    let done = browser
        .sign_in_to_my_apps("bobby@contoso.example", &pass)
        .await;
    browser.follow(done).await;
    browser
}

/// Opens the verification page for `user_code`.
async fn confirmation(browser: &Browser, user_code: &str) -> Page {
    browser.get(&format!("/device?user_code={user_code}")).await
}

/// Opens the page for `user_code` and presses Continue or Deny.
async fn decide(browser: &Browser, user_code: &str, decision: &str) -> Page {
    let page = confirmation(browser, user_code).await;
    assert_eq!(page.status, 200, "{}", page.body);
    browser
        .post(
            "/device",
            &[
                ("csrf", &page.csrf()),
                ("user_code", user_code),
                ("decision", decision),
            ],
        )
        .await
}

#[tokio::test]
async fn a_command_line_tool_signs_in_with_the_device_grant_while_its_user_signs_in_by_phone() {
    let (server, clock) = server_with_clock().await;
    let bobby = Person::new(&server, "bobby", "Bobby Smith").await;
    let mut phone = Phone::with_phone_sign_in(&bobby, "Bobby's phone").await;
    let client_id = server.public_app().await;

    // Discovery names the endpoint and the grant type.
    let discovery: Value =
        reqwest::get(format!("{}/.well-known/openid-configuration", server.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(
        discovery["device_authorization_endpoint"],
        format!("{}/device_authorization", server.base)
    );
    assert!(
        discovery["grant_types_supported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g == DEVICE_CODE),
        "{discovery}"
    );

    // The tool asks for codes.
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(server.base.clone()).unwrap(), &http)
            .await
            .unwrap();
    let client =
        CoreClient::from_provider_metadata(metadata, ClientId::new(client_id.clone()), None)
            .set_device_authorization_url(
                DeviceAuthorizationUrl::new(format!("{}/device_authorization", server.base))
                    .unwrap(),
            );
    let details: CoreDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("offline_access".into()))
        .request_async(&http)
        .await
        .expect("device authorization");
    let user_code = details.user_code().secret().clone();
    assert_eq!(user_code.len(), 9, "XXXX-XXXX: {user_code}");
    assert!(
        user_code
            .chars()
            .all(|c| c == '-' || "BCDFGHJKLMNPQRSTVWXZ".contains(c)),
        "{user_code}"
    );
    assert_eq!(
        details.verification_uri().as_str(),
        format!("{}/device", server.base)
    );
    let complete = details
        .verification_uri_complete()
        .expect("a link with the code")
        .secret()
        .clone();

    // Polling before the user confirmed: pending.
    let early = poll(&server, &client_id, details.device_code().secret()).await;
    assert_eq!(error_of(&early), "authorization_pending", "{early:?}");
    clock.advance(1);

    // Bobby opens the link on another browser, is sent to sign in, and signs in by phone.
    let browser = server.browser();
    let login = browser.follow(browser.get(&complete).await).await;
    let next = browser
        .post(
            "/login/username",
            &[("csrf", &login.csrf()), ("username", &bobby.upn)],
        )
        .await;
    let number_page = browser.follow(next).await;
    let request = phone.only_request().await;
    phone.approve(&request, number_on(&number_page)).await;
    // Back at the device page, which names the application and the code.
    let page = browser.follow(browser.get("/login").await).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Contoso Mobile"), "{}", page.body);
    assert!(page.body.contains(&user_code), "{}", page.body);
    let done = browser
        .post(
            "/device",
            &[
                ("csrf", &page.csrf()),
                ("user_code", &user_code),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("signed in"), "{}", done.body);

    // The tool polls and gets tokens for Bobby.
    let tokens = client
        .exchange_device_access_token(&details)
        .unwrap()
        .request_async(&http, |_| async {}, None)
        .await
        .expect("tokens");
    assert!(tokens.refresh_token().is_some(), "offline_access asked for");
    let id_token = tokens.id_token().expect("an ID token");
    let claims = id_token
        .claims(&client.id_token_verifier(), |_: Option<&Nonce>| Ok(()))
        .expect("the ID token verifies");
    assert_eq!(
        claims.preferred_username().map(|u| u.as_str()),
        Some(bobby.upn.as_str())
    );
    let userinfo = reqwest::Client::new()
        .get(format!("{}/userinfo", server.base))
        .bearer_auth(tokens.access_token().secret())
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), 200);
}

#[tokio::test]
async fn polling_faster_than_the_interval_gets_slow_down_and_five_more_seconds() {
    let (server, clock) = server_with_clock().await;
    let client = server.public_app().await;
    let device = start(&server, &client).await;
    assert_eq!(device["interval"], 1, "tests shorten the interval");
    let code = device["device_code"].as_str().unwrap();
    assert_eq!(
        error_of(&poll(&server, &client, code).await),
        "authorization_pending"
    );
    let fast = poll(&server, &client, code).await;
    assert_eq!((fast.0, error_of(&fast)), (400, "slow_down"), "{fast:?}");
    clock.advance(2);
    assert_eq!(
        error_of(&poll(&server, &client, code).await),
        "slow_down",
        "the interval grew to 6 seconds, and grows again"
    );
    clock.advance(11);
    assert_eq!(
        error_of(&poll(&server, &client, code).await),
        "authorization_pending",
        "polling after the grown interval (1 + 5 + 5 seconds) is on time again"
    );
}

#[tokio::test]
async fn an_expired_device_code_gets_expired_token_and_its_user_code_is_refused() {
    let (server, clock) = server_with_clock().await;
    let client = server.public_app().await;
    let device = start(&server, &client).await;
    assert_eq!(device["expires_in"], 600);
    let browser = bobby_in_a_browser(&server).await;
    clock.advance(601);
    let late = poll(&server, &client, device["device_code"].as_str().unwrap()).await;
    assert_eq!(error_of(&late), "expired_token", "{late:?}");
    let page = confirmation(&browser, device["user_code"].as_str().unwrap()).await;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("expired"), "{}", page.body);
}

#[tokio::test]
async fn a_denied_device_gets_access_denied() {
    let (server, _clock) = server_with_clock().await;
    let client = server.public_app().await;
    let device = start(&server, &client).await;
    let browser = bobby_in_a_browser(&server).await;
    let denied = decide(&browser, device["user_code"].as_str().unwrap(), "deny").await;
    assert_eq!(denied.status, 200, "{}", denied.body);
    assert!(denied.body.contains("was not signed in"), "{}", denied.body);
    let answer = poll(&server, &client, device["device_code"].as_str().unwrap()).await;
    assert_eq!(error_of(&answer), "access_denied", "{answer:?}");
}

#[tokio::test]
async fn a_replayed_device_code_gets_no_second_set_of_tokens() {
    let (server, clock) = server_with_clock().await;
    let client = server.public_app().await;
    let device = start(&server, &client).await;
    let code = device["device_code"].as_str().unwrap();
    let browser = bobby_in_a_browser(&server).await;
    decide(&browser, device["user_code"].as_str().unwrap(), "approve").await;
    let first = poll(&server, &client, code).await;
    assert_eq!(first.0, 200, "{first:?}");
    clock.advance(2);
    let again = poll(&server, &client, code).await;
    assert_eq!(error_of(&again), "invalid_grant", "{again:?}");
}

#[tokio::test]
async fn another_clients_device_code_is_refused_without_slowing_the_real_device() {
    let (server, _clock) = server_with_clock().await;
    let client = server.public_app().await;
    let (other, other_secret) = server.confidential_app("ES256").await;
    let device = start(&server, &client).await;
    let code = device["device_code"].as_str().unwrap();
    let browser = bobby_in_a_browser(&server).await;
    decide(&browser, device["user_code"].as_str().unwrap(), "approve").await;
    let stolen = token_request(
        &server.base,
        &[("grant_type", DEVICE_CODE), ("device_code", code)],
        Some((&other, &other_secret)),
    )
    .await;
    assert_eq!(error_of(&stolen), "invalid_grant", "{stolen:?}");
    let real = poll(&server, &client, code).await;
    assert_eq!(
        real.0, 200,
        "the real device still gets its tokens: {real:?}"
    );
}

#[tokio::test]
async fn malformed_device_requests_and_polls_are_refused() {
    let (server, _clock) = server_with_clock().await;
    let client = server.public_app().await;
    let no_openid = device_request(&server, &[("client_id", &client), ("scope", "profile")]).await;
    assert_eq!(error_of(&no_openid), "invalid_scope", "{no_openid:?}");
    let unknown = device_request(&server, &[("client_id", "nobody"), ("scope", "openid")]).await;
    assert_eq!((unknown.0, error_of(&unknown)), (401, "invalid_client"));
    let huge = "openid ".repeat(300);
    let oversized = device_request(&server, &[("client_id", &client), ("scope", &huge)]).await;
    assert_eq!(error_of(&oversized), "invalid_scope", "{oversized:?}");
    let missing = token_request(
        &server.base,
        &[("grant_type", DEVICE_CODE), ("client_id", &client)],
        None,
    )
    .await;
    assert_eq!(error_of(&missing), "invalid_request");
    for code in ["", "not-a-code", &"x".repeat(5000)] {
        let bad = poll(&server, &client, code).await;
        assert_eq!(error_of(&bad), "invalid_grant", "{code:.20}: {bad:?}");
    }
}

#[tokio::test]
async fn wrong_malformed_and_oversized_user_codes_are_refused_on_the_page() {
    let (server, _clock) = server_with_clock().await;
    let browser = bobby_in_a_browser(&server).await;
    let wrong = confirmation(&browser, "BCDF-GHJK").await;
    assert_eq!(wrong.status, 422);
    assert!(wrong.body.contains("find that code"), "{}", wrong.body);
    let malformed = confirmation(&browser, "AEIO-U123").await;
    assert_eq!(malformed.status, 422);
    assert!(malformed.body.contains("8 letters"), "{}", malformed.body);
    let oversized = confirmation(&browser, &"B".repeat(100)).await;
    assert_eq!(oversized.status, 400, "{}", oversized.body);
    let entry = browser.get("/device").await;
    assert_eq!(entry.status, 200);
    assert!(entry.body.contains("Type the code"), "{}", entry.body);
}

#[tokio::test]
async fn user_code_guessing_is_throttled() {
    let clock = manual_clock();
    let server = TestServer::builder()
        .clock(clock.clone())
        .config(|c| {
            c.throttle.wrong_user_codes_per_user = latchkey_domain::throttle::Limit::new(3, 900)
        })
        .start()
        .await;
    let client = server.public_app().await;
    let device = start(&server, &client).await;
    let browser = bobby_in_a_browser(&server).await;
    for guess in ["BCDF-BCDF", "BCDF-BCDG", "BCDF-BCDH"] {
        let page = confirmation(&browser, guess).await;
        assert!(page.body.contains("find that code"), "{}", page.body);
    }
    // Even the right code is not looked up now.
    let page = confirmation(&browser, device["user_code"].as_str().unwrap()).await;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("Try again in"), "{}", page.body);
    let form = browser
        .post(
            "/device",
            &[
                ("csrf", &hidden(&page.body, "csrf").unwrap_or_default()),
                ("user_code", device["user_code"].as_str().unwrap()),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_ne!(form.status, 200, "{}", form.body);
    let answer = poll(&server, &client, device["device_code"].as_str().unwrap()).await;
    assert_eq!(error_of(&answer), "authorization_pending");
}

#[tokio::test]
async fn a_user_code_is_confirmed_once() {
    let (server, _clock) = server_with_clock().await;
    let client = server.public_app().await;
    let device = start(&server, &client).await;
    let user_code = device["user_code"].as_str().unwrap();
    let browser = bobby_in_a_browser(&server).await;
    let page = confirmation(&browser, user_code).await;
    let form = [
        ("csrf", page.csrf()),
        ("user_code", user_code.to_string()),
        ("decision", "approve".to_string()),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(browser.post("/device", &form).await.status, 200);
    let twice = browser.post("/device", &form).await;
    assert_eq!(twice.status, 422);
    assert!(twice.body.contains("already used"), "{}", twice.body);
    let deny_after = decide_raw(&browser, &page.csrf(), user_code, "deny").await;
    assert_eq!(deny_after.status, 422, "a decision cannot be changed");
    let answer = poll(&server, &client, device["device_code"].as_str().unwrap()).await;
    assert_eq!(answer.0, 200, "{answer:?}");
}

async fn decide_raw(browser: &Browser, csrf: &str, user_code: &str, decision: &str) -> Page {
    browser
        .post(
            "/device",
            &[
                ("csrf", csrf),
                ("user_code", user_code),
                ("decision", decision),
            ],
        )
        .await
}

#[tokio::test]
async fn a_confirmation_without_its_csrf_token_approves_nothing() {
    let (server, _clock) = server_with_clock().await;
    let client = server.public_app().await;
    let device = start(&server, &client).await;
    let user_code = device["user_code"].as_str().unwrap();
    let browser = bobby_in_a_browser(&server).await;
    let forged = decide_raw(&browser, "forged", user_code, "approve").await;
    assert_ne!(forged.status, 200, "{}", forged.body);
    let answer = poll(&server, &client, device["device_code"].as_str().unwrap()).await;
    assert_eq!(error_of(&answer), "authorization_pending");
    // Without a session the form leads to sign-in, and approves nothing either.
    let stranger = server.browser();
    let anonymous = decide_raw(&stranger, "forged", user_code, "approve").await;
    assert_eq!(anonymous.status, 303, "{}", anonymous.body);
}

#[tokio::test]
async fn signing_out_of_the_approving_browser_revokes_the_devices_tokens() {
    let (server, _clock) = server_with_clock().await;
    let client = server.public_app().await;
    let device = start(&server, &client).await;
    let browser = bobby_in_a_browser(&server).await;
    decide(&browser, device["user_code"].as_str().unwrap(), "approve").await;
    let (status, tokens) = poll(&server, &client, device["device_code"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{tokens}");
    let userinfo = |token: String| {
        let base = server.base.clone();
        async move {
            reqwest::Client::new()
                .get(format!("{base}/userinfo"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let access = tokens["access_token"].as_str().unwrap().to_string();
    assert_eq!(userinfo(access.clone()).await, 200);
    let logout = browser.get("/logout").await;
    let signed_out = browser.post("/logout", &[("csrf", &logout.csrf())]).await;
    assert!(signed_out.status < 400, "{}", signed_out.body);
    assert_eq!(userinfo(access).await, 401);
}

#[tokio::test]
async fn an_unassigned_user_cannot_approve_a_device_for_an_application_that_requires_assignment() {
    let (server, _clock) = server_with_clock().await;
    let client = server.public_app().await;
    server
        .admin()
        .update_application(
            &client,
            &latchkey_api::ApplicationPatch {
                assignment_required: Some(true),
                ..Default::default()
            },
        )
        .await
        .expect("require assignment");
    let device = start(&server, &client).await;
    let browser = bobby_in_a_browser(&server).await;
    let refused = decide(&browser, device["user_code"].as_str().unwrap(), "approve").await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("You haven&#39;t been assigned to this application")
            || refused
                .body
                .contains("You haven't been assigned to this application"),
        "{}",
        refused.body
    );
    let answer = poll(&server, &client, device["device_code"].as_str().unwrap()).await;
    assert_eq!(
        error_of(&answer),
        "access_denied",
        "the device is told at once: {answer:?}"
    );
}
