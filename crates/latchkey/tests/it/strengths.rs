//! Authentication strengths over HTTP: an application that requires one (through the admin
//! API), `acr_values` asking for one, the step-up of a session that is not strong enough, the
//! refusal page, and the `acr` the ID token carries.
//!
//! The passkey ceremony itself is the browser suite's (it needs Chromium's virtual
//! authenticator); here the step-up is followed up to the page that offers the passkey.

use base64::Engine;
use latchkey_protocol::wire::Decision;
use reqwest::Method;
use serde_json::{Value, json};

use crate::phone::{Person, Phone, assert_failure, element_text, number_on, sign_in_log, unescape};
use crate::support::{Browser, Page, TestServer, authorize_url, query_param, token_request};

const ACR_MFA: &str = "urn:latchkey:acr:mfa";
const ACR_PASSWORDLESS: &str = "urn:latchkey:acr:passwordless-mfa";
const ACR_PHISHING_RESISTANT: &str = "urn:latchkey:acr:phishing-resistant-mfa";

/// Registers a confidential application through the admin API, requiring `strength` (an id,
/// or none); returns its client id and secret.
async fn app_requiring(
    server: &TestServer,
    name: &str,
    strength: Option<&str>,
) -> (String, String) {
    let mut body = json!({
        "displayName": name,
        "redirectUris": ["http://localhost:9/callback"],
    });
    if let Some(strength) = strength {
        body["requiredStrength"] = json!(strength);
    }
    let (status, app) = server
        .api_call(Method::POST, "/applications", Some(body))
        .await;
    assert_eq!(status, 201, "{app}");
    assert_eq!(app["requiredStrength"].as_str(), strength, "{app}");
    (
        app["appId"].as_str().unwrap().to_string(),
        app["clientSecret"].as_str().unwrap().to_string(),
    )
}

/// The application as the admin API reads it.
async fn application(server: &TestServer, client: &str) -> Value {
    let (status, app) = server
        .api_call(Method::GET, &format!("/applications/{client}"), None)
        .await;
    assert_eq!(status, 200, "{app}");
    app
}

/// Gives the user `user` the password "correct horse battery".
async fn set_password(server: &TestServer, user: &latchkey_domain::ids::UserId) {
    server
        .latchkey
        .directory
        .set_password(
            &latchkey_domain::log::Actor::system(),
            user,
            &latchkey_domain::secret::Secret::new("correct horse battery"),
        )
        .await
        .unwrap();
}

/// Posts `secret` as `method` ("pass" or "password") on the credential page, with `csrf`.
async fn post_credential(browser: &Browser, csrf: &str, method: &str, secret: &str) -> Page {
    browser
        .post(
            "/login/credential",
            &[("csrf", csrf), ("method", method), ("secret", secret)],
        )
        .await
}

/// A new browser opens the application's authorization URL and types `upn`; returns the
/// browser and the page that follows.
async fn sign_in_to(server: &TestServer, client: &str, upn: &str) -> (Browser, Page) {
    let browser = server.browser();
    let authorize = authorize_url(&server.base, client, None, &[]);
    let page = username_step(&browser, &authorize, upn).await;
    (browser, page)
}

/// The authorization URL of `client`, asking for `acr_values`.
fn authorize_asking(server: &TestServer, client: &str, acr_values: &str) -> String {
    authorize_url(&server.base, client, None, &[("acr_values", acr_values)])
}

/// Bobby signs in with `pass` through `authorize` in a new browser; returns the ID token's
/// claims the application `client` gets for the code.
async fn claims_after_a_pass(
    server: &TestServer,
    client: &str,
    secret: &str,
    authorize: &str,
    pass: &str,
) -> Value {
    let browser = server.browser();
    let code = crate::support::code_for(&browser, authorize, "bobby@contoso.example", pass).await;
    let location = format!("http://localhost:9/callback?code={code}");
    id_token_claims(&redeem(server, client, secret, &location).await)
}

/// Opens the authorization URL and types the user name; returns the page that follows.
async fn username_step(browser: &Browser, authorize: &str, upn: &str) -> Page {
    let login = browser.follow(browser.get(authorize).await).await;
    assert_eq!(login.status, 200, "{}", login.body);
    let next = browser
        .post(
            "/login/username",
            &[("csrf", &login.csrf()), ("username", upn)],
        )
        .await;
    browser.follow(next).await
}

/// Phone sign-in from the number page: the phone approves the number shown; returns where the
/// browser is sent next.
async fn approve_on_phone(browser: &Browser, phone: &mut Phone, number_page: &Page) -> String {
    let request = phone.only_request().await;
    phone
        .answer(&request, Decision::Approve, Some(number_on(number_page)))
        .await
        .unwrap();
    reload_location(browser).await
}

async fn reload_location(browser: &Browser) -> String {
    let answer = browser.get("/login").await;
    answer
        .location
        .unwrap_or_else(|| panic!("no redirect: {} {}", answer.status, answer.body))
}

/// The ID token's claims from a token response.
fn id_token_claims(tokens: &Value) -> Value {
    let id_token = tokens["id_token"].as_str().expect("an ID token");
    let payload = id_token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

async fn redeem(server: &TestServer, client: &str, secret: &str, location: &str) -> Value {
    let code = query_param(location, "code").unwrap_or_else(|| panic!("no code: {location}"));
    let (status, tokens) = server.redeem_code(client, secret, &code).await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

/// Bobby, with phone sign-in on his phone.
async fn bobby_with_phone(server: &TestServer) -> (Person, Phone) {
    let bobby = Person::new(server, "bobby", "Bobby Smith").await;
    let phone = Phone::with_phone_sign_in(&bobby, "Bobby's phone").await;
    (bobby, phone)
}

/// A browser signed in by phone (through an application with no requirement).
async fn phone_signed_in_browser(
    server: &TestServer,
    phone: &mut Phone,
    upn: &str,
) -> (Browser, String, String) {
    let (client, secret) = app_requiring(server, "Contoso Wiki", None).await;
    let (browser, number_page) = sign_in_to(server, &client, upn).await;
    let location = approve_on_phone(&browser, phone, &number_page).await;
    assert!(query_param(&location, "code").is_some(), "{location}");
    (browser, client, secret)
}

async fn pending_requests(phone: &Phone) -> usize {
    phone
        .app
        .pending(phone.account)
        .await
        .expect("pending")
        .len()
}

#[tokio::test]
async fn an_app_requiring_passwordless_mfa_accepts_phone_sign_in_and_the_token_says_so() {
    let server = TestServer::start().await;
    let (bobby, mut phone) = bobby_with_phone(&server).await;
    let (client, secret) = app_requiring(&server, "Contoso Payroll", Some("passwordlessMfa")).await;

    let (browser, number_page) = sign_in_to(&server, &client, &bobby.upn).await;
    let location = approve_on_phone(&browser, &mut phone, &number_page).await;

    assert!(
        location.starts_with("http://localhost:9/callback"),
        "{location}"
    );
    let claims = id_token_claims(&redeem(&server, &client, &secret, &location).await);
    assert_eq!(claims["acr"], ACR_PASSWORDLESS);
    assert_eq!(claims["amr"], json!(["swk", "pin", "mfa"]));
}

#[tokio::test]
async fn downgrade_an_app_requiring_passwordless_mfa_refuses_password_and_push_without_pushing() {
    let server = TestServer::start().await;
    // Guy has a password and the authenticator app for MFA push, but not phone sign-in.
    let guy = Person::new(&server, "guy", "Guy Oz").await;
    let user = server.latchkey.directory.find_user(&guy.upn).await.unwrap();
    set_password(&server, &user.id).await;
    let phone = Phone::register(&guy, "Guy's phone").await;
    let (client, _) = app_requiring(&server, "Contoso Payroll", Some("passwordlessMfa")).await;

    let (browser, page) = sign_in_to(&server, &client, &guy.upn).await;

    assert_eq!(page.status, 403, "{}", page.body);
    let text = unescape(&page.body);
    assert!(
        text.contains(
            "Contoso Payroll requires passwordless MFA. Your account has no way of signing in \
             that meets it. To use Contoso Payroll, set up phone sign-in in the Authenticator \
             app or add a passkey or security key on Security info, then sign in again."
        ),
        "{text}"
    );
    assert!(
        !text.contains("Enter password"),
        "no password prompt: {text}"
    );
    assert_eq!(pending_requests(&phone).await, 0, "nothing was pushed");
    // The sign-in is over: a password posted now finds none.
    let posted = post_credential(&browser, "x", "password", "correct horse battery").await;
    assert!(posted.location.is_none_or(|l| !l.contains("code=")));
    assert_eq!(pending_requests(&phone).await, 0, "still nothing pushed");
    let log = sign_in_log(&server, &guy.upn).await;
    assert_failure(
        &log[0],
        900050,
        "The sign-in does not meet the authentication strength the application requires.",
    );
    assert_eq!(log[0]["appDisplayName"], "Contoso Payroll", "{}", log[0]);
}

#[tokio::test]
async fn downgrade_a_password_posted_past_the_strength_page_is_refused_unchecked() {
    let server = TestServer::start().await;
    let (bobby, phone) = bobby_with_phone(&server).await;
    let (client, _) = app_requiring(&server, "Contoso Payroll", Some("passwordlessMfa")).await;
    let (browser, number_page) = sign_in_to(&server, &client, &bobby.upn).await;
    phone.only_request().await;

    // "I can't use my app right now": the next page must offer no pass.
    let other = browser
        .post(
            "/login/other-way",
            &[("csrf", &number_page.csrf()), ("method", "cant-use-app")],
        )
        .await;
    let page = browser.follow(other).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        !page.body.contains("name=\"secret\""),
        "no pass or password field: {}",
        page.body
    );
    // Bobby's own pass, posted anyway, is not even checked, and no code follows.
    let pass = server
        .pass(
            &server
                .latchkey
                .directory
                .find_user(&bobby.upn)
                .await
                .unwrap()
                .id,
        )
        .await;
    let answer = post_credential(&browser, &page.csrf(), "pass", &pass).await;
    assert_eq!(answer.status, 401, "{}", answer.body);
    assert!(answer.location.is_none(), "no redirect to the app");
    assert!(
        unescape(&answer.body).contains("Contoso Payroll requires passwordless MFA."),
        "{}",
        answer.body
    );
}

#[tokio::test]
async fn downgrade_an_app_requiring_phishing_resistant_mfa_refuses_phone_sign_in_with_the_explaining_page()
 {
    let server = TestServer::start().await;
    let (bobby, phone) = bobby_with_phone(&server).await;
    let (client, _) = app_requiring(&server, "Contoso Payroll", Some("phishingResistantMfa")).await;

    let (_, page) = sign_in_to(&server, &client, &bobby.upn).await;

    assert_eq!(page.status, 403, "{}", page.body);
    let text = unescape(&page.body);
    assert!(
        text.contains("This application needs a stronger sign-in"),
        "{text}"
    );
    assert!(
        text.contains(
            "Contoso Payroll requires phishing-resistant MFA. Your account has no way of signing \
             in that meets it. To use Contoso Payroll, add a passkey or security key on Security \
             info, then sign in again."
        ),
        "{text}"
    );
    assert_eq!(pending_requests(&phone).await, 0, "no phone notification");
    let log = sign_in_log(&server, &bobby.upn).await;
    assert_failure(
        &log[0],
        900050,
        "The sign-in does not meet the authentication strength the application requires.",
    );
    assert!(
        log[0]["status"]["additionalDetails"]
            .as_str()
            .unwrap()
            .contains(ACR_PHISHING_RESISTANT),
        "{}",
        log[0]
    );
}

#[tokio::test]
async fn downgrade_a_phone_session_is_stepped_up_for_phishing_resistant_mfa_without_a_code_or_sign_out()
 {
    let server = TestServer::start().await;
    crate::passkeys::passkeys_enabled(&server).await;
    let (bobby, mut phone) = bobby_with_phone(&server).await;
    let (browser, _, _) = phone_signed_in_browser(&server, &mut phone, &bobby.upn).await;
    let (payroll, _) =
        app_requiring(&server, "Contoso Payroll", Some("phishingResistantMfa")).await;

    let answer = browser
        .get(&authorize_url(&server.base, &payroll, None, &[]))
        .await;
    let location = answer.location.clone().expect("a redirect");
    assert_eq!(
        location, "/login",
        "to the step-up, not the app: {location}"
    );
    let page = browser.follow(answer).await;

    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        element_text(&page.body, "strength-reason").as_deref(),
        Some(
            "Contoso Payroll requires phishing-resistant MFA. You signed in with the \
             Authenticator app, which doesn't meet it. Sign in with a passkey or security key."
        ),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("id=\"passkey-sign-in\""),
        "the passkey route is offered: {}",
        page.body
    );
    assert!(page.body.contains(&bobby.upn), "the user name is known");
    assert!(
        !page.body.contains("name=\"username\"") && !page.body.contains("name=\"secret\""),
        "neither the user name nor a pass is asked for: {}",
        page.body
    );
    assert_eq!(pending_requests(&phone).await, 0, "no phone notification");
    // Not signed out: the phone session still opens My Apps.
    let apps = browser.follow(browser.get("/myapps").await).await;
    assert!(apps.body.contains("Bobby Smith"), "{}", apps.body);
    // And asking again still gives no code.
    let again = browser
        .get(&authorize_url(&server.base, &payroll, None, &[]))
        .await;
    assert!(
        again.location.is_some_and(|l| !l.contains("code=")),
        "no code for a phone session"
    );
}

#[tokio::test]
async fn downgrade_prompt_none_with_a_session_too_weak_answers_interaction_required() {
    let server = TestServer::start().await;
    let (bobby, mut phone) = bobby_with_phone(&server).await;
    let (browser, _, _) = phone_signed_in_browser(&server, &mut phone, &bobby.upn).await;
    let (payroll, _) =
        app_requiring(&server, "Contoso Payroll", Some("phishingResistantMfa")).await;

    let answer = browser
        .get(&authorize_url(
            &server.base,
            &payroll,
            None,
            &[("prompt", "none")],
        ))
        .await;

    let location = answer.location.expect("a redirect to the app");
    assert!(
        location.starts_with("http://localhost:9/callback"),
        "{location}"
    );
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("interaction_required")
    );
    assert_eq!(query_param(&location, "code"), None);
    assert_eq!(query_param(&location, "state").as_deref(), Some("st4te"));
}

#[tokio::test]
async fn downgrade_acr_values_asking_for_phishing_resistant_mfa_is_enforced_on_an_app_without_a_requirement()
 {
    let server = TestServer::start().await;
    let (bobby, mut phone) = bobby_with_phone(&server).await;
    let (browser, wiki, _) = phone_signed_in_browser(&server, &mut phone, &bobby.upn).await;

    // The same application, now asking for phishing-resistant MFA in this request.
    let answer = browser
        .get(&authorize_asking(&server, &wiki, ACR_PHISHING_RESISTANT))
        .await;
    assert_eq!(answer.location.as_deref(), Some("/login"), "no code");
    let page = browser.follow(answer).await;
    assert!(
        element_text(&page.body, "strength-reason")
            .is_some_and(|t| t.starts_with("Contoso Wiki requires phishing-resistant MFA.")),
        "{}",
        page.body
    );

    // A fresh browser asking the same is refused with the page: Bobby has no passkey.
    let fresh = server.browser();
    let page = username_step(
        &fresh,
        &authorize_asking(&server, &wiki, ACR_PHISHING_RESISTANT),
        &bobby.upn,
    )
    .await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert_eq!(pending_requests(&phone).await, 0, "no phone notification");
}

#[tokio::test]
async fn acr_values_asking_for_passwordless_mfa_gets_phone_sign_in_and_that_acr() {
    let server = TestServer::start().await;
    let (bobby, mut phone) = bobby_with_phone(&server).await;
    let (client, secret) = app_requiring(&server, "Contoso Wiki", None).await;
    let browser = server.browser();
    // Values Latchkey does not define come first and are skipped.
    let authorize = authorize_asking(
        &server,
        &client,
        &format!("urn:other:gold  {ACR_PASSWORDLESS} {ACR_MFA}"),
    );
    let number_page = username_step(&browser, &authorize, &bobby.upn).await;
    let location = approve_on_phone(&browser, &mut phone, &number_page).await;
    let claims = id_token_claims(&redeem(&server, &client, &secret, &location).await);
    assert_eq!(claims["acr"], ACR_PASSWORDLESS);
}

#[tokio::test]
async fn an_unknown_acr_value_is_ignored_and_a_pass_still_signs_in() {
    let server = TestServer::start().await;
    let (client, secret) = app_requiring(&server, "Contoso Wiki", None).await;
    let (_, pass) = server.bobby_with_pass().await;
    let authorize = authorize_asking(
        &server,
        &client,
        "urn:other:gold http://example/loa3 \u{7f}junk",
    );
    let claims = claims_after_a_pass(&server, &client, &secret, &authorize, &pass).await;
    // The acr tells the method actually used: a pass is multi-factor, not passwordless.
    assert_eq!(claims["acr"], ACR_MFA);
    assert_eq!(claims["amr"], json!(["otp"]));
}

#[tokio::test]
async fn oversized_acr_values_is_refused_as_an_invalid_request() {
    let server = TestServer::start().await;
    let (client, _) = app_requiring(&server, "Contoso Wiki", None).await;
    let browser = server.browser();
    let long = format!("{ACR_MFA} {}", "x".repeat(2100));
    let answer = browser
        .get(&authorize_asking(&server, &client, &long))
        .await;
    let location = answer.location.expect("an error redirect");
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("invalid_request")
    );
    assert!(
        query_param(&location, "error_description").is_some_and(|d| d.contains("acr_values")),
        "{location}"
    );
}

#[tokio::test]
async fn a_pass_meets_mfa_but_a_password_alone_does_not() {
    let server = TestServer::start().await;
    let (client, secret) = app_requiring(&server, "Contoso Expenses", Some("mfa")).await;
    // A pass: offered, and multi-factor.
    let (_, pass) = server.bobby_with_pass().await;
    let authorize = authorize_url(&server.base, &client, None, &[]);
    let claims = claims_after_a_pass(&server, &client, &secret, &authorize, &pass).await;
    assert_eq!(claims["acr"], ACR_MFA);

    // A password with no authenticator app to follow it: right, but not enough.
    let carol = server.user("carol", "Carol Jones").await;
    set_password(&server, &carol).await;
    let browser = server.browser();
    username_step(&browser, &authorize, "carol@contoso.example").await;
    let password = browser.get("/login?method=password").await;
    assert!(
        password.body.contains("Enter password"),
        "{}",
        password.body
    );
    let answer = post_credential(
        &browser,
        &password.csrf(),
        "password",
        "correct horse battery",
    )
    .await;
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert!(
        unescape(&answer.body).contains("Contoso Expenses requires multifactor authentication."),
        "{}",
        answer.body
    );
    let log = sign_in_log(&server, "carol@contoso.example").await;
    assert_eq!(log[0]["status"]["errorCode"], 900050, "{}", log[0]);
    // Not signed in: My Apps asks for a sign-in.
    let apps = browser.get("/myapps").await;
    assert!(apps.location.is_some(), "{}", apps.body);
}

#[tokio::test]
async fn the_admin_api_sets_and_clears_a_strength_and_refuses_an_unknown_one_clearly() {
    let server = TestServer::start().await;
    let (client, _) = app_requiring(&server, "Contoso Wiki", None).await;
    let path = format!("/applications/{client}/requiredStrength");

    let (status, app) = server
        .api_call(
            Method::PUT,
            &path,
            Some(json!({"requiredStrength": "phishingResistantMfa"})),
        )
        .await;
    assert_eq!(status, 200, "{app}");
    assert_eq!(app["requiredStrength"], "phishingResistantMfa");
    assert_eq!(
        application(&server, &client).await["requiredStrength"],
        "phishingResistantMfa"
    );

    for bad in [
        json!({"requiredStrength": "gold"}),
        json!({"requiredStrength": "x".repeat(5000)}),
    ] {
        let (status, error) = server.api_call(Method::PUT, &path, Some(bad)).await;
        assert_eq!(status, 400, "{error}");
        let message = error["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("requiredStrength")
                && message.contains("mfa, passwordlessMfa, phishingResistantMfa"),
            "{error}"
        );
        assert!(
            message.len() < 300,
            "the message does not echo a huge value: {error}"
        );
    }
    let (status, error) = server
        .api_call(Method::PUT, &path, Some(json!({"requiredStrength": 3})))
        .await;
    assert_eq!(status, 400, "{error}");
    let (status, error) = server
        .api_call(
            Method::POST,
            "/applications",
            Some(
                json!({"displayName": "X", "redirectUris": ["https://x.example/cb"],
                        "requiredStrength": "gold"}),
            ),
        )
        .await;
    assert_eq!(status, 400, "{error}");
    let (status, _) = server
        .api_call(
            Method::PUT,
            "/applications/no-such-app/requiredStrength",
            Some(json!({"requiredStrength": "mfa"})),
        )
        .await;
    assert_eq!(status, 404);
    // Unchanged by the refusals; then cleared with null.
    assert_eq!(
        application(&server, &client).await["requiredStrength"],
        "phishingResistantMfa"
    );
    let (status, app) = server
        .api_call(Method::PUT, &path, Some(json!({"requiredStrength": null})))
        .await;
    assert_eq!(status, 200, "{app}");
    assert!(app.get("requiredStrength").is_none(), "{app}");
}

#[tokio::test]
async fn discovery_lists_the_acr_values_latchkey_issues() {
    let server = TestServer::start().await;
    let discovery: Value =
        reqwest::get(format!("{}/.well-known/openid-configuration", server.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let acrs = discovery["acr_values_supported"].as_array().unwrap();
    for acr in [ACR_MFA, ACR_PASSWORDLESS, ACR_PHISHING_RESISTANT] {
        assert!(acrs.contains(&json!(acr)), "{discovery}");
    }
}

#[tokio::test]
async fn an_administrator_chooses_an_applications_strength_in_the_console() {
    let server = TestServer::start().await;
    let people = latchkey::demo::seed_demo_tenant(&server.latchkey)
        .await
        .unwrap();
    let admin = crate::console::admin_browser(&server, &people).await;
    let (client, _) = app_requiring(&server, "Contoso Payroll", None).await;
    let page = admin.get("/admin/applications").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("Phishing-resistant MFA"),
        "{}",
        page.body
    );
    let form = format!("/admin/applications/{client}/strength");

    let saved = admin
        .post(
            &form,
            &[("csrf", &page.csrf()), ("strength", "phishingResistantMfa")],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let page = admin.follow(saved).await;
    assert!(page.body.contains("Saved."), "{}", page.body);
    assert_eq!(
        application(&server, &client).await["requiredStrength"],
        "phishingResistantMfa"
    );
    assert!(
        page.body
            .contains("<option value=\"phishingResistantMfa\" selected>"),
        "the page shows the choice: {}",
        page.body
    );

    // A value the form never offers, a forged form and an unknown application change nothing.
    let refused = admin
        .post(&form, &[("csrf", &page.csrf()), ("strength", "gold")])
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        unescape(&refused.body).contains("\"gold\" is not an authentication strength"),
        "{}",
        refused.body
    );
    let forged = admin
        .post(&form, &[("csrf", "forged"), ("strength", "")])
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    let unknown = admin
        .post(
            "/admin/applications/no-such-app/strength",
            &[("csrf", &page.csrf()), ("strength", "mfa")],
        )
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert_eq!(
        application(&server, &client).await["requiredStrength"],
        "phishingResistantMfa"
    );

    // None clears it.
    let cleared = admin
        .post(&form, &[("csrf", &page.csrf()), ("strength", "")])
        .await;
    assert_eq!(cleared.status, 303, "{}", cleared.body);
    let app = application(&server, &client).await;
    assert!(app.get("requiredStrength").is_none(), "{app}");
}

#[tokio::test]
async fn push_fatigue_a_step_up_to_phone_sign_in_pushes_only_when_the_user_continues_and_replaces_the_session()
 {
    let server = TestServer::start().await;
    let (bobby, mut phone) = bobby_with_phone(&server).await;
    // Bobby's own browser is signed in with his Temporary Access Pass.
    let browser = &bobby.browser;
    let (client, secret) = app_requiring(&server, "Contoso Payroll", Some("passwordlessMfa")).await;
    let authorize = authorize_url(&server.base, &client, None, &[]);

    // Any site can send the browser here; that alone pushes nothing.
    let page = browser.get(&authorize).await;
    assert_eq!(page.location, None, "no code yet");
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        element_text(&page.body, "strength-reason").as_deref(),
        Some(
            "Contoso Payroll requires passwordless MFA. You signed in with a Temporary Access \
             Pass, which doesn't meet it. Sign in with the Authenticator app (phone sign-in) or \
             a passkey or security key."
        ),
        "{}",
        page.body
    );
    assert!(page.body.contains(&bobby.upn), "continues as Bobby");
    assert!(!page.body.contains("name=\"secret\""), "no pass asked for");
    assert_eq!(pending_requests(&phone).await, 0, "nothing pushed by a GET");

    // Continue: now the phone gets the request; approving it replaces the session.
    let next = browser
        .post(
            "/login/username",
            &[("csrf", &page.csrf()), ("username", &bobby.upn)],
        )
        .await;
    let number_page = browser.follow(next).await;
    let location = approve_on_phone(browser, &mut phone, &number_page).await;
    let claims = id_token_claims(&redeem(&server, &client, &secret, &location).await);
    assert_eq!(claims["acr"], ACR_PASSWORDLESS);
    // The browser's session is the stronger one now: the next request gets a code at once.
    let again = browser.get(&authorize).await;
    assert!(
        again.location.is_some_and(|l| l.contains("code=")),
        "the stepped-up session answers directly"
    );
}

// Multi-threaded: the command line blocks this test's thread while the server answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_creates_an_app_with_a_strength_changes_it_and_refuses_an_unknown_one() {
    let server = TestServer::start().await;
    let data_dir = server.data_dir.path().to_str().expect("a UTF-8 path");
    let admin = |args: &[&str]| {
        let base = ["admin", "--url", &server.base, "--data-dir", data_dir];
        crate::support::run_latchkey(base.iter().chain(args))
    };
    let (code, out, err) = admin(&[
        "--json",
        "apps",
        "create",
        "Contoso Payroll",
        "--redirect-uri",
        "https://payroll.contoso.example/cb",
        "--required-strength",
        "passwordlessMfa",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let created: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(created["requiredStrength"], "passwordlessMfa", "{out}");
    let app = created["appId"].as_str().unwrap().to_string();

    let (code, out, err) = admin(&["apps", "strength", &app, "phishingResistantMfa"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("phishingResistantMfa"), "{out}");
    assert_eq!(
        application(&server, &app).await["requiredStrength"],
        "phishingResistantMfa"
    );

    let (code, out, err) = admin(&["apps", "strength", &app, "gold"]);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("gold"), "clap names the bad value: {err}");
    let (code, out, err) = admin(&["apps", "strength", &app, "none"]);
    assert_eq!(code, 0, "{out}{err}");
    let read = application(&server, &app).await;
    assert!(read.get("requiredStrength").is_none(), "{read}");
}

/// The whole step-up in Chromium with a virtual security key: a phone-signed-in session, an
/// application that requires phishing-resistant MFA, the page that says why, the key, and the
/// application's code (whose ID token says how the user signed in).
#[tokio::test]
async fn downgrade_a_phone_session_steps_up_to_a_security_key_in_chromium_and_the_app_gets_its_code()
 {
    let Some(chromium) = crate::browser::Chromedriver::start().await else {
        return;
    };
    let server = TestServer::start_with(crate::passkeys::on_localhost).await;
    crate::passkeys::passkeys_enabled(&server).await;
    let (window, phone, _key) = crate::passkeys_browser::phone_signed_in_with_a_security_key(
        &chromium,
        &server,
        "strength-step-up",
    )
    .await;
    let (client, secret) =
        app_requiring(&server, "Contoso Payroll", Some("phishingResistantMfa")).await;

    window
        .client
        .goto(&authorize_url(&window.base, &client, None, &[]))
        .await
        .expect("open /authorize");
    let text = window
        .wait_for_text("Contoso Payroll requires phishing-resistant MFA.")
        .await;
    assert!(
        text.contains(
            "You signed in with the Authenticator app, which doesn't meet it. Sign in with a \
             passkey or security key."
        ),
        "{text}"
    );
    window.shots("02-step-up-page").await;
    assert_eq!(pending_requests(&phone).await, 0, "no phone notification");

    window.click("#passkey-sign-in").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let landed = loop {
        let url = window.client.current_url().await.expect("url").to_string();
        if url.starts_with("http://localhost:9/callback") {
            break url;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never sent to the application; the page says:\n{}",
            window.text().await
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let claims = id_token_claims(&redeem(&server, &client, &secret, &landed).await);
    assert_eq!(claims["acr"], ACR_PHISHING_RESISTANT);
    assert_eq!(claims["amr"], json!(["hwk", "user", "mfa"]));
    // Not signed out along the way, and the session is the stronger one now.
    window.goto("/myapps").await;
    window.wait_for_text("Signed in as").await;
    window.shots("03-my-apps-after-the-step-up").await;
    window.close().await;
}

/// A refresh with a confidential client's credentials: the status and the answer.
async fn refresh(server: &TestServer, client: &str, secret: &str, token: &str) -> (u16, Value) {
    token_request(
        &server.base,
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
        Some((client, secret)),
    )
    .await
}

#[tokio::test]
async fn orphaned_tokens_signing_out_after_a_step_up_and_a_prompt_login_revokes_what_every_sign_in_gave_out()
 {
    let server = TestServer::start().await;
    let (bobby, mut phone) = bobby_with_phone(&server).await;
    // Bobby's browser is signed in with his Temporary Access Pass; the wiki gets tokens
    // through that session.
    let browser = &bobby.browser;
    let (wiki, wiki_secret) = app_requiring(&server, "Contoso Wiki", None).await;
    let wiki_authorize = authorize_url(&server.base, &wiki, None, &[]);
    let answer = browser.get(&wiki_authorize).await;
    let location = answer.location.expect("a code from the pass session");
    let first = redeem(&server, &wiki, &wiki_secret, &location).await;

    // Payroll steps the session up to phone sign-in.
    let (payroll, payroll_secret) =
        app_requiring(&server, "Contoso Payroll", Some("passwordlessMfa")).await;
    let payroll_authorize = authorize_url(&server.base, &payroll, None, &[]);
    let page = browser.follow(browser.get(&payroll_authorize).await).await;
    let next = browser
        .post(
            "/login/username",
            &[("csrf", &page.csrf()), ("username", &bobby.upn)],
        )
        .await;
    let number_page = browser.follow(next).await;
    let location = approve_on_phone(browser, &mut phone, &number_page).await;
    let second = redeem(&server, &payroll, &payroll_secret, &location).await;

    // The wiki's tokens from before the step-up still refresh: they moved to the new session.
    let (status, refreshed) = refresh(
        &server,
        &wiki,
        &wiki_secret,
        first["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(
        status, 200,
        "the step-up does not cut the wiki off: {refreshed}"
    );

    // The wiki asks Bobby to sign in again (prompt=login), in the same browser.
    let login_authorize = authorize_url(&server.base, &wiki, None, &[("prompt", "login")]);
    let number_page = username_step(browser, &login_authorize, &bobby.upn).await;
    let location = approve_on_phone(browser, &mut phone, &number_page).await;
    let third = redeem(&server, &wiki, &wiki_secret, &location).await;

    // Signing out revokes what all three sign-ins gave out.
    let signed_in = browser.get("/mysecurityinfo").await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);
    let out = browser
        .post("/signout", &[("csrf", &signed_in.csrf())])
        .await;
    assert!(out.status < 400, "{} {}", out.status, out.body);
    for (what, client, secret, token) in [
        ("the pass session's", &wiki, &wiki_secret, &refreshed),
        ("the step-up's", &payroll, &payroll_secret, &second),
        ("the prompt=login sign-in's", &wiki, &wiki_secret, &third),
    ] {
        let (status, body) = refresh(
            &server,
            client,
            secret,
            token["refresh_token"].as_str().unwrap(),
        )
        .await;
        assert_eq!(status, 400, "{what} refresh token is revoked: {body}");
        assert_eq!(body["error"], "invalid_grant", "{body}");
    }
}
