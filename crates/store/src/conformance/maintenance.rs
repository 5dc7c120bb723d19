//! Liveness and expiry across the whole store (`MaintenanceStore`).

use latchkey_domain::clock::Timestamp;
use latchkey_domain::oidc::Redeemed;
use latchkey_domain::session::Session;
use latchkey_domain::store::Store;

use super::fixtures::{
    NOW, issued, new_access_token, new_code, new_refresh_token, new_session, new_sign_in,
    stored_grant,
};

pub async fn store_answers_ping(store: &dyn Store) {
    store.ping().await.expect("a healthy store answers ping");
}

/// Purging must remove expired secrets and never anything still valid.
pub async fn purge_removes_only_expired(store: &dyn Store) {
    // Dates in 1970, far before anything other checks create, so purging only touches this
    // check's rows (and leftovers of earlier runs of it).
    let now = Timestamp(1_000);
    let expired = Timestamp(now.0 - 1);
    let live = NOW.plus_seconds(86_400);

    let grant = stored_grant(store).await;
    let user = grant.user_id.clone();

    let expired_code = new_code(&grant, expired);
    let live_code = new_code(&grant, live);
    let expired_access = new_access_token(&grant, now); // expiring exactly now counts as expired
    let live_access = new_access_token(&grant, live);
    let expired_refresh = new_refresh_token(&grant, expired);
    let live_refresh = new_refresh_token(&grant, live);
    let expired_sign_in = new_sign_in(expired);
    let live_sign_in = new_sign_in(live);
    let expired_session = Session {
        expires_at: expired,
        ..new_session(&user)
    };
    let live_session = Session {
        expires_at: live,
        ..new_session(&user)
    };

    for code in [&expired_code, &live_code] {
        store.put_code(code).await.expect("put_code");
    }
    for token in [&expired_access, &live_access] {
        store
            .put_access_token(token)
            .await
            .expect("put_access_token");
    }
    for token in [&expired_refresh, &live_refresh] {
        store
            .put_refresh_token(token)
            .await
            .expect("put_refresh_token");
    }
    for sign_in in [&expired_sign_in, &live_sign_in] {
        store.put_sign_in(sign_in).await.expect("put_sign_in");
    }
    for session in [&expired_session, &live_session] {
        store.create_session(session).await.expect("create_session");
    }

    let removed = store.purge_expired(now).await.expect("purge_expired");
    assert!(
        removed >= 5,
        "at least this check's five expired rows are counted, got {removed}"
    );

    assert_eq!(
        store
            .redeem_code(&expired_code.hash, &issued(&expired_code.grant_id))
            .await
            .unwrap(),
        Redeemed::Unknown,
        "the expired code is gone"
    );
    assert_eq!(
        store.access_token(&expired_access.hash).await.unwrap(),
        None,
        "the expired access token is gone"
    );
    assert_eq!(
        store
            .redeem_refresh_token(&expired_refresh.hash, &issued(&expired_refresh.grant_id))
            .await
            .unwrap(),
        Redeemed::Unknown,
        "the expired refresh token is gone"
    );
    assert_eq!(
        store.sign_in(&expired_sign_in.id).await.unwrap(),
        None,
        "the expired sign-in is gone"
    );
    assert_eq!(
        store.session(&expired_session.id).await.unwrap(),
        None,
        "the expired session is gone"
    );

    assert_eq!(
        store
            .redeem_code(&live_code.hash, &issued(&live_code.grant_id))
            .await
            .unwrap(),
        Redeemed::Fresh(live_code),
        "the live code stays"
    );
    assert_eq!(
        store.access_token(&live_access.hash).await.unwrap(),
        Some(live_access),
        "the live access token stays"
    );
    assert_eq!(
        store
            .redeem_refresh_token(&live_refresh.hash, &issued(&live_refresh.grant_id))
            .await
            .unwrap(),
        Redeemed::Fresh(live_refresh),
        "the live refresh token stays"
    );
    assert_eq!(
        store.sign_in(&live_sign_in.id).await.unwrap(),
        Some(live_sign_in),
        "the live sign-in stays"
    );
    assert_eq!(
        store.session(&live_session.id).await.unwrap(),
        Some(live_session),
        "the live session stays"
    );
    assert!(
        store.grant(&grant.id).await.unwrap().is_some(),
        "grants are not purged with their tokens"
    );
}
