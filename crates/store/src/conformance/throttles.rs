//! `ThrottleStore`: fixed-window throttles and smart lockout's familiar places.

use latchkey_domain::clock::Timestamp;
use latchkey_domain::error::StoreError;
use latchkey_domain::ids::UserId;
use latchkey_domain::secret::random_hex;
use latchkey_domain::store::Store;

use super::fixtures::{NOW, futures_join_all, stored_user};

pub async fn throttle_counts_to_its_limit_even_when_raced_and_starts_over_each_window(
    store: &dyn Store,
) {
    let key = format!("conformance:{}", random_hex(8));
    let window = 600;
    let at = Timestamp(NOW.0 - NOW.0.rem_euclid(window));
    let tries =
        futures_join_all((0..8).map(|_| store.take_throttle_slot(&key, at, window, 5))).await;
    let allowed = tries.into_iter().filter(|t| *t.as_ref().unwrap()).count();
    assert_eq!(allowed, 5, "never more than the limit, even when raced");
    assert_eq!(store.throttle_count(&key, at, window).await.unwrap(), 5);
    store.release_throttle_slot(&key, at, window).await.unwrap();
    assert_eq!(store.throttle_count(&key, at, window).await.unwrap(), 4);
    assert!(store.take_throttle_slot(&key, at, window, 5).await.unwrap());
    assert!(!store.take_throttle_slot(&key, at, window, 5).await.unwrap());
    let next = at.plus_seconds(window);
    assert_eq!(store.throttle_count(&key, next, window).await.unwrap(), 0);
    assert!(
        store
            .take_throttle_slot(&key, next, window, 5)
            .await
            .unwrap(),
        "a new window starts from zero"
    );
    assert_eq!(store.throttle_count(&key, next, window).await.unwrap(), 1);
}

/// A place is familiar for the user who signed in from it, with its latest time; a user's
/// places last seen before the cut-off go when the user is next remembered somewhere.
pub async fn familiar_places_are_remembered_per_user_and_old_ones_forgotten(store: &dyn Store) {
    let user = stored_user(store).await;
    let other = stored_user(store).await;
    let place = "address:203.0.113.7";
    assert_eq!(
        store.familiar_place_seen(&user.id, place).await.unwrap(),
        None
    );
    store
        .remember_familiar_place(&user.id, place, NOW, Timestamp(0))
        .await
        .expect("remember_familiar_place");
    store
        .remember_familiar_place(&user.id, place, NOW.plus_seconds(60), Timestamp(0))
        .await
        .expect("the same place again is not an error");
    store
        .remember_familiar_place(&user.id, place, NOW.plus_seconds(30), Timestamp(0))
        .await
        .unwrap();
    assert_eq!(
        store.familiar_place_seen(&user.id, place).await.unwrap(),
        Some(NOW.plus_seconds(60)),
        "the latest time is kept"
    );
    assert_eq!(
        store.familiar_place_seen(&other.id, place).await.unwrap(),
        None,
        "places belong to their user"
    );
    store
        .remember_familiar_place(
            &user.id,
            "browser:abc",
            NOW.plus_seconds(120),
            NOW.plus_seconds(61),
        )
        .await
        .unwrap();
    assert_eq!(
        store.familiar_place_seen(&user.id, place).await.unwrap(),
        None,
        "a place not seen since the cut-off is forgotten"
    );
    assert_eq!(
        store
            .familiar_place_seen(&user.id, "browser:abc")
            .await
            .unwrap(),
        Some(NOW.plus_seconds(120))
    );
    let nobody = store
        .remember_familiar_place(&UserId::random(), place, NOW, Timestamp(0))
        .await;
    assert!(
        matches!(nobody, Err(StoreError::NotFound)),
        "a place of a missing user: {nobody:?}"
    );
}
