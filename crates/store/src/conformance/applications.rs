//! `ApplicationStore`: registered applications.

use latchkey_domain::application::{
    AppAssignment, Application, AssignedPrincipal, ClientKind, GroupsClaim, SigningAlg,
};
use latchkey_domain::error::StoreError;
use latchkey_domain::ids::{ClientId, GroupId, UserId};
use latchkey_domain::store::Store;
use latchkey_domain::strength::AuthStrength;

use super::fixtures::{
    NOW, is_conflict, new_application, stored_application, stored_group, stored_user,
};

pub async fn application_round_trips(store: &dyn Store) {
    let confidential = stored_application(store).await;
    let public = Application {
        kind: ClientKind::Public,
        home_url: None,
        id_token_alg: SigningAlg::RS256,
        required_strength: None,
        ..new_application()
    };
    store
        .create_application(&public)
        .await
        .expect("create_application");
    for app in [&confidential, &public] {
        assert_eq!(
            store.application(&app.client_id).await.unwrap().as_ref(),
            Some(app),
            "an application reads back unchanged, redirect URIs and client kind included"
        );
    }
    let listed = store.list_applications().await.unwrap();
    assert!(
        listed.contains(&confidential) && listed.contains(&public),
        "new applications are listed"
    );
    assert_eq!(
        store.application(&ClientId::random()).await.unwrap(),
        None,
        "an unknown client_id finds nothing"
    );
}

/// A second registration under an existing client_id would hijack the first app's redirects.
pub async fn client_id_is_unique(store: &dyn Store) {
    let app = stored_application(store).await;
    let impostor = Application {
        redirect_uris: vec!["https://evil.conformance.example/cb".into()],
        ..app.clone()
    };
    assert!(
        is_conflict(&store.create_application(&impostor).await),
        "a taken client_id is a conflict"
    );
    assert_eq!(
        store.application(&app.client_id).await.unwrap(),
        Some(app),
        "the original registration is unchanged"
    );
}

pub async fn deleting_an_application_removes_it(store: &dyn Store) {
    let app = stored_application(store).await;
    store
        .delete_application(&app.client_id)
        .await
        .expect("delete_application");
    assert_eq!(
        store.application(&app.client_id).await.unwrap(),
        None,
        "a deleted application is gone"
    );
    assert!(
        !store.list_applications().await.unwrap().contains(&app),
        "a deleted application is not listed"
    );
}

pub async fn an_applications_required_strength_can_be_changed_and_cleared(store: &dyn Store) {
    let app = stored_application(store).await;
    for strength in [
        Some(AuthStrength::Mfa),
        None,
        Some(AuthStrength::PasswordlessMfa),
    ] {
        assert!(
            store
                .set_required_strength(&app.client_id, strength)
                .await
                .expect("set_required_strength"),
            "an existing application is updated"
        );
        let read = store.application(&app.client_id).await.unwrap().unwrap();
        assert_eq!(read.required_strength, strength, "the strength reads back");
        assert_eq!(
            Application {
                required_strength: app.required_strength,
                ..read
            },
            app,
            "nothing else changes"
        );
    }
    assert!(
        !store
            .set_required_strength(&ClientId::random(), Some(AuthStrength::Mfa))
            .await
            .unwrap(),
        "an unknown client_id updates nothing"
    );
}

pub async fn an_applications_settings_can_be_updated_but_not_its_identity_or_secret(
    store: &dyn Store,
) {
    let app = stored_application(store).await;
    let changed = Application {
        display_name: "Renamed App".into(),
        redirect_uris: vec!["https://new.conformance.example/cb".into()],
        post_logout_redirect_uris: vec![],
        home_url: None,
        groups_claim: GroupsClaim::Ids,
        assignment_required: false,
        // What the update must leave alone, whatever the caller passes:
        kind: ClientKind::Public,
        id_token_alg: SigningAlg::RS256,
        required_strength: None,
        created_at: NOW.plus_seconds(1),
        ..app.clone()
    };
    assert!(
        store
            .update_application(&changed)
            .await
            .expect("update_application"),
        "an existing application is updated"
    );
    let read = store.application(&app.client_id).await.unwrap().unwrap();
    assert_eq!(
        read,
        Application {
            kind: app.kind.clone(),
            id_token_alg: app.id_token_alg,
            required_strength: app.required_strength,
            created_at: app.created_at,
            ..changed.clone()
        },
        "the settings change; client kind (and secret), algorithm, strength and creation time do not"
    );
    assert!(
        !store
            .update_application(&Application {
                client_id: ClientId::random(),
                ..changed
            })
            .await
            .unwrap(),
        "an unknown client_id updates nothing"
    );
}

fn assignment(app: &Application, principal: AssignedPrincipal, at: i64) -> AppAssignment {
    AppAssignment {
        client_id: app.client_id.clone(),
        principal,
        created_at: NOW.plus_seconds(at),
    }
}

pub async fn assignments_round_trip_and_a_second_one_of_a_principal_is_a_conflict(
    store: &dyn Store,
) {
    let app = stored_application(store).await;
    let user = stored_user(store).await;
    let group = stored_group(store).await;
    let to_user = assignment(&app, AssignedPrincipal::User(user.id.clone()), 0);
    let to_group = assignment(&app, AssignedPrincipal::Group(group.id.clone()), 1);
    store
        .add_assignment(&to_user)
        .await
        .expect("add_assignment");
    store
        .add_assignment(&to_group)
        .await
        .expect("add_assignment");
    assert_eq!(
        store.assignments(&app.client_id).await.unwrap(),
        vec![to_user.clone(), to_group.clone()],
        "assignments read back, oldest first"
    );
    assert!(
        is_conflict(
            &store
                .add_assignment(&assignment(&app, to_user.principal.clone(), 5))
                .await
        ),
        "assigning a user twice is a conflict"
    );
    assert!(
        is_conflict(
            &store
                .add_assignment(&assignment(&app, to_group.principal.clone(), 5))
                .await
        ),
        "assigning a group twice is a conflict"
    );
    assert_eq!(store.assignments(&app.client_id).await.unwrap().len(), 2);
    assert!(
        store
            .assignments(&ClientId::random())
            .await
            .unwrap()
            .is_empty(),
        "an unknown application has no assignments"
    );
}

pub async fn assigning_an_unknown_application_user_or_group_is_not_found(store: &dyn Store) {
    let app = stored_application(store).await;
    let user = stored_user(store).await;
    for (client, principal) in [
        (
            app.client_id.clone(),
            AssignedPrincipal::User(UserId::random()),
        ),
        (
            app.client_id.clone(),
            AssignedPrincipal::Group(GroupId::random()),
        ),
        (ClientId::random(), AssignedPrincipal::User(user.id.clone())),
    ] {
        let result = store
            .add_assignment(&AppAssignment {
                client_id: client,
                principal,
                created_at: NOW,
            })
            .await;
        assert!(
            matches!(result, Err(StoreError::NotFound)),
            "an assignment to something that does not exist is refused as not found: {result:?}"
        );
    }
    assert!(store.assignments(&app.client_id).await.unwrap().is_empty());
}

pub async fn a_user_is_assigned_directly_or_through_a_group_until_removed(store: &dyn Store) {
    let direct = stored_application(store).await;
    let through_group = stored_application(store).await;
    let both = stored_application(store).await;
    let unrelated = stored_application(store).await;
    let user = stored_user(store).await;
    let other = stored_user(store).await;
    let group = stored_group(store).await;
    store.add_group_member(&group.id, &user.id).await.unwrap();
    let as_user = AssignedPrincipal::User(user.id.clone());
    let as_group = AssignedPrincipal::Group(group.id.clone());
    for assigned in [
        assignment(&direct, as_user.clone(), 0),
        assignment(&through_group, as_group.clone(), 0),
        assignment(&both, as_user.clone(), 0),
        assignment(&both, as_group.clone(), 0),
        assignment(&unrelated, AssignedPrincipal::User(other.id.clone()), 0),
    ] {
        store.add_assignment(&assigned).await.unwrap();
    }
    let mut expected = vec![
        direct.client_id.clone(),
        through_group.client_id.clone(),
        both.client_id.clone(),
    ];
    expected.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    assert_eq!(
        store.applications_assigned_to(&user.id).await.unwrap(),
        expected,
        "direct and group assignments count, each application once, sorted"
    );
    assert!(
        store
            .remove_assignment(&direct.client_id, &as_user)
            .await
            .unwrap(),
        "an assignment is removed"
    );
    assert!(
        !store
            .remove_assignment(&direct.client_id, &as_user)
            .await
            .unwrap(),
        "removing it again finds nothing"
    );
    store
        .remove_group_member(&group.id, &user.id)
        .await
        .unwrap();
    assert_eq!(
        store.applications_assigned_to(&user.id).await.unwrap(),
        vec![both.client_id.clone()],
        "leaving the group ends the assignments that came through it"
    );
    store.delete_application(&both.client_id).await.unwrap();
    assert!(
        store
            .applications_assigned_to(&user.id)
            .await
            .unwrap()
            .is_empty(),
        "deleting an application deletes its assignments"
    );
    assert!(
        store.assignments(&both.client_id).await.unwrap().is_empty(),
        "no assignment of a deleted application is left"
    );
}
