//! Passkeys and security keys: registration on security info and sign-in, with software
//! authenticators from webauthn-authenticator-rs (`SoftPasskey`: no attestation, zero AAGUID;
//! `SoftToken`: packed attestation under its own CA, AAGUID 0fb9bcbc-…). Both are real
//! WebAuthn: webauthn-rs verifies every signature.
//!
//! Neither soft authenticator keeps resident keys, and both refuse a request that requires
//! one. Latchkey asks browsers for a discoverable credential but does not (cannot) check it
//! got one, so these tests relax that one option on the client side, as a browser that cannot
//! store the key would ignore it. For the discoverable sign-in they put the credential in the
//! allow list and the user handle in the answer on the client side (the user handle is not
//! signed, which is why Latchkey also checks it against the credential's owner); the browser
//! suite covers real resident keys.

use latchkey_domain::log::{Actor, LogQuery, SignInRecord};
use latchkey_domain::passkey::{
    CeremonyId, PasskeyChallenge, PasskeyError, PasskeyKind, RegisteredPasskey,
};
use latchkey_domain::policy::MethodKind;
use latchkey_domain::secret::base64url;
use latchkey_domain::service::{SignInFailure, SignedIn};
use latchkey_domain::session::AuthMethod;
use latchkey_domain::signin::SignInStage;
use latchkey_domain::user::User;
use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::prelude::Url;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::softtoken::SoftToken;

use crate::fixture::{ISSUER, World, context};

const SOFT_TOKEN_AAGUID: &str = "0fb9bcbc-a0d4-4042-bbb0-559bc1631e28";

fn origin() -> Url {
    Url::parse(ISSUER).unwrap()
}

/// Changes the FIDO2 configuration as the console saves it: enabled for all users, then
/// `adjust`.
async fn fido2_policy(world: &World, adjust: impl FnOnce(&mut Value)) {
    let policy = world.latchkey.governance.policy().await.unwrap();
    let mut configuration = serde_json::to_value(policy.configuration(MethodKind::Fido2)).unwrap();
    configuration["state"] = json!("enabled");
    adjust(&mut configuration);
    world
        .latchkey
        .governance
        .set_method_configuration(&Actor::system(), MethodKind::Fido2, configuration)
        .await
        .unwrap();
}

/// A world with FIDO2 enabled and `bobby` signed in with a pass a moment ago.
async fn bobby_signed_in(world: &World) -> SignedIn {
    fido2_policy(world, |_| {}).await;
    let bobby = world.user("bobby").await;
    world.signed_in(&bobby).await
}

/// The options a soft authenticator can answer: without the resident-key requirement.
fn creation_options(
    challenge: &PasskeyChallenge,
) -> webauthn_rs::prelude::CreationChallengeResponse {
    let mut options = challenge.options.clone();
    options["authenticatorSelection"]["residentKey"] = json!("discouraged");
    options["authenticatorSelection"]["requireResidentKey"] = json!(false);
    serde_json::from_value(json!({ "publicKey": options })).unwrap()
}

fn request_options(options: &Value) -> webauthn_rs::prelude::RequestChallengeResponse {
    serde_json::from_value(json!({ "publicKey": options })).unwrap()
}

/// The browser's `credential.toJSON()` for a registration, made by `key` at `origin`.
fn attest(key: &mut impl WebauthnAuthenticator, challenge: &PasskeyChallenge, at: Url) -> String {
    let credential = key
        .do_registration(at, creation_options(challenge))
        .expect("the authenticator registers");
    serde_json::to_string(&credential).unwrap()
}

/// The browser's answer to a sign-in challenge, made by `key` at `origin`.
fn assert_with(key: &mut impl WebauthnAuthenticator, options: &Value, at: Url) -> String {
    let credential = key
        .do_authentication(at, request_options(options))
        .expect("the authenticator signs");
    serde_json::to_string(&credential).unwrap()
}

async fn register(
    world: &World,
    signed_in: &SignedIn,
    key: &mut impl WebauthnAuthenticator,
) -> Result<RegisteredPasskey, PasskeyError> {
    let passkeys = &world.latchkey.passkeys;
    let challenge = passkeys
        .begin_registration(&signed_in.session, &signed_in.user)
        .await?;
    let response = attest(key, &challenge, origin());
    passkeys
        .finish_registration(
            &signed_in.session,
            &signed_in.user,
            &challenge.ceremony,
            &response,
            None,
        )
        .await
}

/// A sign-in that has reached the step after the user name, and its passkey challenge.
async fn named_challenge(
    world: &World,
    user: &User,
) -> (latchkey_domain::ids::SignInId, PasskeyChallenge) {
    let sign_in = world.sign_in_as(user).await;
    let challenge = world
        .latchkey
        .sign_in
        .begin_passkey_sign_in(&sign_in.id)
        .await
        .expect("a passkey challenge");
    (sign_in.id, challenge)
}

async fn sign_in_with(
    world: &World,
    user: &User,
    key: &mut impl WebauthnAuthenticator,
) -> Result<SignedIn, SignInFailure> {
    let (id, challenge) = named_challenge(world, user).await;
    let response = assert_with(key, &challenge.options, origin());
    world
        .latchkey
        .sign_in
        .finish_passkey_sign_in(&id, &challenge.ceremony, &response, context())
        .await
}

async fn latest_sign_in(world: &World, user: &User) -> SignInRecord {
    world
        .latchkey
        .governance
        .sign_in_log(LogQuery {
            user: Some(user.upn.to_string()),
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .next()
        .expect("a sign-in record")
}

/// The last step's result detail of the user's latest sign-in.
async fn latest_detail(world: &World, user: &User) -> String {
    let record = latest_sign_in(world, user).await;
    record
        .authentication_details
        .last()
        .expect("a step")
        .authentication_step_result_detail
        .clone()
}

fn soft_token() -> (SoftToken, String) {
    use crypto_glue::traits::EncodePem;
    let (token, ca) = SoftToken::new(true).expect("soft token");
    let pem = ca
        .to_pem(crypto_glue::der::pem::LineEnding::LF)
        .expect("PEM");
    (token, pem)
}

#[tokio::test]
async fn a_registered_passkey_is_listed_and_signs_in_with_user_verification() {
    let world = World::new().await;
    let signed_in = bobby_signed_in(&world).await;
    let mut key = SoftPasskey::new(true);
    let registered = register(&world, &signed_in, &mut key)
        .await
        .expect("registered");
    assert_eq!(registered.kind, PasskeyKind::SecurityKey);
    assert_eq!(registered.aaguid, None, "SoftPasskey names no model");
    assert_eq!(registered.name, "Security key");
    let listed = world
        .latchkey
        .passkeys
        .list(&signed_in.user.id)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, registered.id);
    assert_eq!(listed[0].last_used_at, None);

    world.advance(60);
    let session = sign_in_with(&world, &signed_in.user, &mut key)
        .await
        .expect("signed in with the passkey");
    assert_eq!(session.session.method, AuthMethod::DeviceBoundPasskey);
    let record = latest_sign_in(&world, &signed_in.user).await;
    assert!(record.succeeded());
    assert_eq!(record.authentication_method, "fido2");
    let step = record.authentication_details.last().unwrap();
    assert_eq!(step.authentication_method, "Passkey (FIDO2)");
    assert_eq!(
        step.authentication_method_detail.as_deref(),
        Some("Security key")
    );
    let used = world
        .latchkey
        .passkeys
        .list(&signed_in.user.id)
        .await
        .unwrap();
    assert_eq!(used[0].last_used_at, Some(world.latchkey.now()));
    assert!(used[0].counter > 0, "the counter was recorded");

    let audit = world
        .latchkey
        .governance
        .audit_log(LogQuery {
            category: Some("UserAuthenticationMethods".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.activity == "Register security key or passkey")
    );
}

#[tokio::test]
async fn a_user_whose_only_method_is_a_passkey_is_never_asked_for_a_pass_or_password() {
    let world = World::new().await;
    let signed_in = bobby_signed_in(&world).await;
    let mut key = SoftPasskey::new(true);
    register(&world, &signed_in, &mut key).await.unwrap();
    world
        .latchkey
        .directory
        .delete_pass(&Actor::system(), &signed_in.user.id)
        .await
        .unwrap();
    let sign_in = world.sign_in_as(&signed_in.user).await;
    assert!(
        matches!(&sign_in.stage, SignInStage::AwaitingPasskey { user_id, .. } if *user_id == signed_in.user.id),
        "{:?}",
        sign_in.stage
    );
    // A user without passkeys still gets the pass or password page.
    let alice = world.user("alice").await;
    let other = world.sign_in_as(&alice).await;
    assert!(matches!(
        other.stage,
        SignInStage::AwaitingCredential { .. }
    ));
}

#[tokio::test]
async fn discoverable_sign_in_finds_the_user_from_the_credential_and_its_user_handle() {
    let world = World::new().await;
    let signed_in = bobby_signed_in(&world).await;
    let mut key = SoftPasskey::new(true);
    let challenge = world
        .latchkey
        .passkeys
        .begin_registration(&signed_in.session, &signed_in.user)
        .await
        .unwrap();
    assert_eq!(
        challenge.options["authenticatorSelection"]["residentKey"],
        "required"
    );
    let user_handle = challenge.options["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let response = attest(&mut key, &challenge, origin());
    let registered = world
        .latchkey
        .passkeys
        .finish_registration(
            &signed_in.session,
            &signed_in.user,
            &challenge.ceremony,
            &response,
            Some("My key"),
        )
        .await
        .unwrap();
    assert_eq!(registered.name, "My key");

    let draft = world.latchkey.sign_in.draft_sign_in(None);
    let begun = world
        .latchkey
        .sign_in
        .begin_discoverable_sign_in(&draft.id, Some("/mysecurityinfo"), true)
        .await
        .unwrap();
    assert_eq!(begun.mediation, Some("conditional"));
    assert!(
        begun
            .options
            .get("allowCredentials")
            .is_none_or(|a| a.as_array().is_none_or(Vec::is_empty))
    );
    let mut options = begun.options.clone();
    options["allowCredentials"] =
        json!([{ "type": "public-key", "id": base64url(&registered.credential_id) }]);
    let mut answer: Value =
        serde_json::from_str(&assert_with(&mut key, &options, origin())).unwrap();
    answer["response"]["userHandle"] = json!(user_handle);
    let signed = world
        .latchkey
        .sign_in
        .finish_passkey_sign_in(&draft.id, &begun.ceremony, &answer.to_string(), context())
        .await
        .expect("signed in without a user name");
    assert_eq!(signed.user.id, signed_in.user.id);
    assert_eq!(signed.sign_in.return_to.as_deref(), Some("/mysecurityinfo"));
}

#[tokio::test]
async fn discoverable_sign_in_refuses_a_user_handle_swapped_for_another_users() {
    let world = World::new().await;
    let signed_in = bobby_signed_in(&world).await;
    let mut key = SoftPasskey::new(true);
    let registered = register(&world, &signed_in, &mut key).await.unwrap();
    // Alice's handle, as her registration options carry it.
    let alice = world.user("alice").await;
    let alice_in = world.signed_in(&alice).await;
    let alices = world
        .latchkey
        .passkeys
        .begin_registration(&alice_in.session, &alice_in.user)
        .await
        .unwrap();
    let draft = world.latchkey.sign_in.draft_sign_in(None);
    let begun = world
        .latchkey
        .sign_in
        .begin_discoverable_sign_in(&draft.id, None, false)
        .await
        .unwrap();
    assert_eq!(begun.mediation, None);
    let mut options = begun.options.clone();
    options["allowCredentials"] =
        json!([{ "type": "public-key", "id": base64url(&registered.credential_id) }]);
    let mut answer: Value =
        serde_json::from_str(&assert_with(&mut key, &options, origin())).unwrap();
    answer["response"]["userHandle"] = alices.options["user"]["id"].clone();
    let refused = world
        .latchkey
        .sign_in
        .finish_passkey_sign_in(&draft.id, &begun.ceremony, &answer.to_string(), context())
        .await;
    assert!(
        matches!(refused, Err(SignInFailure::TryAgain(_))),
        "{refused:?}"
    );
}

#[tokio::test]
async fn unknown_names_and_users_without_passkeys_get_challenges_shaped_like_a_known_users() {
    let world = World::new().await;
    fido2_policy(&world, |_| {}).await;
    let sign_in = world.latchkey.sign_in.draft_sign_in(None);
    world
        .latchkey
        .sign_in
        .store_drafted_sign_in(&sign_in.id, None)
        .await
        .unwrap();
    world
        .latchkey
        .sign_in
        .submit_username(&sign_in.id, "nobody@contoso.example", &context())
        .await
        .unwrap();
    let first = world
        .latchkey
        .sign_in
        .begin_passkey_sign_in(&sign_in.id)
        .await
        .unwrap();
    let again = world
        .latchkey
        .sign_in
        .begin_passkey_sign_in(&sign_in.id)
        .await
        .unwrap();
    assert_eq!(
        first.options["allowCredentials"], again.options["allowCredentials"],
        "the decoy list is stable for a name"
    );
    assert_ne!(first.ceremony, again.ceremony);
    assert_eq!(first.options["userVerification"], "required");
    // A known user's options have the same members, and their entries the same fields.
    let signed_in = bobby_signed_in(&world).await;
    register(&world, &signed_in, &mut SoftPasskey::new(true))
        .await
        .unwrap();
    let (_, known) = named_challenge(&world, &signed_in.user).await;
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&first.options), keys(&known.options));
    for entry in known.options["allowCredentials"]
        .as_array()
        .unwrap()
        .iter()
        .chain(first.options["allowCredentials"].as_array().unwrap())
    {
        assert_eq!(keys(entry), ["id", "type"]);
    }
}

#[tokio::test]
async fn passkeys_are_renamed_and_removed_only_by_their_owner() {
    let world = World::new().await;
    let signed_in = bobby_signed_in(&world).await;
    let mut key = SoftPasskey::new(true);
    let registered = register(&world, &signed_in, &mut key).await.unwrap();
    let bobby = &signed_in.user.id;
    let alice = world.user("alice").await;
    let passkeys = &world.latchkey.passkeys;
    assert_eq!(
        passkeys
            .rename(&alice.id, &registered.id, "Mine now")
            .await
            .unwrap_err(),
        PasskeyError::NotFound
    );
    assert!(matches!(
        passkeys.rename(bobby, &registered.id, "").await,
        Err(PasskeyError::Invalid(_))
    ));
    assert!(matches!(
        passkeys
            .rename(bobby, &registered.id, &"x".repeat(65))
            .await,
        Err(PasskeyError::Invalid(_))
    ));
    assert!(matches!(
        passkeys.rename(bobby, &registered.id, "a\nb").await,
        Err(PasskeyError::Invalid(_))
    ));
    let (pending, challenge) = named_challenge(&world, &signed_in.user).await;
    let answer = assert_with(&mut key, &challenge.options, origin());
    let renamed = passkeys
        .rename(bobby, &registered.id, "  Blue key ")
        .await
        .unwrap();
    assert_eq!(renamed.name, "Blue key");
    assert_eq!(passkeys.list(bobby).await.unwrap()[0].name, "Blue key");
    assert_eq!(
        passkeys
            .remove(&alice.id, &registered.id)
            .await
            .unwrap_err(),
        PasskeyError::NotFound
    );
    passkeys.remove(bobby, &registered.id).await.unwrap();
    assert!(passkeys.list(bobby).await.unwrap().is_empty());
    assert_eq!(
        passkeys.remove(bobby, &registered.id).await.unwrap_err(),
        PasskeyError::NotFound
    );
    // An answer made while it was still registered no longer signs in.
    let refused = world
        .latchkey
        .sign_in
        .finish_passkey_sign_in(&pending, &challenge.ceremony, &answer, context())
        .await;
    assert!(refused.is_err(), "a removed passkey no longer signs in");
    assert_eq!(
        latest_detail(&world, &signed_in.user).await,
        "credential not registered for this account"
    );
    let activities: Vec<String> = world
        .latchkey
        .governance
        .audit_log(LogQuery::default())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.activity)
        .collect();
    assert!(
        activities
            .iter()
            .any(|a| a == "Rename security key or passkey")
    );
    assert!(
        activities
            .iter()
            .any(|a| a == "Remove security key or passkey")
    );
}

#[tokio::test]
async fn blocked_model_is_refused_at_registration_by_key_restrictions() {
    let world = World::new().await;
    let signed_in = bobby_signed_in(&world).await;
    fido2_policy(&world, |c| {
        c["keyRestrictions"] =
            json!({"isEnforced": true, "enforcementType": "block", "aaGuids": [SOFT_TOKEN_AAGUID]});
    })
    .await;
    let (mut token, _) = soft_token();
    let refused = register(&world, &signed_in, &mut token).await.unwrap_err();
    assert!(
        matches!(&refused, PasskeyError::Refused(m) if m.contains("key restrictions")),
        "{refused:?}"
    );
    assert!(
        world
            .latchkey
            .passkeys
            .list(&signed_in.user.id)
            .await
            .unwrap()
            .is_empty()
    );
    // A model not on the list registers.
    register(&world, &signed_in, &mut SoftPasskey::new(true))
        .await
        .expect("not blocked");
}

#[tokio::test]
async fn blocked_model_is_refused_at_sign_in_after_the_policy_changes() {
    let world = World::new().await;
    let signed_in = bobby_signed_in(&world).await;
    let (mut token, _) = soft_token();
    let registered = register(&world, &signed_in, &mut token).await.unwrap();
    assert_eq!(
        registered.aaguid.as_deref(),
        Some(SOFT_TOKEN_AAGUID),
        "read from the authenticator data"
    );
    sign_in_with(&world, &signed_in.user, &mut token)
        .await
        .expect("allowed before the block");
    fido2_policy(&world, |c| {
        c["keyRestrictions"] =
            json!({"isEnforced": true, "enforcementType": "block", "aaGuids": [SOFT_TOKEN_AAGUID]});
    })
    .await;
    let refused = sign_in_with(&world, &signed_in.user, &mut token).await;
    assert!(
        matches!(refused, Err(SignInFailure::TryAgain(_))),
        "{refused:?}"
    );
    let record = latest_sign_in(&world, &signed_in.user).await;
    assert_eq!(record.status.error_code, 900_041);
    assert_eq!(
        record
            .authentication_details
            .last()
            .unwrap()
            .authentication_step_result_detail,
        "blocked by key restrictions"
    );
}

#[tokio::test]
async fn an_allow_list_refuses_an_authenticator_that_names_no_model() {
    let world = World::new().await;
    let signed_in = bobby_signed_in(&world).await;
    fido2_policy(&world, |c| {
        c["keyRestrictions"] =
            json!({"isEnforced": true, "enforcementType": "allow", "aaGuids": [SOFT_TOKEN_AAGUID]});
    })
    .await;
    let refused = register(&world, &signed_in, &mut SoftPasskey::new(true))
        .await
        .unwrap_err();
    assert!(matches!(&refused, PasskeyError::Refused(m) if m.contains("key restrictions")));
    let (mut token, _) = soft_token();
    register(&world, &signed_in, &mut token)
        .await
        .expect("on the allow list");
}

#[tokio::test]
async fn attestation_enforced_without_roots_refuses_and_names_the_setting() {
    let world = World::new().await;
    let signed_in = bobby_signed_in(&world).await;
    fido2_policy(&world, |c| c["isAttestationEnforced"] = json!(true)).await;
    let refused = world
        .latchkey
        .passkeys
        .begin_registration(&signed_in.session, &signed_in.user)
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, PasskeyError::NotAllowed(m) if m.contains("passkeys.attestation_roots")),
        "{refused:?}"
    );
}

#[tokio::test]
async fn attestation_enforced_refuses_an_unattested_key_and_an_untrusted_maker_but_accepts_a_trusted_one()
 {
    let (mut token, ca) = soft_token();
    let (mut stranger, _) = soft_token();
    let world = World::with_settings(|s| s.passkey_attestation_roots = vec![ca]).await;
    let signed_in = bobby_signed_in(&world).await;
    // Registered before enforcement: keeps working afterwards.
    let mut earlier = SoftPasskey::new(true);
    register(&world, &signed_in, &mut earlier).await.unwrap();
    fido2_policy(&world, |c| c["isAttestationEnforced"] = json!(true)).await;

    let none = register(&world, &signed_in, &mut SoftPasskey::new(true)).await;
    assert!(
        matches!(&none, Err(PasskeyError::Refused(m)) if m.contains("attestation required")),
        "{none:?}"
    );
    let untrusted = register(&world, &signed_in, &mut stranger).await;
    assert!(
        matches!(&untrusted, Err(PasskeyError::Refused(m)) if m.contains("attestation required")),
        "{untrusted:?}"
    );
    let refusals: Vec<Value> = world
        .latchkey
        .governance
        .audit_log(LogQuery::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.activity == "Register security key or passkey (refused)")
        .filter_map(|e| e.after)
        .collect();
    assert_eq!(refusals.len(), 2, "each refusal is audited");
    assert!(refusals.iter().all(|r| {
        r["reason"]
            .as_str()
            .unwrap()
            .contains("attestation required")
    }));
    let trusted = register(&world, &signed_in, &mut token)
        .await
        .expect("a trusted maker's key");
    assert_eq!(trusted.aaguid.as_deref(), Some(SOFT_TOKEN_AAGUID));

    sign_in_with(&world, &signed_in.user, &mut earlier)
        .await
        .expect("keys registered before enforcement keep working");
}

#[tokio::test]
async fn cloned_key_counter_regression_is_refused() {
    let world = World::new().await;
    let signed_in = bobby_signed_in(&world).await;
    let mut key = SoftPasskey::new(true);
    register(&world, &signed_in, &mut key).await.unwrap();
    // Two sign-ins; the key answers the first, then the second (counter n+1, n+2). The second
    // finishes first, so the first's answer carries a counter below the stored one: what a
    // clone of the key, used in parallel, looks like.
    let (first, first_challenge) = named_challenge(&world, &signed_in.user).await;
    let (second, second_challenge) = named_challenge(&world, &signed_in.user).await;
    let older = assert_with(&mut key, &first_challenge.options, origin());
    let newer = assert_with(&mut key, &second_challenge.options, origin());
    world
        .latchkey
        .sign_in
        .finish_passkey_sign_in(&second, &second_challenge.ceremony, &newer, context())
        .await
        .expect("the newer answer");
    let refused = world
        .latchkey
        .sign_in
        .finish_passkey_sign_in(&first, &first_challenge.ceremony, &older, context())
        .await;
    assert!(
        matches!(refused, Err(SignInFailure::TryAgain(_))),
        "{refused:?}"
    );
    assert_eq!(
        latest_detail(&world, &signed_in.user).await,
        "counter went backwards"
    );
}

#[tokio::test]
async fn replayed_assertion_is_refused() {
    let world = World::new().await;
    let signed_in = bobby_signed_in(&world).await;
    let mut key = SoftPasskey::new(true);
    register(&world, &signed_in, &mut key).await.unwrap();
    let (id, challenge) = named_challenge(&world, &signed_in.user).await;
    let answer = assert_with(&mut key, &challenge.options, origin());
    world
        .latchkey
        .sign_in
        .finish_passkey_sign_in(&id, &challenge.ceremony, &answer, context())
        .await
        .expect("first use");
    // The same answer for a new ceremony: its challenge does not match.
    let (again, fresh) = named_challenge(&world, &signed_in.user).await;
    let replay = world
        .latchkey
        .sign_in
        .finish_passkey_sign_in(&again, &fresh.ceremony, &answer, context())
        .await;
    assert!(
        matches!(replay, Err(SignInFailure::TryAgain(_))),
        "{replay:?}"
    );
    assert!(
        latest_detail(&world, &signed_in.user)
            .await
            .contains("challenge mismatch")
    );
    // And the used ceremony is gone.
    let reused = world
        .latchkey
        .sign_in
        .finish_passkey_sign_in(&again, &challenge.ceremony, &answer, context())
        .await;
    assert!(
        matches!(reused, Err(SignInFailure::TryAgain(m)) if m.contains("expired or was already used"))
    );
}

#[tokio::test]
async fn wrong_origin_phishing_answer_is_refused_at_sign_in_and_registration() {
    let world = World::new().await;
    let signed_in = bobby_signed_in(&world).await;
    let mut key = SoftPasskey::new(true);
    register(&world, &signed_in, &mut key).await.unwrap();
    let (id, challenge) = named_challenge(&world, &signed_in.user).await;
    // A page on another origin under the relying party's domain (the client allows that rp id
    // there; the server must not).
    let evil = Url::parse("https://evil.idp.test").unwrap();
    let phished = assert_with(&mut key, &challenge.options, evil.clone());
    let refused = world
        .latchkey
        .sign_in
        .finish_passkey_sign_in(&id, &challenge.ceremony, &phished, context())
        .await;
    assert!(refused.is_err());
    assert_eq!(latest_detail(&world, &signed_in.user).await, "wrong origin");

    let begun = world
        .latchkey
        .passkeys
        .begin_registration(&signed_in.session, &signed_in.user)
        .await
        .unwrap();
    let response = attest(&mut SoftPasskey::new(true), &begun, evil);
    let refused = world
        .latchkey
        .passkeys
        .finish_registration(
            &signed_in.session,
            &signed_in.user,
            &begun.ceremony,
            &response,
            None,
        )
        .await;
    assert!(
        matches!(refused, Err(PasskeyError::Refused(_))),
        "{refused:?}"
    );
}

#[tokio::test]
async fn ceremony_of_one_sign_in_cannot_finish_another() {
    let world = World::new().await;
    let signed_in = bobby_signed_in(&world).await;
    let mut key = SoftPasskey::new(true);
    register(&world, &signed_in, &mut key).await.unwrap();
    let (_, theirs) = named_challenge(&world, &signed_in.user).await;
    let (mine, _) = named_challenge(&world, &signed_in.user).await;
    let answer = assert_with(&mut key, &theirs.options, origin());
    let refused = world
        .latchkey
        .sign_in
        .finish_passkey_sign_in(&mine, &theirs.ceremony, &answer, context())
        .await;
    assert!(matches!(refused, Err(SignInFailure::TryAgain(m)) if m.contains("another sign-in")));
    // A registration ceremony cannot finish a sign-in either.
    let registration = world
        .latchkey
        .passkeys
        .begin_registration(&signed_in.session, &signed_in.user)
        .await
        .unwrap();
    let refused = world
        .latchkey
        .sign_in
        .finish_passkey_sign_in(&mine, &registration.ceremony, &answer, context())
        .await;
    assert!(matches!(refused, Err(SignInFailure::TryAgain(_))));
}

#[tokio::test]
async fn expired_ceremony_is_refused() {
    let world = World::new().await;
    let signed_in = bobby_signed_in(&world).await;
    let mut key = SoftPasskey::new(true);
    register(&world, &signed_in, &mut key).await.unwrap();
    let (id, challenge) = named_challenge(&world, &signed_in.user).await;
    let answer = assert_with(&mut key, &challenge.options, origin());
    world.advance(7 * 60);
    let refused = world
        .latchkey
        .sign_in
        .finish_passkey_sign_in(&id, &challenge.ceremony, &answer, context())
        .await;
    assert!(matches!(refused, Err(SignInFailure::TryAgain(m)) if m.contains("expired")));
}

#[tokio::test]
async fn oversized_or_malformed_responses_are_invalid() {
    let world = World::new().await;
    let signed_in = bobby_signed_in(&world).await;
    let passkeys = &world.latchkey.passkeys;
    let begun = passkeys
        .begin_registration(&signed_in.session, &signed_in.user)
        .await
        .unwrap();
    for bad in [
        "x".repeat(70_000),
        "{}".to_string(),
        "not json".to_string(),
        json!({"id": "a", "rawId": "!!", "response": {}, "type": "public-key"}).to_string(),
    ] {
        let refused = passkeys
            .finish_registration(
                &signed_in.session,
                &signed_in.user,
                &begun.ceremony,
                &bad,
                None,
            )
            .await;
        assert!(
            matches!(refused, Err(PasskeyError::Invalid(_))),
            "{refused:?}"
        );
    }
    // Malformed input does not spend the ceremony: the real answer still registers.
    let response = attest(&mut SoftPasskey::new(true), &begun, origin());
    passkeys
        .finish_registration(
            &signed_in.session,
            &signed_in.user,
            &begun.ceremony,
            &response,
            None,
        )
        .await
        .expect("registered");
    let unknown = passkeys
        .finish_registration(
            &signed_in.session,
            &signed_in.user,
            &CeremonyId::from_string("nope"),
            &response,
            None,
        )
        .await;
    assert_eq!(unknown.unwrap_err(), PasskeyError::NotFound);
    let (id, challenge) = named_challenge(&world, &signed_in.user).await;
    for bad in ["y".repeat(70_000), "[]".to_string()] {
        let refused = world
            .latchkey
            .sign_in
            .finish_passkey_sign_in(&id, &challenge.ceremony, &bad, context())
            .await;
        assert!(
            matches!(refused, Err(SignInFailure::TryAgain(_))),
            "{refused:?}"
        );
    }
    let refused = passkeys
        .finish_registration(
            &signed_in.session,
            &signed_in.user,
            &begun.ceremony,
            &response,
            Some(&"n".repeat(65)),
        )
        .await;
    assert!(matches!(refused, Err(PasskeyError::Invalid(_))));
}

#[tokio::test]
async fn registration_needs_a_fresh_strong_sign_in_and_the_policys_leave() {
    let world = World::new().await;
    let bobby = world.user("bobby").await;
    let signed_in = world.signed_in(&bobby).await;
    let passkeys = &world.latchkey.passkeys;
    // FIDO2 is disabled by default.
    assert!(matches!(
        passkeys
            .begin_registration(&signed_in.session, &bobby)
            .await,
        Err(PasskeyError::NotAllowed(_))
    ));
    assert!(!passkeys.may_register(&bobby).await.unwrap());
    // Enabled, but only for a group bobby is not in.
    let group = world
        .latchkey
        .directory
        .create_group(&Actor::system(), "Passkey users", "")
        .await
        .unwrap();
    fido2_policy(&world, |c| {
        c["includeTargets"] = json!([{"targetType": "group", "id": group.id}])
    })
    .await;
    assert!(matches!(
        passkeys
            .begin_registration(&signed_in.session, &bobby)
            .await,
        Err(PasskeyError::NotAllowed(_))
    ));
    // Everyone, but bobby's group excluded.
    world
        .latchkey
        .directory
        .add_group_member(&Actor::system(), &group.id, &bobby.id)
        .await
        .unwrap();
    fido2_policy(&world, |c| {
        c["excludeTargets"] = json!([{"targetType": "group", "id": group.id}])
    })
    .await;
    assert!(matches!(
        passkeys
            .begin_registration(&signed_in.session, &bobby)
            .await,
        Err(PasskeyError::NotAllowed(_))
    ));
    // Self-service off.
    fido2_policy(&world, |c| {
        c["excludeTargets"] = json!([]);
        c["isSelfServiceRegistrationAllowed"] = json!(false);
    })
    .await;
    assert!(
        matches!(passkeys.begin_registration(&signed_in.session, &bobby).await, Err(PasskeyError::NotAllowed(m)) if m.contains("yourself"))
    );
    assert!(!passkeys.may_register(&bobby).await.unwrap());
    fido2_policy(&world, |c| {
        c["isSelfServiceRegistrationAllowed"] = json!(true)
    })
    .await;
    assert!(passkeys.may_register(&bobby).await.unwrap());
    // A stale sign-in.
    world.advance(11 * 60);
    assert_eq!(
        passkeys
            .begin_registration(&signed_in.session, &bobby)
            .await
            .unwrap_err(),
        PasskeyError::SignInAgain
    );
    // Another user's session.
    let alice = world.user("alice").await;
    let fresh = world.signed_in(&bobby).await;
    assert_eq!(
        passkeys
            .begin_registration(&fresh.session, &alice)
            .await
            .unwrap_err(),
        PasskeyError::SignInAgain
    );
}

#[tokio::test]
async fn policy_turned_off_after_registration_refuses_sign_in() {
    let world = World::new().await;
    let signed_in = bobby_signed_in(&world).await;
    let mut key = SoftPasskey::new(true);
    register(&world, &signed_in, &mut key).await.unwrap();
    fido2_policy(&world, |c| c["state"] = json!("disabled")).await;
    let refused = sign_in_with(&world, &signed_in.user, &mut key).await;
    assert!(
        matches!(refused, Err(SignInFailure::TryAgain(m)) if m.contains("doesn't let your account"))
    );
    assert_eq!(
        latest_sign_in(&world, &signed_in.user)
            .await
            .status
            .error_code,
        900_010
    );
}

/// A sign-in context from an address Bobby never signed in from, in a browser he never used.
fn strangers_context() -> latchkey_domain::log::SignInContext {
    latchkey_domain::log::SignInContext {
        ip_address: Some("203.0.113.66".parse().unwrap()),
        ..Default::default()
    }
}

/// A named sign-in answered with an assertion the key made for another sign-in's challenge.
async fn failed_assertion(
    world: &World,
    user: &User,
    key: &mut SoftPasskey,
    at: latchkey_domain::log::SignInContext,
) -> Result<SignedIn, SignInFailure> {
    let (id, challenge) = named_challenge(world, user).await;
    let (_, other) = named_challenge(world, user).await;
    let answer = assert_with(key, &other.options, origin());
    world
        .latchkey
        .sign_in
        .finish_passkey_sign_in(&id, &challenge.ceremony, &answer, at)
        .await
}

#[tokio::test]
async fn lockout_bypass_failed_passkey_answers_feed_smart_lockout_and_a_stranger_spends_only_the_unfamiliar_allowance()
 {
    let world = World::new().await;
    let signed_in = bobby_signed_in(&world).await;
    let bobby = signed_in.user.clone();
    let mut key = SoftPasskey::new(true);
    register(&world, &signed_in, &mut key).await.unwrap();
    // Bobby's own browser signed in as him before: a familiar place.
    let browser = latchkey_domain::ids::BrowserId::random();
    world
        .latchkey
        .sign_in
        .remember_browser(&bobby.id, &browser)
        .await
        .unwrap();

    // A stranger with a captured answer makes failed passkey answers for Bobby, as many as
    // the unfamiliar allowance holds for wrong passes (10).
    for n in 0..10 {
        let refused = failed_assertion(&world, &bobby, &mut key, strangers_context()).await;
        assert!(
            matches!(&refused, Err(SignInFailure::TryAgain(m)) if !m.contains("too many")),
            "failure {n}: {refused:?}"
        );
    }
    // Now even a right answer from an unfamiliar place is not checked.
    let throttled = sign_in_with_context(&world, &bobby, &mut key, strangers_context()).await;
    assert!(
        matches!(&throttled, Err(SignInFailure::TryAgain(m)) if m.contains("too many sign-in attempts")),
        "{throttled:?}"
    );
    // A wrong pass from there is throttled too: one allowance for both.
    let pass_sign_in = world.sign_in_as(&bobby).await;
    let pass = world
        .latchkey
        .sign_in
        .submit_credential(
            &pass_sign_in.id,
            latchkey_domain::service::CredentialInput::Pass(latchkey_domain::secret::Secret::new(
                "WrongPass-1234",
            )),
            &strangers_context(),
        )
        .await;
    assert!(
        matches!(&pass, Err(SignInFailure::TryAgain(m)) if m.contains("too many sign-in attempts")),
        "{pass:?}"
    );

    // Bobby, in his own browser, still signs in with his key: the stranger did not spend his
    // allowance.
    let familiar = latchkey_domain::log::SignInContext {
        browser: Some(browser),
        ..Default::default()
    };
    sign_in_with_context(&world, &bobby, &mut key, familiar)
        .await
        .expect("Bobby's own browser keeps his allowance");
}

async fn sign_in_with_context(
    world: &World,
    user: &User,
    key: &mut SoftPasskey,
    at: latchkey_domain::log::SignInContext,
) -> Result<SignedIn, SignInFailure> {
    let (id, challenge) = named_challenge(world, user).await;
    let response = assert_with(key, &challenge.options, origin());
    world
        .latchkey
        .sign_in
        .finish_passkey_sign_in(&id, &challenge.ceremony, &response, at)
        .await
}
