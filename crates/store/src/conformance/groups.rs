//! `GroupStore`: groups, membership and the administrator role binding.

use latchkey_domain::error::StoreError;
use latchkey_domain::ids::GroupId;
use latchkey_domain::store::Store;
use latchkey_domain::user::Group;

use super::fixtures::{is_conflict, new_group, stored_user};

pub async fn group_round_trips(store: &dyn Store) {
    let group = new_group();
    store.create_group(&group).await.expect("create_group");
    assert_eq!(
        store.group(&group.id).await.unwrap().as_ref(),
        Some(&group),
        "a group reads back unchanged"
    );
    assert!(
        store.list_groups().await.unwrap().contains(&group),
        "a new group is listed"
    );
    assert_eq!(
        store.group(&GroupId::random()).await.unwrap(),
        None,
        "an unknown id finds no group"
    );
}

/// "Admins" and "admins" side by side would confuse whoever grants access by group name.
pub async fn group_name_is_unique_ignoring_case(store: &dyn Store) {
    let group = new_group();
    store.create_group(&group).await.expect("create_group");
    let same = Group {
        id: GroupId::random(),
        ..group.clone()
    };
    assert!(
        is_conflict(&store.create_group(&same).await),
        "a second group with the same name is a conflict"
    );
    let shouted = Group {
        id: GroupId::random(),
        display_name: group.display_name.to_uppercase(),
        ..group.clone()
    };
    assert!(
        is_conflict(&store.create_group(&shouted).await),
        "a name differing only in case is a conflict"
    );
}

pub async fn group_membership_is_idempotent(store: &dyn Store) {
    let group = new_group();
    store.create_group(&group).await.expect("create_group");
    let alice = stored_user(store).await;
    let bob = stored_user(store).await;
    store
        .add_group_member(&group.id, &alice.id)
        .await
        .expect("add member");
    store
        .add_group_member(&group.id, &alice.id)
        .await
        .expect("adding a member twice is not an error");
    store
        .add_group_member(&group.id, &bob.id)
        .await
        .expect("add second member");

    let mut members = store.group_members(&group.id).await.unwrap();
    members.sort();
    let mut expected = vec![alice.id.clone(), bob.id.clone()];
    expected.sort();
    assert_eq!(members, expected, "each member is listed once");
    assert_eq!(
        store.groups_of_user(&alice.id).await.unwrap(),
        vec![group.id.clone()],
        "the user's groups are listed"
    );

    store
        .remove_group_member(&group.id, &alice.id)
        .await
        .expect("remove member");
    store
        .remove_group_member(&group.id, &alice.id)
        .await
        .expect("removing a non-member is not an error");
    assert_eq!(
        store.group_members(&group.id).await.unwrap(),
        vec![bob.id],
        "only the remaining member is listed"
    );
    assert!(
        store.groups_of_user(&alice.id).await.unwrap().is_empty(),
        "a removed member has no groups"
    );
}

pub async fn the_administrator_role_is_bound_to_one_group_id(store: &dyn Store) {
    let first = new_group();
    store.create_group(&first).await.unwrap();
    let second = new_group();
    store.create_group(&second).await.unwrap();
    store.bind_administrators_group(&first.id).await.unwrap();
    assert_eq!(store.administrators_group().await.unwrap(), Some(first.id));
    store.bind_administrators_group(&second.id).await.unwrap();
    assert_eq!(
        store.administrators_group().await.unwrap(),
        Some(second.id.clone())
    );
    assert!(matches!(
        store.bind_administrators_group(&GroupId::random()).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.administrators_group().await.unwrap(), Some(second.id));
}
