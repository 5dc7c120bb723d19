//! Two instances on one PostgreSQL database (issue 17), spoken to as a browser and the
//! terminal authenticator's library would: a device's live channel on one instance hears
//! what a sign-in on the other raises, a device outlives the loss of its instance and of the
//! listener's connection, and what is spent or counted at one instance is spent or counted
//! at both. `cargo nextest run --workspace -E 'test(/across_instances/)'` runs them (with the
//! store's own across-instances races).
//!
//! Behind a load balancer both instances share one address; here each has its own port, so
//! "the device talks to B" is the same device's files with B's address (`same_phone_at`).
//! Browsers sign in at B: each instance registers My Apps for its own public URL at start,
//! and B started last (real instances share one public URL).

use std::time::Duration;

use latchkey_authenticator::client::sign_answer;
use latchkey_authenticator::{Authenticator, EventStream};
use latchkey_protocol::MAX_WRONG_PINS;
use latchkey_protocol::wire::{AnswerOutcome, ApprovalRequest, Decision, DeviceEvent};
use latchkey_store::postgres::scratch::ScratchSchema;

use crate::phone::{PIN, Person, Phone, expect_refusal, number_on, reload, start_sign_in};
use crate::postgres::{Instance, scratch_schema, second_instance};
use crate::support::{TestServer, assert_signed_in_as};

/// Instance A (the full test server, where people and devices are made) and instance B, on
/// one scratch schema.
async fn two_instances() -> (ScratchSchema, TestServer, Instance) {
    let schema = scratch_schema().await;
    let url = schema.url();
    let a = TestServer::start_with(|c| c.database_url = Some(url.clone())).await;
    let b = second_instance(&url).await;
    (schema, a, b)
}

/// Bobby, with phone sign-in on a phone registered through A.
async fn bobby_with_a_phone(a: &TestServer) -> (Person, Phone) {
    let bobby = Person::new(a, "bobby", "Bobby Smith").await;
    let phone = Phone::with_phone_sign_in(&bobby, "Bobby's phone").await;
    (bobby, phone)
}

/// The same device, talking to the instance at `base`: its app files copied, with the
/// account's server address changed.
fn same_phone_at(phone: &Phone, base: &str) -> (tempfile::TempDir, Authenticator) {
    let dir = tempfile::tempdir().unwrap();
    let file = "device.json";
    let mut store: serde_json::Value =
        serde_json::from_slice(&std::fs::read(phone.home.path().join(file)).unwrap()).unwrap();
    for account in store["accounts"].as_array_mut().unwrap() {
        account["server"] = base.into();
    }
    std::fs::write(dir.path().join(file), store.to_string()).unwrap();
    let app = Authenticator::open(dir.path()).unwrap();
    (dir, app)
}

/// The next event on a live channel, within 10 s.
async fn next_event(stream: &mut EventStream) -> Option<DeviceEvent> {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("an event (or the channel's end) within 10 s")
}

async fn next_request(stream: &mut EventStream) -> ApprovalRequest {
    match next_event(stream).await {
        Some(DeviceEvent::Request { request }) => request,
        other => panic!("expected a request on the live channel, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_at_one_instance_reaches_the_device_listening_at_another_across_instances() {
    let (schema, a, b) = two_instances().await;
    let (bobby, mut phone) = bobby_with_a_phone(&a).await;
    let mut at_a = phone.app.connect(phone.account).await.unwrap();

    let browser = b.browser();
    let page = start_sign_in(&browser, &bobby.upn).await;
    let number = number_on(&page);
    let request = next_request(&mut at_a).await;
    assert_eq!(request.user_principal_name, bobby.upn);
    phone.approve(&request, number).await;
    assert_signed_in_as(&reload(&browser).await, "Bobby Smith");

    // Choosing another way at B cancels the notification on the device at A.
    let browser = b.browser();
    let page = start_sign_in(&browser, &bobby.upn).await;
    let request = next_request(&mut at_a).await;
    let other = browser
        .post(
            "/login/other-way",
            &[("csrf", &page.csrf()), ("method", "password")],
        )
        .await;
    assert!(other.status < 400, "{}", other.body);
    assert_eq!(
        next_event(&mut at_a).await,
        Some(DeviceEvent::Cancelled { id: request.id })
    );
    drop(b);
    drop(a);
    schema.drop_schema().await.expect("drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_whose_instance_stops_mid_request_signs_in_through_another_across_instances() {
    let (schema, mut a, b) = two_instances().await;
    let (bobby, phone) = bobby_with_a_phone(&a).await;
    let mut at_a = phone.app.connect(phone.account).await.unwrap();
    let browser = b.browser();
    let page = start_sign_in(&browser, &bobby.upn).await;
    let request = next_request(&mut at_a).await;

    a.stop().await;
    assert_eq!(
        next_event(&mut at_a).await,
        None,
        "a stopping instance closes its live channels, so devices reconnect"
    );
    let (_home, mut moved) = same_phone_at(&phone, &b.base);
    let _at_b = moved.connect(0).await.expect("the live channel opens at B");
    let pending = moved.pending(0).await.expect("pending at B");
    assert_eq!(
        pending.iter().map(|r| &r.id).collect::<Vec<_>>(),
        [&request.id],
        "the pull after reconnecting finds the request"
    );
    let outcome = moved
        .respond(
            0,
            &pending[0],
            Decision::Approve,
            Some(number_on(&page)),
            Some(PIN),
        )
        .await
        .expect("answered at B");
    assert_eq!(outcome, AnswerOutcome::Approved);
    assert_signed_in_as(&reload(&browser).await, "Bobby Smith");
    drop(b);
    drop(a);
    schema.drop_schema().await.expect("drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_answers_racing_through_two_instances_settle_the_request_once_across_instances() {
    let (schema, a, b) = two_instances().await;
    let (bobby, mut phone) = bobby_with_a_phone(&a).await;
    let (_home, moved) = same_phone_at(&phone, &b.base);
    let browser = b.browser();
    let page = start_sign_in(&browser, &bobby.upn).await;
    let request = phone.only_request().await;
    let key = phone
        .app
        .unlock_passwordless_key(phone.account, PIN)
        .await
        .expect("the PIN opens the key");
    let approve = sign_answer(&key, &request, Decision::Approve, Some(number_on(&page)));
    let (through_a, through_b) = tokio::join!(
        phone.app.send_answer(phone.account, &request.id, &approve),
        moved.send_answer(0, &request.id, &approve),
    );
    let lost = match (through_a, through_b) {
        (Ok(AnswerOutcome::Approved), lost @ Err(_))
        | (lost @ Err(_), Ok(AnswerOutcome::Approved)) => lost,
        both => panic!("exactly one answer wins: {both:?}"),
    };
    expect_refusal(lost, "already_answered");
    assert_signed_in_as(&reload(&browser).await, "Bobby Smith");
    drop(b);
    drop(a);
    schema.drop_schema().await.expect("drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_or_a_signed_request_replayed_at_another_instance_is_refused_across_instances() {
    let (schema, a, b) = two_instances().await;
    let (bobby, mut phone) = bobby_with_a_phone(&a).await;
    let (_home, moved) = same_phone_at(&phone, &b.base);

    // An approval taken at A, sent again (by someone who captured it) to B.
    let browser = b.browser();
    let page = start_sign_in(&browser, &bobby.upn).await;
    let request = phone.only_request().await;
    let key = phone
        .app
        .unlock_passwordless_key(phone.account, PIN)
        .await
        .unwrap();
    let approve = sign_answer(&key, &request, Decision::Approve, Some(number_on(&page)));
    assert_eq!(
        phone
            .app
            .send_answer(phone.account, &request.id, &approve)
            .await
            .unwrap(),
        AnswerOutcome::Approved
    );
    expect_refusal(
        moved.send_answer(0, &request.id, &approve).await,
        "already_answered",
    );

    // A signed request's nonce, used at A, cannot be used again at B.
    let nonce = "bb2a1c7e5d0f4e3a9b8c7d6e5f4a3b2c".to_string();
    let first = phone
        .app
        .client(phone.account)
        .unwrap()
        .signed(reqwest::Method::GET, "/requests", None, nonce.clone())
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    let again = moved
        .client(0)
        .unwrap()
        .signed(reqwest::Method::GET, "/requests", None, nonce)
        .await
        .unwrap();
    assert_eq!(again.status(), 401);
    let body: serde_json::Value = again.json().await.unwrap();
    assert_eq!(body["error"], "replayed_request", "{body}");
    drop(b);
    drop(a);
    schema.drop_schema().await.expect("drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_pins_guessed_through_two_instances_are_counted_together_across_instances() {
    let (schema, a, b) = two_instances().await;
    let (_bobby, mut phone) = bobby_with_a_phone(&a).await;
    let (_home, mut moved) = same_phone_at(&phone, &b.base);
    let wrong = ["000000", "111111", "222222", "333333", "444444"];
    assert_eq!(wrong.len(), MAX_WRONG_PINS as usize);
    for (n, pin) in wrong.iter().enumerate() {
        // Alternating instances: a guesser gains nothing by spreading guesses.
        let result = if n % 2 == 0 {
            phone.app.unlock_passwordless_key(phone.account, pin).await
        } else {
            moved.unlock_passwordless_key(0, pin).await
        };
        let expected = if n + 1 < wrong.len() {
            "wrong_pin"
        } else {
            "phone_sign_in_locked"
        };
        expect_refusal(result, expected);
    }
    expect_refusal(
        moved.unlock_passwordless_key(0, PIN).await,
        "phone_sign_in_locked",
    );
    drop(b);
    drop(a);
    schema.drop_schema().await.expect("drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_removed_through_one_instance_loses_its_live_channel_at_another_across_instances()
{
    let (schema, a, b) = two_instances().await;
    let (_bobby, phone) = bobby_with_a_phone(&a).await;
    let mut at_a = phone.app.connect(phone.account).await.unwrap();
    let (_home, mut moved) = same_phone_at(&phone, &b.base);
    moved.remove(0).await.expect("removed through B");
    assert_eq!(
        next_event(&mut at_a).await,
        None,
        "A closes the removed device's live channel"
    );
    drop(b);
    drop(a);
    schema.drop_schema().await.expect("drop");
}

/// The listener's connection is ended (a failover, an administrator's `pg_terminate_backend`)
/// and a request is raised at B while A is not listening: its notification is lost, and A
/// delivers the request from the database once its listener is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_raised_while_the_listener_was_cut_off_reaches_the_device_after_it_reconnects_across_instances()
 {
    let (schema, a, b) = two_instances().await;
    let (bobby, mut phone) = bobby_with_a_phone(&a).await;
    let mut at_a = phone.app.connect(phone.account).await.unwrap();
    let listening = async {
        while schema.listeners().await.unwrap() < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), listening)
        .await
        .expect("both instances listen");

    assert_eq!(schema.end_listeners().await.unwrap(), 2);
    let gone = async {
        while schema.listeners().await.unwrap() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), gone)
        .await
        .expect("the listeners' connections end");
    let browser = b.browser();
    let page = start_sign_in(&browser, &bobby.upn).await;
    assert_eq!(
        schema.listeners().await.unwrap(),
        0,
        "the request was raised while nobody listened (listeners wait 1 s before reconnecting)"
    );

    let request = next_request(&mut at_a).await;
    assert!(
        schema.listeners().await.unwrap() > 0,
        "delivered after reconnecting"
    );
    phone.approve(&request, number_on(&page)).await;
    assert_signed_in_as(&reload(&browser).await, "Bobby Smith");
    drop(b);
    drop(a);
    schema.drop_schema().await.expect("drop");
}

/// While the user is at risk a request is held back: it waits for a pull and is never
/// announced. The reload after a listener reconnects (which makes up for lost notifications)
/// must not announce it either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_back_request_is_not_announced_by_the_reload_after_a_reconnect_across_instances() {
    let (schema, a, b) = two_instances().await;
    let (bobby, mut phone) = bobby_with_a_phone(&a).await;
    let mut at_a = phone.app.connect(phone.account).await.unwrap();
    start_sign_in(&b.browser(), &bobby.upn).await;
    let request = next_request(&mut at_a).await;
    let outcome = phone
        .answer(&request, Decision::Report, None)
        .await
        .unwrap();
    assert_eq!(outcome, AnswerOutcome::Reported, "Bobby is at risk now");

    start_sign_in(&b.browser(), &bobby.upn).await;
    let held_back = phone.only_request().await;
    assert_eq!(schema.end_listeners().await.unwrap(), 2);
    let back = async {
        while schema.listeners().await.unwrap() < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), back)
        .await
        .expect("the listeners reconnect");
    let announced = tokio::time::timeout(Duration::from_secs(2), at_a.next()).await;
    assert!(
        announced.is_err(),
        "nothing is announced after the reload: {announced:?}"
    );
    assert_eq!(
        phone.only_request().await.id,
        held_back.id,
        "the held-back request still waits for a pull"
    );
    drop(b);
    drop(a);
    schema.drop_schema().await.expect("drop");
}
