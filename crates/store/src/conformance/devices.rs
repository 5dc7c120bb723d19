//! `DeviceStore`: the authenticator app's activations, devices, nonces, approvals and PIN checks.

use latchkey_domain::authenticator::ApprovalState::{Approved, Denied};
use latchkey_domain::authenticator::{
    Activation, Approval, ApprovalContext, ApprovalState, Device, DeviceCredential, PinCheck,
    PinLock,
};
use latchkey_domain::clock::Timestamp;
use latchkey_domain::error::StoreError;
use latchkey_domain::ids::{ActivationId, DeviceId, UserId};
use latchkey_domain::log::SignInRecord;
use latchkey_domain::secret::{TokenHash, random_hex};
use latchkey_domain::signin::{PendingSignIn, SignInStage};
use latchkey_domain::store::{ApprovalPut, NonceUse, Store, ThrottleTake};
use latchkey_protocol::DeviceKeyPair;
use latchkey_protocol::wire::{AppKind, ApprovalKind};

use super::fixtures::{
    NOW, by_user, futures_join_all, new_sign_in, new_sign_in_record, stored_user, unique_upn,
};

fn new_device(user: &UserId) -> Device {
    Device {
        id: DeviceId::random(),
        user_id: user.clone(),
        name: "Conformance phone".into(),
        key: DeviceKeyPair::generate().expect("key").public_key(),
        passwordless_key: None,
        created_at: NOW,
        confirmed_at: None,
        phone_sign_in_at: None,
        app: AppKind::Terminal,
        webauthn: None,
    }
}

/// The device answers the approval now, as a phone's approve or deny does, logging `record`
/// in the same write if given. True when this answer settled it.
async fn settle(
    store: &dyn Store,
    device: &Device,
    approval: &Approval,
    state: ApprovalState,
    record: Option<&SignInRecord>,
) -> Result<bool, StoreError> {
    store
        .settle_approval(&approval.id, state, Some(&device.id), NOW, record)
        .await
}

fn new_approval(device: &Device) -> Approval {
    Approval::new(
        ApprovalKind::PhoneSignIn,
        device.user_id.clone(),
        None,
        vec![device.id.clone()],
        ApprovalContext {
            user_principal_name: "user@conformance.example".into(),
            ..Default::default()
        },
        NOW,
        90,
    )
}

fn new_activation(user: &UserId, code: &str) -> Activation {
    Activation {
        id: ActivationId::random(),
        code_hash: TokenHash::of(code),
        user_id: user.clone(),
        created_at: NOW,
        expires_at: NOW.plus_seconds(600),
        device_id: None,
        test_approval: None,
    }
}

/// Stores `device` the only way devices are made: by redeeming a fresh activation of its
/// user, with `test` as the test notification.
async fn store_device(store: &dyn Store, device: &Device, test: &Approval) {
    let activation = new_activation(&device.user_id, &random_hex(16));
    store
        .put_activation(&activation)
        .await
        .expect("put_activation");
    store
        .redeem_activation(&activation.code_hash, NOW, device, test, 10)
        .await
        .expect("redeem")
        .expect("redeemed");
}

pub async fn device_round_trips_and_updates(store: &dyn Store) {
    let user = stored_user(store).await;
    let device = new_device(&user.id);
    let approval = new_approval(&device);
    store_device(store, &device, &approval).await;
    let mut stored = store
        .device(&device.id)
        .await
        .unwrap()
        .expect("device stored");
    assert_eq!(stored, device, "a device reads back as written");
    stored.passwordless_key = Some(DeviceKeyPair::generate().unwrap().public_key());
    stored.confirmed_at = Some(NOW);
    store.update_device(&stored).await.expect("update_device");
    assert_eq!(
        store.device(&device.id).await.unwrap(),
        Some(stored.clone())
    );
    assert_eq!(store.devices_of_user(&user.id).await.unwrap(), vec![stored]);
    store.delete_device(&device.id).await.unwrap();
    assert_eq!(store.device(&device.id).await.unwrap(), None);
    assert!(
        matches!(
            store.update_device(&device).await,
            Err(StoreError::NotFound)
        ),
        "updating a removed device is not found"
    );
}

pub async fn activation_is_redeemed_once_even_when_raced(store: &dyn Store) {
    let user = stored_user(store).await;
    let code = random_hex(16);
    let activation = new_activation(&user.id, &code);
    store.put_activation(&activation).await.unwrap();
    assert_eq!(
        store
            .activation_by_code(&TokenHash::of(&code))
            .await
            .unwrap(),
        Some(activation.clone())
    );
    let (a, b) = (new_device(&user.id), new_device(&user.id));
    let (ta, tb) = (new_approval(&a), new_approval(&b));
    let (one, two) = tokio::join!(
        store.redeem_activation(&activation.code_hash, NOW, &a, &ta, 10),
        store.redeem_activation(&activation.code_hash, NOW, &b, &tb, 10),
    );
    let winners = [one.unwrap(), two.unwrap()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>();
    assert_eq!(
        winners.len(),
        1,
        "an activation code registers one device only"
    );
    assert_eq!(
        store.devices_of_user(&user.id).await.unwrap().len(),
        1,
        "the losing device was not created"
    );
    let redeemed = store.activation(&activation.id).await.unwrap().unwrap();
    assert!(redeemed.device_id.is_some() && redeemed.test_approval.is_some());
}

pub async fn expired_activation_cannot_be_redeemed(store: &dyn Store) {
    let user = stored_user(store).await;
    let activation = new_activation(&user.id, &random_hex(16));
    store.put_activation(&activation).await.unwrap();
    let device = new_device(&user.id);
    let later = activation.expires_at;
    assert_eq!(
        store
            .redeem_activation(
                &activation.code_hash,
                later,
                &device,
                &new_approval(&device),
                10,
            )
            .await
            .unwrap(),
        None,
        "an expired code redeems nothing"
    );
    assert_eq!(store.device(&device.id).await.unwrap(), None);
}

pub async fn device_nonce_is_accepted_once(store: &dyn Store) {
    let user = stored_user(store).await;
    let device = new_device(&user.id);
    store_device(store, &device, &new_approval(&device)).await;
    let nonce = random_hex(16);
    let (a, b) = tokio::join!(
        store.use_device_nonce(&device.id, &nonce, NOW.plus_seconds(60), None, NOW),
        store.use_device_nonce(&device.id, &nonce, NOW.plus_seconds(60), None, NOW),
    );
    let mut both = [a.unwrap(), b.unwrap()];
    both.sort_by_key(|used| *used != NonceUse::Fresh);
    assert_eq!(
        both,
        [NonceUse::Fresh, NonceUse::Replayed],
        "a replayed nonce is refused, even concurrently"
    );
}

/// Threat: a device flooding answers. Its answer throttle's slot is taken with each new
/// nonce; a replayed nonce takes none, and once the window is full the nonce is still
/// recorded (the request cannot be replayed later) while the slot is refused.
pub async fn a_nonce_takes_its_throttle_slot_in_the_same_write(store: &dyn Store) {
    let user = stored_user(store).await;
    let device = new_device(&user.id);
    store_device(store, &device, &new_approval(&device)).await;
    let slot = ThrottleTake {
        key: format!("answer:device:{}", random_hex(8)),
        window_seconds: 60,
        limit: 2,
    };
    let expires = NOW.plus_seconds(60);
    let (id, throttle) = (&device.id, &slot);
    let use_nonce = |nonce: String| async move {
        store
            .use_device_nonce(id, &nonce, expires, Some(throttle), NOW)
            .await
            .unwrap()
    };
    let first = random_hex(16);
    assert_eq!(use_nonce(first.clone()).await, NonceUse::Fresh);
    assert_eq!(
        use_nonce(first.clone()).await,
        NonceUse::Replayed,
        "a replay is refused and takes no slot"
    );
    assert_eq!(use_nonce(random_hex(16)).await, NonceUse::Fresh);
    let refused = random_hex(16);
    assert_eq!(use_nonce(refused.clone()).await, NonceUse::Throttled);
    assert_eq!(
        use_nonce(refused).await,
        NonceUse::Replayed,
        "a throttled request's nonce is recorded all the same"
    );
    assert_eq!(
        store.throttle_count(&slot.key, NOW, 60).await.unwrap(),
        2,
        "only the two fresh nonces took a slot"
    );
    assert_eq!(
        store
            .use_device_nonce(&device.id, &random_hex(16), expires, None, NOW)
            .await
            .unwrap(),
        NonceUse::Fresh,
        "a request that counts against no throttle is not refused by a full one"
    );
    let next_window = NOW.plus_seconds(60);
    assert_eq!(
        store
            .use_device_nonce(
                &device.id,
                &random_hex(16),
                next_window.plus_seconds(60),
                Some(&slot),
                next_window
            )
            .await
            .unwrap(),
        NonceUse::Fresh,
        "the next window starts over"
    );
}

async fn stored_approval(store: &dyn Store) -> (Device, Approval) {
    let user = stored_user(store).await;
    let device = new_device(&user.id);
    let approval = new_approval(&device);
    store_device(store, &device, &approval).await;
    (device, approval)
}

pub async fn concurrent_answers_settle_an_approval_once(store: &dyn Store) {
    let (device, approval) = stored_approval(store).await;
    assert_eq!(
        store.pending_approvals(&device.user_id).await.unwrap(),
        vec![approval.clone()]
    );
    let (a, b) = tokio::join!(
        settle(store, &device, &approval, Approved, None),
        settle(store, &device, &approval, Denied, None),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(
        a ^ b,
        "exactly one of two racing answers settles the request"
    );
    let settled = store.approval(&approval.id).await.unwrap().unwrap();
    let expected = if a {
        ApprovalState::Approved
    } else {
        ApprovalState::Denied
    };
    assert_eq!(settled.state, expected, "the winner's outcome stands");
    assert_eq!(settled.answered_by, Some(device.id.clone()));
    assert!(
        store
            .pending_approvals(&device.user_id)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn settling_changes_only_the_outcome_in_the_stored_approval(store: &dyn Store) {
    for (state, by) in [
        (ApprovalState::Approved, true),
        (ApprovalState::Expired, false),
    ] {
        let (device, approval) = stored_approval(store).await;
        let answered_by = by.then_some(&device.id);
        assert!(
            store
                .settle_approval(&approval.id, state, answered_by, NOW, None)
                .await
                .unwrap()
        );
        let mut expected = approval.clone();
        expected.state = state;
        expected.answered_by = answered_by.cloned();
        expected.settled_at = Some(NOW);
        assert_eq!(
            store.approval(&approval.id).await.unwrap().unwrap(),
            expected,
            "everything else in the approval reads back as it was stored"
        );
    }
}

pub async fn settling_logs_in_the_same_write(store: &dyn Store) {
    let (device, approval) = stored_approval(store).await;
    let upn = unique_upn("settled");
    let record = new_sign_in_record(upn.as_str(), NOW);
    assert!(
        settle(store, &device, &approval, Denied, Some(&record))
            .await
            .unwrap()
    );
    // A second settle (with a new record) neither changes the state nor logs.
    let again = new_sign_in_record(upn.as_str(), NOW);
    assert!(
        !settle(store, &device, &approval, Approved, Some(&again))
            .await
            .unwrap()
    );
    let logged = store.sign_in_records(&by_user(upn.as_str())).await.unwrap();
    assert!(logged.iter().any(|r| r.id == record.id));
    assert!(
        !logged.iter().any(|r| r.id == again.id),
        "a refused settle logs nothing"
    );
    // A record that cannot be written (duplicate id) leaves the approval pending.
    let (device, approval) = stored_approval(store).await;
    assert!(
        settle(store, &device, &approval, Denied, Some(&record))
            .await
            .is_err()
    );
    assert_eq!(
        store.approval(&approval.id).await.unwrap().unwrap().state,
        ApprovalState::Pending,
        "an outcome that cannot be logged does not happen"
    );
}

pub async fn only_one_sign_in_approval_waits_per_user_even_when_raced(store: &dyn Store) {
    let (device, first) = stored_approval(store).await;
    let blocked = new_approval(&device);
    assert_eq!(
        store
            .put_approval_if_none_waiting(&blocked, NOW, &[], None)
            .await
            .unwrap(),
        ApprovalPut::AlreadyWaiting,
        "a pending sign-in approval blocks another"
    );
    assert_eq!(store.approval(&blocked.id).await.unwrap(), None);
    store
        .settle_approval(&first.id, ApprovalState::Denied, None, NOW, None)
        .await
        .unwrap();
    let (a, b) = (new_approval(&device), new_approval(&device));
    let (one, two) = tokio::join!(
        store.put_approval_if_none_waiting(&a, NOW, &[], None),
        store.put_approval_if_none_waiting(&b, NOW, &[], None),
    );
    assert!(
        (one.unwrap() == ApprovalPut::Stored) ^ (two.unwrap() == ApprovalPut::Stored),
        "exactly one of two racing sign-ins notifies"
    );
    let later = new_approval(&device);
    let after_expiry = NOW.plus_seconds(90);
    assert_eq!(
        store
            .put_approval_if_none_waiting(&later, after_expiry, &[], None)
            .await
            .unwrap(),
        ApprovalPut::Stored,
        "an expired request no longer blocks a new one"
    );
}

/// Threat: a flood of sign-in requests for one user (notification fatigue) from one address.
/// The throttle slots are taken in the same step that stores the request: a refused slot
/// stores nothing, and the slots before it stay spent, exactly as separate takes would.
pub async fn notification_flood_is_cut_off_by_the_slots_taken_with_the_request(store: &dyn Store) {
    let (device, _first) = stored_approval(store).await;
    let suffix = random_hex(8);
    let slot = |key: &str, limit: u32| ThrottleTake {
        key: format!("{key}:{suffix}"),
        window_seconds: 60,
        limit,
    };
    let (address, user) = (slot("notify:ip", 5), slot("notify:user", 1));
    // Stored is not possible while the first request waits, but the slots are still taken.
    let waiting = new_approval(&device);
    assert_eq!(
        store
            .put_approval_if_none_waiting(&waiting, NOW, &[address.clone(), user.clone()], None)
            .await
            .unwrap(),
        ApprovalPut::AlreadyWaiting
    );
    assert_eq!(store.throttle_count(&user.key, NOW, 60).await.unwrap(), 1);
    let refused = new_approval(&device);
    let after_expiry = NOW.plus_seconds(90);
    assert_eq!(
        store
            .put_approval_if_none_waiting(&refused, NOW, &[address.clone(), user.clone()], None)
            .await
            .unwrap(),
        ApprovalPut::Throttled,
        "the user's slot is spent"
    );
    assert_eq!(store.approval(&refused.id).await.unwrap(), None);
    assert_eq!(
        store.throttle_count(&address.key, NOW, 60).await.unwrap(),
        2,
        "the address's slot, taken before the refused one, stays taken"
    );
    assert_eq!(
        store.throttle_count(&user.key, NOW, 60).await.unwrap(),
        1,
        "a refused slot is not counted"
    );
    // Once the first request has expired, in the next window, the request goes out, counted.
    let sent = new_approval(&device);
    assert_eq!(
        store
            .put_approval_if_none_waiting(
                &sent,
                after_expiry,
                &[address.clone(), user.clone()],
                None
            )
            .await
            .unwrap(),
        ApprovalPut::Stored
    );
    assert!(store.approval(&sent.id).await.unwrap().is_some());
    assert_eq!(
        store
            .throttle_count(&user.key, after_expiry, 60)
            .await
            .unwrap(),
        1
    );
}

/// The sign-in moves to the number page in the write that stores its request, and stays where
/// it was when no request is stored (another one waits, or a throttle refuses).
pub async fn a_sign_in_moves_to_the_number_page_only_with_its_stored_request(store: &dyn Store) {
    let (device, first) = stored_approval(store).await;
    let sign_in = new_sign_in(NOW.plus_seconds(600));
    store.put_sign_in(&sign_in).await.expect("put_sign_in");
    let moved_for = |approval: &Approval| PendingSignIn {
        stage: SignInStage::AwaitingApproval {
            upn: "user@conformance.example".into(),
            user_id: device.user_id.clone(),
            approval: approval.id.clone(),
            first_factor: None,
            held_back: None,
        },
        ..sign_in.clone()
    };
    // One slot an hour: the first attempt spends it, the second is refused.
    let slot = ThrottleTake {
        key: format!("notify:user:{}", random_hex(8)),
        window_seconds: 3600,
        limit: 1,
    };
    let blocked = new_approval(&device);
    assert_eq!(
        store
            .put_approval_if_none_waiting(
                &blocked,
                NOW,
                std::slice::from_ref(&slot),
                Some(&moved_for(&blocked)),
            )
            .await
            .unwrap(),
        ApprovalPut::AlreadyWaiting
    );
    assert_eq!(
        store.sign_in(&sign_in.id).await.unwrap(),
        Some(sign_in.clone()),
        "a sign-in whose request was not stored stays where it was"
    );
    let refused = new_approval(&device);
    let after_expiry = NOW.plus_seconds(90);
    assert_eq!(
        store
            .put_approval_if_none_waiting(
                &refused,
                after_expiry,
                std::slice::from_ref(&slot),
                Some(&moved_for(&refused)),
            )
            .await
            .unwrap(),
        ApprovalPut::Throttled
    );
    assert_eq!(
        store.sign_in(&sign_in.id).await.unwrap(),
        Some(sign_in.clone()),
        "a sign-in whose request a throttle refused stays where it was"
    );
    let sent = new_approval(&device);
    let moved = moved_for(&sent);
    assert_eq!(
        store
            .put_approval_if_none_waiting(&sent, after_expiry, &[], Some(&moved))
            .await
            .unwrap(),
        ApprovalPut::Stored
    );
    assert_eq!(
        store.sign_in(&sign_in.id).await.unwrap(),
        Some(moved),
        "the sign-in is stored with its request"
    );
    assert_ne!(first.id, sent.id);
}

/// Thirteen codes redeemed at once by a user allowed three devices: three devices, whatever
/// the interleaving.
pub async fn devices_stop_at_the_limit_even_when_activations_are_redeemed_in_parallel(
    store: &dyn Store,
) {
    let user = stored_user(store).await;
    let mut redemptions = Vec::new();
    for _ in 0..13 {
        let activation = new_activation(&user.id, &random_hex(16));
        store.put_activation(&activation).await.unwrap();
        let device = new_device(&user.id);
        let test = new_approval(&device);
        redemptions.push((activation, device, test));
    }
    let results = futures_join_all(
        redemptions
            .iter()
            .map(|(a, d, t)| store.redeem_activation(&a.code_hash, NOW, d, t, 3)),
    )
    .await;
    let redeemed = results
        .into_iter()
        .map(|r| r.expect("redeem_activation"))
        .filter(Option::is_some)
        .count();
    assert_eq!(redeemed, 3, "exactly the limit is redeemed");
    assert_eq!(store.devices_of_user(&user.id).await.unwrap().len(), 3);
}

/// At most `max_outstanding` unused, unexpired activations per user; used and expired ones
/// make room, and one user's count is not another's.
pub async fn open_activations_stop_at_the_limit_and_used_or_expired_ones_do_not_count(
    store: &dyn Store,
) {
    let user = stored_user(store).await;
    let other = stored_user(store).await;
    let mut open = Vec::new();
    for _ in 0..2 {
        let activation = new_activation(&user.id, &random_hex(16));
        assert!(
            store
                .put_activation_within(&activation, NOW, 2)
                .await
                .expect("put_activation_within")
        );
        open.push(activation);
    }
    let third = new_activation(&user.id, &random_hex(16));
    assert!(
        !store.put_activation_within(&third, NOW, 2).await.unwrap(),
        "a third open activation is refused"
    );
    assert_eq!(store.activation(&third.id).await.unwrap(), None);
    assert!(
        store
            .put_activation_within(&new_activation(&other.id, &random_hex(16)), NOW, 2)
            .await
            .unwrap(),
        "another user has a count of their own"
    );
    // A used activation no longer counts.
    let device = new_device(&user.id);
    store
        .redeem_activation(&open[0].code_hash, NOW, &device, &new_approval(&device), 10)
        .await
        .unwrap()
        .expect("redeemed");
    assert!(store.put_activation_within(&third, NOW, 2).await.unwrap());
    // Nor do expired ones.
    let later = NOW.plus_seconds(601);
    let mut fresh = new_activation(&user.id, &random_hex(16));
    fresh.created_at = later;
    fresh.expires_at = later.plus_seconds(600);
    assert!(store.put_activation_within(&fresh, later, 2).await.unwrap());
}

/// A device with phone sign-in and a PIN record, stored through a redeemed activation.
async fn device_with_pin(store: &dyn Store) -> Device {
    let user = stored_user(store).await;
    let mut device = new_device(&user.id);
    store_device(store, &device, &new_approval(&device)).await;
    device.confirmed_at = Some(NOW);
    store.update_device(&device).await.unwrap();
    device.passwordless_key = Some(DeviceKeyPair::generate().unwrap().public_key());
    device.phone_sign_in_at = Some(NOW);
    store
        .set_phone_sign_in(&device, Some("mac-of-the-verifier"))
        .await
        .expect("set_phone_sign_in");
    device
}

/// The device's PIN record, which the check expects to exist.
async fn stored_pin_lock(store: &dyn Store, device: &Device) -> PinLock {
    store.pin_lock(&device.id).await.unwrap().unwrap()
}

/// One PIN check on the device now, under a limit of five wrong PINs.
async fn check_pin(store: &dyn Store, device: &Device, right: bool) -> PinCheck {
    store
        .record_pin_check(&device.id, right, 5, NOW)
        .await
        .unwrap()
}

pub async fn pin_checks_count_wrong_pins_and_lock_at_the_limit_even_when_raced(store: &dyn Store) {
    let device = device_with_pin(store).await;
    assert_eq!(
        store.device(&device.id).await.unwrap(),
        Some(device.clone())
    );
    let lock = store
        .pin_lock(&device.id)
        .await
        .unwrap()
        .expect("a PIN record");
    assert_eq!(lock.verifier_mac.as_deref(), Some("mac-of-the-verifier"));
    assert_eq!((lock.wrong_pins, lock.locked_at), (0, None));
    // Counted in order, and a right PIN starts the count again.
    assert_eq!(
        check_pin(store, &device, false).await,
        PinCheck::Wrong { remaining: 4 }
    );
    assert_eq!(check_pin(store, &device, true).await, PinCheck::Right);
    assert_eq!(stored_pin_lock(store, &device).await.wrong_pins, 0);
    // Twenty wrong PINs at once: exactly one locks, four are counted, the rest find it locked.
    let checks =
        futures_join_all((0..20).map(|_| store.record_pin_check(&device.id, false, 5, NOW))).await;
    let checks: Vec<PinCheck> = checks.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        checks.iter().filter(|c| **c == PinCheck::LockedNow).count(),
        1
    );
    assert_eq!(
        checks
            .iter()
            .filter(|c| matches!(c, PinCheck::Wrong { .. }))
            .count(),
        4
    );
    assert_eq!(
        checks.iter().filter(|c| **c == PinCheck::Locked).count(),
        15
    );
    // The lock turned phone sign-in off in the same write and forgot the verifier; a right PIN
    // no longer unlocks anything.
    let off = store.device(&device.id).await.unwrap().unwrap();
    assert_eq!((off.passwordless_key, off.phone_sign_in_at), (None, None));
    let lock = stored_pin_lock(store, &device).await;
    assert_eq!((lock.locked_at, lock.verifier_mac), (Some(NOW), None));
    assert_eq!(check_pin(store, &device, true).await, PinCheck::Locked);
    // Allowing it again is recorded; enabling again clears the lock.
    assert!(
        store
            .allow_phone_sign_in_again(&device.id, Timestamp(NOW.0 + 5))
            .await
            .unwrap()
    );
    assert_eq!(
        stored_pin_lock(store, &device).await.reenable_allowed_at,
        Some(Timestamp(NOW.0 + 5))
    );
    store
        .set_phone_sign_in(&device, Some("a new mac"))
        .await
        .unwrap();
    let lock = stored_pin_lock(store, &device).await;
    assert!(!lock.is_locked());
    assert_eq!((lock.wrong_pins, lock.reenable_allowed_at), (0, None));
    assert!(
        !store
            .allow_phone_sign_in_again(&device.id, NOW)
            .await
            .unwrap(),
        "not locked"
    );
    // Turning phone sign-in off removes the record; removing the device would too.
    let mut plain = device.clone();
    plain.passwordless_key = None;
    plain.phone_sign_in_at = None;
    store.set_phone_sign_in(&plain, None).await.unwrap();
    assert_eq!(store.pin_lock(&device.id).await.unwrap(), None);
    assert_eq!(
        check_pin(store, &device, false).await,
        PinCheck::Locked,
        "no record, nothing to count"
    );
    store.delete_device(&device.id).await.unwrap();
}

/// Allowing a device without phone sign-in to turn it on (the person confirmed it by number
/// matching) is recorded without a verifier or a lock, moves on when allowed again, and goes
/// when phone sign-in is turned on or off.
pub async fn allowing_phone_sign_in_is_recorded_and_cleared_by_turning_it_on_or_off(
    store: &dyn Store,
) {
    let user = stored_user(store).await;
    let mut device = new_device(&user.id);
    store_device(store, &device, &new_approval(&device)).await;
    device.confirmed_at = Some(NOW);
    store.update_device(&device).await.unwrap();
    assert_eq!(store.pin_lock(&device.id).await.unwrap(), None);
    store
        .allow_enabling_phone_sign_in(&device.id, NOW)
        .await
        .expect("allow_enabling_phone_sign_in");
    let lock = stored_pin_lock(store, &device).await;
    assert_eq!(
        (
            lock.verifier_mac.as_deref(),
            lock.wrong_pins,
            lock.locked_at,
            lock.reenable_allowed_at
        ),
        (None, 0, None, Some(NOW))
    );
    assert_eq!(
        check_pin(store, &device, false).await,
        PinCheck::Locked,
        "no verifier, nothing to count"
    );
    let later = Timestamp(NOW.0 + 60);
    store
        .allow_enabling_phone_sign_in(&device.id, later)
        .await
        .unwrap();
    assert_eq!(
        stored_pin_lock(store, &device).await.reenable_allowed_at,
        Some(later)
    );
    // Turning phone sign-in on replaces the record with a fresh one...
    device.passwordless_key = Some(DeviceKeyPair::generate().unwrap().public_key());
    device.phone_sign_in_at = Some(later);
    store
        .set_phone_sign_in(&device, Some("mac-of-the-verifier"))
        .await
        .unwrap();
    let lock = stored_pin_lock(store, &device).await;
    assert_eq!(
        (lock.verifier_mac.as_deref(), lock.reenable_allowed_at),
        (Some("mac-of-the-verifier"), None)
    );
    // ...and turning it off removes it.
    store
        .allow_enabling_phone_sign_in(&device.id, later)
        .await
        .unwrap();
    let mut plain = device.clone();
    plain.passwordless_key = None;
    plain.phone_sign_in_at = None;
    store.set_phone_sign_in(&plain, None).await.unwrap();
    assert_eq!(store.pin_lock(&device.id).await.unwrap(), None);
    store.delete_device(&device.id).await.unwrap();
}

/// A web app's device with phone sign-in on by WebAuthn: the app kind and the credential read
/// back as written, and turning it off clears the credential.
pub async fn webauthn_device_round_trips_and_turns_off(store: &dyn Store) {
    let user = stored_user(store).await;
    let mut device = new_device(&user.id);
    device.app = AppKind::Web;
    store_device(store, &device, &new_approval(&device)).await;
    assert_eq!(
        store.device(&device.id).await.unwrap(),
        Some(device.clone())
    );
    device.confirmed_at = Some(NOW);
    store.update_device(&device).await.unwrap();
    device.webauthn = Some(DeviceCredential {
        credential_id: "Y3JlZGVudGlhbA".into(),
        passkey: "{\"cred\":\"opaque to the store\"}".into(),
        counter: 3,
    });
    device.phone_sign_in_at = Some(NOW);
    store.set_phone_sign_in(&device, None).await.unwrap();
    assert_eq!(
        store.device(&device.id).await.unwrap(),
        Some(device.clone())
    );
    assert_eq!(
        store.pin_lock(&device.id).await.unwrap(),
        None,
        "no PIN record"
    );
    device.webauthn = None;
    device.phone_sign_in_at = None;
    store.set_phone_sign_in(&device, None).await.unwrap();
    assert_eq!(store.device(&device.id).await.unwrap(), Some(device));
}

/// The counter of a device's WebAuthn credential moves only from the value the caller read:
/// of two answers racing with the same counter, one writes; a wrong credential id writes
/// nothing.
pub async fn concurrent_webauthn_uses_of_a_device_have_one_winner(store: &dyn Store) {
    let user = stored_user(store).await;
    let mut device = new_device(&user.id);
    device.app = AppKind::Web;
    store_device(store, &device, &new_approval(&device)).await;
    device.confirmed_at = Some(NOW);
    device.webauthn = Some(DeviceCredential {
        credential_id: "Y3JlZA".into(),
        passkey: "before".into(),
        counter: 1,
    });
    device.phone_sign_in_at = Some(NOW);
    store.update_device(&device).await.unwrap();
    assert!(
        !store
            .record_device_webauthn_use(&device.id, "b3RoZXI", 1, 2, "other")
            .await
            .unwrap(),
        "another credential id changes nothing"
    );
    let results = futures_join_all((0..4).map(|i| {
        let id = device.id.clone();
        async move {
            store
                .record_device_webauthn_use(&id, "Y3JlZA", 1, 2 + i, &format!("after {i}"))
                .await
                .unwrap()
        }
    }))
    .await;
    assert_eq!(results.iter().filter(|won| **won).count(), 1, "{results:?}");
    let stored = store.device(&device.id).await.unwrap().unwrap();
    let credential = stored.webauthn.expect("still there");
    let winner = results.iter().position(|won| *won).unwrap() as u32;
    assert_eq!(credential.counter, 2 + winner);
    assert_eq!(credential.passkey, format!("after {winner}"));
    assert!(
        !store
            .record_device_webauthn_use(&device.id, "Y3JlZA", 1, 9, "stale")
            .await
            .unwrap(),
        "a stale counter writes nothing"
    );
}
