//! `PasskeyStore`: registered passkeys and WebAuthn ceremony states.

use latchkey_domain::clock::Timestamp;
use latchkey_domain::error::StoreError;
use latchkey_domain::ids::{CeremonyId, PasskeyId, SignInId, UserId};
use latchkey_domain::passkey::{CeremonyPurpose, PasskeyCeremony, PasskeyKind, RegisteredPasskey};
use latchkey_domain::secret::{random_bytes, random_hex};
use latchkey_domain::store::{PasskeyUse, Store};

use super::fixtures::{NOW, stored_user};

/// A credential as webauthn-rs serialises it (an ES256 public key made by a software
/// authenticator); the store keeps it as it is given.
const CREDENTIAL: &str = r#"{"cred":{"cred_id":"zPaGrBYCWKsMlwJ2JxcBv5qWb78cuilZojiO1KhugJo","cred":{"type_":"ES256","key":{"EC_EC2":{"curve":"SECP256R1","x":"Cmm6UFy0SnVVKy_r1vrlamqAnVY82jK5uR8iEdHiZmI","y":"C6mvRx1TH0ruHDjCPFRnagAS6tKH3PgLtK4DLaQhERk"}}},"counter":0,"transports":null,"user_verified":true,"backup_eligible":false,"backup_state":false,"registration_policy":"required","extensions":{"cred_protect":"Ignored","hmac_create_secret":"NotRequested","appid":"NotRequested","cred_props":"Ignored"},"attestation":{"data":"Self_","metadata":"None"},"attestation_format":"packed"}}"#;

fn new_passkey(user: &UserId) -> RegisteredPasskey {
    RegisteredPasskey {
        id: PasskeyId::random(),
        user_id: user.clone(),
        name: "Conformance key".into(),
        kind: PasskeyKind::SecurityKey,
        aaguid: Some("0fb9bcbc-a0d4-4042-bbb0-559bc1631e28".into()),
        authenticator_name: None,
        created_at: NOW,
        last_used_at: None,
        credential_id: random_bytes::<32>().to_vec(),
        counter: 3,
        backup_eligible: false,
        backup_state: false,
        credential: serde_json::from_str(CREDENTIAL).expect("a webauthn-rs credential"),
    }
}

fn same(a: &RegisteredPasskey, b: &RegisteredPasskey) -> bool {
    let json = |p: &RegisteredPasskey| serde_json::to_value(p).expect("serialisable");
    json(a) == json(b)
}

fn new_ceremony(expires_at: Timestamp) -> PasskeyCeremony {
    PasskeyCeremony {
        id: CeremonyId::random(),
        purpose: CeremonyPurpose::SignIn {
            sign_in: SignInId::random(),
            user_id: None,
        },
        state: format!("{{\"state\": \"{}\"}}", random_hex(8)),
        created_at: NOW,
        expires_at,
    }
}

pub async fn passkeys_round_trip_by_id_user_and_credential_id(store: &dyn Store) {
    let user = stored_user(store).await;
    let first = new_passkey(&user.id);
    let second = RegisteredPasskey {
        created_at: NOW.plus_seconds(5),
        kind: PasskeyKind::SyncedPasskey,
        aaguid: None,
        backup_eligible: true,
        ..new_passkey(&user.id)
    };
    store.add_passkey(&second).await.expect("add_passkey");
    store.add_passkey(&first).await.expect("add_passkey");
    let found = store
        .passkey(&first.id)
        .await
        .unwrap()
        .expect("found by id");
    assert!(same(&found, &first), "a passkey round-trips");
    let by_credential = store
        .passkey_by_credential_id(&second.credential_id)
        .await
        .unwrap()
        .expect("found by credential id");
    assert!(same(&by_credential, &second));
    let listed: Vec<PasskeyId> = store
        .passkeys_of_user(&user.id)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(
        listed,
        vec![first.id.clone(), second.id.clone()],
        "oldest first"
    );
    let other = stored_user(store).await;
    assert!(store.passkeys_of_user(&other.id).await.unwrap().is_empty());
    assert_eq!(
        store
            .passkey_by_credential_id(b"unknown")
            .await
            .unwrap()
            .map(|p| p.id),
        None
    );
}

pub async fn a_credential_id_is_registered_once_across_all_users(store: &dyn Store) {
    let bobby = stored_user(store).await;
    let alice = stored_user(store).await;
    let registered = new_passkey(&bobby.id);
    store.add_passkey(&registered).await.expect("add_passkey");
    let stolen = RegisteredPasskey {
        credential_id: registered.credential_id.clone(),
        ..new_passkey(&alice.id)
    };
    assert!(
        matches!(
            store.add_passkey(&stolen).await,
            Err(StoreError::Conflict(_))
        ),
        "a second registration of one credential id, for anyone, is a conflict"
    );
    assert!(store.passkeys_of_user(&alice.id).await.unwrap().is_empty());
}

pub async fn passkeys_are_renamed_and_removed_only_for_their_owner(store: &dyn Store) {
    let bobby = stored_user(store).await;
    let alice = stored_user(store).await;
    let passkey = new_passkey(&bobby.id);
    store.add_passkey(&passkey).await.unwrap();
    assert!(
        !store
            .rename_passkey(&alice.id, &passkey.id, "Mine")
            .await
            .unwrap()
    );
    assert!(
        store
            .rename_passkey(&bobby.id, &passkey.id, "Blue key")
            .await
            .unwrap()
    );
    assert_eq!(
        store.passkey(&passkey.id).await.unwrap().unwrap().name,
        "Blue key"
    );
    assert!(!store.remove_passkey(&alice.id, &passkey.id).await.unwrap());
    assert!(store.passkey(&passkey.id).await.unwrap().is_some());
    assert!(store.remove_passkey(&bobby.id, &passkey.id).await.unwrap());
    assert!(store.passkey(&passkey.id).await.unwrap().is_none());
    assert!(!store.remove_passkey(&bobby.id, &passkey.id).await.unwrap());
}

pub async fn concurrent_uses_of_one_counter_have_one_winner(store: &dyn Store) {
    let user = stored_user(store).await;
    let passkey = new_passkey(&user.id);
    store.add_passkey(&passkey).await.unwrap();
    let used = |counter, at| PasskeyUse {
        expected_counter: passkey.counter,
        counter,
        backup_state: true,
        credential: passkey.credential.clone(),
        at,
    };
    let (four, five) = (used(4, NOW.plus_seconds(1)), used(5, NOW.plus_seconds(2)));
    let (a, b) = tokio::join!(
        store.record_passkey_use(&passkey.id, &four),
        store.record_passkey_use(&passkey.id, &five)
    );
    assert_eq!(
        [a.unwrap(), b.unwrap()]
            .into_iter()
            .filter(|&won| won)
            .count(),
        1,
        "of two sign-ins that read the same counter, one records its use"
    );
    let after = store.passkey(&passkey.id).await.unwrap().unwrap();
    assert!(after.counter == 4 || after.counter == 5);
    assert!(after.backup_state);
    assert!(after.last_used_at.is_some());
    assert!(
        !store
            .record_passkey_use(&passkey.id, &used(9, NOW.plus_seconds(3)))
            .await
            .unwrap(),
        "a stale counter writes nothing"
    );
}

pub async fn concurrent_takes_of_one_ceremony_have_one_winner(store: &dyn Store) {
    let ceremony = new_ceremony(NOW.plus_seconds(300));
    store.put_ceremony(&ceremony).await.expect("put_ceremony");
    assert!(matches!(
        store.put_ceremony(&ceremony).await,
        Err(StoreError::Conflict(_))
    ));
    let (a, b) = tokio::join!(
        store.take_ceremony(&ceremony.id, NOW),
        store.take_ceremony(&ceremony.id, NOW)
    );
    let taken: Vec<PasskeyCeremony> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
    assert_eq!(
        taken,
        vec![ceremony.clone()],
        "one take gets the ceremony, whole"
    );
    assert_eq!(
        store.take_ceremony(&ceremony.id, NOW).await.unwrap(),
        None,
        "used once"
    );
}

pub async fn expired_ceremonies_are_not_returned_and_are_purged(store: &dyn Store) {
    let expired = new_ceremony(NOW.plus_seconds(60));
    store.put_ceremony(&expired).await.unwrap();
    assert_eq!(
        store
            .take_ceremony(&expired.id, NOW.plus_seconds(60))
            .await
            .unwrap(),
        None,
        "a ceremony at its expiry is not returned"
    );
    // Purging (at a date in 1970, as the maintenance check does) removes expired states only.
    let old = new_ceremony(Timestamp(999));
    let live = new_ceremony(NOW.plus_seconds(300));
    store.put_ceremony(&old).await.unwrap();
    store.put_ceremony(&live).await.unwrap();
    store.purge_expired(Timestamp(1_000)).await.unwrap();
    assert_eq!(
        store.take_ceremony(&old.id, Timestamp(0)).await.unwrap(),
        None,
        "purged"
    );
    assert_eq!(
        store.take_ceremony(&live.id, NOW).await.unwrap(),
        Some(live)
    );
}
