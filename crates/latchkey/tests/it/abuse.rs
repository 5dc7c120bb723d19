//! Push fatigue and "No, it's not me": what an attacker who knows a user name can make the
//! user's phone do, and what a report does to them.

use latchkey_protocol::wire::{AnswerOutcome, ApprovalKind, Decision, DeviceEvent};

use crate::phone::{Person, Phone, assert_failure, number_on, reload, start_sign_in, unescape};
use crate::support::TestServer;

#[tokio::test]
async fn an_attacker_looping_sign_ins_gets_one_notification_per_request_lifetime() {
    let server = TestServer::start().await;
    let bobby = Person::new(&server, "bobby", "Bobby Smith").await;
    let phone = Phone::with_phone_sign_in(&bobby, "phone").await;
    let mut stream = phone.app.connect(phone.account).await.unwrap();
    // The attacker starts ten sign-ins in a row.
    let first = server.browser();
    let page = start_sign_in(&first, &bobby.upn).await;
    assert!(page.body.contains("Approve sign in request"));
    for _ in 0..9 {
        let attacker = server.browser();
        let page = start_sign_in(&attacker, &bobby.upn).await;
        assert!(
            unescape(&page.body).contains("already waiting in your authenticator app"),
            "{}",
            page.body
        );
        assert!(
            page.body.contains("Temporary Access Pass"),
            "the other ways are offered"
        );
    }
    let Some(DeviceEvent::Request { request }) = stream.next().await else {
        panic!("the first request is delivered");
    };
    assert_eq!(request.kind, ApprovalKind::PhoneSignIn);
    let more = tokio::time::timeout(std::time::Duration::from_millis(500), stream.next()).await;
    assert!(more.is_err(), "no second notification: {more:?}");
    assert_eq!(phone.app.pending(phone.account).await.unwrap().len(), 1);
}

#[tokio::test]
async fn after_the_waiting_request_is_answered_a_new_sign_in_notifies_again() {
    let server = TestServer::start().await;
    let bobby = Person::new(&server, "bobby", "Bobby Smith").await;
    let mut phone = Phone::with_phone_sign_in(&bobby, "phone").await;
    let browser = server.browser();
    start_sign_in(&browser, &bobby.upn).await;
    let request = phone.only_request().await;
    assert_eq!(
        phone.answer(&request, Decision::Deny, None).await.unwrap(),
        AnswerOutcome::Denied
    );
    let again = server.browser();
    let page = start_sign_in(&again, &bobby.upn).await;
    let request = phone.only_request().await;
    phone
        .answer(&request, Decision::Approve, Some(number_on(&page)))
        .await
        .unwrap();
    assert!(reload(&again).await.body.contains("Signed in as"));
}

#[tokio::test]
async fn no_its_not_me_makes_the_user_risky_revokes_their_sessions_and_stops_pushes() {
    let server = TestServer::start().await;
    let bobby = Person::new(&server, "bobby", "Bobby Smith").await;
    let mut phone = Phone::with_phone_sign_in(&bobby, "Bobby's phone").await;

    // Bobby is signed in to an application that holds a refresh token.
    let app = crate::phone::phone_sign_in_to_app(&server, &mut phone, &bobby.upn).await;
    let (client_id, secret, tokens) = (app.client_id, app.secret, app.tokens);
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();

    // Someone else types Bobby's name; he answers "No, it's not me".
    let attacker = server.browser();
    start_sign_in(&attacker, &bobby.upn).await;
    let request = phone.only_request().await;
    assert!(request.report_allowed);
    assert_eq!(
        phone
            .answer(&request, Decision::Report, None)
            .await
            .unwrap(),
        AnswerOutcome::Reported
    );
    assert!(
        reload(&attacker)
            .await
            .body
            .contains("reported this sign-in as not yours")
    );

    // The refresh token and the browser sessions are dead.
    let (status, body) = crate::support::token_request(
        &server.base,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        Some((&client_id, &secret)),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        bobby
            .browser
            .get("/mysecurityinfo")
            .await
            .location
            .is_some()
    );

    // Administrators see why Bobby is risky.
    let (status, risky) = server
        .api_call(reqwest::Method::GET, "/identityProtection/riskyUsers", None)
        .await;
    assert_eq!(status, 200);
    let entry = &risky["value"][0];
    assert_eq!(entry["userPrincipalName"], bobby.upn);
    assert_eq!(entry["riskLevel"], "high");
    assert_eq!(entry["riskState"], "atRisk");
    assert_eq!(entry["riskDetail"], "userReportedSuspiciousActivity");
    let (_, detail) = server
        .api_call(
            reqwest::Method::GET,
            &format!("/identityProtection/riskyUsers/{}", bobby.upn),
            None,
        )
        .await;
    assert_eq!(detail["detections"][0]["ipAddress"], "127.0.0.1");
    assert_eq!(detail["detections"][0]["deviceName"], "Bobby's phone");

    // Further sign-ins push nothing; the app can still pull what waits.
    let mut stream = phone.app.connect(phone.account).await.unwrap();
    let later = server.browser();
    let page = start_sign_in(&later, &bobby.upn).await;
    assert!(page.body.contains("Approve sign in request"));
    let pushed = tokio::time::timeout(std::time::Duration::from_millis(500), stream.next()).await;
    assert!(
        pushed.is_err(),
        "nothing pushed to a risky user: {pushed:?}"
    );
    let pulled = phone.only_request().await;
    phone.answer(&pulled, Decision::Deny, None).await.unwrap();

    // Once an administrator dismisses the risk, notifications flow again.
    let (status, body) = server
        .api_call(
            reqwest::Method::POST,
            "/identityProtection/riskyUsers/dismiss",
            Some(serde_json::json!({"userIds": [bobby.upn]})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let again = server.browser();
    start_sign_in(&again, &bobby.upn).await;
    let event = tokio::time::timeout(std::time::Duration::from_secs(5), stream.next())
        .await
        .expect("pushed again");
    assert!(
        matches!(event, Some(DeviceEvent::Request { .. })),
        "{event:?}"
    );
    let (_, audit) = server
        .api_call(
            reqwest::Method::GET,
            "/auditLogs/directoryAudits?category=IdentityProtection",
            None,
        )
        .await;
    let activities: Vec<&str> = audit["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["activity"].as_str().unwrap())
        .collect();
    assert_eq!(
        activities,
        ["Dismiss user risk", "User reported suspicious activity"]
    );
}

#[tokio::test]
async fn bad_dismissals_are_refused_and_change_nothing() {
    let server = TestServer::start().await;
    for (body, status) in [
        (serde_json::json!({"userIds": []}), 400),
        (
            serde_json::json!({"userIds": ["nobody@contoso.example"]}),
            404,
        ),
        (serde_json::json!({"userIds": ["x"], "extra": true}), 400),
        (serde_json::json!({"userIds": vec!["x"; 61]}), 400),
        (serde_json::json!("not an object"), 400),
    ] {
        let (got, answer) = server
            .api_call(
                reqwest::Method::POST,
                "/identityProtection/riskyUsers/dismiss",
                Some(body),
            )
            .await;
        assert_eq!(got, status, "{answer}");
    }
    let (status, answer) = server
        .api_call(
            reqwest::Method::GET,
            "/identityProtection/riskyUsers/nobody",
            None,
        )
        .await;
    assert_eq!(status, 404, "{answer}");
}

/// A limit whose (epoch-aligned) window is a day, so a test never straddles two windows.
fn limit(n: u32) -> latchkey_domain::throttle::Limit {
    latchkey_domain::throttle::Limit::new(n, 86_400)
}

#[tokio::test]
async fn repeated_wrong_numbers_stop_notifications_for_the_user() {
    let server = TestServer::start_with(|c| c.throttle.wrong_numbers_per_user = limit(3)).await;
    let bobby = Person::new(&server, "bobby", "Bobby Smith").await;
    let mut phone = Phone::with_phone_sign_in(&bobby, "phone").await;
    for _ in 0..3 {
        let browser = server.browser();
        let page = start_sign_in(&browser, &bobby.upn).await;
        let request = phone.only_request().await;
        let wrong = crate::phone::another_number(number_on(&page));
        assert_eq!(
            phone
                .answer(&request, Decision::Approve, Some(wrong))
                .await
                .unwrap(),
            AnswerOutcome::WrongNumber
        );
    }
    let browser = server.browser();
    let page = start_sign_in(&browser, &bobby.upn).await;
    assert!(
        unescape(&page.body).contains("too many sign-in attempts"),
        "{}",
        page.body
    );
    assert!(phone.app.pending(phone.account).await.unwrap().is_empty());
    let log = crate::phone::sign_in_log(&server, &bobby.upn).await;
    assert_failure(&log[0], 900030, "authentication throttled");
}

#[tokio::test]
async fn notifications_per_user_are_limited_and_the_device_gets_none_past_the_limit() {
    let server = TestServer::start_with(|c| c.throttle.notifications_per_user = limit(2)).await;
    let bobby = Person::new(&server, "bobby", "Bobby Smith").await;
    let mut phone = Phone::with_phone_sign_in(&bobby, "phone").await;
    let mut stream = phone.app.connect(phone.account).await.unwrap();
    for _ in 0..2 {
        start_sign_in(&server.browser(), &bobby.upn).await;
        let Some(DeviceEvent::Request { request }) = stream.next().await else {
            panic!("delivered");
        };
        phone.answer(&request, Decision::Deny, None).await.unwrap();
    }
    let page = start_sign_in(&server.browser(), &bobby.upn).await;
    assert!(unescape(&page.body).contains("too many sign-in attempts"));
    let more = tokio::time::timeout(std::time::Duration::from_millis(500), async {
        loop {
            match stream.next().await {
                Some(DeviceEvent::Request { request }) => return request,
                Some(_) => continue,
                None => std::future::pending::<()>().await,
            }
        }
    })
    .await;
    assert!(more.is_err(), "no notification past the limit: {more:?}");
}

#[tokio::test]
async fn failed_passes_from_one_address_are_throttled_before_the_pass_is_even_checked() {
    let server = TestServer::start_with(|c| c.throttle.failed_credentials_per_ip = limit(3)).await;
    let user = server.user("guy", "Guy Oz").await;
    let pass = server.pass(&user).await;
    for _ in 0..3 {
        let browser = server.browser();
        let login = browser.follow(browser.get("/myapps").await).await;
        let answer = browser
            .sign_in_with_pass(login, "guy@contoso.example", "wrong-pass-123")
            .await;
        assert_eq!(answer.status, 401);
    }
    let browser = server.browser();
    let login = browser.follow(browser.get("/myapps").await).await;
    let answer = browser
        .sign_in_with_pass(login, "guy@contoso.example", &pass)
        .await;
    assert_eq!(
        answer.status, 401,
        "even the right pass waits out the window"
    );
    assert!(unescape(&answer.body).contains("too many sign-in attempts"));
    let log = crate::phone::sign_in_log(&server, "guy@contoso.example").await;
    assert_eq!(log[0]["status"]["errorCode"], 900030);
    assert!(
        log.iter().all(|r| r["status"]["errorCode"] != 0),
        "nobody signed in"
    );
}

#[tokio::test]
async fn a_device_sending_answers_in_a_flood_is_throttled() {
    let server = TestServer::start_with(|c| c.throttle.answers_per_device = limit(3)).await;
    let bobby = Person::new(&server, "bobby", "Bobby Smith").await;
    let mut phone = Phone::with_phone_sign_in(&bobby, "phone").await;
    start_sign_in(&server.browser(), &bobby.upn).await;
    let request = phone.only_request().await;
    // Three answers a minute are allowed: the registration test was one, and these two are
    // refused for what they say...
    let mut shown = request.clone();
    shown.location = Some("elsewhere".into());
    for _ in 0..2 {
        let refused = phone.answer(&shown, Decision::Deny, None).await;
        assert_eq!(refused.unwrap_err().code(), Some("context_mismatch"));
    }
    // ...and the fourth is refused before it is even judged.
    let flood = phone.answer(&request, Decision::Deny, None).await;
    match flood {
        Err(e) => assert_eq!(e.code(), Some("throttled"), "{e}"),
        Ok(v) => panic!("the third answer in a minute is refused, got {v:?}"),
    }
}

#[tokio::test]
async fn a_report_reaches_the_administrators_webhook_signed_and_retried() {
    use std::sync::{Arc, Mutex};
    // A receiver that refuses the first delivery and accepts the second.
    /// What the receiver got: the signature header and the body of each delivery.
    type Deliveries = Arc<Mutex<Vec<(String, Vec<u8>)>>>;
    let received: Deliveries = Arc::default();
    let seen = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let seen = seen.clone();
                async move {
                    let signature = headers["x-latchkey-signature"]
                        .to_str()
                        .unwrap()
                        .to_string();
                    let mut all = seen.lock().unwrap();
                    all.push((signature, body.to_vec()));
                    if all.len() == 1 {
                        axum::http::StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        axum::http::StatusCode::NO_CONTENT
                    }
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    const SECRET: &str = "a-webhook-secret-of-some-length";
    let server = TestServer::start_with(|c| {
        c.webhooks.risk_url = Some(hook.clone());
        c.webhooks.secret = Some(SECRET.into());
        c.webhooks.retry_base_millis = 50;
    })
    .await;
    let bobby = Person::new(&server, "bobby", "Bobby Smith").await;
    let mut phone = Phone::with_phone_sign_in(&bobby, "Bobby's phone").await;
    start_sign_in(&server.browser_from("203.0.113.7"), &bobby.upn).await;
    let request = phone.only_request().await;
    phone
        .answer(&request, Decision::Report, None)
        .await
        .unwrap();
    for _ in 0..100 {
        if received.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let deliveries = received.lock().unwrap().clone();
    assert_eq!(deliveries.len(), 2, "refused once, then delivered");
    for (signature, body) in &deliveries {
        let t: i64 = signature
            .split(',')
            .next()
            .and_then(|p| p.strip_prefix("t="))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            signature,
            &latchkey::webhook::signature(SECRET, t, body),
            "the receiver can verify where it came from"
        );
        assert_ne!(
            signature,
            &latchkey::webhook::signature("another secret!!", t, body)
        );
        let event: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(event["type"], "userReportedSuspiciousActivity");
        assert_eq!(event["userPrincipalName"], bobby.upn);
        assert_eq!(event["detection"]["deviceName"], "Bobby's phone");
    }
}

#[tokio::test]
async fn the_console_shows_a_reported_user_as_risky_with_the_reason_and_dismisses_it() {
    let server = TestServer::start().await;
    let people = latchkey::demo::seed_demo_tenant(&server.latchkey)
        .await
        .unwrap();
    let bobby_pass = people
        .iter()
        .find(|p| p.user.upn.as_str() == "bobby@latchkey.test")
        .unwrap()
        .pass
        .expose()
        .to_string();
    let bobby = Person {
        upn: "bobby@latchkey.test".into(),
        browser: server.browser(),
    };
    let login = bobby
        .browser
        .follow(bobby.browser.get("/mysecurityinfo").await)
        .await;
    bobby
        .browser
        .sign_in_with_pass(login, &bobby.upn, &bobby_pass)
        .await;
    let mut phone = Phone::with_phone_sign_in(&bobby, "Bobby's phone").await;
    start_sign_in(&server.browser(), &bobby.upn).await;
    let request = phone.only_request().await;
    phone
        .answer(&request, Decision::Report, None)
        .await
        .unwrap();

    let admin = crate::console::admin_browser(&server, &people).await;
    let page = admin.get("/admin/risky-users").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let text = unescape(&page.body);
    assert!(text.contains("bobby@latchkey.test"), "{text}");
    assert!(text.contains("High · At risk"));
    assert!(text.contains("Reported a sign-in as not theirs"));
    assert!(text.contains("Bobby's phone"));
    assert!(text.contains("My Apps"));
    let user = server
        .latchkey
        .directory
        .find_user("bobby@latchkey.test")
        .await
        .unwrap();
    let done = admin
        .post(
            "/admin/risky-users/dismiss",
            &[("csrf", &page.csrf()), ("user", user.id.as_str())],
        )
        .await;
    let after = admin.follow(done).await;
    let text = unescape(&after.body);
    assert!(text.contains("risk was dismissed"), "{text}");
    assert!(!text.contains("High · At risk"));
    assert!(text.contains("An administrator dismissed the risk"));
    // A forged form changes nothing.
    let forged = admin
        .post(
            "/admin/risky-users/dismiss",
            &[("csrf", "forged"), ("user", user.id.as_str())],
        )
        .await;
    assert_eq!(forged.status, 403);
}

#[tokio::test]
async fn the_throttle_notice_for_wrong_passes_does_not_tell_which_names_exist() {
    // Enumeration through the throttle: if only real accounts were counted, the notice after
    // too many wrong passes would appear for them alone.
    // Nobody signed in as either name before, so both count against the allowance of
    // unfamiliar places (smart lockout), the only one a name that belongs to nobody has.
    let server =
        TestServer::start_with(|c| c.throttle.failed_credentials_per_user_unfamiliar = limit(3))
            .await;
    let user = server.user("guy", "Guy Oz").await;
    server.pass(&user).await;
    let mut last = Vec::new();
    for upn in ["guy@contoso.example", "ghost@contoso.example"] {
        let mut answer = None;
        for _ in 0..4 {
            let browser = server.browser();
            let login = browser.follow(browser.get("/myapps").await).await;
            answer = Some(
                browser
                    .sign_in_with_pass(login, upn, "wrong-pass-123")
                    .await,
            );
        }
        let answer = answer.unwrap();
        assert_eq!(answer.status, 401, "{upn}");
        assert!(
            unescape(&answer.body).contains("too many sign-in attempts"),
            "{upn}: {}",
            answer.body
        );
        last.push(crate::hardening::normalised(&answer.body, upn));
    }
    assert_eq!(
        last[0], last[1],
        "the two pages differ in more than the name"
    );
    let log = crate::phone::sign_in_log(&server, "ghost@contoso.example").await;
    assert_eq!(log[0]["status"]["errorCode"], 900030);
}
