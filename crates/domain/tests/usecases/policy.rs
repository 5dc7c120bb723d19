//! The authentication methods policy: which users a method targets, and what that changes in
//! their sign-in.

use latchkey_domain::ids::UserId;
use latchkey_domain::log::Actor;
use latchkey_domain::policy::{Evaluation, MethodKind};
use latchkey_domain::signin::SignInStage;
use serde_json::json;

use crate::fixture::World;

/// The effective policy's answer for the authenticator app and `user`.
async fn authenticator_for(world: &World, user: &UserId) -> Evaluation {
    world
        .latchkey
        .governance
        .effective_policy(user)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.method == MethodKind::MicrosoftAuthenticator)
        .expect("the authenticator app is in the effective policy")
}

#[tokio::test]
async fn excluding_a_group_turns_phone_sign_in_off_for_its_members_only() {
    let world = World::new().await;
    let bobby = world.user("bobby").await;
    let alice = world.user("alice").await;
    world.phone(&bobby).await;
    world.phone(&alice).await;
    let contractors = world
        .latchkey
        .directory
        .create_group(&Actor::system(), "Contractors", "")
        .await
        .unwrap();
    world
        .latchkey
        .directory
        .add_group_member(&Actor::system(), &contractors.id, &bobby.id)
        .await
        .unwrap();
    // The whole configuration, as the console saves it: today's, with the group excluded.
    let policy = world.latchkey.governance.policy().await.unwrap();
    let mut configuration =
        serde_json::to_value(policy.configuration(MethodKind::MicrosoftAuthenticator)).unwrap();
    configuration["excludeTargets"] = json!([{"targetType": "group", "id": contractors.id}]);
    world
        .latchkey
        .governance
        .set_method_configuration(
            &Actor::system(),
            MethodKind::MicrosoftAuthenticator,
            configuration,
        )
        .await
        .unwrap();

    let excluded = authenticator_for(&world, &bobby.id).await;
    assert!(!excluded.allowed);
    assert!(
        excluded.reason.contains("Contractors"),
        "{}",
        excluded.reason
    );
    assert!(authenticator_for(&world, &alice.id).await.allowed);
    assert!(matches!(
        world.sign_in_as(&bobby).await.stage,
        SignInStage::AwaitingCredential { .. }
    ));
    assert!(matches!(
        world.sign_in_as(&alice).await.stage,
        SignInStage::AwaitingApproval { .. }
    ));
}

#[tokio::test]
async fn an_invalid_target_is_refused_and_nothing_is_saved() {
    let world = World::new().await;
    let before = world.latchkey.governance.policy().await.unwrap();
    let refused = world
        .latchkey
        .governance
        .set_method_configuration(&Actor::system(), MethodKind::MicrosoftAuthenticator, {
            let mut configuration =
                serde_json::to_value(before.configuration(MethodKind::MicrosoftAuthenticator))
                    .unwrap();
            configuration["includeTargets"] = json!([{"targetType": "group",
                    "id": "no-such-group", "authenticationMode": "any"}]);
            configuration
        })
        .await;
    assert!(
        matches!(refused, Err(latchkey_domain::DomainError::Invalid { .. })),
        "{refused:?}"
    );
    assert_eq!(
        world.latchkey.governance.policy().await.unwrap().version,
        before.version
    );
}

#[tokio::test]
async fn every_method_has_an_effective_answer_for_a_user() {
    let world = World::new().await;
    let bobby = world.user("bobby").await;
    let effective = world
        .latchkey
        .governance
        .effective_policy(&bobby.id)
        .await
        .unwrap();
    assert_eq!(effective.len(), MethodKind::ALL.len());
    let allowed = |m: MethodKind| effective.iter().find(|e| e.method == m).unwrap().allowed;
    assert!(allowed(MethodKind::MicrosoftAuthenticator));
    assert!(allowed(MethodKind::TemporaryAccessPass));
    assert!(!allowed(MethodKind::Fido2));
}
