//! The phone app (`/authenticator/app/`, docs/phone-app.md) in headless Chromium at phone size
//! (390×844): installed from the server, activated from the security-info QR link, answering
//! the registration test and sign-in requests with number matching, and turning a Web Push
//! message into a notification in its service worker. The computer side is a second browser
//! (Chromium for the sign-in people watch, plain HTTP elsewhere). Every screen leaves a
//! screenshot in `artifacts/e2e/phone-app-*`.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use latchkey_domain::clock::{Clock, SystemClock, Timestamp};
use latchkey_protocol::ActivationLink;
use latchkey_protocol::wire::{AnswerOutcome, ApprovalKind, Decision};
use reqwest::Method;
use serde_json::{Value, json};

use crate::browser::{Chromedriver, PHONE, Window};
use crate::passkeys::on_localhost;
use crate::phone::{
    AUTHENTICATOR, Person, Phone, another_number, element_text, number_on, progress_path,
};
use crate::phone_app_push::status_says;
use crate::support::{Browser, Page, TestServer, assert_signed_in_as, geoip_databases};

pub(crate) const PASSWORD: &str = "correct horse battery";
pub(crate) const APP: &str = "/authenticator/app/";

/// The app's window: a Chromium of its own at phone size, on the server's public address
/// (`localhost`, a secure context for service workers and WebAuthn).
pub(crate) async fn phone(chromium: &Chromedriver, server: &TestServer, name: &str) -> Window {
    let mut window = chromium
        .window(server, &format!("phone-app-{name}"), None)
        .await;
    window.base = server.base.replace("127.0.0.1", "localhost");
    window.emulate(PHONE, true).await;
    window
}

/// Saves the phone's screen as `phone-app-{test}-{name}-phone.png`.
pub(crate) async fn snap(window: &Window, name: &str) {
    let png = window.full_page(PHONE).await;
    window.save(name, "phone", &png);
}

/// A server on `localhost` whose clock can be moved ahead of the real one (a browser signs
/// with the real time, so the server's stays near it).
pub(crate) struct AheadClock(pub(crate) AtomicI64);

impl Clock for AheadClock {
    fn now(&self) -> Timestamp {
        Timestamp(SystemClock.now().0 + self.0.load(Ordering::SeqCst))
    }
}

pub(crate) async fn server_with(clock: Arc<AheadClock>, lifetime: i64) -> TestServer {
    server_adjusted(clock, lifetime, |_| {}).await
}

/// [`server_with`], with one more change to the configuration.
pub(crate) async fn server_adjusted(
    clock: Arc<AheadClock>,
    lifetime: i64,
    adjust: impl FnOnce(&mut latchkey::config::Config),
) -> TestServer {
    let server = TestServer::builder()
        .clock(clock)
        .config(on_localhost)
        .config(adjust)
        .config(move |c| {
            c.lifetimes.approval_request_seconds = lifetime;
            // Places and coordinates when the DB-IP files are there (see `in_london`).
            c.geoip.databases = geoip_databases().unwrap_or_default();
            c.trusted_proxies = vec!["127.0.0.1/32".into()];
        })
        .start()
        .await;
    // Application name and location shown; "No, it's not me" reports.
    let all =
        json!({"state": "enabled", "includeTarget": {"targetType": "group", "id": "all_users"}});
    let (status, body) = server
        .api_call(
            Method::PATCH,
            AUTHENTICATOR,
            Some(json!({"featureSettings": {
                "numberMatchingRequiredState": all,
                "displayAppInformationRequiredState": all,
                "displayLocationInformationRequiredState": all,
                "reportSuspiciousActivityState": all}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    server
}

/// The activation link of the security-info page in its https form, the one the QR code
/// carries for phones (the older `latchkey://` form is turned into it).
pub(crate) fn app_link(page: &Page) -> String {
    let text = element_text(&page.body, "activation-link").expect("the link is on the page");
    let text = text.trim();
    if text.starts_with("http") {
        return text.to_string();
    }
    let link = ActivationLink::parse(text).expect("an activation link");
    format!(
        "{}/authenticator/app/activate#code={}",
        link.server, link.code
    )
}

/// A person with a password and a pass, signed in to security info over HTTP.
pub(crate) async fn person(server: &TestServer, local: &str, name: &str) -> Person {
    let person = Person::new(server, local, name).await;
    let user = server
        .latchkey
        .directory
        .find_user(&person.upn)
        .await
        .unwrap();
    server
        .latchkey
        .directory
        .set_password(
            &latchkey_domain::log::Actor::system(),
            &user.id,
            &latchkey_domain::secret::Secret::new(PASSWORD),
        )
        .await
        .unwrap();
    person
}

/// Adds `person`'s account to the app from the QR link and passes the registration test,
/// taking screenshots `01`–`03` when `shots`.
pub(crate) async fn add_account(window: &Window, person: &Person, device_name: &str, shots: bool) {
    let page = person.start_adding_the_app().await;
    window
        .client
        .goto(&app_link(&page))
        .await
        .expect("open the link");
    window.type_into("#device-name", device_name).await;
    if shots {
        snap(window, "01-activate").await;
    }
    window.click("#activate button[type=submit]").await;
    window.find("dl.request[data-kind=registration_test]").await;
    let number = number_on(&person.browser.get(&progress_path(&page)).await);
    assert_eq!(
        window.text_of("#request-account").await,
        person.upn,
        "the test names the account"
    );
    if shots {
        snap(window, "02-registration-test").await;
    }
    window.type_into("#number", &number.to_string()).await;
    window.click("#approve").await;
    window.find("#outcome[data-outcome=approved]").await;
    if shots {
        snap(window, "03-registered").await;
    }
    let done = person.browser.get(&progress_path(&page)).await;
    assert!(
        done.body.contains("Authenticator app registered"),
        "{}",
        done.body
    );
    window.click("#done").await;
    window.find("main[data-screen=home] li.account").await;
}

/// A password sign-in to My Apps over HTTP, up to the number page of an MFA push.
pub(crate) async fn password_sign_in(server: &TestServer, upn: &str) -> (Browser, u8) {
    let mut browser = server.browser();
    // The server's public address: where its redirects lead.
    browser.base = server.base.replace("127.0.0.1", "localhost");
    crate::phone::start_sign_in(&browser, upn).await;
    let password = browser.get("/login?method=password").await;
    let next = browser
        .post(
            "/login/credential",
            &[
                ("csrf", &password.csrf()),
                ("method", "password"),
                ("secret", PASSWORD),
            ],
        )
        .await;
    let page = browser.follow(next).await;
    (browser, number_on(&page))
}

/// Waits until the app shows a request of `kind` by itself (from its live channel, or the
/// `GET /requests` it falls back on).
pub(crate) async fn request_shown(window: &Window, kind: &str) {
    window
        .find(&format!(
            "main[data-screen=request] dl.request[data-kind={kind}]"
        ))
        .await;
}

pub(crate) async fn answered(window: &Window, outcome: &str) {
    window
        .find(&format!("#outcome[data-outcome={outcome}]"))
        .await;
}

/// The app's home screen after a request left it by itself, and what the app said.
pub(crate) async fn left_by_itself(window: &Window) -> String {
    window.find("main[data-screen=home]").await;
    status_text(window).await
}

/// What the app's status line says, once it says something.
pub(crate) async fn status_text(window: &Window) -> String {
    shown_text(window, "#status").await
}

/// The text of `css`, once it is shown (the app's messages wait hidden and empty).
pub(crate) async fn shown_text(window: &Window, css: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        // The element may be replaced while we read it; read it afresh each time.
        let said = match window.client.find(fantoccini::Locator::Css(css)).await {
            Ok(found) => found.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if !said.is_empty() {
            return said;
        }
        assert!(
            Instant::now() < deadline,
            "the app said nothing:\n{}",
            window.text().await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A script's result, run in the page with a callback (`arguments[0]`).
pub(crate) async fn run(window: &Window, script: &str) -> Value {
    window
        .client
        .execute_async(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("{script}: {e}"))
}

// ---- installability ----

pub(crate) fn png_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    assert_eq!(&png[12..16], b"IHDR");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    (width, height)
}

#[tokio::test]
async fn the_phone_app_is_installable_manifest_icons_service_worker_scope_and_offline_shell() {
    let server = TestServer::start_with(on_localhost).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |path: &str| http.get(format!("{}{path}", server.base)).send();

    // The address people type lands in the app's scope.
    let bare = get("/authenticator/app").await.unwrap();
    assert_eq!(bare.status(), 308);
    assert_eq!(bare.headers()["location"], APP);

    let shell = get(APP).await.unwrap();
    assert_eq!(shell.status(), 200);
    let csp = shell.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    for needed in [
        "manifest-src 'self'",
        "worker-src 'self'",
        "script-src 'self'",
    ] {
        assert!(csp.contains(needed), "{csp}");
    }
    assert!(!csp.contains("unsafe"), "no inline script or style: {csp}");
    let html = shell.text().await.unwrap();
    assert!(
        html.contains("<link rel=\"manifest\" href=\"/authenticator/app/manifest.webmanifest\">"),
        "{html}"
    );

    let manifest = get("/authenticator/app/manifest.webmanifest")
        .await
        .unwrap();
    assert_eq!(
        manifest.headers()["content-type"],
        "application/manifest+json"
    );
    let manifest: Value = manifest.json().await.unwrap();
    assert_eq!(manifest["scope"], APP);
    assert!(manifest["start_url"].as_str().unwrap().starts_with(APP));
    assert_eq!(manifest["display"], "standalone");
    assert!(!manifest["name"].as_str().unwrap().is_empty());
    assert!(!manifest["short_name"].as_str().unwrap().is_empty());
    assert!(manifest["theme_color"].is_string());
    let mut sizes = vec![];
    for icon in manifest["icons"].as_array().unwrap() {
        let answer = get(icon["src"].as_str().unwrap()).await.unwrap();
        assert_eq!(answer.status(), 200, "{icon}");
        assert_eq!(answer.headers()["content-type"], "image/png", "{icon}");
        let (width, height) = png_size(&answer.bytes().await.unwrap());
        assert_eq!(
            format!("{width}x{height}"),
            icon["sizes"].as_str().unwrap(),
            "{icon}"
        );
        sizes.push(width);
    }
    assert!(
        sizes.contains(&192) && sizes.contains(&512),
        "192 and 512: {sizes:?}"
    );
    let worker = get("/authenticator/app/sw.js").await.unwrap();
    assert_eq!(worker.headers()["content-type"], "text/javascript");

    let Some(chromium) = Chromedriver::start().await else {
        return;
    };
    let window = phone(&chromium, &server, "install").await;
    window.goto(APP).await;
    window.find("#no-accounts").await;
    let scope = run(
        &window,
        "const done = arguments[0]; navigator.serviceWorker.ready.then(r => done(r.scope));",
    )
    .await;
    assert_eq!(scope, json!(format!("{}{APP}", window.base)));
    // Chromium's own reading of the manifest: no errors, and the worker controls the page.
    let read = window.devtools("Page.getAppManifest", json!({})).await;
    assert_eq!(read["errors"], json!([]), "{read}");
    window.client.refresh().await.unwrap();
    window.find("#no-accounts").await;
    let controlled = run(
        &window,
        "arguments[0](!!navigator.serviceWorker.controller);",
    )
    .await;
    assert_eq!(
        controlled,
        json!(true),
        "the service worker controls the app"
    );
    snap(&window, "01-no-accounts").await;

    // Offline, the app still opens from the worker's cache.
    window.devtools("Network.enable", json!({})).await;
    window
        .devtools(
            "Network.emulateNetworkConditions",
            json!({"offline": true, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}),
        )
        .await;
    window.client.refresh().await.unwrap();
    window.find("#no-accounts").await;
    snap(&window, "02-offline").await;
    window.close().await;
}

// ---- activation, the registration test and MFA push ----

#[tokio::test]
async fn activation_from_the_qr_link_the_registration_test_and_an_approved_sign_in_in_another_browser()
 {
    let Some(chromium) = Chromedriver::start().await else {
        return;
    };
    let server = server_with(Arc::new(AheadClock(AtomicI64::new(0))), 90).await;
    let guy = person(&server, "guy", "Guy Oz").await;
    let window = phone(&chromium, &server, "activation").await;
    add_account(&window, &guy, "Guy's phone", true).await;
    // The code was in the fragment only, and is gone from the address bar.
    let address = run(&window, "arguments[0](location.href);").await;
    assert_eq!(address, json!(format!("{}{APP}", window.base)));
    let card = window.text_of("li.account").await;
    assert!(
        card.contains("Guy Oz") && card.contains("Guy's phone") && card.contains("MFA push"),
        "{card}"
    );
    snap(&window, "04-accounts").await;
    let info = guy.browser.get("/mysecurityinfo").await;
    assert!(
        crate::phone::unescape(&info.body).contains("Authenticator app (web) — MFA push"),
        "{}",
        info.body
    );
    assert!(
        crate::phone::unescape(&info.body).contains("Guy's phone"),
        "{}",
        info.body
    );

    // The computer: a password, then the number; the phone shows the request by itself.
    let computer = chromium
        .window(&server, "phone-app-activation-computer", None)
        .await;
    let mut computer = computer;
    computer.base = window.base.clone();
    computer.goto("/myapps").await;
    computer.type_and_enter("#username", &guy.upn).await;
    // The credential page has arrived (else the submit's navigation could land after the
    // next one and leave the pass page showing).
    computer.find("#secret").await;
    computer.goto("/login?method=password").await;
    computer.type_and_enter("#secret", PASSWORD).await;
    let number: u8 = computer.text_of("#number").await.trim().parse().unwrap();
    request_shown(&window, "mfa_push").await;
    assert_eq!(window.text_of("#request-application").await, "My Apps");
    assert!(!window.text_of("#request-location").await.is_empty());
    snap(&window, "05-sign-in-request").await;
    window.type_into("#number", &number.to_string()).await;
    snap(&window, "06-number-typed").await;
    window.click("#approve").await;
    answered(&window, "approved").await;
    snap(&window, "07-approved").await;
    let apps = computer.wait_for_text("Signed in as").await;
    assert!(apps.contains("Guy Oz"), "{apps}");
    computer.close().await;
    window.close().await;
}

#[tokio::test]
async fn deny_report_wrong_number_expiry_and_an_answer_from_another_device_in_the_phone_app() {
    let Some(chromium) = Chromedriver::start().await else {
        return;
    };
    let clock = Arc::new(AheadClock(AtomicI64::new(0)));
    let server = server_with(clock.clone(), 30).await;
    let guy = person(&server, "guy", "Guy Oz").await;
    let window = phone(&chromium, &server, "answers").await;
    add_account(&window, &guy, "Guy's phone", false).await;
    // A second device, the terminal authenticator (added now: reporting below signs Guy out
    // of security info).
    let mut other = Phone::register(&guy, "Guy's laptop").await;

    // Deny.
    let (browser, _) = password_sign_in(&server, &guy.upn).await;
    request_shown(&window, "mfa_push").await;
    window.click("#deny").await;
    answered(&window, "denied").await;
    snap(&window, "01-denied").await;
    let page = browser.follow(browser.get("/login").await).await;
    assert!(
        page.body.contains("You denied the sign-in request"),
        "{}",
        page.body
    );
    window.click("#done").await;

    // A wrong number ends the sign-in.
    let (browser, number) = password_sign_in(&server, &guy.upn).await;
    request_shown(&window, "mfa_push").await;
    window
        .type_into("#number", &another_number(number).to_string())
        .await;
    window.click("#approve").await;
    answered(&window, "wrong_number").await;
    snap(&window, "02-wrong-number").await;
    let page = browser.follow(browser.get("/login").await).await;
    assert!(
        crate::phone::unescape(&page.body).contains("didn't match"),
        "{}",
        page.body
    );
    window.click("#done").await;

    // Not a number: the app says so and sends nothing.
    let (browser, number) = password_sign_in(&server, &guy.upn).await;
    request_shown(&window, "mfa_push").await;
    window.type_into("#number", "4x").await;
    window.click("#approve").await;
    let said = shown_text(&window, "#answer-error").await;
    assert!(said.contains("two-digit"), "{said}");
    snap(&window, "03-not-a-number").await;

    // "No, it's not me", straight from the request, no number needed.
    window.click("#report").await;
    answered(&window, "reported").await;
    snap(&window, "04-reported").await;
    let page = browser.follow(browser.get("/login").await).await;
    assert!(!page.body.contains("Signed in as"), "{}", page.body);
    let _ = number;
    window.click("#done").await;
    // Reporting put Guy at risk; an administrator dismisses it so requests are pushed again.
    let (status, body) = server
        .api_call(
            Method::POST,
            "/identityProtection/riskyUsers/dismiss",
            Some(json!({"userIds": [guy.upn]})),
        )
        .await;
    assert_eq!(status, 204, "{body}");

    // Expiry: the request leaves the screen by itself.
    let (_browser, _) = password_sign_in(&server, &guy.upn).await;
    request_shown(&window, "mfa_push").await;
    clock.0.store(31, Ordering::SeqCst);
    // The app's pull makes the server notice the expiry; the live channel's `expired` says so.
    let said = left_by_itself(&window).await;
    assert_eq!(said, "This request expired.");
    snap(&window, "05-expired").await;
    clock.0.store(0, Ordering::SeqCst);

    // Answered elsewhere: the second device answers first.
    let (browser, number) = password_sign_in(&server, &guy.upn).await;
    request_shown(&window, "mfa_push").await;
    let request = other.only_request().await;
    assert_eq!(request.kind, ApprovalKind::MfaPush);
    assert_eq!(
        other
            .answer(&request, Decision::Approve, Some(number))
            .await
            .unwrap(),
        AnswerOutcome::Approved
    );
    let said = left_by_itself(&window).await;
    assert_eq!(said, "This request was answered on another device.");
    snap(&window, "06-answered-elsewhere").await;
    assert_signed_in_as(&browser.follow(browser.get("/login").await).await, "Guy Oz");
    window.close().await;
}

// ---- the live channel ----

/// From now on the page's `GET /requests` never answers (and, the app asking one at a time,
/// it asks no more): whatever the app learns now comes over the live channel.
pub(crate) const NO_MORE_PULLS: &str = r#"
const realFetch = window.fetch;
window.fetch = (url, options) =>
  String(url).endsWith("/authenticator/v1/requests") && (options || {}).method === "GET"
    ? new Promise(() => {})
    : realFetch(url, options);
arguments[0](true);
"#;

#[tokio::test]
async fn the_live_channel_brings_a_sign_in_request_at_once_and_says_when_another_device_answered() {
    let Some(chromium) = Chromedriver::start().await else {
        return;
    };
    let clock = Arc::new(AheadClock(AtomicI64::new(0)));
    let server = server_with(clock, 90).await;
    let ines = person(&server, "ines", "Ines Live").await;
    let window = phone(&chromium, &server, "live").await;
    add_account(&window, &ines, "Ines's phone", false).await;
    let mut other = Phone::register(&ines, "Ines's laptop").await;
    // The app opened the query-signed live channel and says so.
    window.find("#live-status[data-live=yes]").await;
    assert!(
        window.text_of("#live-status").await.starts_with("Live"),
        "{}",
        window.text().await
    );
    snap(&window, "01-live").await;
    run(&window, NO_MORE_PULLS).await;
    let (browser, number) = password_sign_in(&server, &ines.upn).await;
    request_shown(&window, "mfa_push").await;
    snap(&window, "02-request-live").await;
    // The other device answers first; the channel's answered_elsewhere says exactly that (a
    // pull would only have found the request gone: "no longer waiting").
    let request = other.only_request().await;
    assert_eq!(
        other
            .answer(&request, Decision::Approve, Some(number))
            .await
            .unwrap(),
        AnswerOutcome::Approved
    );
    let said = left_by_itself(&window).await;
    assert_eq!(said, "This request was answered on another device.");
    snap(&window, "03-answered-elsewhere").await;
    assert_signed_in_as(
        &browser.follow(browser.get("/login").await).await,
        "Ines Live",
    );
    window.close().await;
}

// ---- threats ----

#[tokio::test]
async fn a_script_cannot_read_the_device_key_and_server_text_is_never_markup() {
    let Some(chromium) = Chromedriver::start().await else {
        return;
    };
    let server = server_with(Arc::new(AheadClock(AtomicI64::new(0))), 90).await;
    let guy = person(&server, "guy", "<img src=x id=injected>Guy").await;
    let window = phone(&chromium, &server, "threats").await;
    add_account(&window, &guy, "<b id=bold>phone</b>", false).await;
    let card = window.text_of("li.account").await;
    assert!(
        card.contains("<img src=x id=injected>Guy"),
        "shown as text: {card}"
    );
    assert!(
        card.contains("<b id=bold>phone</b>"),
        "shown as text: {card}"
    );
    for css in ["#injected", "#bold"] {
        assert!(
            window
                .client
                .find(fantoccini::Locator::Css(css))
                .await
                .is_err(),
            "{css} became markup"
        );
    }
    // The device key in IndexedDB is a CryptoKey no script can export.
    let key = run(
        &window,
        r#"const done = arguments[0];
        Latchkey.listAccounts().then(async ([account]) => {
          let exported = "refused";
          try { await crypto.subtle.exportKey("pkcs8", account.key); exported = "exported"; }
          catch (e) { exported = e.name; }
          done({ extractable: account.key.extractable, type: account.key.type,
                 algorithm: account.key.algorithm.namedCurve, exported });
        });"#,
    )
    .await;
    assert_eq!(
        key,
        json!({"extractable": false, "type": "private", "algorithm": "P-256", "exported": "InvalidAccessError"})
    );

    // Removing the account removes the device on the server too, and the key with it.
    window.click("button[data-action=remove]").await;
    window.find("#remove-confirm").await;
    snap(&window, "01-remove").await;
    window.click("#remove-confirm").await;
    window.find("#no-accounts").await;
    status_says(&window, "Removed").await;
    let info = crate::phone::unescape(&guy.browser.get("/mysecurityinfo").await.body);
    assert!(!info.contains("<b id=bold>phone</b>"), "{info}");
    let count = run(
        &window,
        "const done = arguments[0]; Latchkey.listAccounts().then(a => done(a.length));",
    )
    .await;
    assert_eq!(count, json!(0));
    window.close().await;
}

#[tokio::test]
async fn a_used_or_malformed_activation_link_adds_no_account() {
    let Some(chromium) = Chromedriver::start().await else {
        return;
    };
    let server = server_with(Arc::new(AheadClock(AtomicI64::new(0))), 90).await;
    let guy = person(&server, "guy", "Guy Oz").await;
    let window = phone(&chromium, &server, "bad-links").await;
    // No code, or one outside the alphabet: the app refuses before asking the server.
    for fragment in ["", "#code=", "#code=a%20b", "#code=a&code=b"] {
        // By way of another page: a change of fragment alone does not load the page again.
        window.goto(APP).await;
        window.find("main[data-screen=home]").await;
        window
            .client
            .goto(&format!(
                "{}/authenticator/app/activate{fragment}",
                window.base
            ))
            .await
            .unwrap();
        let said = status_text(&window).await;
        assert!(said.contains("incomplete"), "{fragment}: {said}");
    }
    snap(&window, "01-incomplete").await;
    // A used code: the server refuses it, the app says what to do and keeps nothing.
    let page = guy.start_adding_the_app().await;
    let link = app_link(&page);
    window.client.goto(&link).await.unwrap();
    window.click("#activate button[type=submit]").await;
    request_shown(&window, "registration_test").await;
    window.goto(APP).await;
    window.find("main[data-screen=home]").await;
    window.client.goto(&link).await.unwrap();
    window.click("#activate button[type=submit]").await;
    let said = shown_text(&window, "#activate-error").await;
    assert!(said.contains("expired or was already used"), "{said}");
    snap(&window, "02-used-code").await;
    let count = run(
        &window,
        "const done = arguments[0]; Latchkey.listAccounts().then(a => done(a.length));",
    )
    .await;
    assert_eq!(count, json!(1), "only the first use added an account");
    window.close().await;
}
