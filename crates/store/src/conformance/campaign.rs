//! `CampaignStore`: the registration campaign's snoozes and interrupts.

use latchkey_domain::campaign::{CampaignInterrupt, CampaignStatus, Continuation};
use latchkey_domain::ids::{SessionId, UserId};
use latchkey_domain::store::Store;

use super::fixtures::{NOW, stored_user};

fn interrupt(user: &UserId, return_to: &str) -> CampaignInterrupt {
    CampaignInterrupt {
        session_id: SessionId::random(),
        user_id: user.clone(),
        continuation: Continuation {
            authorization: None,
            return_to: Some(return_to.into()),
        },
        created_at: NOW,
        expires_at: NOW.plus_seconds(1800),
    }
}

pub async fn campaign_snoozes_count_up_to_the_limit_and_no_further(store: &dyn Store) {
    let user = stored_user(store).await;
    assert_eq!(
        store.campaign_status(&user.id).await.unwrap(),
        CampaignStatus::default()
    );
    for n in 1..=3 {
        let until = NOW.plus_seconds(86_400 * i64::from(n));
        assert_eq!(
            store
                .snooze_campaign(&user.id, NOW, until, Some(3))
                .await
                .unwrap(),
            Some(n)
        );
        let status = store.campaign_status(&user.id).await.unwrap();
        assert_eq!(status.snoozes, n);
        assert_eq!(status.snoozed_until, Some(until));
    }
    assert_eq!(
        store
            .snooze_campaign(&user.id, NOW, NOW.plus_seconds(999), Some(3))
            .await
            .unwrap(),
        None,
        "the fourth snooze is refused"
    );
    assert_eq!(store.campaign_status(&user.id).await.unwrap().snoozes, 3);
    // Without a limit they go on counting.
    assert_eq!(
        store
            .snooze_campaign(&user.id, NOW, NOW, None)
            .await
            .unwrap(),
        Some(4)
    );
    // A limit of zero allows none, even the first.
    let other = stored_user(store).await;
    assert_eq!(
        store
            .snooze_campaign(&other.id, NOW, NOW, Some(0))
            .await
            .unwrap(),
        None
    );
}

pub async fn concurrent_campaign_snoozes_never_pass_the_limit(store: &dyn Store) {
    let user = stored_user(store).await;
    store
        .snooze_campaign(&user.id, NOW, NOW, Some(3))
        .await
        .unwrap();
    store
        .snooze_campaign(&user.id, NOW, NOW, Some(3))
        .await
        .unwrap();
    let (a, b) = tokio::join!(
        store.snooze_campaign(&user.id, NOW, NOW, Some(3)),
        store.snooze_campaign(&user.id, NOW, NOW, Some(3))
    );
    let passed = [a.unwrap(), b.unwrap()].into_iter().flatten().count();
    assert_eq!(passed, 1, "one of the two gets the last snooze");
    assert_eq!(store.campaign_status(&user.id).await.unwrap().snoozes, 3);
}

pub async fn campaign_interrupts_are_per_session_taken_once_and_expire(store: &dyn Store) {
    let user = stored_user(store).await;
    let first = interrupt(&user.id, "/myapps");
    store.put_campaign_interrupt(&first).await.unwrap();
    assert_eq!(
        store
            .campaign_interrupt(&first.session_id, NOW)
            .await
            .unwrap(),
        Some(first.clone())
    );
    // The same session again replaces it.
    let replaced = CampaignInterrupt {
        continuation: Continuation {
            authorization: None,
            return_to: Some("/mysecurityinfo".into()),
        },
        ..first.clone()
    };
    store.put_campaign_interrupt(&replaced).await.unwrap();
    let other = interrupt(&user.id, "/myapps");
    store.put_campaign_interrupt(&other).await.unwrap();
    let (a, b) = tokio::join!(
        store.take_campaign_interrupt(&first.session_id, NOW),
        store.take_campaign_interrupt(&first.session_id, NOW)
    );
    let taken: Vec<_> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
    assert_eq!(taken, vec![replaced], "one take gets it, whole");
    assert_eq!(
        store
            .campaign_interrupt(&first.session_id, NOW)
            .await
            .unwrap(),
        None
    );
    // Another session's interrupt is untouched, until it expires.
    assert!(
        store
            .campaign_interrupt(&other.session_id, NOW)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store
            .campaign_interrupt(&other.session_id, other.expires_at)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .take_campaign_interrupt(&other.session_id, other.expires_at)
            .await
            .unwrap(),
        None,
        "an expired interrupt is not handed out"
    );
    // An interrupt for a user that does not exist is refused.
    assert!(
        store
            .put_campaign_interrupt(&interrupt(&UserId::random(), "/"))
            .await
            .is_err()
    );
}
