//! Phone sign-in with number matching: the sign-in waits on the number page until the phone
//! answers with that number, is denied, gets a wrong number, or runs out of time.

use latchkey_domain::service::SignInFailure;
use latchkey_domain::session::AuthMethod;
use latchkey_domain::signin::{PendingSignIn, SignInStage};
use latchkey_protocol::wire::{AnswerOutcome, ApprovalKind, Decision};

use crate::fixture::{Phone, World};

/// Bobby with phone sign-in on, at the number page; returns the number it shows.
async fn at_the_number_page(world: &World) -> (Phone, PendingSignIn, u8) {
    let bobby = world.user("bobby").await;
    let phone = world.phone(&bobby).await;
    let sign_in = world.sign_in_as(&bobby).await;
    assert!(
        matches!(
            sign_in.stage,
            SignInStage::AwaitingApproval {
                first_factor: None,
                ..
            }
        ),
        "phone sign-in goes to the number page: {:?}",
        sign_in.stage
    );
    let waiting = world
        .latchkey
        .sign_in
        .waiting_for_approval(&sign_in)
        .await
        .unwrap()
        .expect("the number page");
    assert!(!waiting.mfa_push);
    (phone, sign_in, waiting.number)
}

async fn finish(
    world: &World,
    sign_in: &PendingSignIn,
) -> Result<Option<latchkey_domain::service::SignedIn>, SignInFailure> {
    let current = world.latchkey.sign_in.sign_in(&sign_in.id).await?;
    world.latchkey.sign_in.finish_approval(&current, None).await
}

fn another(number: u8) -> u8 {
    if number == 99 { 10 } else { number + 1 }
}

#[tokio::test]
async fn approving_with_the_number_on_the_page_signs_the_user_in() {
    let world = World::new().await;
    let (phone, sign_in, number) = at_the_number_page(&world).await;
    assert_eq!(
        finish(&world, &sign_in).await.unwrap().map(|s| s.user),
        None,
        "waits"
    );
    let request = phone.only_request().await;
    assert_eq!(request.kind, ApprovalKind::PhoneSignIn);
    assert_eq!(
        phone
            .answer(&request, Decision::Approve, Some(number))
            .await
            .unwrap(),
        AnswerOutcome::Approved
    );
    let signed_in = finish(&world, &sign_in).await.unwrap().expect("signed in");
    assert_eq!(signed_in.user.upn.as_str(), "bobby@contoso.example");
    assert_eq!(signed_in.session.method, AuthMethod::PhoneSignIn);
}

#[tokio::test]
async fn a_denial_ends_the_sign_in() {
    let world = World::new().await;
    let (phone, sign_in, _) = at_the_number_page(&world).await;
    let request = phone.only_request().await;
    assert_eq!(
        phone.answer(&request, Decision::Deny, None).await.unwrap(),
        AnswerOutcome::Denied
    );
    assert!(finish(&world, &sign_in).await.is_err());
    assert!(
        !world
            .latchkey
            .sign_in
            .approval_pending(&sign_in.id)
            .await
            .unwrap_or(false)
    );
}

#[tokio::test]
async fn a_wrong_number_fails_the_request_and_a_second_answer_is_refused() {
    let world = World::new().await;
    let (phone, sign_in, number) = at_the_number_page(&world).await;
    let request = phone.only_request().await;
    assert_eq!(
        phone
            .answer(&request, Decision::Approve, Some(another(number)))
            .await
            .unwrap(),
        AnswerOutcome::WrongNumber
    );
    assert!(finish(&world, &sign_in).await.is_err());
    assert!(
        phone
            .answer(&request, Decision::Approve, Some(number))
            .await
            .is_err(),
        "the right number after a wrong one does not sign in"
    );
}

#[tokio::test]
async fn an_unanswered_request_expires_when_its_time_is_up() {
    let world = World::with_settings(|s| s.approval_lifetime_seconds = 90).await;
    let (phone, sign_in, number) = at_the_number_page(&world).await;
    let request = phone.only_request().await;
    world.advance(89);
    assert!(
        world
            .latchkey
            .sign_in
            .approval_pending(&sign_in.id)
            .await
            .unwrap()
    );
    world.advance(1);
    assert!(
        !world
            .latchkey
            .sign_in
            .approval_pending(&sign_in.id)
            .await
            .unwrap_or(false)
    );
    let late = phone
        .answer(&request, Decision::Approve, Some(number))
        .await
        .expect_err("too late");
    assert_eq!(late.code, "request_expired");
    assert!(finish(&world, &sign_in).await.is_err());
}
