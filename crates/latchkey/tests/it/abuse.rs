//! Push fatigue and "No, it's not me": what an attacker who knows a user name can make the
//! user's phone do, and what a report does to them.

use latchkey_protocol::wire::{AnswerOutcome, ApprovalKind, Decision, DeviceEvent};

use crate::phone::{Person, Phone, number_on, reload, start_sign_in, unescape};
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
