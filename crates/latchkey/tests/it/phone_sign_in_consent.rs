//! Turning phone sign-in on for an account registered long ago (issue 19): the person, signed
//! in to security info, chooses *Allow phone sign-in* for the device and enters the number the
//! page shows in the app; only then, within the enable window, does the device turn it on.

use latchkey_protocol::wire::{AnswerOutcome, ApprovalKind, ApprovalRequest, Decision};

use crate::phone::{
    PIN, Person, Phone, another_number, element_text, expect_refusal, number_on, reload,
    start_sign_in,
};
use crate::pin_guessing::copy_of;
use std::sync::Arc;

use latchkey_domain::clock::ManualClock;

use crate::support::{Page, TestServer, assert_signed_in_as, manual_clock};

/// The enable window in these tests: short, since the devices sign their requests with the
/// real time and the server refuses requests more than a minute off its (test) clock.
const WINDOW: i64 = 20;
/// Past the window.
const LATER: i64 = WINDOW + 1;

async fn server_with(clock: &Arc<ManualClock>) -> TestServer {
    TestServer::builder()
        .clock(clock.clone())
        .config(|c| {
            c.lifetimes.phone_sign_in_enable_seconds = WINDOW;
            c.lifetimes.approval_request_seconds = 10;
        })
        .start()
        .await
}

/// The page with the number and its address.
pub struct Waiting {
    pub page: Page,
    pub path: String,
}

/// Security info › *Allow phone sign-in* for the device, followed to the page with the number.
pub async fn allow_phone_sign_in(person: &Person, device_id: &str) -> Waiting {
    let info = person.browser.get("/mysecurityinfo").await;
    let action = format!("/mysecurityinfo/devices/{device_id}/phone-sign-in-consent");
    assert!(
        info.body.contains(&format!("action=\"{action}\"")),
        "the page offers Allow phone sign-in: {}",
        info.body
    );
    let sent = person
        .browser
        .post(&action, &[("csrf", &info.csrf())])
        .await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    let path = sent
        .location
        .clone()
        .expect("a redirect to the waiting page");
    let page = person.browser.follow(sent).await;
    assert_eq!(page.status, 200, "{}", page.body);
    Waiting { page, path }
}

/// The confirmation request waiting for the phone.
async fn consent_request(phone: &Phone) -> ApprovalRequest {
    let request = phone.only_request().await;
    assert_eq!(request.kind, ApprovalKind::PhoneSignInConsent);
    assert_eq!(request.application.as_deref(), Some("Security info"));
    request
}

fn device_id(phone: &Phone) -> String {
    phone.app.account(phone.account).device_id.clone()
}

#[tokio::test]
async fn a_user_registered_long_ago_turns_phone_sign_in_on_after_confirming_the_number_from_security_info()
 {
    let clock = manual_clock();
    let server = server_with(&clock).await;
    let bobby = Person::new(&server, "bobby", "Bobby Smith").await;
    let mut phone = Phone::register(&bobby, "Bobby's phone").await;
    clock.advance(LATER);
    expect_refusal(
        phone.app.enable_phone_sign_in(phone.account, PIN).await,
        "enable_window_passed",
    );

    let waiting = allow_phone_sign_in(&bobby, &device_id(&phone)).await;
    assert!(
        element_text(&waiting.page.body, "instruction")
            .is_some_and(|t| t.contains("Bobby's phone")),
        "{}",
        waiting.page.body
    );
    let request = consent_request(&phone).await;
    phone.approve(&request, number_on(&waiting.page)).await;
    let done = bobby.browser.get(&waiting.path).await;
    assert!(done.body.contains("Phone sign-in allowed"), "{}", done.body);
    assert!(
        element_text(&done.body, "message").is_some_and(|m| m.contains("Within 1 minute,")),
        "{}",
        done.body
    );

    // Within the window the app turns phone sign-in on, and it signs Bobby in.
    clock.advance(WINDOW - 5);
    phone
        .app
        .enable_phone_sign_in(phone.account, PIN)
        .await
        .expect("phone sign-in turned on after the confirmation");
    assert!(phone.app.status(phone.account).await.unwrap().phone_sign_in);
    let info = bobby.browser.get("/mysecurityinfo").await;
    assert!(
        info.body.contains("Authenticator app — Passwordless")
            && !info.body.contains("phone-sign-in-consent"),
        "{}",
        info.body
    );
    let browser = server.browser();
    let number = number_on(&start_sign_in(&browser, &bobby.upn).await);
    let sign_in = phone.only_request().await;
    assert_eq!(sign_in.kind, ApprovalKind::PhoneSignIn);
    phone.approve(&sign_in, number).await;
    assert_signed_in_as(&reload(&browser).await, "Bobby Smith");
}

#[tokio::test]
async fn a_copied_device_file_cannot_turn_phone_sign_in_on_late_without_the_persons_confirmation() {
    let clock = manual_clock();
    let server = server_with(&clock).await;
    let bobby = Person::new(&server, "bobby", "Bobby Smith").await;
    let mut phone = Phone::register(&bobby, "Bobby's phone").await;
    let (_dir, mut thief) = copy_of(&phone);
    clock.advance(LATER);
    // The copy alone: refused, and it has no way to ask for the confirmation itself.
    expect_refusal(
        thief.enable_phone_sign_in(0, "975318").await,
        "enable_window_passed",
    );
    assert!(thief.pending(0).await.unwrap().is_empty());

    // The person allows it but nobody turns it on: the window closes again.
    let waiting = allow_phone_sign_in(&bobby, &device_id(&phone)).await;
    let request = consent_request(&phone).await;
    phone.approve(&request, number_on(&waiting.page)).await;
    clock.advance(LATER);
    expect_refusal(
        thief.enable_phone_sign_in(0, "975318").await,
        "enable_window_passed",
    );
    expect_refusal(
        phone.app.enable_phone_sign_in(phone.account, PIN).await,
        "enable_window_passed",
    );
    assert!(!phone.app.status(phone.account).await.unwrap().phone_sign_in);
}

#[tokio::test]
async fn a_guessed_wrong_number_a_denial_or_an_expired_confirmation_allows_nothing() {
    let clock = manual_clock();
    let server = server_with(&clock).await;
    let bobby = Person::new(&server, "bobby", "Bobby Smith").await;
    let mut phone = Phone::register(&bobby, "Bobby's phone").await;
    let (_dir, mut thief) = copy_of(&phone);
    clock.advance(LATER);

    // A thief holding a copy of the device sees the request but not the page: a guess.
    let waiting = allow_phone_sign_in(&bobby, &device_id(&phone)).await;
    let request = consent_request(&phone).await;
    let guess = another_number(number_on(&waiting.page));
    assert_eq!(
        thief
            .respond(0, &request, Decision::Approve, Some(guess), None)
            .await
            .unwrap(),
        AnswerOutcome::WrongNumber
    );
    let failed = bobby.browser.get(&waiting.path).await;
    assert!(
        element_text(&failed.body, "message").is_some_and(|m| m.contains("didn't match")),
        "{}",
        failed.body
    );
    expect_refusal(
        thief.enable_phone_sign_in(0, "975318").await,
        "enable_window_passed",
    );
    // The right number is too late for that request.
    expect_refusal(
        phone
            .answer(&request, Decision::Approve, Some(number_on(&waiting.page)))
            .await,
        "already_answered",
    );

    // Declined in the app.
    allow_phone_sign_in(&bobby, &device_id(&phone)).await;
    let request = consent_request(&phone).await;
    assert_eq!(
        phone.answer(&request, Decision::Deny, None).await.unwrap(),
        AnswerOutcome::Denied
    );
    expect_refusal(
        phone.app.enable_phone_sign_in(phone.account, PIN).await,
        "enable_window_passed",
    );

    // Not answered in time.
    let waiting = allow_phone_sign_in(&bobby, &device_id(&phone)).await;
    let request = consent_request(&phone).await;
    clock.advance(11);
    let expired = bobby.browser.get(&waiting.path).await;
    assert!(
        element_text(&expired.body, "message").is_some_and(|m| m.contains("in time")),
        "{}",
        expired.body
    );
    expect_refusal(
        phone
            .answer(&request, Decision::Approve, Some(number_on(&waiting.page)))
            .await,
        "request_expired",
    );
    expect_refusal(
        phone.app.enable_phone_sign_in(phone.account, PIN).await,
        "enable_window_passed",
    );
}

#[tokio::test]
async fn another_users_session_cannot_ask_for_phone_sign_in_on_someone_elses_device() {
    let clock = manual_clock();
    let server = server_with(&clock).await;
    let bobby = Person::new(&server, "bobby", "Bobby Smith").await;
    let guy = Person::new(&server, "guy", "Guy Oz").await;
    let phone = Phone::register(&bobby, "Bobby's phone").await;
    clock.advance(LATER);
    let action = format!(
        "/mysecurityinfo/devices/{}/phone-sign-in-consent",
        device_id(&phone)
    );
    let info = guy.browser.get("/mysecurityinfo").await;
    let refused = guy.browser.post(&action, &[("csrf", &info.csrf())]).await;
    assert_eq!(refused.status, 404, "{}", refused.body);
    // Nor from Bobby's own session without the form's CSRF token.
    let forged = bobby.browser.post(&action, &[("csrf", "forged")]).await;
    assert_ne!(forged.status, 303, "{}", forged.body);
    assert!(phone.app.pending(phone.account).await.unwrap().is_empty());

    // Bobby's own request is his: Guy's session cannot read its number.
    let waiting = allow_phone_sign_in(&bobby, &device_id(&phone)).await;
    let peek = guy.browser.get(&waiting.path).await;
    assert_eq!(peek.status, 404, "{}", peek.body);
    assert!(!peek.body.contains("id=\"number\""));
}

#[tokio::test]
async fn a_stolen_session_signed_in_long_ago_cannot_ask_for_phone_sign_in_without_signing_in_again()
{
    let clock = manual_clock();
    let server = server_with(&clock).await;
    let bobby = Person::new(&server, "bobby", "Bobby Smith").await;
    let phone = Phone::register(&bobby, "Bobby's phone").await;
    clock.advance(11 * 60);
    let info = bobby.browser.get("/mysecurityinfo").await;
    let action = format!(
        "/mysecurityinfo/devices/{}/phone-sign-in-consent",
        device_id(&phone)
    );
    let refused = bobby.browser.post(&action, &[("csrf", &info.csrf())]).await;
    let to = refused.location.clone().unwrap_or_default();
    assert!(
        to.starts_with("/login") && !to.contains("phone-sign-in-consent/"),
        "a new sign-in first: {} {to}",
        refused.status
    );
    // Back to the real time for the device's signed request: nothing was sent to it.
    clock.advance(-11 * 60);
    assert!(phone.app.pending(phone.account).await.unwrap().is_empty());
}
