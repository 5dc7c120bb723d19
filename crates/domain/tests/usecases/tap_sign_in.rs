//! Signing in with a Temporary Access Pass: the pass, its lifetime and the sign-in's own.

use latchkey_domain::credential::PassRequest;
use latchkey_domain::secret::Secret;
use latchkey_domain::service::{CredentialInput, SignInFailure};
use latchkey_domain::session::AuthMethod;
use latchkey_domain::signin::SignInStage;

use crate::fixture::{World, context};

#[tokio::test]
async fn a_pass_signs_the_user_in_and_starts_a_session_for_them() {
    let world = World::new().await;
    let bobby = world.user("bobby").await;
    let pass = world.pass(&bobby).await;
    let sign_in = world.sign_in_as(&bobby).await;
    assert!(
        matches!(&sign_in.stage, SignInStage::AwaitingCredential { user_id: Some(id), .. } if *id == bobby.id),
        "{:?}",
        sign_in.stage
    );
    let signed_in = world
        .latchkey
        .sign_in
        .submit_credential(&sign_in.id, CredentialInput::Pass(pass), &context())
        .await
        .unwrap();
    assert_eq!(signed_in.user.id, bobby.id);
    assert_eq!(signed_in.session.method, AuthMethod::TemporaryAccessPass);
    let (session, user) = world
        .latchkey
        .sign_in
        .session_for_cookie(signed_in.cookie_secret.expose())
        .await
        .unwrap()
        .expect("the cookie finds the session");
    assert_eq!((session.id, user.id), (signed_in.session.id, bobby.id));
}

#[tokio::test]
async fn a_wrong_pass_lets_the_user_try_again_and_is_not_spent() {
    let world = World::new().await;
    let bobby = world.user("bobby").await;
    let pass = world.pass(&bobby).await;
    let sign_in = world.sign_in_as(&bobby).await;
    let wrong = world
        .latchkey
        .sign_in
        .submit_credential(
            &sign_in.id,
            CredentialInput::Pass(Secret::new("not-the-pass")),
            &context(),
        )
        .await;
    assert!(
        matches!(wrong, Err(SignInFailure::TryAgain(_))),
        "{wrong:?}"
    );
    world
        .latchkey
        .sign_in
        .submit_credential(&sign_in.id, CredentialInput::Pass(pass), &context())
        .await
        .expect("the right pass still works");
}

#[tokio::test]
async fn a_one_time_pass_signs_in_once() {
    let world = World::new().await;
    let bobby = world.user("bobby").await;
    let pass = world
        .pass_with(
            &bobby,
            PassRequest {
                is_usable_once: Some(true),
                ..PassRequest::default()
            },
        )
        .await;
    world
        .signed_in_with(&bobby, pass.clone())
        .await
        .expect("first use");
    let again = world.signed_in_with(&bobby, pass).await;
    assert!(
        matches!(again, Err(SignInFailure::TryAgain(_))),
        "{again:?}"
    );
}

#[tokio::test]
async fn a_pass_is_refused_once_its_lifetime_has_passed() {
    let world = World::new().await;
    let bobby = world.user("bobby").await;
    let pass = world.pass(&bobby).await;
    let lifetime = world
        .latchkey
        .directory
        .pass_for_user(&bobby.id)
        .await
        .unwrap()
        .expect("a pass")
        .lifetime_minutes;
    world.advance(i64::from(lifetime) * 60);
    let late = world.signed_in_with(&bobby, pass).await;
    assert!(matches!(late, Err(SignInFailure::TryAgain(_))), "{late:?}");
}

#[tokio::test]
async fn a_sign_in_left_too_long_must_start_again() {
    let world = World::new().await;
    let bobby = world.user("bobby").await;
    let pass = world.pass(&bobby).await;
    let sign_in = world.sign_in_as(&bobby).await;
    world.advance(sign_in.expires_at.0 - world.latchkey.now().0);
    let late = world
        .latchkey
        .sign_in
        .submit_credential(&sign_in.id, CredentialInput::Pass(pass), &context())
        .await;
    assert!(
        matches!(late, Err(SignInFailure::StartAgain(_))),
        "{late:?}"
    );
}

#[tokio::test]
async fn a_session_started_with_a_pass_ends_when_the_pass_does() {
    let world = World::new().await;
    let bobby = world.user("bobby").await;
    let signed_in = world.signed_in(&bobby).await;
    let pass = world
        .latchkey
        .directory
        .pass_for_user(&bobby.id)
        .await
        .unwrap()
        .expect("a pass");
    assert!(
        signed_in.session.expires_at
            <= pass
                .starts_at
                .plus_seconds(i64::from(pass.lifetime_minutes) * 60)
    );
    world.advance(signed_in.session.expires_at.0 - world.latchkey.now().0);
    assert!(
        world
            .latchkey
            .sign_in
            .session_for_cookie(signed_in.cookie_secret.expose())
            .await
            .unwrap()
            .is_none()
    );
}
