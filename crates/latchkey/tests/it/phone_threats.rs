//! Phone sign-in under attack and when things go wrong: each test names what it defends.

use latchkey_authenticator::client::sign_answer;
use latchkey_protocol::wire::{
    Answer, AnswerOutcome, ApprovalKind, ApprovalRequest, Decision, DeviceEvent,
};
use latchkey_protocol::{
    API_PREFIX, DeviceKeyPair, HEADER_DEVICE, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP,
    request_signing_input,
};
use reqwest::Method;
use serde_json::json;

use crate::phone::{
    AUTHENTICATOR, PIN, Person, Phone, another_number, assert_failure, expect_refusal, number_on,
    reload, sign_in_log, start_sign_in, unescape,
};
use crate::support::{TestServer, manual_clock};

async fn bobby_with_phone_sign_in(server: &TestServer) -> (Person, Phone) {
    let bobby = Person::new(server, "bobby", "Bobby Smith").await;
    let phone = Phone::with_phone_sign_in(&bobby, "Bobby's phone").await;
    (bobby, phone)
}

/// Bobby starts a phone sign-in and his phone answers it with `decision` (and no number);
/// returns the outcome, the page the browser shows next and Bobby's sign-in log.
async fn bobby_answers(
    server: &TestServer,
    decision: Decision,
) -> (AnswerOutcome, crate::support::Page, Vec<serde_json::Value>) {
    let (bobby, mut phone) = bobby_with_phone_sign_in(server).await;
    let browser = server.browser();
    start_sign_in(&browser, &bobby.upn).await;
    let request = phone.only_request().await;
    let outcome = phone.answer(&request, decision, None).await.unwrap();
    let end = reload(&browser).await;
    (outcome, end, sign_in_log(server, &bobby.upn).await)
}

/// An approval of `request` with `number`, signed as the app signs it: with the passwordless
/// key that the PIN unlocks.
async fn approval_signed_by(phone: &mut Phone, request: &ApprovalRequest, number: u8) -> Answer {
    let key = phone
        .app
        .unlock_passwordless_key(phone.account, PIN)
        .await
        .expect("the PIN unlocks the key");
    sign_answer(&key, request, Decision::Approve, Some(number))
}

#[tokio::test]
async fn a_wrong_number_fails_the_sign_in_and_says_so() {
    let server = TestServer::start().await;
    let (bobby, mut phone) = bobby_with_phone_sign_in(&server).await;
    let browser = server.browser();
    let page = start_sign_in(&browser, &bobby.upn).await;
    let request = phone.only_request().await;
    let wrong = another_number(number_on(&page));
    assert_eq!(
        phone
            .answer(&request, Decision::Approve, Some(wrong))
            .await
            .unwrap(),
        AnswerOutcome::WrongNumber
    );
    let end = reload(&browser).await;
    assert_eq!(end.status, 400);
    assert!(
        unescape(&end.body).contains("didn't match the number on this page"),
        "{}",
        end.body
    );
    // The right number afterwards changes nothing: the request is spent.
    expect_refusal(
        phone
            .answer(&request, Decision::Approve, Some(number_on(&page)))
            .await,
        "already_answered",
    );
    let log = sign_in_log(&server, &bobby.upn).await;
    assert_eq!(log[0]["status"]["errorCode"], 900021);
    assert!(server.browser().get("/myapps").await.location.is_some());
}

#[tokio::test]
async fn a_denial_fails_the_sign_in_with_a_clear_message() {
    let server = TestServer::start().await;
    let (outcome, end, log) = bobby_answers(&server, Decision::Deny).await;
    assert_eq!(outcome, AnswerOutcome::Denied);
    assert!(
        end.body.contains("You denied the sign-in request"),
        "{}",
        end.body
    );
    assert_failure(
        &log[0],
        500121,
        "MFA denied; user declined the authentication",
    );
}

#[tokio::test]
async fn a_report_of_fraud_fails_the_sign_in_and_is_logged_as_fraud() {
    let server = TestServer::start().await;
    let (outcome, end, log) = bobby_answers(&server, Decision::Report).await;
    assert_eq!(outcome, AnswerOutcome::Reported);
    assert!(
        end.body.contains("reported this sign-in as not yours"),
        "{}",
        end.body
    );
    assert_failure(&log[0], 900020, "MFA denied; Phone App Reported Fraud");
}

#[tokio::test]
async fn an_unanswered_request_times_out_and_says_how_long_it_waited() {
    let clock = manual_clock();
    let server = TestServer::builder()
        .clock(clock.clone())
        .config(|c| c.lifetimes.approval_request_seconds = 2)
        .start()
        .await;
    let (bobby, mut phone) = bobby_with_phone_sign_in(&server).await;
    let browser = server.browser();
    let page = start_sign_in(&browser, &bobby.upn).await;
    let request = phone.only_request().await;
    clock.advance(3);
    let end = reload(&browser).await;
    assert!(end.body.contains("within 2 seconds"), "{}", end.body);
    expect_refusal(
        phone
            .answer(&request, Decision::Approve, Some(number_on(&page)))
            .await,
        "request_expired",
    );
    assert!(phone.app.pending(phone.account).await.unwrap().is_empty());
    let log = sign_in_log(&server, &bobby.upn).await;
    assert_eq!(log[0]["status"]["errorCode"], 900022);
}

#[tokio::test]
async fn a_replayed_answer_changes_nothing() {
    let server = TestServer::start().await;
    let (bobby, mut phone) = bobby_with_phone_sign_in(&server).await;
    let browser = server.browser();
    let page = start_sign_in(&browser, &bobby.upn).await;
    let request = phone.only_request().await;
    let answer = approval_signed_by(&mut phone, &request, number_on(&page)).await;
    assert_eq!(
        phone
            .app
            .send_answer(phone.account, &request.id, &answer)
            .await
            .unwrap(),
        AnswerOutcome::Approved
    );
    expect_refusal(
        phone
            .app
            .send_answer(phone.account, &request.id, &answer)
            .await,
        "already_answered",
    );
    // The browser is signed in once; a second sign-in reuses nothing of the first.
    let apps = reload(&browser).await;
    assert!(apps.body.contains("Signed in as"));
    let again = server.browser();
    let page = start_sign_in(&again, &bobby.upn).await;
    let fresh = phone.only_request().await;
    assert_ne!(fresh.nonce, request.nonce);
    // Refused as a different context when the requests were made in different seconds, and
    // for its signature (over the old request's id and nonce) otherwise: never accepted.
    let replayed = phone
        .app
        .send_answer(phone.account, &fresh.id, &answer)
        .await
        .expect_err("an old answer does not fit a new request");
    assert!(
        matches!(replayed.code(), Some("bad_signature" | "context_mismatch")),
        "{replayed}"
    );
    assert!(
        reload(&again)
            .await
            .body
            .contains(&format!(">{}<", number_on(&page)))
    );
}

/// Sends one signed device request with chosen headers, to replay or tamper with it.
async fn raw_device_request(
    server: &TestServer,
    key: &DeviceKeyPair,
    device_id: &str,
    timestamp: i64,
    nonce: &str,
    path: &str,
) -> (u16, serde_json::Value) {
    let full = format!("{API_PREFIX}{path}");
    let signature = key.sign(&request_signing_input("GET", &full, timestamp, nonce, b""));
    let response = reqwest::Client::new()
        .get(format!("{}{full}", server.base))
        .header(HEADER_DEVICE, device_id)
        .header(HEADER_TIMESTAMP, timestamp.to_string())
        .header(HEADER_NONCE, nonce)
        .header(HEADER_SIGNATURE, signature)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

#[tokio::test]
async fn replayed_stale_forged_and_unsigned_device_requests_are_refused() {
    let server = TestServer::start().await;
    let (_bobby, phone) = bobby_with_phone_sign_in(&server).await;
    let account = phone.app.account(phone.account);
    let key = account.device_key().unwrap();
    let id = account.device_id.clone();
    let nonce = "replay-me-0123456789";
    let (status, _) = raw_device_request(
        &server,
        &key,
        &id,
        server.latchkey.now().0,
        nonce,
        "/requests",
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = raw_device_request(
        &server,
        &key,
        &id,
        server.latchkey.now().0,
        nonce,
        "/requests",
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("replayed_request"))
    );
    let (status, body) = raw_device_request(
        &server,
        &key,
        &id,
        server.latchkey.now().0 - 600,
        "stale-request-0123456",
        "/requests",
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("stale_request"))
    );
    let stranger = DeviceKeyPair::generate().unwrap();
    let (status, body) = raw_device_request(
        &server,
        &stranger,
        &id,
        server.latchkey.now().0,
        "forged-request-012345",
        "/requests",
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("bad_signature"))
    );
    // A forged request does not use up the nonce the real device may still send.
    let (status, _) = raw_device_request(
        &server,
        &key,
        &id,
        server.latchkey.now().0,
        "forged-request-012345",
        "/requests",
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = raw_device_request(
        &server,
        &key,
        &id,
        server.latchkey.now().0,
        "short",
        "/requests",
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (401, Some("bad_nonce")));
    let response = reqwest::Client::new()
        .get(format!("{}{API_PREFIX}/requests", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unsigned_request");
    // A signature over another path does not authorise this one.
    let full = format!("{API_PREFIX}/device");
    let signature = key.sign(&request_signing_input(
        "GET",
        &full,
        server.latchkey.now().0,
        "path-swap-0123456789",
        b"",
    ));
    let response = reqwest::Client::new()
        .get(format!("{}{API_PREFIX}/requests", server.base))
        .header(HEADER_DEVICE, &id)
        .header(HEADER_TIMESTAMP, server.latchkey.now().0.to_string())
        .header(HEADER_NONCE, "path-swap-0123456789")
        .header(HEADER_SIGNATURE, signature)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
}

#[tokio::test]
async fn an_answer_signed_for_another_request_or_by_another_device_is_refused() {
    let server = TestServer::start().await;
    let (bobby, mut phone) = bobby_with_phone_sign_in(&server).await;
    let guy = Person::new(&server, "guy", "Guy Oz").await;
    let mut guys_phone = Phone::with_phone_sign_in(&guy, "Guy's phone").await;

    let bobby_browser = server.browser();
    let page = start_sign_in(&bobby_browser, &bobby.upn).await;
    let bobby_request = phone.only_request().await;
    let guy_browser = server.browser();
    start_sign_in(&guy_browser, &guy.upn).await;
    let guy_request = guys_phone.only_request().await;

    // Guy's device cannot answer Bobby's request, even knowing its id and number.
    expect_refusal(
        guys_phone
            .answer(&bobby_request, Decision::Approve, Some(number_on(&page)))
            .await,
        "not_your_request",
    );
    // An answer Bobby's device signed for Bobby's request does not fit Guy's request.
    let signed_for_bobby = approval_signed_by(&mut phone, &bobby_request, number_on(&page)).await;
    expect_refusal(
        guys_phone
            .app
            .send_answer(guys_phone.account, &guy_request.id, &signed_for_bobby)
            .await,
        "context_mismatch",
    );
    // Signed by the device key instead of the PIN-protected passwordless key.
    let device_key = phone.app.account(phone.account).device_key().unwrap();
    let with_device_key = sign_answer(
        &device_key,
        &bobby_request,
        Decision::Approve,
        Some(number_on(&page)),
    );
    expect_refusal(
        phone
            .app
            .send_answer(phone.account, &bobby_request.id, &with_device_key)
            .await,
        "bad_signature",
    );
    // A device that showed something else (another location) is refused.
    let mut shown = bobby_request.clone();
    shown.location = Some("Somewhere reassuring".into());
    expect_refusal(
        phone
            .answer(&shown, Decision::Approve, Some(number_on(&page)))
            .await,
        "context_mismatch",
    );
    // None of that settled anything: the real answer still works.
    phone.approve(&bobby_request, number_on(&page)).await;
    assert!(
        reload(&bobby_browser)
            .await
            .body
            .contains("Signed in as <strong>Bobby Smith")
    );
    assert!(
        reload(&guy_browser)
            .await
            .body
            .contains("Approve sign in request")
    );
}

#[tokio::test]
async fn a_removed_device_can_no_longer_answer_and_sign_in_falls_back_to_a_pass() {
    let server = TestServer::start().await;
    let (bobby, mut phone) = bobby_with_phone_sign_in(&server).await;
    let browser = server.browser();
    let page = start_sign_in(&browser, &bobby.upn).await;
    let request = phone.only_request().await;
    let mut stream = phone.app.connect(phone.account).await.unwrap();

    // Security info › Remove, with confirmation.
    let info = bobby.browser.get("/mysecurityinfo").await;
    let marker = "href=\"/mysecurityinfo/devices/";
    let start = info.body.find(marker).expect("a remove link") + "href=\"".len();
    let end = info.body[start..].find('"').unwrap() + start;
    let remove_path = unescape(&info.body[start..end]);
    let confirm = bobby.browser.get(&remove_path).await;
    assert!(
        confirm.body.contains("Remove Authenticator app"),
        "{}",
        confirm.body
    );
    let done = bobby
        .browser
        .post(&remove_path, &[("csrf", &confirm.csrf())])
        .await;
    let info = bobby.browser.follow(done).await;
    assert!(info.body.contains("The method was removed."));
    assert!(!info.body.contains("Authenticator app —"));

    let closed = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while stream.next().await.is_some() {}
    })
    .await;
    assert!(
        closed.is_ok(),
        "the removed device's live channel is closed"
    );
    expect_refusal(
        phone
            .answer(&request, Decision::Approve, Some(number_on(&page)))
            .await,
        "unknown_device",
    );
    expect_refusal(phone.app.pending(phone.account).await, "unknown_device");
    let end = reload(&browser).await;
    assert!(end.body.contains("cancelled"), "{}", end.body);
    let next = start_sign_in(&server.browser(), &bobby.upn).await;
    assert!(next.body.contains("Temporary Access Pass"), "{}", next.body);
}

#[tokio::test]
async fn policy_mode_push_blocks_phone_sign_in_and_its_registration() {
    let server = TestServer::start().await;
    let bobby = Person::new(&server, "bobby", "Bobby Smith").await;
    let mut phone = Phone::register(&bobby, "phone").await;
    let (status, body) = server
        .api_call(
            Method::PATCH,
            AUTHENTICATOR,
            Some(json!({"includeTargets": [{"targetType": "group", "id": "all_users", "authenticationMode": "push"}]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    expect_refusal(
        phone.app.enable_phone_sign_in(phone.account, PIN).await,
        "phone_sign_in_not_allowed",
    );
    assert!(!phone.app.account(phone.account).phone_sign_in());
    // Enabled while allowed, then the administrator switches to push only.
    let (status, _) = server
        .api_call(
            Method::PATCH,
            AUTHENTICATOR,
            Some(json!({"includeTargets": [{"targetType": "group", "id": "all_users", "authenticationMode": "any"}]})),
        )
        .await;
    assert_eq!(status, 200);
    phone
        .app
        .enable_phone_sign_in(phone.account, PIN)
        .await
        .unwrap();
    let (status, _) = server
        .api_call(
            Method::PATCH,
            AUTHENTICATOR,
            Some(json!({"includeTargets": [{"targetType": "group", "id": "all_users", "authenticationMode": "push"}]})),
        )
        .await;
    assert_eq!(status, 200);
    let page = start_sign_in(&server.browser(), &bobby.upn).await;
    assert!(page.body.contains("Temporary Access Pass"), "{}", page.body);
    assert!(phone.app.pending(phone.account).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_excluded_group_gets_no_phone_sign_in() {
    let server = TestServer::start().await;
    let (bobby, phone) = bobby_with_phone_sign_in(&server).await;
    let user = server
        .latchkey
        .directory
        .find_user(&bobby.upn)
        .await
        .unwrap();
    let group = server
        .group_with(
            json!({"displayName": "Contractors", "description": "No phones"}),
            &[user.id.as_str()],
        )
        .await;
    let (status, body) = server
        .api_call(
            Method::PATCH,
            AUTHENTICATOR,
            Some(json!({"excludeTargets": [{"targetType": "group", "id": group["id"]}]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let page = start_sign_in(&server.browser(), &bobby.upn).await;
    assert!(page.body.contains("Temporary Access Pass"), "{}", page.body);
    assert!(phone.app.pending(phone.account).await.unwrap().is_empty());
}

#[tokio::test]
async fn two_devices_racing_exactly_one_wins_and_the_other_is_told() {
    let server = TestServer::start().await;
    let bobby = Person::new(&server, "bobby", "Bobby Smith").await;
    let mut first = Phone::with_phone_sign_in(&bobby, "phone").await;
    let mut second = Phone::with_phone_sign_in(&bobby, "tablet").await;
    let mut first_stream = first.app.connect(first.account).await.unwrap();
    let mut second_stream = second.app.connect(second.account).await.unwrap();
    let browser = server.browser();
    let page = start_sign_in(&browser, &bobby.upn).await;
    let number = number_on(&page);
    let Some(DeviceEvent::Request { request: a }) = first_stream.next().await else {
        panic!("first device notified")
    };
    let Some(DeviceEvent::Request { request: b }) = second_stream.next().await else {
        panic!("second device notified")
    };
    assert_eq!(a, b);
    let (one, two) = tokio::join!(
        first.answer(&a, Decision::Approve, Some(number)),
        second.answer(&b, Decision::Approve, Some(number)),
    );
    let wins = [&one, &two].iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "{one:?} {two:?}");
    let (loser, loser_stream) = if one.is_ok() {
        (two, &mut second_stream)
    } else {
        (one, &mut first_stream)
    };
    assert_eq!(loser.unwrap_err().code(), Some("already_answered"));
    let told = tokio::time::timeout(std::time::Duration::from_secs(5), loser_stream.next())
        .await
        .expect("the losing device is told");
    assert_eq!(
        told,
        Some(DeviceEvent::AnsweredElsewhere { id: a.id.clone() })
    );
    assert!(reload(&browser).await.body.contains("Signed in as"));
    let log = sign_in_log(&server, &bobby.upn).await;
    let successes = log
        .iter()
        .filter(|r| r["authenticationMethod"] == "authenticator" && r["status"]["errorCode"] == 0)
        .count();
    assert_eq!(successes, 1);
}

#[tokio::test]
async fn the_other_devices_hear_answered_elsewhere() {
    let server = TestServer::start().await;
    let bobby = Person::new(&server, "bobby", "Bobby Smith").await;
    let mut first = Phone::with_phone_sign_in(&bobby, "phone").await;
    let second = Phone::with_phone_sign_in(&bobby, "tablet").await;
    let mut second_stream = second.app.connect(second.account).await.unwrap();
    let browser = server.browser();
    let page = start_sign_in(&browser, &bobby.upn).await;
    let Some(DeviceEvent::Request { request }) = second_stream.next().await else {
        panic!("notified")
    };
    first
        .answer(&request, Decision::Approve, Some(number_on(&page)))
        .await
        .unwrap();
    let event = tokio::time::timeout(std::time::Duration::from_secs(5), second_stream.next())
        .await
        .expect("told in time");
    assert_eq!(
        event,
        Some(DeviceEvent::AnsweredElsewhere { id: request.id })
    );
}

#[tokio::test]
async fn choosing_another_way_cancels_the_notification_on_the_device() {
    let server = TestServer::start().await;
    let (bobby, mut phone) = bobby_with_phone_sign_in(&server).await;
    let mut stream = phone.app.connect(phone.account).await.unwrap();
    let browser = server.browser();
    let page = start_sign_in(&browser, &bobby.upn).await;
    let Some(DeviceEvent::Request { request }) = stream.next().await else {
        panic!("notified")
    };
    let other = browser
        .post(
            "/login/other-way",
            &[("csrf", &page.csrf()), ("method", "password")],
        )
        .await;
    let credential = browser.follow(other).await;
    assert!(
        credential.body.contains("Enter password"),
        "{}",
        credential.body
    );
    let event = tokio::time::timeout(std::time::Duration::from_secs(5), stream.next())
        .await
        .unwrap();
    assert_eq!(
        event,
        Some(DeviceEvent::Cancelled {
            id: request.id.clone()
        })
    );
    expect_refusal(
        phone
            .answer(&request, Decision::Approve, Some(number_on(&page)))
            .await,
        "request_cancelled",
    );
    // An unknown way is refused, and a forged form is refused.
    let bad = browser
        .post(
            "/login/other-way",
            &[("csrf", &page.csrf()), ("method", "telepathy")],
        )
        .await;
    assert_eq!(bad.status, 400);
    let forged = browser
        .post(
            "/login/other-way",
            &[("csrf", "forged"), ("method", "pass")],
        )
        .await;
    assert_eq!(forged.status, 403);
}

#[tokio::test]
async fn activation_codes_work_once_and_bad_activation_bodies_are_refused() {
    let server = TestServer::start().await;
    let bobby = Person::new(&server, "bobby", "Bobby Smith").await;
    let page = bobby.start_adding_the_app().await;
    let link = crate::phone::activation_link(&page);
    let home = tempfile::tempdir().unwrap();
    let mut app = latchkey_authenticator::Authenticator::open(home.path()).unwrap();
    let (account, test) = app.add(&link, "phone").await.unwrap();
    expect_refusal(app.add(&link, "again").await, "invalid_activation_code");
    // Before the test is answered the device cannot turn on phone sign-in.
    expect_refusal(
        app.enable_phone_sign_in(account, PIN).await,
        "registration_incomplete",
    );
    // A wrong number on the test removes the half-made registration.
    let progress = bobby.browser.get(&crate::phone::progress_path(&page)).await;
    let wrong = another_number(number_on(&progress));
    assert_eq!(
        app.respond(account, &test, Decision::Approve, Some(wrong), None)
            .await
            .unwrap(),
        AnswerOutcome::WrongNumber
    );
    let failed = bobby.browser.get(&crate::phone::progress_path(&page)).await;
    assert!(failed.body.contains("was not added"), "{}", failed.body);
    expect_refusal(app.status(account).await, "unknown_device");
    let info = bobby.browser.get("/mysecurityinfo").await;
    assert!(!info.body.contains("Authenticator app —"));

    let url = format!("{}{API_PREFIX}/activate", server.base);
    let http = reqwest::Client::new();
    for (body, code) in [
        ("not json".to_string(), "invalid_json"),
        (json!({"code": "x"}).to_string(), "invalid_json"),
        (
            json!({"code": "x", "device_name": "d", "device_key": "AAAA", "proof": "x"}).to_string(),
            "invalid_json",
        ),
        (
            json!({"code": "x", "device_name": "d", "device_key": DeviceKeyPair::generate().unwrap().public_key(), "proof": "x", "extra": 1}).to_string(),
            "invalid_json",
        ),
        (
            json!({"code": "x", "device_name": "d", "device_key": DeviceKeyPair::generate().unwrap().public_key(), "proof": "x"}).to_string(),
            "bad_signature",
        ),
        ("x".repeat(20_000), "body_too_large"),
    ] {
        let response = http
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let answer: serde_json::Value = response.json().await.unwrap_or_default();
        assert!(status == 400 || status == 401 || status == 413, "{status}");
        assert_eq!(answer["error"], code, "{answer}");
    }
    // A valid proof over a code that never existed.
    let key = DeviceKeyPair::generate().unwrap();
    let public = key.public_key();
    let body = json!({
        "code": "no-such-code",
        "device_name": "d",
        "proof": key.sign(&latchkey_protocol::activation_proof_input("no-such-code", &public)),
        "device_key": public,
    });
    let response = http.post(&url).json(&body).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(answer["error"], "invalid_activation_code");
}

#[tokio::test]
async fn a_pending_request_and_every_device_survive_a_restart() {
    let server = TestServer::start().await;
    let (bobby, mut phone) = bobby_with_phone_sign_in(&server).await;
    let browser = server.browser();
    let page = start_sign_in(&browser, &bobby.upn).await;
    let number = number_on(&page);
    let server = server.restart().await;
    // The app is reopened too, as a phone app would be: nothing but its files carries over.
    phone.app = latchkey_authenticator::Authenticator::open(phone.home.path()).unwrap();
    let request = phone.only_request().await;
    assert_eq!(request.kind, ApprovalKind::PhoneSignIn);
    assert!(phone.app.status(phone.account).await.unwrap().phone_sign_in);
    phone.approve(&request, number).await;
    assert!(
        reload(&browser)
            .await
            .body
            .contains("Signed in as <strong>Bobby Smith")
    );
    drop(server);
}

#[tokio::test]
async fn a_copied_device_key_alone_cannot_swap_or_switch_off_the_pin_protected_key() {
    let server = TestServer::start().await;
    let (bobby, mut phone) = bobby_with_phone_sign_in(&server).await;
    let account = phone.app.account(phone.account).clone();
    let device_key = account.device_key().unwrap();
    let send =
        |method: &'static str, path: &'static str, body: serde_json::Value, nonce: String| {
            let full = format!("{API_PREFIX}{path}");
            let bytes = serde_json::to_vec(&body).unwrap();
            let ts = server.latchkey.now().0;
            let signature =
                device_key.sign(&request_signing_input(method, &full, ts, &nonce, &bytes));
            reqwest::Client::new()
                .request(method.parse().unwrap(), format!("{}{full}", server.base))
                .header(HEADER_DEVICE, &account.device_id)
                .header(HEADER_TIMESTAMP, ts.to_string())
                .header(HEADER_NONCE, nonce)
                .header(HEADER_SIGNATURE, signature)
                .header("content-type", "application/json")
                .body(bytes)
                .send()
        };
    // An attacker's own passwordless key, without the current key's agreement.
    let theirs = DeviceKeyPair::generate().unwrap();
    let proof = theirs.sign(&latchkey_protocol::passwordless_proof_input(
        &account.device_id,
        &theirs.public_key(),
    ));
    let response = send(
        "POST",
        "/phone-sign-in",
        json!({"key": theirs.public_key(), "proof": proof,
            "pin_verifier": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}),
        "swap-attempt-0123456789".into(),
    )
    .await
    .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let refusal: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        refusal["error"], "bad_proof",
        "refused for the missing agreement, not the request"
    );
    // Switching phone sign-in off with a proof made by the device key.
    let nonce = "switch-off-0123456789".to_string();
    let proof = device_key.sign(&latchkey_protocol::passwordless_off_input(
        &account.device_id,
        &nonce,
    ));
    let response = send("DELETE", "/phone-sign-in", json!({"proof": proof}), nonce)
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let refusal: serde_json::Value = response.json().await.unwrap();
    assert_eq!(refusal["error"], "bad_proof");
    assert!(phone.app.status(phone.account).await.unwrap().phone_sign_in);
    // The owner, with the PIN, can replace the key and switch it off.
    phone
        .app
        .enable_phone_sign_in(phone.account, PIN)
        .await
        .unwrap();
    let browser = server.browser();
    let page = start_sign_in(&browser, &bobby.upn).await;
    let request = phone.only_request().await;
    assert_eq!(
        phone
            .answer(&request, Decision::Approve, Some(number_on(&page)))
            .await
            .unwrap(),
        AnswerOutcome::Approved,
        "the replaced key signs"
    );
    phone
        .app
        .disable_phone_sign_in(phone.account, PIN)
        .await
        .unwrap();
    assert!(!phone.app.status(phone.account).await.unwrap().phone_sign_in);
    let page = start_sign_in(&server.browser(), &bobby.upn).await;
    assert!(page.body.contains("Temporary Access Pass"));
}

#[tokio::test]
async fn no_its_not_me_is_a_plain_denial_where_reporting_is_off() {
    let server = TestServer::start().await;
    let (bobby, mut phone) = bobby_with_phone_sign_in(&server).await;
    let (status, body) = server
        .api_call(
            Method::PATCH,
            AUTHENTICATOR,
            Some(json!({"featureSettings": {"reportSuspiciousActivityState":
                {"state": "disabled", "includeTarget": {"targetType": "group", "id": "all_users"}}}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let browser = server.browser();
    start_sign_in(&browser, &bobby.upn).await;
    let request = phone.only_request().await;
    assert!(!request.report_allowed);
    assert_eq!(
        phone
            .answer(&request, Decision::Report, None)
            .await
            .unwrap(),
        AnswerOutcome::Denied
    );
    let log = sign_in_log(&server, &bobby.upn).await;
    assert_eq!(log[0]["status"]["errorCode"], 500121);
}

#[tokio::test]
async fn a_copied_device_key_cannot_turn_on_phone_sign_in_after_the_registration_window() {
    let clock = manual_clock();
    let server = TestServer::builder()
        .clock(clock.clone())
        .config(|c| c.lifetimes.phone_sign_in_enable_seconds = 1)
        .start()
        .await;
    let bobby = Person::new(&server, "bobby", "Bobby Smith").await;
    let mut phone = Phone::register(&bobby, "push-only phone").await;
    clock.advance(2);
    // Whoever holds the device file (owner or thief) can no longer enable it on their own...
    expect_refusal(
        phone.app.enable_phone_sign_in(phone.account, PIN).await,
        "enable_window_passed",
    );
    assert!(!phone.app.status(phone.account).await.unwrap().phone_sign_in);
    let page = start_sign_in(&server.browser(), &bobby.upn).await;
    assert!(
        page.body.contains("Temporary Access Pass"),
        "no passwordless sign-in"
    );
    // ...but adding the app again from security info (signed in) opens a new window.
    let mut again = Phone::register(&bobby, "phone").await;
    again
        .app
        .enable_phone_sign_in(again.account, PIN)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_device_cannot_pile_up_live_connections() {
    let server = TestServer::start().await;
    let (_bobby, phone) = bobby_with_phone_sign_in(&server).await;
    let mut oldest = phone.app.connect(phone.account).await.unwrap();
    let mut others = Vec::new();
    for _ in 0..4 {
        others.push(phone.app.connect(phone.account).await.unwrap());
    }
    let closed = tokio::time::timeout(std::time::Duration::from_secs(5), oldest.next())
        .await
        .expect("the oldest connection ends in time");
    assert_eq!(closed, None, "the fifth connection closes the oldest");
    // The newer ones still work.
    let newest = others.last_mut().unwrap();
    let still_open =
        tokio::time::timeout(std::time::Duration::from_millis(300), newest.next()).await;
    assert!(
        still_open.is_err(),
        "the newest connection stays open: {still_open:?}"
    );
}
