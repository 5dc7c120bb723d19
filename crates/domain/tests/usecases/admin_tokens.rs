//! Administrator API tokens: they work until they expire or are revoked.

use latchkey_domain::log::Actor;
use latchkey_domain::service::NewAdminToken;

use crate::fixture::{START, World};

#[tokio::test]
async fn an_admin_token_works_until_the_moment_it_expires() {
    let world = World::new().await;
    let (_, secret) = world
        .latchkey
        .governance
        .create_admin_token(
            &Actor::system(),
            NewAdminToken {
                display_name: "deploy bot".into(),
                expires_date_time: Some(START.plus_seconds(3600).to_rfc3339()),
            },
        )
        .await
        .unwrap();
    let works = || async {
        world
            .latchkey
            .governance
            .authenticate_admin_token(secret.expose())
            .await
            .unwrap()
            .is_some()
    };
    assert!(works().await);
    world.advance(3599);
    assert!(works().await, "a second before its end");
    world.advance(1);
    assert!(!works().await, "at its end");
}

#[tokio::test]
async fn a_revoked_admin_token_stops_working_and_an_unknown_one_never_did() {
    let world = World::new().await;
    let (token, secret) = world
        .latchkey
        .governance
        .create_admin_token(
            &Actor::system(),
            NewAdminToken {
                display_name: "ci".into(),
                expires_date_time: None,
            },
        )
        .await
        .unwrap();
    world
        .latchkey
        .governance
        .revoke_admin_token(&Actor::system(), token.id.as_str())
        .await
        .unwrap();
    let revoked = world
        .latchkey
        .governance
        .authenticate_admin_token(secret.expose())
        .await;
    assert!(revoked.unwrap().is_none());
    let unknown = world
        .latchkey
        .governance
        .authenticate_admin_token("lk_admin_nope")
        .await;
    assert!(unknown.unwrap().is_none());
}

/// Uses inside a minute cost no write, and the stored last-used time moves only once the
/// minute has passed.
#[tokio::test]
async fn a_token_used_many_times_a_minute_is_written_down_at_most_once_a_minute() {
    let world = World::new().await;
    let latchkey = &world.latchkey;
    let start = START;
    let (token, secret) = latchkey
        .governance
        .create_admin_token(
            &Actor::system(),
            NewAdminToken {
                display_name: "busy".into(),
                expires_date_time: Some(start.plus_seconds(3600).to_rfc3339()),
            },
        )
        .await
        .unwrap();
    let last_used = || async {
        latchkey
            .governance
            .admin_token(token.id.as_str())
            .await
            .unwrap()
            .last_used_at
    };
    assert_eq!(last_used().await, None);
    for second in 0..60 {
        assert!(
            latchkey
                .governance
                .authenticate_admin_token(secret.expose())
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(last_used().await, Some(start), "at second {second}");
        world.advance(1);
    }
    latchkey
        .governance
        .authenticate_admin_token(secret.expose())
        .await
        .unwrap();
    assert_eq!(last_used().await, Some(start.plus_seconds(60)));
    // And past its expiry it no longer authenticates.
    world.advance(3600);
    assert!(
        latchkey
            .governance
            .authenticate_admin_token(secret.expose())
            .await
            .unwrap()
            .is_none()
    );
}
