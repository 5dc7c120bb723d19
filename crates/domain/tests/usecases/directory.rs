//! Users, groups and applications as an administrator creates them.

use latchkey_domain::DomainError;
use latchkey_domain::log::{Actor, LogQuery};
use latchkey_domain::service::{NewApplication, NewUser};

use crate::fixture::{START, World};

#[tokio::test]
async fn a_new_user_can_be_found_by_name_and_a_second_one_with_the_same_name_is_refused() {
    let world = World::new().await;
    let bobby = world.user("bobby").await;
    assert_eq!(bobby.created_at, START);
    let found = world
        .latchkey
        .directory
        .find_user("BOBBY@contoso.example")
        .await
        .unwrap();
    assert_eq!(found.id, bobby.id);
    let again = world
        .latchkey
        .directory
        .create_user(
            &Actor::system(),
            NewUser {
                user_principal_name: "bobby@contoso.example".into(),
                display_name: "Another Bobby".into(),
                mail: None,
                account_enabled: true,
            },
        )
        .await;
    assert!(matches!(again, Err(DomainError::Conflict(_))), "{again:?}");
    let audit = world
        .latchkey
        .governance
        .audit_log(LogQuery::default())
        .await
        .unwrap();
    let added: Vec<_> = audit.iter().filter(|e| e.activity == "Add user").collect();
    assert_eq!(
        added.len(),
        1,
        "only the created user is audited: {audit:?}"
    );
}

#[tokio::test]
async fn a_group_lists_its_members_and_adding_one_twice_changes_nothing() {
    let world = World::new().await;
    let bobby = world.user("bobby").await;
    let alice = world.user("alice").await;
    let pilot = world
        .latchkey
        .directory
        .create_group(&Actor::system(), "Pilot", "Trying phone sign-in")
        .await
        .unwrap();
    for _ in 0..2 {
        world
            .latchkey
            .directory
            .add_group_member(&Actor::system(), &pilot.id, &bobby.id)
            .await
            .unwrap();
    }
    let members = world
        .latchkey
        .directory
        .group_members(&pilot.id)
        .await
        .unwrap();
    assert_eq!(
        members.iter().map(|u| &u.id).collect::<Vec<_>>(),
        vec![&bobby.id]
    );
    assert_eq!(
        world
            .latchkey
            .directory
            .find_group("pilot")
            .await
            .unwrap()
            .id,
        pilot.id
    );
    world
        .latchkey
        .directory
        .remove_group_member(&Actor::system(), &pilot.id, &bobby.id)
        .await
        .unwrap();
    assert!(
        world
            .latchkey
            .directory
            .group_members(&pilot.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !world
            .latchkey
            .directory
            .group_members(&pilot.id)
            .await
            .unwrap()
            .iter()
            .any(|u| u.id == alice.id)
    );
}

#[tokio::test]
async fn a_confidential_application_gets_a_secret_once_and_a_public_one_gets_none() {
    let world = World::new().await;
    let (app, secret) = world.confidential_app().await;
    assert!(!secret.expose().is_empty());
    assert_eq!(
        world
            .latchkey
            .applications
            .application(&app.client_id)
            .await
            .unwrap()
            .display_name,
        "Contoso Expenses"
    );
    let (public, none) = world
        .latchkey
        .applications
        .register_application(
            &Actor::system(),
            NewApplication {
                display_name: "Contoso Mobile".into(),
                redirect_uris: vec!["https://app.test/mobile".into()],
                post_logout_redirect_uris: vec![],
                public_client: true,
                id_token_signing_alg: None,
                home_url: None,
                required_strength: None,
                allowed_origins: vec![],
                groups_claim: None,
                assignment_required: false,
                backchannel_logout_uri: None,
            },
        )
        .await
        .unwrap();
    assert!(none.is_none(), "a public client has no secret");
    world
        .latchkey
        .applications
        .delete_application(&Actor::system(), &public.client_id)
        .await
        .unwrap();
    assert!(matches!(
        world
            .latchkey
            .applications
            .application(&public.client_id)
            .await,
        Err(DomainError::NotFound(_))
    ));
}

#[tokio::test]
async fn an_application_without_a_redirect_uri_is_refused() {
    let world = World::new().await;
    let refused = world
        .latchkey
        .applications
        .register_application(
            &Actor::system(),
            NewApplication {
                display_name: "Nowhere".into(),
                redirect_uris: vec![],
                post_logout_redirect_uris: vec![],
                public_client: false,
                id_token_signing_alg: None,
                home_url: None,
                required_strength: None,
                allowed_origins: vec![],
                groups_claim: None,
                assignment_required: false,
                backchannel_logout_uri: None,
            },
        )
        .await;
    assert!(
        matches!(refused, Err(DomainError::Invalid { .. })),
        "{refused:?}"
    );
}
