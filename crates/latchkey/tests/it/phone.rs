//! Phone sign-in, end to end: the security-info page and the authenticator (the real library,
//! over real HTTP and WebSocket connections) through the lab's Steps 2 to 5.

use base64::Engine;
use latchkey_authenticator::Authenticator;
use latchkey_protocol::ActivationLink;
use latchkey_protocol::wire::{
    AnswerOutcome, ApprovalKind, ApprovalRequest, Decision, DeviceEvent,
};
use reqwest::Method;
use serde_json::json;

use crate::support::{Browser, Page, TestServer, assert_signed_in_as, placed_server, query_param};

pub const AUTHENTICATOR: &str =
    "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/authenticator";
pub const PIN: &str = "246810";

/// Undoes the HTML escaping of text taken from a page.
pub fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find('&') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let Some(end) = after.find(';') else {
            out.push_str(after);
            return out;
        };
        let entity = &after[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") || e.starts_with("#X") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => out.push(c),
            None => out.push_str(&after[..=end]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The text of the element with `id`, unescaped.
pub fn element_text(body: &str, id: &str) -> Option<String> {
    let marker = format!("id=\"{id}\">");
    let start = body.find(&marker)? + marker.len();
    let end = body[start..].find('<')? + start;
    Some(unescape(&body[start..end]))
}

/// The number a waiting page shows.
pub fn number_on(page: &Page) -> u8 {
    element_text(&page.body, "number")
        .unwrap_or_else(|| panic!("no number on the page: {}", page.body))
        .trim()
        .parse()
        .expect("a two-digit number")
}

pub fn another_number(n: u8) -> u8 {
    if n == 99 { 10 } else { n + 1 }
}

/// A user signed in to the security-info page in a browser of their own.
pub struct Person {
    pub upn: String,
    pub browser: Browser,
}

impl Person {
    /// Creates the user, gives them a pass and signs them in to /mysecurityinfo.
    pub async fn new(server: &TestServer, local: &str, name: &str) -> Person {
        let user = server.user(local, name).await;
        let pass = server.pass(&user).await;
        let upn = format!("{local}@contoso.example");
        let browser = server.browser();
        let login = browser.follow(browser.get("/mysecurityinfo").await).await;
        let done = browser.sign_in_with_pass(login, &upn, &pass).await;
        let page = browser.follow(done).await;
        assert!(page.body.contains("Security info"), "{}", page.body);
        Person { upn, browser }
    }

    /// Security info › Add method › Authenticator app: the page with the QR code.
    pub async fn start_adding_the_app(&self) -> Page {
        let info = self.browser.get("/mysecurityinfo").await;
        let page = self
            .browser
            .post("/mysecurityinfo/authenticator", &[("csrf", &info.csrf())])
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        page
    }
}

pub fn activation_link(page: &Page) -> ActivationLink {
    let text = element_text(&page.body, "activation-link").expect("the link is on the page");
    ActivationLink::parse(&text).expect("a valid activation link")
}

/// The PNG picture of the QR code the page offers to save.
pub fn qr_png(page: &Page) -> Vec<u8> {
    let marker = "href=\"data:image/png;base64,";
    let start = page.body.find(marker).expect("a QR picture") + marker.len();
    let end = page.body[start..].find('"').unwrap() + start;
    base64::engine::general_purpose::STANDARD
        .decode(unescape(&page.body[start..end]))
        .expect("base64 PNG")
}

/// The activation page's progress address, from the QR page's "Next" link.
pub fn progress_path(page: &Page) -> String {
    let marker = "data-next-url=\"";
    let start = page.body.find(marker).unwrap() + marker.len();
    let end = page.body[start..].find('"').unwrap() + start;
    unescape(&page.body[start..end])
}

/// A device with the account registered (test notification approved), and its home folder.
pub struct Phone {
    pub app: Authenticator,
    pub account: usize,
    pub home: tempfile::TempDir,
}

impl Phone {
    /// Adds the authenticator from the QR code and approves the test notification with the
    /// number the security-info page shows.
    pub async fn register(person: &Person, device_name: &str) -> Phone {
        let page = person.start_adding_the_app().await;
        let link = ActivationLink::parse(
            &latchkey_authenticator::qr::decode(&qr_png(&page)).expect("the QR code decodes"),
        )
        .expect("the QR code holds an activation link");
        assert_eq!(link, activation_link(&page), "QR code and text agree");
        let home = tempfile::tempdir().unwrap();
        let mut app = Authenticator::open(home.path()).unwrap();
        let (account, test) = app.add(&link, device_name).await.expect("activation");
        assert_eq!(test.kind, ApprovalKind::RegistrationTest);
        let progress = person.browser.get(&progress_path(&page)).await;
        let number = number_on(&progress);
        let outcome = app
            .respond(account, &test, Decision::Approve, Some(number), None)
            .await
            .expect("test answered");
        assert_eq!(outcome, AnswerOutcome::Approved);
        let done = person.browser.get(&progress_path(&page)).await;
        assert!(
            done.body.contains("Authenticator app registered"),
            "{}",
            done.body
        );
        Phone { app, account, home }
    }

    pub async fn with_phone_sign_in(person: &Person, device_name: &str) -> Phone {
        let mut phone = Phone::register(person, device_name).await;
        phone
            .app
            .enable_phone_sign_in(phone.account, PIN)
            .await
            .expect("phone sign-in enabled");
        phone
    }

    /// The one request waiting for this device.
    pub async fn only_request(&self) -> ApprovalRequest {
        let mut pending = self.app.pending(self.account).await.expect("pending");
        assert_eq!(pending.len(), 1, "{pending:?}");
        pending.remove(0)
    }

    /// Approves `request` with `number`, and asserts that the server took the approval.
    pub async fn approve(&mut self, request: &ApprovalRequest, number: u8) {
        assert_eq!(
            self.answer(request, Decision::Approve, Some(number))
                .await
                .expect("the approval is accepted"),
            AnswerOutcome::Approved
        );
    }

    pub async fn answer(
        &mut self,
        request: &ApprovalRequest,
        decision: Decision,
        number: Option<u8>,
    ) -> Result<AnswerOutcome, latchkey_authenticator::Error> {
        let pin = (request.kind == ApprovalKind::PhoneSignIn).then_some(PIN);
        self.app
            .respond(self.account, request, decision, number, pin)
            .await
    }
}

/// Opens My Apps in `browser` and types the user name; returns the page that follows.
pub async fn start_sign_in(browser: &Browser, upn: &str) -> Page {
    type_the_name_at(browser, "/myapps", upn).await
}

/// Opens `client_id`'s authorization request in `browser` and types `upn`; returns the page
/// that follows (the number page, for a user with phone sign-in).
pub async fn start_app_sign_in(
    server: &TestServer,
    browser: &Browser,
    client_id: &str,
    upn: &str,
) -> Page {
    let authorize = crate::support::authorize_url(&server.base, client_id, None, &[]);
    type_the_name_at(browser, &authorize, upn).await
}

/// Opens `url`, which leads to the user-name page, and types `upn` there.
async fn type_the_name_at(browser: &Browser, url: &str, upn: &str) -> Page {
    let login = browser.follow(browser.get(url).await).await;
    assert_eq!(login.status, 200, "{}", login.body);
    let next = browser
        .post(
            "/login/username",
            &[("csrf", &login.csrf()), ("username", upn)],
        )
        .await;
    browser.follow(next).await
}

/// Reloads the number page the way its script does, following where it leads.
pub async fn reload(browser: &Browser) -> Page {
    browser.follow(browser.get("/login").await).await
}

/// Asserts that the device's request was refused with the API error `code`.
pub fn expect_refusal<T: std::fmt::Debug>(
    result: Result<T, latchkey_authenticator::Error>,
    code: &str,
) {
    match result {
        Err(e) => assert_eq!(e.code(), Some(code), "{e}"),
        Ok(v) => panic!("expected {code}, got {v:?}"),
    }
}

/// Asserts that a sign-in log record is a failure with `error_code` and `reason`.
pub fn assert_failure(record: &serde_json::Value, error_code: u64, reason: &str) {
    assert_eq!(record["status"]["errorCode"], error_code, "{record}");
    assert_eq!(record["status"]["failureReason"], reason, "{record}");
}

pub async fn sign_in_log(server: &TestServer, upn: &str) -> Vec<serde_json::Value> {
    let (_, log) = server
        .api_call(Method::GET, &format!("/auditLogs/signIns?user={upn}"), None)
        .await;
    log["value"].as_array().cloned().unwrap_or_default()
}

pub async fn set_features(server: &TestServer, state: &str) {
    let setting =
        json!({"state": state, "includeTarget": {"targetType": "group", "id": "all_users"}});
    let (status, body) = server
        .api_call(
            Method::PATCH,
            AUTHENTICATOR,
            Some(json!({"featureSettings": {
                "numberMatchingRequiredState": {"state": "enabled", "includeTarget": {"targetType": "group", "id": "all_users"}},
                "displayAppInformationRequiredState": setting,
                "displayLocationInformationRequiredState": setting}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// What an application got from a phone sign-in: its credentials, the tokens, the request the
/// device answered and the number page the browser showed.
pub struct AppSignIn {
    pub client_id: String,
    pub secret: String,
    /// The authorization code the browser carried back (spent by now).
    pub code: String,
    pub tokens: serde_json::Value,
    pub request: ApprovalRequest,
    pub number_page: Page,
}

/// Registers a confidential application, signs `upn` in to it by phone (the device approves
/// the number the page shows) and redeems the code at the token endpoint.
pub async fn phone_sign_in_to_app(server: &TestServer, phone: &mut Phone, upn: &str) -> AppSignIn {
    let (client_id, secret) = server.confidential_app("ES256").await;
    let browser = server.browser();
    let number_page = start_app_sign_in(server, &browser, &client_id, upn).await;
    let request = phone.only_request().await;
    phone
        .answer(&request, Decision::Approve, Some(number_on(&number_page)))
        .await
        .unwrap();
    let location = browser
        .get("/login")
        .await
        .location
        .expect("redirect to the application");
    let code = query_param(&location, "code").expect("code");
    let (status, tokens) = crate::support::token_request(
        &server.base,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://localhost:9/callback"),
        ],
        Some((&client_id, &secret)),
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    AppSignIn {
        client_id,
        secret,
        code,
        tokens,
        request,
        number_page,
    }
}

#[tokio::test]
async fn lab_steps_2_to_5_register_enable_and_sign_in_to_my_apps_by_number_matching() {
    let Some(server) = placed_server().await else {
        return;
    };

    // Step 2: Bobby adds the authenticator from the QR picture and approves the test.
    let bobby = Person::new(&server, "bobby", "Bobby Smith").await;
    let mut phone = Phone::register(&bobby, "Bobby's phone").await;
    let info = bobby.browser.get("/mysecurityinfo").await;
    assert!(
        info.body.contains("Authenticator app — MFA push"),
        "{}",
        info.body
    );
    assert!(
        unescape(&info.body).contains("Bobby's phone"),
        "{}",
        info.body
    );
    // Step 2 #5: enable phone sign-in in the app, with a device PIN.
    phone
        .app
        .enable_phone_sign_in(phone.account, PIN)
        .await
        .unwrap();
    let info = bobby.browser.get("/mysecurityinfo").await;
    assert!(
        info.body.contains("Authenticator app — Passwordless"),
        "{}",
        info.body
    );

    // Step 3: a fresh browser, the UPN, and a number instead of a password.
    let browser = server.browser();
    let mut stream = phone.app.connect(phone.account).await.unwrap();
    let page = start_sign_in(&browser, &bobby.upn).await;
    assert!(
        page.body.contains("Approve sign in request"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("Open your authenticator app, and enter the number shown to sign in.")
    );
    assert!(page.body.contains("Use your password instead"));
    assert!(page.body.contains("Other ways to sign in"));
    assert!(unescape(&page.body).contains("I can't use my authenticator app right now"));
    let number = number_on(&page);
    assert!((10..=99).contains(&number));
    let Some(DeviceEvent::Request { request }) = stream.next().await else {
        panic!("the live channel delivers the request");
    };
    assert_eq!(request.kind, ApprovalKind::PhoneSignIn);
    assert_eq!(request.user_principal_name, bobby.upn);
    // Latchkey's default shows both (Entra's is off); the page still waits.
    assert_eq!(request.application.as_deref(), Some("My Apps"));
    assert_eq!(request.location.as_deref(), Some("Private network"));
    let waiting = reload(&browser).await;
    assert_eq!(
        number_on(&waiting),
        number,
        "the number stays the same while waiting"
    );
    let status = browser.get("/login/status").await;
    assert!(status.body.contains("\"pending\":true"), "{}", status.body);
    phone.approve(&request, number).await;
    let status = browser.get("/login/status").await;
    assert!(status.body.contains("\"pending\":false"), "{}", status.body);
    let apps = reload(&browser).await;
    assert_signed_in_as(&apps, "Bobby Smith");

    // Step 4: the administrator turns application name and location off, then on.
    set_features(&server, "disabled").await;
    let browser = server.browser_from("81.2.69.160");
    start_sign_in(&browser, &bobby.upn).await;
    let Some(DeviceEvent::Request { request }) = stream.next().await else {
        panic!("request");
    };
    assert_eq!(request.application, None);
    assert_eq!(request.location, None);
    phone.answer(&request, Decision::Deny, None).await.unwrap();
    set_features(&server, "enabled").await;

    // Step 5: from an address the database places in London, through the trusted proxy.
    let browser = server.browser_from("81.2.69.160");
    let page = start_sign_in(&browser, &bobby.upn).await;
    let Some(DeviceEvent::Request { request }) = stream.next().await else {
        panic!("request");
    };
    assert_eq!(request.application.as_deref(), Some("My Apps"));
    let place = request.location.clone().unwrap();
    assert!(place.starts_with("London"), "{place}");
    assert!(
        request
            .location_attribution
            .as_deref()
            .unwrap()
            .contains("db-ip.com")
    );
    phone
        .answer(&request, Decision::Approve, Some(number_on(&page)))
        .await
        .unwrap();
    let apps = reload(&browser).await;
    assert_signed_in_as(&apps, "Bobby Smith");
    stream.close().await;

    // The sign-in log tells what happened, from where.
    let log = sign_in_log(&server, &bobby.upn).await;
    let phone_sign_ins: Vec<_> = log
        .iter()
        .filter(|r| r["authenticationMethod"] == "authenticator")
        .collect();
    assert_eq!(phone_sign_ins.len(), 3, "{log:?}");
    assert_eq!(phone_sign_ins[0]["status"]["errorCode"], 0);
    assert_eq!(phone_sign_ins[0]["location"]["city"], "London");
    assert_eq!(phone_sign_ins[0]["appDisplayName"], "My Apps");
    assert_eq!(
        phone_sign_ins[0]["authenticationDetails"][0]["authenticationMethodDetail"],
        "Bobby's phone"
    );
    assert_eq!(phone_sign_ins[1]["status"]["errorCode"], 500121);
}

#[tokio::test]
async fn phone_sign_in_id_tokens_say_swk_pin_mfa_and_passwordless_acr() {
    let server = TestServer::start().await;
    let bobby = Person::new(&server, "bobby", "Bobby Smith").await;
    let mut phone = Phone::with_phone_sign_in(&bobby, "phone").await;
    let signed_in = phone_sign_in_to_app(&server, &mut phone, &bobby.upn).await;
    assert!(
        signed_in.number_page.body.contains("Contoso Expenses"),
        "the page names the app"
    );
    assert_eq!(
        signed_in.request.application.as_deref(),
        Some("Contoso Expenses")
    );
    let tokens = signed_in.tokens;
    let id_token = tokens["id_token"].as_str().unwrap();
    let payload = id_token.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["amr"], json!(["swk", "pin", "mfa"]));
    assert_eq!(claims["acr"], "urn:latchkey:acr:passwordless-mfa");
}

#[tokio::test]
async fn mfa_push_after_a_password_is_the_second_factor() {
    let server = TestServer::start().await;
    let guy = Person::new(&server, "guy", "Guy Oz").await;
    let user = server
        .latchkey
        .directory
        .find_user("guy@contoso.example")
        .await
        .unwrap();
    server
        .latchkey
        .directory
        .set_password(
            &latchkey_domain::log::Actor::system(),
            &user.id,
            &latchkey_domain::secret::Secret::new("correct horse battery"),
        )
        .await
        .unwrap();
    let mut phone = Phone::register(&guy, "Guy's phone").await;

    let browser = server.browser();
    let page = start_sign_in(&browser, &guy.upn).await;
    assert!(
        page.body.contains("Temporary Access Pass"),
        "no phone sign-in yet: {}",
        page.body
    );
    let password = browser.get("/login?method=password").await;
    let next = browser
        .post(
            "/login/credential",
            &[
                ("csrf", &password.csrf()),
                ("method", "password"),
                ("secret", "correct horse battery"),
            ],
        )
        .await;
    let page = browser.follow(next).await;
    assert!(
        page.body.contains("Approve sign in request"),
        "{}",
        page.body
    );
    let request = phone.only_request().await;
    assert_eq!(request.kind, ApprovalKind::MfaPush);
    phone
        .answer(&request, Decision::Approve, Some(number_on(&page)))
        .await
        .unwrap();
    let apps = reload(&browser).await;
    assert_signed_in_as(&apps, "Guy Oz");
    let log = sign_in_log(&server, &guy.upn).await;
    let steps = log[0]["authenticationDetails"].as_array().unwrap();
    assert_eq!(steps.len(), 2, "password, then the push: {log:?}");
    assert_eq!(steps[0]["authenticationMethod"], "Password");
}

/// A load generator (or an app on a host with several addresses) opens the live channel from
/// a local address of its choosing; the channel works as any other.
#[tokio::test]
async fn a_live_channel_opened_from_a_chosen_local_address_delivers_requests() {
    let server = TestServer::start().await;
    let bobby = Person::new(&server, "bobby", "Bobby Smith").await;
    let phone = Phone::with_phone_sign_in(&bobby, "phone").await;
    let local = "127.0.0.2".parse().unwrap();
    let mut stream = phone
        .app
        .client(phone.account)
        .unwrap()
        .connect_from(Some(local))
        .await
        .unwrap();
    let browser = server.browser();
    start_sign_in(&browser, &bobby.upn).await;
    let Some(DeviceEvent::Request { request }) = stream.next().await else {
        panic!("the request comes on the channel opened from {local}");
    };
    assert_eq!(request.kind, ApprovalKind::PhoneSignIn);
    assert_eq!(request.user_principal_name, bobby.upn);
}
