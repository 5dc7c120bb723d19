//! The number page's long-poll, `GET /login/status?wait=N` (issue 20): the browser learns the
//! answer the moment the phone gives it. What ends a wait (an approval, a denial, an expiry,
//! another way, an answer on another instance), and what it refuses: a wait without or with
//! a forged sign-in cookie, too many waiters for one sign-in, malformed and oversized waits.
//! No timing assertions: a wait that returned before the answer would say `pending: true`.

use std::time::Duration;

use latchkey_domain::service::MAX_WAITERS_PER_APPROVAL;
use latchkey_protocol::wire::{AnswerOutcome, Decision};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::phone::{Person, Phone, number_on, reload, start_app_sign_in, start_sign_in};
use crate::support::{Browser, TestServer, assert_signed_in_as, manual_clock};

/// The same browser (its cookie jar is shared), for a task of its own.
fn same_browser(browser: &Browser) -> Browser {
    Browser {
        base: browser.base.clone(),
        http: browser.http.clone(),
    }
}

/// What `GET /login/status?wait=…` answered.
async fn wait_answer(browser: &Browser, query: &str) -> Value {
    let page = browser.get(&format!("/login/status?{query}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    serde_json::from_str(&page.body).unwrap_or_else(|_| panic!("JSON: {}", page.body))
}

/// Opens the page's wait in a task of its own, as the page's script does.
fn open_wait(browser: &Browser) -> JoinHandle<Value> {
    let browser = same_browser(browser);
    tokio::spawn(async move { wait_answer(&browser, "wait=25").await })
}

/// Returns once `count` browsers wait on the instance behind `waiting` (so the answer that
/// follows comes while they wait).
async fn until_waiting(waiting: impl Fn() -> usize, count: usize) {
    for _ in 0..1000 {
        if waiting() >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{count} waits never reached the server");
}

/// One figure from `/metrics`.
pub(crate) async fn metric(base: &str, line_start: &str) -> u64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("/metrics")
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(line_start))
        .and_then(|rest| rest.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {line_start} in {text}"))
}

pub(crate) const WAITS_SETTLED: &str = "latchkey_sign_in_waits_total{outcome=\"settled\"}";
const WAITS_REFUSED: &str = "latchkey_sign_in_waits_total{outcome=\"refused\"}";
pub(crate) const WAITS_FINISHED: &str = "latchkey_sign_in_waits_total{outcome=\"finished\"}";

async fn bobby(server: &TestServer) -> (Person, Phone) {
    let bobby = Person::new(server, "bobby", "Bobby Smith").await;
    let phone = Phone::with_phone_sign_in(&bobby, "Bobby's phone").await;
    (bobby, phone)
}

#[tokio::test]
async fn the_wait_ends_when_the_phone_approves_and_the_page_then_signs_in() {
    let server = TestServer::start().await;
    let (bobby, mut phone) = bobby(&server).await;
    let browser = server.browser();
    let page = start_sign_in(&browser, &bobby.upn).await;
    let request = phone.only_request().await;
    let latchkey = server.latchkey.clone();
    let wait = open_wait(&browser);
    until_waiting(|| latchkey.devices.waiting_browsers(), 1).await;
    assert!(!wait.is_finished(), "the wait holds while nobody answered");
    phone.approve(&request, number_on(&page)).await;
    assert_eq!(
        wait.await.unwrap(),
        json!({"pending": false, "waited": true})
    );
    assert_signed_in_as(&reload(&browser).await, "Bobby Smith");
    assert_eq!(server.latchkey.devices.waiting_browsers(), 0);
    assert_eq!(metric(&server.base, WAITS_SETTLED).await, 1);
    // Replayed after the sign-in finished: nothing to wait for, at once.
    assert_eq!(
        wait_answer(&browser, "wait=25").await["pending"],
        json!(false)
    );
}

#[tokio::test]
async fn a_denial_ends_the_wait_and_the_page_says_so() {
    let server = TestServer::start().await;
    let (bobby, mut phone) = bobby(&server).await;
    let browser = server.browser();
    start_sign_in(&browser, &bobby.upn).await;
    let request = phone.only_request().await;
    let latchkey = server.latchkey.clone();
    let wait = open_wait(&browser);
    until_waiting(|| latchkey.devices.waiting_browsers(), 1).await;
    assert_eq!(
        phone.answer(&request, Decision::Deny, None).await.unwrap(),
        AnswerOutcome::Denied
    );
    assert_eq!(wait.await.unwrap()["pending"], json!(false));
    let end = reload(&browser).await;
    assert!(
        end.body.contains("You denied the sign-in request"),
        "{}",
        end.body
    );
}

#[tokio::test]
async fn the_approval_s_expiry_ends_the_wait() {
    let clock = manual_clock();
    let server = TestServer::builder()
        .clock(clock.clone())
        .config(|c| c.lifetimes.approval_request_seconds = 2)
        .start()
        .await;
    let (bobby, phone) = bobby(&server).await;
    let browser = server.browser();
    start_sign_in(&browser, &bobby.upn).await;
    phone.only_request().await;
    let latchkey = server.latchkey.clone();
    let wait = open_wait(&browser);
    until_waiting(|| latchkey.devices.waiting_browsers(), 1).await;
    clock.advance(3);
    // Nobody answers: the waiter's own re-read at the expiry ends it.
    assert_eq!(wait.await.unwrap()["pending"], json!(false));
    let end = reload(&browser).await;
    assert!(end.body.contains("within 2 seconds"), "{}", end.body);
}

#[tokio::test]
async fn choosing_another_way_ends_the_wait() {
    let server = TestServer::start().await;
    let (bobby, _phone) = bobby(&server).await;
    let browser = server.browser();
    let page = start_sign_in(&browser, &bobby.upn).await;
    let latchkey = server.latchkey.clone();
    let wait = open_wait(&browser);
    until_waiting(|| latchkey.devices.waiting_browsers(), 1).await;
    let other = browser
        .post(
            "/login/other-way",
            &[("csrf", &page.csrf()), ("method", "password")],
        )
        .await;
    assert!(other.status < 400, "{}", other.body);
    assert_eq!(wait.await.unwrap()["pending"], json!(false));
}

#[tokio::test]
async fn a_wait_without_or_with_a_forged_sign_in_cookie_answers_at_once_and_holds_nothing() {
    let server = TestServer::start().await;
    let (bobby, _phone) = bobby(&server).await;
    let browser = server.browser();
    start_sign_in(&browser, &bobby.upn).await;
    // No cookie at all.
    let stranger = server.browser();
    assert_eq!(
        wait_answer(&stranger, "wait=25").await,
        json!({"pending": false, "waited": true})
    );
    // Cookies made up (the real one is signed with the server's key).
    for forged in ["lk_signin=made-up", "lk_signin=AAAA.BBBB.CCCC"] {
        let answer: Value = reqwest::Client::new()
            .get(format!("{}/login/status?wait=25", server.base))
            .header("cookie", forged)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer["pending"], json!(false), "{forged}");
    }
    assert_eq!(server.latchkey.devices.waiting_browsers(), 0);
}

#[tokio::test]
async fn too_many_waits_for_one_sign_in_are_answered_as_a_poll_so_the_page_polls() {
    let server = TestServer::start().await;
    let (bobby, mut phone) = bobby(&server).await;
    let browser = server.browser();
    let page = start_sign_in(&browser, &bobby.upn).await;
    let request = phone.only_request().await;
    let latchkey = server.latchkey.clone();
    let waits: Vec<_> = (0..MAX_WAITERS_PER_APPROVAL)
        .map(|_| open_wait(&browser))
        .collect();
    until_waiting(
        || latchkey.devices.waiting_browsers(),
        MAX_WAITERS_PER_APPROVAL,
    )
    .await;
    assert_eq!(
        wait_answer(&browser, "wait=25").await,
        json!({"pending": true, "waited": false})
    );
    assert_eq!(metric(&server.base, WAITS_REFUSED).await, 1);
    phone.approve(&request, number_on(&page)).await;
    for wait in waits {
        assert_eq!(wait.await.unwrap()["pending"], json!(false));
    }
    assert_eq!(server.latchkey.devices.waiting_browsers(), 0);
}

#[tokio::test]
async fn a_malformed_wait_is_a_plain_poll_and_an_oversized_one_is_cut_to_the_longest() {
    let server = TestServer::start().await;
    let (bobby, mut phone) = bobby(&server).await;
    let browser = server.browser();
    let page = start_sign_in(&browser, &bobby.upn).await;
    let request = phone.only_request().await;
    for malformed in ["wait=", "wait=abc", "wait=0", "wait=-5", "wait=1e9"] {
        assert_eq!(
            wait_answer(&browser, malformed).await,
            json!({"pending": true, "waited": false}),
            "{malformed}"
        );
    }
    let long = "9".repeat(4000);
    assert_eq!(
        wait_answer(&browser, &format!("wait={long}")).await,
        json!({"pending": true, "waited": false})
    );
    // A short wait runs out with the approval still pending.
    assert_eq!(
        wait_answer(&browser, "wait=1").await,
        json!({"pending": true, "waited": true})
    );
    // An oversized one is held (no longer than the longest) until the answer.
    let held = {
        let browser = same_browser(&browser);
        tokio::spawn(async move { wait_answer(&browser, "wait=86400").await })
    };
    let latchkey = server.latchkey.clone();
    until_waiting(|| latchkey.devices.waiting_browsers(), 1).await;
    phone.approve(&request, number_on(&page)).await;
    assert_eq!(held.await.unwrap()["pending"], json!(false));
    // The plain poll is as it was.
    let poll = browser.get("/login/status").await;
    assert_eq!(
        serde_json::from_str::<Value>(&poll.body).unwrap(),
        json!({"pending": false})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_on_one_instance_ends_when_the_phone_answers_on_another_across_instances() {
    let schema = crate::postgres::scratch_schema().await;
    let url = schema.url();
    let a = TestServer::start_with(|c| c.database_url = Some(url.clone())).await;
    let b = crate::postgres::second_instance(&url).await;
    let (bobby, mut phone) = bobby(&a).await;
    // The browser at B; the phone's account talks to A.
    let browser = b.browser();
    let page = start_sign_in(&browser, &bobby.upn).await;
    let request = phone.only_request().await;
    let at_b = b.latchkey.clone();
    let wait = open_wait(&browser);
    until_waiting(|| at_b.devices.waiting_browsers(), 1).await;
    assert_eq!(a.latchkey.devices.waiting_browsers(), 0);
    phone.approve(&request, number_on(&page)).await;
    assert_eq!(
        wait.await.unwrap(),
        json!({"pending": false, "waited": true})
    );
    assert_signed_in_as(&reload(&browser).await, "Bobby Smith");
    drop(b);
    drop(a);
    schema.drop_schema().await.expect("drop");
}

/// What the number page's own long-poll answered: its status, content type and body.
async fn finishing_wait(browser: &Browser) -> (u16, String, String) {
    let response = browser
        .http
        .get(format!("{}/login/status?wait=25&finish=1", browser.base))
        .send()
        .await
        .expect("GET");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, content_type, response.text().await.unwrap())
}

/// Opens the number page's own wait in a task of its own, as its script does.
fn open_finishing_wait(browser: &Browser) -> JoinHandle<(u16, String, String)> {
    let browser = same_browser(browser);
    tokio::spawn(async move { finishing_wait(&browser).await })
}

/// Bobby's sign-in in a browser of its own, which his phone approves before the browser waits.
async fn approved_before_the_wait(server: &TestServer) -> Browser {
    let (bobby, mut phone) = bobby(server).await;
    let browser = server.browser();
    let page = start_sign_in(&browser, &bobby.upn).await;
    let request = phone.only_request().await;
    phone.approve(&request, number_on(&page)).await;
    browser
}

#[tokio::test]
async fn the_page_s_finishing_wait_carries_the_application_s_redirect_and_signs_the_browser_in() {
    let server = TestServer::start().await;
    let (bobby, mut phone) = bobby(&server).await;
    let (client_id, _secret) = server.confidential_app("ES256").await;
    let browser = server.browser();
    let page = start_app_sign_in(&server, &browser, &client_id, &bobby.upn).await;
    assert!(
        page.body
            .contains("data-wait-url=\"/login/status?wait=25&amp;finish=1\""),
        "the page asks to finish: {}",
        page.body
    );
    let request = phone.only_request().await;
    let wait = open_finishing_wait(&browser);
    let latchkey = server.latchkey.clone();
    until_waiting(|| latchkey.devices.waiting_browsers(), 1).await;
    phone.approve(&request, number_on(&page)).await;
    let (status, content_type, body) = wait.await.unwrap();
    assert_eq!(
        (status, content_type.as_str()),
        (200, "application/json"),
        "{body}"
    );
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["pending"], json!(false), "{answer}");
    let next = answer["next"].as_str().expect("where the page goes next");
    assert!(next.starts_with("http://localhost:9/callback?"), "{next}");
    assert_eq!(
        crate::support::query_param(next, "state").as_deref(),
        Some("st4te")
    );
    assert!(
        crate::support::query_param(next, "code").is_some(),
        "{next}"
    );
    assert_eq!(metric(&server.base, WAITS_FINISHED).await, 1);
    assert_eq!(metric(&server.base, WAITS_SETTLED).await, 0);
    // The answer's cookies signed the browser in: My Apps knows it.
    let apps = browser.follow(browser.get("/myapps").await).await;
    assert!(apps.body.contains("Bobby Smith"), "{}", apps.body);
    // Replayed, the sign-in is over: no second code, nothing to go to.
    let (status, _, replay) = finishing_wait(&browser).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&replay).unwrap(),
        json!({"pending": false, "waited": true})
    );
}

#[tokio::test]
async fn a_finishing_wait_for_a_denied_sign_in_answers_with_the_page_that_says_why() {
    let server = TestServer::start().await;
    let (bobby, mut phone) = bobby(&server).await;
    let browser = server.browser();
    start_sign_in(&browser, &bobby.upn).await;
    let request = phone.only_request().await;
    let wait = open_finishing_wait(&browser);
    let latchkey = server.latchkey.clone();
    until_waiting(|| latchkey.devices.waiting_browsers(), 1).await;
    phone.answer(&request, Decision::Deny, None).await.unwrap();
    let (status, content_type, body) = wait.await.unwrap();
    assert!(
        content_type.starts_with("text/html"),
        "{content_type}: {body}"
    );
    assert!((200..500).contains(&status), "{status}");
    assert!(body.contains("You denied the sign-in request"), "{body}");
    assert!(!body.contains("\"next\""), "{body}");
    // The sign-in ended there: nobody is signed in, and /login starts afresh.
    let apps = browser.follow(browser.get("/myapps").await).await;
    assert!(!apps.body.contains("Bobby Smith"), "{}", apps.body);
}

#[tokio::test]
async fn a_finishing_wait_for_an_account_disabled_after_the_approval_answers_with_the_page_that_says_so()
 {
    let server = TestServer::start().await;
    let browser = approved_before_the_wait(&server).await;
    let (status, _) = server
        .api_call(
            reqwest::Method::PATCH,
            "/users/bobby@contoso.example",
            Some(json!({"accountEnabled": false})),
        )
        .await;
    assert_eq!(status, 200);
    // The approval settled before the wait: it finishes at once, on a page, not a redirect.
    let (status, content_type, body) = finishing_wait(&browser).await;
    assert!(
        content_type.starts_with("text/html"),
        "{content_type}: {body}"
    );
    assert!((200..500).contains(&status), "{status}");
    assert!(body.contains("Your account is disabled"), "{body}");
    // Nothing signed the browser in.
    let apps = browser.follow(browser.get("/myapps").await).await;
    assert!(!apps.body.contains("Bobby Smith"), "{}", apps.body);
}

#[tokio::test]
async fn a_wait_with_a_malformed_finish_only_says_the_answer_came_and_the_page_then_signs_in() {
    let server = TestServer::start().await;
    let browser = approved_before_the_wait(&server).await;
    let long = "1".repeat(4000);
    for malformed in [
        "finish=",
        "finish=yes",
        "finish=0",
        "finish=11",
        &format!("finish={long}"),
    ] {
        assert_eq!(
            wait_answer(&browser, &format!("wait=25&{malformed}")).await,
            json!({"pending": false, "waited": true}),
            "{malformed}"
        );
    }
    assert_signed_in_as(&reload(&browser).await, "Bobby Smith");
}

#[tokio::test]
async fn a_finishing_wait_with_a_forged_sign_in_cookie_signs_nobody_in() {
    let server = TestServer::start().await;
    let browser = approved_before_the_wait(&server).await;
    for forged in ["lk_signin=made-up", "lk_signin=AAAA.BBBB.CCCC"] {
        let response = reqwest::Client::new()
            .get(format!("{}/login/status?wait=25&finish=1", server.base))
            .header("cookie", forged)
            .send()
            .await
            .unwrap();
        assert!(response.headers().get("set-cookie").is_none(), "{forged}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(
            answer,
            json!({"pending": false, "waited": true}),
            "{forged}"
        );
    }
    // The real browser's sign-in still stands and finishes.
    assert_signed_in_as(&reload(&browser).await, "Bobby Smith");
}

/// The cancellation that "another way" makes wakes the page's finishing wait; the wait must
/// find the sign-in moved on, not end it as cancelled under the person's feet.
#[tokio::test]
async fn choosing_another_way_while_the_finishing_wait_is_open_keeps_the_sign_in_going() {
    let server = TestServer::start().await;
    let (bobby, _phone) = bobby(&server).await;
    let browser = server.browser();
    let page = start_sign_in(&browser, &bobby.upn).await;
    let wait = open_finishing_wait(&browser);
    let latchkey = server.latchkey.clone();
    until_waiting(|| latchkey.devices.waiting_browsers(), 1).await;
    let other = browser
        .post(
            "/login/other-way",
            &[("csrf", &page.csrf()), ("method", "password")],
        )
        .await;
    assert!(other.status < 400, "{}", other.body);
    let (status, _, body) = wait.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"pending": false, "waited": true})
    );
    let next = browser.follow(other).await;
    assert!(!next.body.contains("cancelled"), "{}", next.body);
    assert!(next.body.contains("name=\"secret\""), "{}", next.body);
}
