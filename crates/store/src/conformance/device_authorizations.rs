//! `DeviceAuthorizationStore`: device authorizations (RFC 8628), decided once and redeemed once.

use latchkey_domain::clock::Timestamp;
use latchkey_domain::device_authorization::{DeviceAuthorization, DeviceAuthorizationState};
use latchkey_domain::error::StoreError;
use latchkey_domain::secret::{TokenHash, random_token};
use latchkey_domain::store::Store;

use super::fixtures::{NOW, stored_grant};

async fn stored_authorization(store: &dyn Store, expires_at: Timestamp) -> DeviceAuthorization {
    let grant = stored_grant(store).await;
    let authorization = DeviceAuthorization {
        device_code_hash: TokenHash::of(random_token().expose()),
        user_code_hash: TokenHash::of(random_token().expose()),
        client_id: grant.client_id,
        scopes: vec!["openid".into(), "offline_access".into()],
        created_at: NOW,
        expires_at,
        interval_seconds: 5,
        last_polled_at: None,
        state: DeviceAuthorizationState::Pending,
    };
    store
        .put_device_authorization(&authorization)
        .await
        .expect("put_device_authorization");
    authorization
}

pub async fn device_authorizations_round_trip_by_either_code_and_codes_are_unique(
    store: &dyn Store,
) {
    let authorization = stored_authorization(store, Timestamp(NOW.0 + 600)).await;
    assert_eq!(
        store
            .device_authorization(&authorization.device_code_hash)
            .await
            .unwrap()
            .as_ref(),
        Some(&authorization),
        "found by its device code, unchanged"
    );
    assert_eq!(
        store
            .device_authorization_by_user_code(&authorization.user_code_hash)
            .await
            .unwrap()
            .as_ref(),
        Some(&authorization),
        "found by its user code, unchanged"
    );
    let mut same_user_code = authorization.clone();
    same_user_code.device_code_hash = TokenHash::of(random_token().expose());
    assert!(
        matches!(
            store.put_device_authorization(&same_user_code).await,
            Err(StoreError::Conflict(_))
        ),
        "a user code already taken is a conflict"
    );
    assert_eq!(
        store
            .device_authorization(&TokenHash::of(random_token().expose()))
            .await
            .unwrap(),
        None,
        "an unknown device code finds nothing"
    );
}

/// A user code is confirmed once: the second decision (approve or deny) changes nothing.
pub async fn a_device_authorization_is_decided_once_even_when_raced(store: &dyn Store) {
    let authorization = stored_authorization(store, Timestamp(NOW.0 + 600)).await;
    let grant = stored_grant(store).await;
    let (a, b) = tokio::join!(
        store.decide_device_authorization(&authorization.user_code_hash, Some(&grant.id)),
        store.decide_device_authorization(&authorization.user_code_hash, None),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a ^ b, "exactly one decision wins: {a} {b}");
    let stored = store
        .device_authorization(&authorization.device_code_hash)
        .await
        .unwrap()
        .unwrap();
    let expected = if a {
        DeviceAuthorizationState::Approved {
            grant_id: grant.id.clone(),
        }
    } else {
        DeviceAuthorizationState::Denied
    };
    assert_eq!(stored.state, expected, "the winning decision is stored");
    assert!(
        !store
            .decide_device_authorization(&authorization.user_code_hash, Some(&grant.id))
            .await
            .unwrap(),
        "a decided authorization cannot be decided again"
    );
}

/// A device code yields tokens once: of two racing polls after approval, one spends it.
pub async fn an_approved_device_authorization_is_redeemed_once_even_when_raced(store: &dyn Store) {
    let authorization = stored_authorization(store, Timestamp(NOW.0 + 600)).await;
    assert!(
        !store
            .redeem_device_authorization(&authorization.device_code_hash)
            .await
            .unwrap(),
        "a pending authorization cannot be redeemed"
    );
    let grant = stored_grant(store).await;
    assert!(
        store
            .decide_device_authorization(&authorization.user_code_hash, Some(&grant.id))
            .await
            .unwrap()
    );
    let (a, b) = tokio::join!(
        store.redeem_device_authorization(&authorization.device_code_hash),
        store.redeem_device_authorization(&authorization.device_code_hash),
    );
    assert!(a.unwrap() ^ b.unwrap(), "exactly one redemption wins");
    let stored = store
        .device_authorization(&authorization.device_code_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.state,
        DeviceAuthorizationState::Redeemed { grant_id: grant.id },
        "a redeemed authorization keeps its grant"
    );
}

pub async fn device_polls_are_recorded_and_expired_authorizations_purged(store: &dyn Store) {
    let authorization = stored_authorization(store, Timestamp(NOW.0 + 600)).await;
    store
        .record_device_poll(&authorization.device_code_hash, Timestamp(NOW.0 + 7), 10)
        .await
        .unwrap();
    let stored = store
        .device_authorization(&authorization.device_code_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.last_polled_at, Some(Timestamp(NOW.0 + 7)));
    assert_eq!(stored.interval_seconds, 10, "the new interval is kept");

    let old = stored_authorization(store, Timestamp(100)).await;
    store.purge_expired(Timestamp(200)).await.unwrap();
    assert_eq!(
        store
            .device_authorization(&old.device_code_hash)
            .await
            .unwrap(),
        None,
        "an expired authorization is purged"
    );
    assert!(
        store
            .device_authorization(&authorization.device_code_hash)
            .await
            .unwrap()
            .is_some(),
        "a live one is kept"
    );
}
