//! A copied authenticator file must not sign in as the user (issue 13, item 3): PIN guesses
//! need the server, which counts them and turns phone sign-in off after five wrong ones.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use latchkey_authenticator::Authenticator;
use latchkey_protocol::wire::{AnswerOutcome, Decision};
use latchkey_protocol::{
    API_PREFIX, HEADER_DEVICE, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP, MAX_WRONG_PINS,
    request_signing_input,
};
use serde_json::{Value, json};

use crate::phone::{
    PIN, Person, Phone, expect_refusal, number_on, reload, start_sign_in, unescape,
};
use crate::support::TestServer;

/// A thief's copy of the phone's files, opened by the real app in a folder of their own.
pub fn copy_of(phone: &Phone) -> (tempfile::TempDir, Authenticator) {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(phone.home.path()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    let app = Authenticator::open(dir.path()).unwrap();
    (dir, app)
}

/// Everything in a JSON document that looks like a key-derivation setting (a salt with
/// argon2 costs) or a sealed blob (a nonce and a ciphertext), wherever it is.
fn collect(value: &Value, params: &mut Vec<Value>, sealed: &mut Vec<Value>, ids: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if map.contains_key("salt") && map.contains_key("m_cost") {
                params.push(value.clone());
            }
            if map.contains_key("nonce") && map.contains_key("ciphertext") {
                sealed.push(value.clone());
            }
            if let Some(Value::String(id)) = map.get("device_id") {
                ids.push(id.clone());
            }
            map.values().for_each(|v| collect(v, params, sealed, ids));
        }
        Value::Array(items) => items.iter().for_each(|v| collect(v, params, sealed, ids)),
        _ => {}
    }
}

fn argon2id(pin: &str, params: &Value) -> Option<[u8; 32]> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let salt = b64.decode(params["salt"].as_str()?).ok()?;
    let cost = |name: &str| params[name].as_u64().map(|v| v as u32);
    let settings =
        argon2::Params::new(cost("m_cost")?, cost("t_cost")?, cost("p_cost")?, Some(32)).ok()?;
    let mut out = [0u8; 32];
    argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        settings,
    )
    .hash_password_into(pin.as_bytes(), &salt, &mut out)
    .ok()?;
    Some(out)
}

fn opens(key: &[u8], aad: &[u8], sealed: &Value) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD;
    let (Some(nonce), Some(text)) = (sealed["nonce"].as_str(), sealed["ciphertext"].as_str())
    else {
        return false;
    };
    let (Ok(nonce), Ok(mut text)) = (b64.decode(nonce), b64.decode(text)) else {
        return false;
    };
    let Ok(nonce) = <[u8; NONCE_LEN]>::try_from(nonce) else {
        return false;
    };
    let Ok(key) = UnboundKey::new(&AES_256_GCM, key) else {
        return false;
    };
    LessSafeKey::new(key)
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut text,
        )
        .is_ok()
}

/// The offline guesser: for each candidate PIN, derives keys the way the file's settings
/// say and tries them on every sealed blob the file holds (with every associated data a blob
/// could use, and with an all-zero unlock secret in case the server's part is guessable).
/// Returns the candidates that open something: those a thief could tell apart offline.
fn guess_offline(device_file: &Value, candidates: &[&str]) -> Vec<String> {
    let (mut params, mut sealed, mut ids) = (Vec::new(), Vec::new(), Vec::new());
    collect(device_file, &mut params, &mut sealed, &mut ids);
    let mut aads: Vec<Vec<u8>> = vec![b"".to_vec(), b"pin-check".to_vec()];
    aads.extend(ids.iter().map(|id| id.as_bytes().to_vec()));
    let mut found = Vec::new();
    for pin in candidates {
        let keys: Vec<[u8; 32]> = params.iter().filter_map(|p| argon2id(pin, p)).collect();
        let usable = keys.iter().any(|key| {
            let mut tries = vec![key.to_vec()];
            for id in &ids {
                let mut ikm = key.to_vec();
                ikm.extend_from_slice(&[0u8; 32]);
                let mut out = [0u8; 32];
                aws_lc_rs::hkdf::Salt::new(aws_lc_rs::hkdf::HKDF_SHA256, b"")
                    .extract(&ikm)
                    .expand(
                        &[&latchkey_protocol::passwordless_seal_info(id)],
                        aws_lc_rs::hkdf::HKDF_SHA256,
                    )
                    .unwrap()
                    .fill(&mut out)
                    .unwrap();
                tries.push(out.to_vec());
            }
            tries.iter().any(|k| {
                sealed
                    .iter()
                    .any(|s| aads.iter().any(|aad| opens(k, aad, s)))
            })
        });
        if usable {
            found.push(pin.to_string());
        }
    }
    found
}

#[tokio::test]
async fn a_copied_device_file_gives_an_offline_guesser_nothing_and_cannot_approve_a_sign_in() {
    let server = TestServer::start().await;
    let bobby = Person::new(&server, "bobby", "Bobby Smith").await;
    let mut phone = Phone::with_phone_sign_in(&bobby, "Bobby's phone").await;
    let (_copy_dir, mut thief) = copy_of(&phone);
    let file: Value =
        serde_json::from_slice(&std::fs::read(_copy_dir.path().join("device.json")).unwrap())
            .unwrap();
    // The real PIN among the candidates: a guesser that can test PINs offline finds it.
    let candidates = [
        "000000", "123456", "111111", PIN, "654321", "999999", "121212", "246800",
    ];
    let found = guess_offline(&file, &candidates);
    assert!(
        found.is_empty(),
        "the copy lets these PINs be told apart offline: {found:?}"
    );

    // Bobby's sign-in is waiting on his phone; the thief holds a copy of the same device.
    let browser = server.browser();
    let page = start_sign_in(&browser, &bobby.upn).await;
    let request = phone.only_request().await;
    let thief_index = 0;
    // Approving with the copy needs the passwordless key; the device key does not do.
    let with_device_key = latchkey_authenticator::client::sign_answer(
        &thief.account(thief_index).device_key().unwrap(),
        &request,
        Decision::Approve,
        Some(number_on(&page)),
    );
    expect_refusal(
        thief
            .send_answer(thief_index, &request.id, &with_device_key)
            .await,
        "bad_signature",
    );
    // Every guess of the PIN goes to the server, which says it is wrong and counts it.
    expect_refusal(
        thief
            .respond(
                thief_index,
                &request,
                Decision::Approve,
                Some(number_on(&page)),
                Some("123456"),
            )
            .await,
        "wrong_pin",
    );
    let still = reload(&browser).await;
    assert!(
        !still.body.contains("Signed in as"),
        "the thief's copy approved nothing: {}",
        still.body
    );
    // Bobby, with his PIN, still approves (a right PIN resets the count).
    phone.approve(&request, number_on(&page)).await;
    assert!(reload(&browser).await.body.contains("Signed in as"));
}

#[tokio::test]
async fn five_wrong_pins_through_the_server_turn_phone_sign_in_off_for_that_device_and_security_info_says_why()
 {
    let server = TestServer::start().await;
    let bobby = Person::new(&server, "bobby", "Bobby Smith").await;
    let mut phone = Phone::with_phone_sign_in(&bobby, "Bobby's phone").await;
    // Two thieves' copies of the same file: the count is the server's, so starting from a
    // fresh copy does not start it over.
    let (_a, mut first) = copy_of(&phone);
    let (_b, mut second) = copy_of(&phone);
    for (n, pin) in ["000000", "111111", "222222"].iter().enumerate() {
        let refused = first.unlock_passwordless_key(0, pin).await.unwrap_err();
        assert_eq!(refused.code(), Some("wrong_pin"), "{refused}");
        let left = MAX_WRONG_PINS as usize - n - 1;
        assert!(
            refused.to_string().contains(&format!("{left} more")),
            "{refused}"
        );
    }
    expect_refusal(
        second.unlock_passwordless_key(0, "333333").await,
        "wrong_pin",
    );
    // The fifth wrong PIN in a row turns phone sign-in off on that device.
    expect_refusal(
        second.unlock_passwordless_key(0, "444444").await,
        "phone_sign_in_locked",
    );
    // Even the right PIN opens nothing now, from the copy or from the phone.
    expect_refusal(
        first.unlock_passwordless_key(0, PIN).await,
        "phone_sign_in_locked",
    );
    expect_refusal(
        phone.app.unlock_passwordless_key(phone.account, PIN).await,
        "phone_sign_in_locked",
    );
    let status = phone.app.status(phone.account).await.unwrap();
    assert!(
        !status.phone_sign_in && status.phone_sign_in_locked,
        "{status:?}"
    );
    let page = start_sign_in(&server.browser(), &bobby.upn).await;
    assert!(
        page.body.contains("Temporary Access Pass"),
        "no phone sign-in for Bobby now: {}",
        page.body
    );
    // Security info says what happened and offers the way back.
    let info = bobby.browser.get("/mysecurityinfo").await;
    let text = unescape(&info.body);
    assert!(
        text.contains("phone sign-in was turned off at")
            && text.contains("after 5 wrong PINs in a row"),
        "{}",
        info.body
    );
    assert!(
        info.body.contains("Allow phone sign-in again"),
        "{}",
        info.body
    );

    // Neither the copy nor the phone can turn it on again alone (else a thief would simply
    // choose a PIN of their own).
    expect_refusal(
        second.enable_phone_sign_in(0, "975318").await,
        "phone_sign_in_locked",
    );
    expect_refusal(
        phone
            .app
            .enable_phone_sign_in(phone.account, "864297")
            .await,
        "phone_sign_in_locked",
    );
}

#[tokio::test]
async fn after_a_lock_for_wrong_pins_the_user_signed_in_another_way_turns_phone_sign_in_on_again() {
    let server = TestServer::start().await;
    let bobby = Person::new(&server, "bobby", "Bobby Smith").await;
    let mut phone = Phone::with_phone_sign_in(&bobby, "Bobby's phone").await;
    for pin in ["000000", "111111", "222222", "333333", "444444"] {
        let _ = phone.app.unlock_passwordless_key(phone.account, pin).await;
    }
    assert!(
        phone
            .app
            .status(phone.account)
            .await
            .unwrap()
            .phone_sign_in_locked
    );
    let device_id = phone.app.account(phone.account).device_id.clone();
    // Bobby, signed in to security info with his pass, allows it again.
    let info = bobby.browser.get("/mysecurityinfo").await;
    let allowed = bobby
        .browser
        .post(
            &format!("/mysecurityinfo/devices/{device_id}/allow-phone-sign-in"),
            &[("csrf", &info.csrf())],
        )
        .await;
    assert_eq!(allowed.status, 303, "{}", allowed.body);
    // A forged form (no CSRF token) is refused.
    let forged = bobby
        .browser
        .post(
            &format!("/mysecurityinfo/devices/{device_id}/allow-phone-sign-in"),
            &[("csrf", "forged")],
        )
        .await;
    assert_ne!(forged.status, 303);
    // The app turns it on again with a new PIN, and the new PIN approves a sign-in.
    let new_pin = "864297";
    phone
        .app
        .enable_phone_sign_in(phone.account, new_pin)
        .await
        .unwrap();
    let status = phone.app.status(phone.account).await.unwrap();
    assert!(
        status.phone_sign_in && !status.phone_sign_in_locked,
        "{status:?}"
    );
    let info = bobby.browser.get("/mysecurityinfo").await;
    assert!(
        !info.body.contains("Allow phone sign-in again"),
        "{}",
        info.body
    );
    let browser = server.browser();
    let page = start_sign_in(&browser, &bobby.upn).await;
    let request = phone.only_request().await;
    assert_eq!(
        phone
            .app
            .respond(
                phone.account,
                &request,
                Decision::Approve,
                Some(number_on(&page)),
                Some(new_pin),
            )
            .await
            .unwrap(),
        AnswerOutcome::Approved
    );
    assert!(reload(&browser).await.body.contains("Signed in as"));
}

#[tokio::test]
async fn malformed_oversized_replayed_and_out_of_order_pin_unlocks_are_refused_and_not_counted() {
    let server = TestServer::start().await;
    let bobby = Person::new(&server, "bobby", "Bobby Smith").await;
    let phone = Phone::register(&bobby, "Bobby's phone").await;
    let account = phone.app.account(phone.account).clone();
    let key = account.device_key().unwrap();
    let send = |body: Vec<u8>, nonce: &str| {
        let full = format!("{API_PREFIX}/phone-sign-in/unlock");
        let ts = server.latchkey.now().0;
        let signature = key.sign(&request_signing_input("POST", &full, ts, nonce, &body));
        reqwest::Client::new()
            .post(format!("{}{full}", server.base))
            .header(HEADER_DEVICE, &account.device_id)
            .header(HEADER_TIMESTAMP, ts.to_string())
            .header(HEADER_NONCE, nonce)
            .header(HEADER_SIGNATURE, signature)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let verifier = "A".repeat(43);
    let body = |v: &str| serde_json::to_vec(&json!({ "pin_verifier": v })).unwrap();
    let code = |response: reqwest::Response| async move {
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        (
            status,
            body["error"].as_str().unwrap_or_default().to_string(),
        )
    };
    // Out of order: before phone sign-in is on there is nothing to unlock.
    let r = send(body(&verifier), "unlock-before-enable-01")
        .await
        .unwrap();
    assert_eq!(code(r).await, (409, "phone_sign_in_not_enabled".into()));
    let mut phone = phone;
    phone
        .app
        .enable_phone_sign_in(phone.account, PIN)
        .await
        .unwrap();
    // Malformed: not base64url, the wrong length, unknown fields, not JSON.
    for (bad, nonce) in [
        (body("not base64!"), "unlock-malformed-0001"),
        (body(&"A".repeat(40)), "unlock-malformed-0002"),
        (body(&"A".repeat(400)), "unlock-malformed-0003"),
        (
            serde_json::to_vec(&json!({"pin_verifier": verifier, "pin": "246810"})).unwrap(),
            "unlock-malformed-0004",
        ),
        (b"{".to_vec(), "unlock-malformed-0005"),
    ] {
        let (status, _) = code(send(bad, nonce).await.unwrap()).await;
        assert_eq!(status, 400);
    }
    // Oversized.
    let huge = body(&"A".repeat(20_000));
    let (status, error) = code(send(huge, "unlock-oversized-0001").await.unwrap()).await;
    assert_eq!((status, error.as_str()), (400, "body_too_large"));
    // Replayed: a wrong guess is counted once, its replay is refused before any check.
    let (status, error) = code(
        send(body(&verifier), "unlock-replayed-00001")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, error.as_str()), (403, "wrong_pin"));
    let (status, error) = code(
        send(body(&verifier), "unlock-replayed-00001")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, error.as_str()), (401, "replayed_request"));
    // None of the refused ones counted: four more wrong PINs are still allowed (the fifth
    // in all locks), and the right PIN still opens the key after three.
    for n in 0..3 {
        let (_, error) = code(
            send(body(&verifier), &format!("unlock-counted-000{n}"))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(error, "wrong_pin");
    }
    phone
        .app
        .unlock_passwordless_key(phone.account, PIN)
        .await
        .expect("four wrong PINs counted, not more");
}

/// The guesser above is not blind: given a file laid out as the app wrote it before this
/// defence (a PIN check value and the passwordless key sealed under argon2id of the PIN
/// alone), it finds the PIN among the candidates.
#[test]
fn the_offline_guesser_finds_the_pin_in_a_file_of_the_old_design() {
    let b64 = base64::engine::general_purpose::STANDARD;
    let params = json!({"salt": b64.encode([7u8; 16]), "m_cost": 19456, "t_cost": 2, "p_cost": 1});
    let key = argon2id(PIN, &params).unwrap();
    let seal = |aad: &[u8], plain: &[u8]| {
        let nonce = [3u8; NONCE_LEN];
        let mut buffer = plain.to_vec();
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).unwrap())
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut buffer,
            )
            .unwrap();
        json!({"nonce": b64.encode(nonce), "ciphertext": b64.encode(buffer)})
    };
    let mut pin = params.clone();
    pin["check"] = seal(b"pin-check", b"latchkey-authenticator-pin-check-v1");
    let old_file = json!({
        "version": 1,
        "pin": pin,
        "failed_pin_attempts": 0,
        "accounts": [{"id": "1", "device_id": "d1", "passwordless_key": seal(b"d1", b"pkcs8")}],
    });
    let candidates = ["000000", "123456", PIN, "999999"];
    assert_eq!(guess_offline(&old_file, &candidates), vec![PIN.to_string()]);
}
