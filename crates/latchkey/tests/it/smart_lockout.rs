//! Smart lockout: anyone who knows a user name could lock that user out. Twelve sign-ins
//! started and cancelled plus 25 wrong passes, from any address, used to stop the user's phone
//! sign-in and refuse even their right pass for 15 minutes (renewable for ever), and pushed 10
//! notifications to their phone. Now failures and notifications caused from unfamiliar places
//! share a small allowance of their own; a browser that signed in as the user before, and
//! addresses the user recently signed in from, keep the user's.
//!
//! Client addresses come through a trusted proxy (X-Forwarded-For from loopback).

use std::sync::Arc;
use std::time::Duration;

use latchkey_authenticator::EventStream as Stream;
use latchkey_protocol::wire::DeviceEvent;
use reqwest::redirect::Policy;

use crate::phone::{Person, Phone, number_on, unescape};
use crate::support::{Browser, Page, TestServer};

/// The attacker's address.
const A: &str = "203.0.113.66";
/// Where the user is today: an address they never signed in from.
const B: &str = "198.51.100.23";
/// Where the user signed in before (and added the app).
const HOME: &str = "192.0.2.10";
const THROTTLED: &str = "too many sign-in attempts";
const NUMBER_PAGE: &str = "Approve sign in request";

/// A browser with the cookie jar `jar` (the same browser as others sharing it) whose requests
/// come from `address` through the trusted proxy.
fn browser_at(server: &TestServer, jar: &Arc<reqwest::cookie::Jar>, address: &str) -> Browser {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", address.parse().unwrap());
    Browser {
        base: server.base.clone(),
        http: reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(Policy::none())
            .default_headers(headers)
            .build()
            .unwrap(),
    }
}

/// A server that believes loopback's X-Forwarded-For, and Bobby, who signed in with his pass
/// from `HOME` in his own browser (whose jar is returned), added the app with phone sign-in,
/// and signed out again. His pass is returned too.
async fn bobby_at_home() -> (TestServer, Person, Arc<reqwest::cookie::Jar>, Phone, String) {
    let server = TestServer::start_with(|c| c.trusted_proxies = vec!["127.0.0.1/32".into()]).await;
    let user = server.user("bobby", "Bobby Smith").await;
    let pass = server.pass(&user).await;
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let bobby = Person {
        upn: "bobby@contoso.example".into(),
        browser: browser_at(&server, &jar, HOME),
    };
    let login = bobby
        .browser
        .follow(bobby.browser.get("/mysecurityinfo").await)
        .await;
    let done = bobby
        .browser
        .sign_in_with_pass(login, &bobby.upn, &pass)
        .await;
    let info = bobby.browser.follow(done).await;
    assert!(info.body.contains("Security info"), "{}", info.body);
    let phone = Phone::with_phone_sign_in(&bobby, "Bobby's phone").await;
    let info = bobby.browser.get("/mysecurityinfo").await;
    bobby
        .browser
        .post("/signout", &[("csrf", &info.csrf())])
        .await;
    assert!(
        bobby
            .browser
            .get("/mysecurityinfo")
            .await
            .location
            .is_some(),
        "signed out"
    );
    (server, bobby, jar, phone, pass)
}

/// Opens the sign-in page in `browser` (a new sign-in) and types `upn`.
async fn type_name(browser: &Browser, upn: &str) -> Page {
    let login = browser.get("/login?return_to=%2Fmysecurityinfo").await;
    assert_eq!(login.status, 200, "{}", login.body);
    let next = browser
        .post(
            "/login/username",
            &[("csrf", &login.csrf()), ("username", upn)],
        )
        .await;
    browser.follow(next).await
}

/// Types a pass on the credential page `page`.
async fn type_pass(browser: &Browser, page: &Page, pass: &str) -> Page {
    browser
        .post(
            "/login/credential",
            &[("csrf", &page.csrf()), ("method", "pass"), ("secret", pass)],
        )
        .await
}

/// The attack of the review, from `address`, each step in a fresh browser: 12 sign-ins
/// started and cancelled ("Use your pass instead" on the number page), then 25 wrong passes.
async fn lockout_attack(server: &TestServer, upn: &str, address: &str) {
    for _ in 0..12 {
        let attacker = server.browser_from(address);
        let page = type_name(&attacker, upn).await;
        if page.body.contains(NUMBER_PAGE) {
            let cancelled = attacker
                .post(
                    "/login/other-way",
                    &[("csrf", &page.csrf()), ("method", "pass")],
                )
                .await;
            assert_eq!(cancelled.status, 303, "{}", cancelled.body);
        } else {
            assert!(unescape(&page.body).contains(THROTTLED), "{}", page.body);
        }
    }
    let mut wrong = 0;
    while wrong < 25 {
        let attacker = server.browser_from(address);
        let mut page = type_name(&attacker, upn).await;
        assert!(
            page.body.contains("Temporary Access Pass"),
            "the pass page: {}",
            page.body
        );
        // Four tries per sign-in (the fifth would end it).
        for _ in 0..4 {
            if wrong == 25 {
                break;
            }
            page = type_pass(&attacker, &page, "WrongPass-1234").await;
            assert_eq!(page.status, 401, "{}", page.body);
            wrong += 1;
        }
    }
}

/// How many sign-in requests the live channel delivered (drained until it is quiet).
async fn requests_pushed(stream: &mut Stream) -> usize {
    let mut pushed = 0;
    while let Ok(event) = tokio::time::timeout(Duration::from_millis(700), stream.next()).await {
        match event {
            Some(DeviceEvent::Request { .. }) => pushed += 1,
            Some(_) => {}
            None => break,
        }
    }
    pushed
}

/// Phone sign-in in `browser`: the number page, the phone approves the number, and the browser
/// lands on security info. Panics if any step is refused.
async fn signs_in_by_phone(browser: &Browser, upn: &str, phone: &mut Phone, stream: &mut Stream) {
    let page = type_name(browser, upn).await;
    assert!(
        page.body.contains(NUMBER_PAGE),
        "the number page at once: {}",
        page.body
    );
    let request = match tokio::time::timeout(Duration::from_secs(5), stream.next()).await {
        Ok(Some(DeviceEvent::Request { request })) => request,
        other => panic!("the request is pushed to the phone: {other:?}"),
    };
    phone.approve(&request, number_on(&page)).await;
    let landed = browser.follow(browser.get("/login").await).await;
    assert!(landed.body.contains("Security info"), "{}", landed.body);
}

/// An address is still throttled for `upn`: no notification, and even the right pass is not
/// checked.
async fn still_throttled(server: &TestServer, upn: &str, address: &str, pass: &str) {
    let browser = server.browser_from(address);
    let page = type_name(&browser, upn).await;
    assert!(!page.body.contains(NUMBER_PAGE), "{}", page.body);
    assert!(unescape(&page.body).contains(THROTTLED), "{}", page.body);
    let answer = type_pass(&browser, &page, pass).await;
    assert_eq!(answer.status, 401, "{}", answer.body);
    assert!(
        unescape(&answer.body).contains(THROTTLED),
        "{}",
        answer.body
    );
}

#[tokio::test]
async fn anyone_who_knows_a_user_name_cannot_lock_the_user_out_of_a_known_browser() {
    let (server, bobby, jar, mut phone, pass) = bobby_at_home().await;
    let mut stream = phone.app.connect(phone.account).await.unwrap();

    lockout_attack(&server, &bobby.upn, A).await;
    let pushed = requests_pushed(&mut stream).await;
    assert!(
        pushed <= 3,
        "the attack pushed {pushed} notifications to Bobby's phone"
    );
    assert!(phone.app.pending(phone.account).await.unwrap().is_empty());

    // Bobby, in his own browser at an address he never used, signs in by phone at once.
    let today = browser_at(&server, &jar, B);
    signs_in_by_phone(&today, &bobby.upn, &mut phone, &mut stream).await;

    // The attacker's address is still throttled.
    still_throttled(&server, &bobby.upn, A, &pass).await;
    let log = crate::phone::sign_in_log(&server, &bobby.upn).await;
    assert_eq!(log[0]["status"]["errorCode"], 900030, "{}", log[0]);
    assert_eq!(log[0]["ipAddress"], A);
}

/// The number page gives a browser without the cookie its id before the sign-in is stored, and
/// the sign-in's own store step makes that browser familiar: after the attack it still has
/// Bobby's allowance at an address he never used.
#[tokio::test]
async fn lockout_a_browser_whose_first_sign_in_is_by_phone_is_known_from_then_on_at_any_address() {
    let (server, bobby, _jar, mut phone, pass) = bobby_at_home().await;
    let mut stream = phone.app.connect(phone.account).await.unwrap();
    let new_jar = Arc::new(reqwest::cookie::Jar::default());
    signs_in_by_phone(
        &browser_at(&server, &new_jar, HOME),
        &bobby.upn,
        &mut phone,
        &mut stream,
    )
    .await;
    let cookies = reqwest::cookie::CookieStore::cookies(
        new_jar.as_ref(),
        &server.base.parse().expect("the server's address"),
    )
    .expect("cookies");
    assert!(
        cookies.to_str().unwrap().contains("lk_browser="),
        "the known-browser cookie comes with the sign-in: {cookies:?}"
    );

    lockout_attack(&server, &bobby.upn, A).await;
    assert!(requests_pushed(&mut stream).await <= 3);
    // At B a browser he never used is kept out with the attacker; his known one is not.
    still_throttled(&server, &bobby.upn, B, &pass).await;
    signs_in_by_phone(
        &browser_at(&server, &new_jar, B),
        &bobby.upn,
        &mut phone,
        &mut stream,
    )
    .await;
}

#[tokio::test]
async fn after_a_lockout_attack_a_new_browser_at_an_address_the_user_signed_in_from_keeps_the_users_allowance()
 {
    let (server, bobby, _jar, mut phone, pass) = bobby_at_home().await;
    let mut stream = phone.app.connect(phone.account).await.unwrap();
    lockout_attack(&server, &bobby.upn, A).await;
    assert!(requests_pushed(&mut stream).await <= 3);

    // A browser Bobby never used, at home: his right pass works...
    let fresh = server.browser_from(HOME);
    let page = type_name(&fresh, &bobby.upn).await;
    assert!(page.body.contains(NUMBER_PAGE), "{}", page.body);
    let other_way = fresh
        .post(
            "/login/other-way",
            &[("csrf", &page.csrf()), ("method", "pass")],
        )
        .await;
    let credential = fresh.follow(other_way).await;
    let done = type_pass(&fresh, &credential, &pass).await;
    assert_eq!(done.status, 303, "the right pass is checked: {}", done.body);
    // ...and so does phone sign-in.
    requests_pushed(&mut stream).await;
    signs_in_by_phone(
        &server.browser_from(HOME),
        &bobby.upn,
        &mut phone,
        &mut stream,
    )
    .await;

    // Somewhere neither he nor the attacker ever was, he shares the attacker's (spent)
    // allowance: the price of not knowing who is who.
    still_throttled(&server, &bobby.upn, "192.0.2.200", &pass).await;
}

#[tokio::test]
async fn a_known_browser_cookie_of_another_account_or_a_forged_one_gives_a_stranger_no_allowance() {
    let (server, bobby, _jar, phone, _pass) = bobby_at_home().await;
    let mut stream = phone.app.connect(phone.account).await.unwrap();
    // Mallory signs in to her own account in her browser at A: it is a known browser, for her.
    let mallory = server.user("mallory", "Mallory").await;
    let mallory_pass = server.pass(&mallory).await;
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let hers = browser_at(&server, &jar, A);
    let login = hers.follow(hers.get("/mysecurityinfo").await).await;
    let done = hers
        .sign_in_with_pass(login, "mallory@contoso.example", &mallory_pass)
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let url: url::Url = server.base.parse().unwrap();
    let cookies = reqwest::cookie::CookieStore::cookies(&*jar, &url)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    assert!(cookies.contains("lk_browser="), "{cookies}");

    // From that browser, and with forged cookies, Bobby's name gets the unfamiliar allowance.
    for _ in 0..4 {
        type_name(&hers, &bobby.upn).await;
        hers.post(
            "/login/restart",
            &[("csrf", &hers.get("/login").await.csrf())],
        )
        .await;
    }
    for forged in [
        "lk_browser=00112233445566778899aabbccddeeff.AAAA",
        "lk_browser=00112233445566778899aabbccddeeff",
        "lk_browser=",
    ] {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        jar.add_cookie_str(forged, &url);
        let page = type_name(&browser_at(&server, &jar, A), &bobby.upn).await;
        assert!(
            unescape(&page.body).contains(THROTTLED),
            "{forged}: {}",
            page.body
        );
    }
    let pushed = requests_pushed(&mut stream).await;
    assert_eq!(pushed, 3, "three from unfamiliar places, then none");
}
