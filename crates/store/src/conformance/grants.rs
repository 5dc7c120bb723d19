//! `GrantStore`: grants, codes and tokens, signing keys and server secrets.

use latchkey_domain::application::SigningAlg;
use latchkey_domain::clock::Timestamp;
use latchkey_domain::ids::GrantId;
use latchkey_domain::keys::SigningKey;
use latchkey_domain::oidc::{AuthorizationCode, Redeemed};
use latchkey_domain::secret::{TokenHash, random_hex, random_token};
use latchkey_domain::store::Store;

use super::fixtures::{
    NOW, grant_revoked, issued, new_access_token, new_code, new_grant, new_refresh_token,
    stored_application, stored_code, stored_grant, stored_session,
};

pub async fn grant_round_trips(store: &dyn Store) {
    let grant = stored_grant(store).await;
    assert_eq!(
        store.grant(&grant.id).await.unwrap().as_ref(),
        Some(&grant),
        "a grant reads back unchanged"
    );
    store.revoke_grant(&grant.id).await.expect("revoke_grant");
    assert!(
        grant_revoked(store, &grant.id).await,
        "a revoked grant reads back revoked"
    );
    assert_eq!(
        store.grant(&GrantId::random()).await.unwrap(),
        None,
        "an unknown id finds no grant"
    );
}

pub async fn code_is_fresh_on_first_redemption(store: &dyn Store) {
    let grant = stored_grant(store).await;
    let code = stored_code(store, &grant).await;
    assert_eq!(
        store
            .redeem_code(&code.hash, &issued(&code.grant_id))
            .await
            .unwrap(),
        Redeemed::Fresh(code),
        "a new code redeems as fresh"
    );
}

/// RFC 6749 §4.1.2: a code used twice is a sign of theft; the caller must learn of it.
pub async fn replayed_code_is_reported_as_replay(store: &dyn Store) {
    let grant = stored_grant(store).await;
    let code = stored_code(store, &grant).await;
    assert!(
        matches!(
            store
                .redeem_code(&code.hash, &issued(&code.grant_id))
                .await
                .unwrap(),
            Redeemed::Fresh(_)
        ),
        "the first redemption is fresh"
    );
    for attempt in 2..=3 {
        assert_eq!(
            store
                .redeem_code(&code.hash, &issued(&code.grant_id))
                .await
                .unwrap(),
            Redeemed::Replayed(code.clone()),
            "redemption {attempt} of a code is reported as a replay, with the code so its grant can be revoked"
        );
    }
}

pub async fn unknown_code_is_unknown(store: &dyn Store) {
    assert_eq!(
        store
            .redeem_code(
                &TokenHash::of(random_token().expose()),
                &issued(&GrantId::random())
            )
            .await
            .unwrap(),
        Redeemed::Unknown,
        "a code never issued is unknown"
    );
}

/// A grant and its code are stored in one write; the code then redeems as any other.
pub async fn a_grant_is_stored_with_its_code(store: &dyn Store) {
    let mut grant = stored_grant(store).await;
    grant.id = GrantId::random();
    let code = new_code(&grant, NOW.plus_seconds(60));
    store
        .create_grant(&grant, Some(&code))
        .await
        .expect("create_grant");
    assert_eq!(store.grant(&grant.id).await.unwrap(), Some(grant.clone()));
    assert_eq!(store.code(&code.hash).await.unwrap(), Some(code.clone()));

    // A code that cannot be stored takes its grant with it.
    let mut again = grant.clone();
    again.id = GrantId::random();
    let clash = AuthorizationCode {
        grant_id: again.id.clone(),
        ..code.clone()
    };
    assert!(
        store.create_grant(&again, Some(&clash)).await.is_err(),
        "a code hash stored already is refused"
    );
    assert_eq!(
        store.grant(&again.id).await.unwrap(),
        None,
        "a grant whose code was refused is not stored"
    );
}

/// What a redemption issues is stored with the spend, and a replay or an unknown code stores
/// none of what it would have issued.
pub async fn a_redemption_stores_what_it_issues_and_a_replay_stores_nothing(store: &dyn Store) {
    let grant = stored_grant(store).await;
    let code = stored_code(store, &grant).await;
    let first = issued(&grant.id);
    assert!(matches!(
        store.redeem_code(&code.hash, &first).await.unwrap(),
        Redeemed::Fresh(_)
    ));
    let refresh = first.refresh.clone().expect("a refresh token");
    assert_eq!(
        store.access_token(&first.access.hash).await.unwrap(),
        Some(first.access.clone())
    );
    assert_eq!(
        store
            .refresh_token(&refresh.hash)
            .await
            .unwrap()
            .map(|t| t.hash),
        Some(refresh.hash.clone())
    );
    let replay = issued(&grant.id);
    assert!(matches!(
        store.redeem_code(&code.hash, &replay).await.unwrap(),
        Redeemed::Replayed(_)
    ));
    let unknown = issued(&grant.id);
    assert_eq!(
        store
            .redeem_code(&TokenHash::of(random_token().expose()), &unknown)
            .await
            .unwrap(),
        Redeemed::Unknown
    );
    for not_issued in [&replay, &unknown] {
        assert_eq!(
            store.access_token(&not_issued.access.hash).await.unwrap(),
            None,
            "a replayed or unknown code issues no access token"
        );
        let refresh = not_issued.refresh.as_ref().expect("a refresh token");
        assert_eq!(store.refresh_token(&refresh.hash).await.unwrap(), None);
    }

    // Rotation: the refresh token spent issues the next pair; spent again, it issues nothing.
    let next = issued(&grant.id);
    assert!(matches!(
        store
            .redeem_refresh_token(&refresh.hash, &next)
            .await
            .unwrap(),
        Redeemed::Fresh(_)
    ));
    assert!(
        store
            .access_token(&next.access.hash)
            .await
            .unwrap()
            .is_some()
    );
    let reuse = issued(&grant.id);
    assert!(matches!(
        store
            .redeem_refresh_token(&refresh.hash, &reuse)
            .await
            .unwrap(),
        Redeemed::Replayed(_)
    ));
    assert_eq!(store.access_token(&reuse.access.hash).await.unwrap(), None);
}

/// Two token requests racing with one code must not both get tokens, and only the winner's
/// tokens are stored.
pub async fn concurrent_redeem_of_a_code_has_one_winner(store: &dyn Store) {
    let grant = stored_grant(store).await;
    let code = stored_code(store, &grant).await;
    let (for_a, for_b) = (issued(&grant.id), issued(&grant.id));
    let (a, b) = tokio::join!(
        store.redeem_code(&code.hash, &for_a),
        store.redeem_code(&code.hash, &for_b)
    );
    let outcomes = [a.unwrap(), b.unwrap()];
    for (outcome, tokens) in outcomes.iter().zip([&for_a, &for_b]) {
        assert_eq!(
            store
                .access_token(&tokens.access.hash)
                .await
                .unwrap()
                .is_some(),
            matches!(outcome, Redeemed::Fresh(_)),
            "only the winner's tokens are stored: {outcome:?}"
        );
    }
    let fresh = outcomes
        .iter()
        .filter(|o| matches!(o, Redeemed::Fresh(_)))
        .count();
    let replayed = outcomes
        .iter()
        .filter(|o| matches!(o, Redeemed::Replayed(_)))
        .count();
    assert_eq!(
        (fresh, replayed),
        (1, 1),
        "of two concurrent redemptions exactly one is fresh: {outcomes:?}"
    );
}

/// The store reports; the domain judges expiry and revocation.
pub async fn access_token_is_returned_even_when_expired(store: &dyn Store) {
    let grant = stored_grant(store).await;
    let expired = new_access_token(&grant, Timestamp(NOW.0 - 3600));
    store
        .put_access_token(&expired)
        .await
        .expect("put_access_token");
    assert_eq!(
        store.access_token(&expired.hash).await.unwrap(),
        Some(expired),
        "an expired token is still returned"
    );
    assert_eq!(
        store
            .access_token(&TokenHash::of(random_token().expose()))
            .await
            .unwrap(),
        None,
        "an unknown access token is not found"
    );
}

/// RFC 7009: a revoked access token is gone; its grant and the grant's other tokens stay.
pub async fn deleted_access_token_is_gone_and_only_it(store: &dyn Store) {
    let grant = stored_grant(store).await;
    let revoked = new_access_token(&grant, NOW.plus_seconds(3600));
    let kept = new_access_token(&grant, NOW.plus_seconds(3600));
    store.put_access_token(&revoked).await.expect("put");
    store.put_access_token(&kept).await.expect("put");
    store
        .delete_access_token(&revoked.hash)
        .await
        .expect("delete_access_token");
    assert_eq!(store.access_token(&revoked.hash).await.unwrap(), None);
    assert_eq!(store.access_token(&kept.hash).await.unwrap(), Some(kept));
    assert!(
        !store.grant(&grant.id).await.unwrap().unwrap().revoked,
        "the grant lives on"
    );
    store
        .delete_access_token(&TokenHash::of(random_token().expose()))
        .await
        .expect("deleting an unknown token is no error");
}

/// Back-channel logout reads whom to tell before a session's or a user's grants are revoked:
/// only unrevoked grants, only of that session or user.
pub async fn live_grants_of_a_session_and_of_a_user(store: &dyn Store) {
    let grant = stored_grant(store).await;
    let other_app = stored_application(store).await;
    let second_session = stored_session(store, &grant.user_id).await;
    let same_session = new_grant(&grant.user_id, &other_app.client_id, &grant.session_id);
    let elsewhere = new_grant(&grant.user_id, &other_app.client_id, &second_session.id);
    let revoked = new_grant(&grant.user_id, &grant.client_id, &grant.session_id);
    for g in [&same_session, &elsewhere, &revoked] {
        store.create_grant(g, None).await.expect("create_grant");
    }
    store.revoke_grant(&revoked.id).await.unwrap();
    let ids = |grants: Vec<latchkey_domain::oidc::Grant>| {
        let mut ids: Vec<String> = grants.into_iter().map(|g| g.id.to_string()).collect();
        ids.sort();
        ids
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(
        ids(store.live_session_grants(&grant.session_id).await.unwrap()),
        sorted(vec![grant.id.to_string(), same_session.id.to_string()])
    );
    assert_eq!(
        ids(store.live_user_grants(&grant.user_id).await.unwrap()),
        sorted(vec![
            grant.id.to_string(),
            same_session.id.to_string(),
            elsewhere.id.to_string()
        ])
    );
}

/// Refresh token rotation (OAuth 2.0 Security BCP §4.14): each token works once; presenting a
/// spent one again means it was stolen, and must be reported so the grant can be revoked.
pub async fn refresh_token_rotation_reports_reuse(store: &dyn Store) {
    let grant = stored_grant(store).await;
    let first = new_refresh_token(&grant, NOW.plus_seconds(86_400));
    store
        .put_refresh_token(&first)
        .await
        .expect("put_refresh_token");
    assert_eq!(
        store
            .redeem_refresh_token(&first.hash, &issued(&first.grant_id))
            .await
            .unwrap(),
        Redeemed::Fresh(first.clone()),
        "first use is fresh"
    );

    let second = new_refresh_token(&grant, NOW.plus_seconds(86_400));
    store
        .put_refresh_token(&second)
        .await
        .expect("put rotated refresh token");
    assert_eq!(
        store
            .redeem_refresh_token(&first.hash, &issued(&first.grant_id))
            .await
            .unwrap(),
        Redeemed::Replayed(first),
        "reusing a rotated-out refresh token is reported as a replay"
    );
    assert_eq!(
        store
            .redeem_refresh_token(&second.hash, &issued(&second.grant_id))
            .await
            .unwrap(),
        Redeemed::Fresh(second),
        "the rotated-in token is fresh"
    );
    assert_eq!(
        store
            .redeem_refresh_token(
                &TokenHash::of(random_token().expose()),
                &issued(&GrantId::random())
            )
            .await
            .unwrap(),
        Redeemed::Unknown,
        "a refresh token never issued is unknown"
    );
}

pub async fn concurrent_redeem_of_a_refresh_token_has_one_winner(store: &dyn Store) {
    let grant = stored_grant(store).await;
    let token = new_refresh_token(&grant, NOW.plus_seconds(86_400));
    store
        .put_refresh_token(&token)
        .await
        .expect("put_refresh_token");
    let (for_a, for_b) = (issued(&token.grant_id), issued(&token.grant_id));
    let (a, b) = tokio::join!(
        store.redeem_refresh_token(&token.hash, &for_a),
        store.redeem_refresh_token(&token.hash, &for_b)
    );
    let outcomes = [a.unwrap(), b.unwrap()];
    let fresh = outcomes
        .iter()
        .filter(|o| matches!(o, Redeemed::Fresh(_)))
        .count();
    assert_eq!(
        fresh, 1,
        "of two concurrent refreshes exactly one is fresh: {outcomes:?}"
    );
}

pub async fn signing_key_round_trips(store: &dyn Store) {
    for alg in SigningAlg::ALL {
        let key = SigningKey::generate(alg, NOW).expect("generate a key");
        store.put_signing_key(&key).await.expect("put_signing_key");
        let stored = store
            .signing_keys()
            .await
            .unwrap()
            .into_iter()
            .find(|k| k.kid == key.kid);
        let stored = stored.expect("a stored key is listed");
        assert_eq!(stored.alg, key.alg, "the algorithm is kept");
        assert_eq!(
            stored.private_pkcs8, key.private_pkcs8,
            "the private key is kept byte for byte"
        );
        assert_eq!(
            (stored.created_at, stored.retired_at),
            (key.created_at, None),
            "the key's dates are kept"
        );
        assert!(
            stored.signer().is_ok(),
            "a stored key still loads for signing"
        );
    }
}

/// A rotation is a compare-and-swap: it goes through only while the unretired keys are the
/// ones the caller saw, retires them at the handover and stores the new keys; of two
/// rotations racing from the same view exactly one goes through.
pub async fn signing_key_rotation_is_a_compare_and_swap(store: &dyn Store) {
    let first = SigningKey::generate(SigningAlg::ES256, NOW).expect("generate");
    store
        .put_signing_key(&first)
        .await
        .expect("put_signing_key");
    let seen = vec![first.kid.clone()];
    let handover = NOW.plus_seconds(120);
    let a = SigningKey::generate(SigningAlg::ES256, handover).expect("generate");
    let b = SigningKey::generate(SigningAlg::ES256, handover).expect("generate");
    let (won_a, won_b) = tokio::join!(
        store.rotate_signing_keys(&seen, std::slice::from_ref(&a), handover),
        store.rotate_signing_keys(&seen, std::slice::from_ref(&b), handover)
    );
    let (won_a, won_b) = (won_a.expect("rotate"), won_b.expect("rotate"));
    assert!(
        won_a ^ won_b,
        "exactly one rotation goes through: {won_a} {won_b}"
    );
    let winner = if won_a { &a } else { &b };
    let keys = store.signing_keys().await.unwrap();
    let unretired: Vec<_> = keys.iter().filter(|k| k.retired_at.is_none()).collect();
    assert_eq!(unretired.len(), 1, "{keys:?}");
    assert_eq!(unretired[0].kid, winner.kid);
    assert_eq!(unretired[0].created_at, handover);
    assert_eq!(
        keys.iter().find(|k| k.kid == first.kid).unwrap().retired_at,
        Some(handover),
        "the old key retires at the handover"
    );
    // A rotation from a stale view writes nothing.
    let late = SigningKey::generate(SigningAlg::ES256, handover).expect("generate");
    assert!(
        !store
            .rotate_signing_keys(&seen, std::slice::from_ref(&late), handover)
            .await
            .unwrap()
    );
    assert!(
        store
            .signing_keys()
            .await
            .unwrap()
            .iter()
            .all(|k| k.kid != late.kid)
    );
}

/// Rotation retires old keys but must never retire the one now signing.
pub async fn signing_keys_retire_except_kept(store: &dyn Store) {
    let old = SigningKey::generate(SigningAlg::ES256, NOW).expect("generate");
    let current = SigningKey::generate(SigningAlg::ES256, NOW.plus_seconds(1)).expect("generate");
    let mut already_retired = SigningKey::generate(SigningAlg::ES256, NOW).expect("generate");
    already_retired.retired_at = Some(NOW);
    for key in [&old, &current, &already_retired] {
        store.put_signing_key(key).await.expect("put_signing_key");
    }

    let at = NOW.plus_seconds(100);
    store
        .retire_signing_keys_except(std::slice::from_ref(&current.kid), at)
        .await
        .expect("retire");
    let keys = store.signing_keys().await.unwrap();
    let retired_at = |kid| {
        keys.iter()
            .find(|k| &k.kid == kid)
            .expect("key listed")
            .retired_at
    };
    assert_eq!(
        retired_at(&old.kid),
        Some(at),
        "an unkept key is retired at the given time"
    );
    assert_eq!(retired_at(&current.kid), None, "the kept key stays active");
    assert_eq!(
        retired_at(&already_retired.kid),
        Some(NOW),
        "an already retired key keeps its retirement date"
    );
}

/// A server secret (for example the CSRF key) must never change once set, or every
/// outstanding form breaks and two servers would disagree.
pub async fn server_secret_is_created_once(store: &dyn Store) {
    let name = format!("conformance-{}", random_hex(4));
    let first = store
        .server_secret(&name, b"first candidate")
        .await
        .expect("server_secret");
    assert_eq!(first, b"first candidate", "the first candidate is stored");
    let second = store
        .server_secret(&name, b"second candidate")
        .await
        .expect("server_secret again");
    assert_eq!(
        second, first,
        "later calls return the first value, not their candidate"
    );

    let other = format!("conformance-{}", random_hex(4));
    let (a, b) = tokio::join!(
        store.server_secret(&other, b"racer a"),
        store.server_secret(&other, b"racer b")
    );
    assert_eq!(
        a.unwrap(),
        b.unwrap(),
        "concurrent first calls agree on one value"
    );
}

pub async fn codes_and_refresh_tokens_are_read_without_being_spent(store: &dyn Store) {
    let grant = stored_grant(store).await;
    let code = new_code(&grant, NOW.plus_seconds(60));
    store.put_code(&code).await.unwrap();
    assert_eq!(store.code(&code.hash).await.unwrap(), Some(code.clone()));
    assert_eq!(store.code(&code.hash).await.unwrap(), Some(code.clone()));
    assert!(matches!(
        store
            .redeem_code(&code.hash, &issued(&code.grant_id))
            .await
            .unwrap(),
        Redeemed::Fresh(_)
    ));
    assert_eq!(
        store.code(&code.hash).await.unwrap(),
        Some(code.clone()),
        "a spent code is still read"
    );
    let token = new_refresh_token(&grant, NOW.plus_seconds(60));
    store.put_refresh_token(&token).await.unwrap();
    assert_eq!(
        store.refresh_token(&token.hash).await.unwrap(),
        Some(token.clone())
    );
    assert!(matches!(
        store
            .redeem_refresh_token(&token.hash, &issued(&token.grant_id))
            .await
            .unwrap(),
        Redeemed::Fresh(_)
    ));
    assert_eq!(
        store
            .refresh_token(&TokenHash::of("unknown"))
            .await
            .unwrap(),
        None
    );
}

pub async fn a_mark_is_remembered_once_until_it_expires(store: &dyn Store) {
    let mark = format!("conformance-jti-{}", random_hex(8));
    assert!(
        store
            .remember_once(&mark, NOW.plus_seconds(60))
            .await
            .unwrap(),
        "a new mark is remembered"
    );
    assert!(
        !store
            .remember_once(&mark, NOW.plus_seconds(60))
            .await
            .unwrap(),
        "the same mark again is reported as seen (a replayed jti)"
    );
    assert!(store.is_remembered(&mark, NOW).await.unwrap());
    assert!(
        !store
            .is_remembered(&mark, NOW.plus_seconds(60))
            .await
            .unwrap(),
        "an expired mark is no longer remembered"
    );
    assert!(
        !store
            .is_remembered("conformance-unknown-mark", NOW)
            .await
            .unwrap(),
        "an unknown mark is not remembered"
    );
    let stale = format!("conformance-stale-{}", random_hex(8));
    store
        .remember_once(&stale, Timestamp(NOW.0 - 10))
        .await
        .unwrap();
    store.purge_expired(NOW).await.unwrap();
    assert!(
        store
            .remember_once(&stale, NOW.plus_seconds(60))
            .await
            .unwrap(),
        "purging forgets expired marks"
    );
}

pub async fn concurrent_remember_of_one_mark_has_one_winner(store: &dyn Store) {
    let mark = format!("conformance-race-{}", random_hex(8));
    let (a, b) = tokio::join!(
        store.remember_once(&mark, NOW.plus_seconds(60)),
        store.remember_once(&mark, NOW.plus_seconds(60))
    );
    assert!(
        a.unwrap() ^ b.unwrap(),
        "exactly one of two concurrent calls remembers the mark first"
    );
}
