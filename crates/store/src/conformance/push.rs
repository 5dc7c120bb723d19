//! Web Push: one VAPID key for every instance, one subscription per device, removed with it.

use latchkey_domain::authenticator::{Activation, Approval, ApprovalContext, Device};
use latchkey_domain::error::StoreError;
use latchkey_domain::ids::{ActivationId, DeviceId};
use latchkey_domain::push::{PushSubscription, VapidKey};
use latchkey_domain::secret::{TokenHash, random_hex};
use latchkey_domain::store::Store;
use latchkey_protocol::DeviceKeyPair;
use latchkey_protocol::wire::{AppKind, ApprovalKind};

use super::fixtures::{NOW, stored_user};

/// A registered device, made the only way devices are made: by redeeming an activation.
async fn stored_device(store: &dyn Store) -> Device {
    let user = stored_user(store).await;
    let device = Device {
        id: DeviceId::random(),
        user_id: user.id.clone(),
        name: "Conformance phone".into(),
        key: DeviceKeyPair::generate().expect("key").public_key(),
        passwordless_key: None,
        created_at: NOW,
        confirmed_at: None,
        phone_sign_in_at: None,
        app: AppKind::Web,
        webauthn: None,
    };
    let test = Approval::new(
        ApprovalKind::RegistrationTest,
        user.id.clone(),
        None,
        vec![device.id.clone()],
        ApprovalContext {
            user_principal_name: "user@conformance.example".into(),
            ..Default::default()
        },
        NOW,
        90,
    );
    let activation = Activation {
        id: ActivationId::random(),
        code_hash: TokenHash::of(&random_hex(16)),
        user_id: user.id.clone(),
        created_at: NOW,
        expires_at: NOW.plus_seconds(600),
        device_id: None,
        test_approval: None,
    };
    store
        .put_activation(&activation)
        .await
        .expect("put_activation");
    store
        .redeem_activation(&activation.code_hash, NOW, &device, &test, 10)
        .await
        .expect("redeem")
        .expect("redeemed");
    device
}

fn subscription(device: &DeviceId, endpoint: &str) -> PushSubscription {
    PushSubscription {
        device_id: device.clone(),
        endpoint: endpoint.into(),
        p256dh: format!("p256dh-{}", random_hex(8)),
        auth: format!("auth-{}", random_hex(4)),
        created_at: NOW,
    }
}

fn candidate(tag: &str) -> VapidKey {
    VapidKey {
        private_key: tag.as_bytes().to_vec(),
        public_key: format!("public-{tag}"),
        created_at: NOW,
    }
}

pub async fn the_vapid_key_is_made_once_even_when_instances_start_together(store: &dyn Store) {
    let (racer_a, racer_b) = (candidate("racer a"), candidate("racer b"));
    let (a, b) = tokio::join!(store.vapid_key(&racer_a), store.vapid_key(&racer_b));
    let (a, b) = (a.expect("vapid_key"), b.expect("vapid_key"));
    assert_eq!(a, b, "instances starting at once end with one key");
    let later = store.vapid_key(&candidate("later")).await.unwrap();
    assert_eq!(
        later, a,
        "a restart keeps the stored key, never its candidate"
    );
    assert_ne!(later.public_key, "public-later");
}

pub async fn a_device_has_one_push_subscription_and_a_new_one_replaces_it(store: &dyn Store) {
    let device = stored_device(store).await;
    assert_eq!(store.push_subscription(&device.id).await.unwrap(), None);
    let first = subscription(&device.id, "https://push.example/first");
    store.put_push_subscription(&first).await.unwrap();
    assert_eq!(
        store.push_subscription(&device.id).await.unwrap(),
        Some(first.clone())
    );
    let second = subscription(&device.id, "https://push.example/second");
    store.put_push_subscription(&second).await.unwrap();
    assert_eq!(
        store.push_subscription(&device.id).await.unwrap(),
        Some(second.clone()),
        "a new subscription replaces the old one"
    );
    // The push service's "gone" for the old endpoint must not remove the new subscription.
    assert!(
        !store
            .delete_push_subscription(&device.id, Some("https://push.example/first"))
            .await
            .unwrap()
    );
    assert!(store.push_subscription(&device.id).await.unwrap().is_some());
    assert!(
        store
            .delete_push_subscription(&device.id, Some("https://push.example/second"))
            .await
            .unwrap()
    );
    assert_eq!(store.push_subscription(&device.id).await.unwrap(), None);
    store.put_push_subscription(&second).await.unwrap();
    assert!(
        store
            .delete_push_subscription(&device.id, None)
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_push_subscription(&device.id, None)
            .await
            .unwrap()
    );
}

pub async fn push_subscriptions_go_with_their_device(store: &dyn Store) {
    let device = stored_device(store).await;
    let other = stored_device(store).await;
    store
        .put_push_subscription(&subscription(&device.id, "https://push.example/a"))
        .await
        .unwrap();
    store
        .put_push_subscription(&subscription(&other.id, "https://push.example/b"))
        .await
        .unwrap();
    store.delete_device(&device.id).await.unwrap();
    assert_eq!(store.push_subscription(&device.id).await.unwrap(), None);
    assert!(
        store.push_subscription(&other.id).await.unwrap().is_some(),
        "only the removed device's subscription goes"
    );
    assert!(
        matches!(
            store
                .put_push_subscription(&subscription(&device.id, "https://push.example/c"))
                .await,
            Err(StoreError::NotFound)
        ),
        "a removed device cannot get a subscription"
    );
}
