//! `AdminTokenStore`: administrator API tokens.

use latchkey_domain::admin_token::AdminToken;
use latchkey_domain::error::StoreError;
use latchkey_domain::ids::AdminTokenId;
use latchkey_domain::secret::{TokenHash, random_token};
use latchkey_domain::store::Store;

use super::fixtures::NOW;

fn new_admin_token(hash: TokenHash) -> AdminToken {
    AdminToken {
        id: AdminTokenId::random(),
        name: "conformance".into(),
        hash,
        legacy_sha256: false,
        created_at: NOW,
        created_by: "system".into(),
        expires_at: Some(NOW.plus_seconds(3600)),
        last_used_at: None,
        revoked_at: None,
        revoked_by: None,
    }
}

pub async fn admin_tokens_are_found_by_hash_revoked_once_and_touched_at_most_once_a_period(
    store: &dyn Store,
) {
    let before = store.count_admin_tokens().await.unwrap();
    let token = new_admin_token(TokenHash::keyed(b"key", random_token().expose()));
    store
        .create_admin_token(&token)
        .await
        .expect("create_admin_token");
    assert_eq!(
        store.admin_token_by_hash(&token.hash).await.unwrap(),
        Some(token.clone()),
        "a stored token round-trips and is found by its hash"
    );
    assert_eq!(
        store
            .admin_token_by_hash(&TokenHash::of(random_token().expose()))
            .await
            .unwrap(),
        None,
        "an unknown hash finds nothing"
    );
    assert!(matches!(
        store.create_admin_token(&token).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.count_admin_tokens().await.unwrap(), before + 1);
    assert!(
        store
            .list_admin_tokens()
            .await
            .unwrap()
            .iter()
            .any(|t| t.id == token.id)
    );

    store
        .touch_admin_token(&token.id, NOW.plus_seconds(10), NOW.plus_seconds(-50))
        .await
        .unwrap();
    let used = |t: Option<AdminToken>| t.and_then(|t| t.last_used_at);
    assert_eq!(
        used(store.admin_token(&token.id).await.unwrap()),
        Some(NOW.plus_seconds(10))
    );
    // A second use within the period changes nothing.
    store
        .touch_admin_token(&token.id, NOW.plus_seconds(20), NOW.plus_seconds(-40))
        .await
        .unwrap();
    assert_eq!(
        used(store.admin_token(&token.id).await.unwrap()),
        Some(NOW.plus_seconds(10))
    );

    assert!(
        store
            .revoke_admin_token(&token.id, NOW.plus_seconds(30), "user:a@b.example")
            .await
            .unwrap()
    );
    assert!(
        !store
            .revoke_admin_token(&token.id, NOW.plus_seconds(40), "user:c@d.example")
            .await
            .unwrap(),
        "revoking twice changes nothing"
    );
    let revoked = store.admin_token(&token.id).await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(NOW.plus_seconds(30)));
    assert_eq!(revoked.revoked_by.as_deref(), Some("user:a@b.example"));
    assert!(
        !store
            .revoke_admin_token(&AdminTokenId::random(), NOW, "x")
            .await
            .unwrap()
    );
}

pub async fn legacy_admin_token_hashes_are_replaced_once(store: &dyn Store) {
    let secret = random_token();
    let legacy = AdminToken {
        legacy_sha256: true,
        ..new_admin_token(TokenHash::of(secret.expose()))
    };
    store.create_admin_token(&legacy).await.unwrap();
    let keyed = TokenHash::keyed(b"key", secret.expose());
    store.rehash_admin_token(&legacy.id, &keyed).await.unwrap();
    let now = store.admin_token_by_hash(&keyed).await.unwrap().unwrap();
    assert!(!now.legacy_sha256);
    assert_eq!(store.admin_token_by_hash(&legacy.hash).await.unwrap(), None);
    // A row that is no longer legacy is never rewritten.
    store
        .rehash_admin_token(&legacy.id, &TokenHash::of("other"))
        .await
        .unwrap();
    assert!(store.admin_token_by_hash(&keyed).await.unwrap().is_some());
}
