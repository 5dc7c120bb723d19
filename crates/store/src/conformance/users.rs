//! `UserStore`: users and their password hashes.

use latchkey_domain::error::StoreError;
use latchkey_domain::ids::UserId;
use latchkey_domain::store::Store;
use latchkey_domain::user::User;

use super::fixtures::{is_conflict, new_user, stored_user, unique_upn};

pub async fn user_round_trips(store: &dyn Store) {
    let mut user = new_user();
    user.email = None;
    store.create_user(&user).await.expect("create_user");
    assert_eq!(
        store.user(&user.id).await.unwrap().as_ref(),
        Some(&user),
        "a user reads back by id unchanged"
    );
    assert_eq!(
        store.user_by_upn(&user.upn).await.unwrap().as_ref(),
        Some(&user),
        "a user reads back by UPN"
    );
    assert!(
        store.list_users().await.unwrap().contains(&user),
        "a new user is listed"
    );
    assert_eq!(
        store.user(&UserId::random()).await.unwrap(),
        None,
        "an unknown id finds no user"
    );
    assert_eq!(
        store.user_by_upn(&unique_upn("nobody")).await.unwrap(),
        None,
        "an unknown UPN finds no user"
    );
}

/// Two accounts with one name would let one person sign in as another.
pub async fn upn_is_unique(store: &dyn Store) {
    let first = stored_user(store).await;
    let second = User {
        id: UserId::random(),
        ..first.clone()
    };
    assert!(
        is_conflict(&store.create_user(&second).await),
        "a second user with a taken UPN is a conflict"
    );
    assert_eq!(
        store.user_by_upn(&first.upn).await.unwrap(),
        Some(first),
        "the first owner keeps the UPN"
    );
    assert_eq!(
        store.user(&second.id).await.unwrap(),
        None,
        "the refused user was not stored"
    );
}

pub async fn updating_a_user_changes_it(store: &dyn Store) {
    let user = stored_user(store).await;
    let updated = User {
        upn: unique_upn("renamed"),
        display_name: "Renamed".into(),
        email: None,
        enabled: false,
        ..user.clone()
    };
    store.update_user(&updated).await.expect("update_user");
    assert_eq!(
        store.user(&user.id).await.unwrap(),
        Some(updated.clone()),
        "the update is stored"
    );
    assert_eq!(
        store.user_by_upn(&user.upn).await.unwrap(),
        None,
        "the old UPN no longer finds the user"
    );
    assert_eq!(
        store.user_by_upn(&updated.upn).await.unwrap(),
        Some(updated),
        "the new UPN finds the user"
    );
}

pub async fn updating_a_missing_user_is_not_found(store: &dyn Store) {
    let result = store.update_user(&new_user()).await;
    assert!(
        matches!(result, Err(StoreError::NotFound)),
        "updating a missing user is NotFound, got {result:?}"
    );
}

/// Renaming onto someone else's UPN would be a takeover by rename.
pub async fn updating_a_user_to_a_taken_upn_is_a_conflict(store: &dyn Store) {
    let owner = stored_user(store).await;
    let other = stored_user(store).await;
    let renamed = User {
        upn: owner.upn.clone(),
        ..other.clone()
    };
    assert!(
        is_conflict(&store.update_user(&renamed).await),
        "renaming onto a taken UPN is a conflict"
    );
    assert_eq!(
        store.user(&other.id).await.unwrap(),
        Some(other),
        "the refused rename changed nothing"
    );
}

pub async fn password_hash_is_set_and_cleared(store: &dyn Store) {
    let user = stored_user(store).await;
    assert_eq!(
        store.password_hash(&user.id).await.unwrap(),
        None,
        "a new user has no password"
    );
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$conformance$hash";
    store
        .set_password_hash(&user.id, Some(hash))
        .await
        .expect("set_password_hash");
    assert_eq!(
        store.password_hash(&user.id).await.unwrap().as_deref(),
        Some(hash),
        "the password hash is stored"
    );
    store
        .set_password_hash(&user.id, None)
        .await
        .expect("clear password");
    assert_eq!(
        store.password_hash(&user.id).await.unwrap(),
        None,
        "clearing the password removes the hash"
    );
    assert_eq!(
        store.password_hash(&UserId::random()).await.unwrap(),
        None,
        "an unknown user has no password"
    );
}

pub async fn certificate_user_ids_round_trip_and_find_their_user(store: &dyn Store) {
    let user = stored_user(store).await;
    let first = format!("X509:<PN>{}", user.upn);
    let second = format!("X509:<SKI>{}", user.id.as_str());
    assert!(
        store
            .certificate_user_ids(&user.id)
            .await
            .unwrap()
            .is_empty()
    );
    store
        .set_certificate_user_ids(&user.id, &[first.clone(), second.clone()])
        .await
        .expect("set_certificate_user_ids");
    assert_eq!(
        store.certificate_user_ids(&user.id).await.unwrap(),
        vec![first.clone(), second.clone()],
        "the ids read back in the order set"
    );
    assert_eq!(
        store.users_by_certificate_user_id(&second).await.unwrap(),
        vec![user.clone()],
        "an id finds its user"
    );
    store
        .set_certificate_user_ids(&user.id, std::slice::from_ref(&second))
        .await
        .unwrap();
    assert!(
        store
            .users_by_certificate_user_id(&first)
            .await
            .unwrap()
            .is_empty(),
        "a replaced id no longer finds the user"
    );
    let missing = store
        .set_certificate_user_ids(&UserId::random(), &[first])
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound)),
        "an unknown user is NotFound, got {missing:?}"
    );
}

/// One certificate user id on two accounts would let one certificate sign in as either.
pub async fn a_certificate_user_id_belongs_to_one_user(store: &dyn Store) {
    let owner = stored_user(store).await;
    let other = stored_user(store).await;
    let shared = format!("X509:<PN>{}", owner.upn);
    let own = format!("X509:<PN>{}", other.upn);
    store
        .set_certificate_user_ids(&owner.id, std::slice::from_ref(&shared))
        .await
        .unwrap();
    store
        .set_certificate_user_ids(&other.id, std::slice::from_ref(&own))
        .await
        .unwrap();
    let taken = store
        .set_certificate_user_ids(&other.id, std::slice::from_ref(&shared))
        .await;
    assert!(
        is_conflict(&taken),
        "a taken id is a conflict, got {taken:?}"
    );
    assert_eq!(
        store.certificate_user_ids(&other.id).await.unwrap(),
        vec![own],
        "the refused replacement changed nothing"
    );
    assert_eq!(
        store.users_by_certificate_user_id(&shared).await.unwrap(),
        vec![owner],
        "the first owner keeps the id"
    );
}
