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

use latchkey_domain::ids::SignInId;
use latchkey_domain::log::{Actor, AuditEvent, LogQuery, SignInRecord};
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

pub(crate) fn origin() -> Url {
    Url::parse(ISSUER).unwrap()
}

/// Changes the FIDO2 configuration as the console saves it: enabled for all users, then
/// `adjust`.
pub(crate) async fn fido2_policy(world: &World, adjust: impl FnOnce(&mut Value)) {
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

/// FIDO2 enabled, with key restrictions that `enforcement` ("allow" or "block") the
/// SoftToken's model.
async fn key_restrictions(world: &World, enforcement: &str) {
    fido2_policy(world, |c| {
        c["keyRestrictions"] = json!({"isEnforced": true, "enforcementType": enforcement, "aaGuids": [SOFT_TOKEN_AAGUID]});
    })
    .await;
}

/// A world with FIDO2 enabled and `bobby` signed in with a pass a moment ago.
async fn bobby_signed_in(world: &World) -> SignedIn {
    fido2_policy(world, |_| {}).await;
    let bobby = world.user("bobby").await;
    world.signed_in(&bobby).await
}

/// FIDO2 on for everyone, `bobby` signed in with a pass, and a soft passkey he registered.
pub(crate) async fn bobby_with_a_passkey(
    world: &World,
) -> (SignedIn, SoftPasskey, RegisteredPasskey) {
    let signed_in = bobby_signed_in(world).await;
    let mut key = SoftPasskey::new(true);
    let registered = register(world, &signed_in, &mut key)
        .await
        .expect("registered");
    (signed_in, key, registered)
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

/// A discoverable sign-in's answer: the soft key cannot keep the credential, so the client
/// side names it in the allow list and puts `user_handle` in the answer.
fn discoverable_answer(
    key: &mut SoftPasskey,
    options: &Value,
    registered: &RegisteredPasskey,
    user_handle: Value,
) -> String {
    let mut options = options.clone();
    options["allowCredentials"] =
        json!([{ "type": "public-key", "id": base64url(&registered.credential_id) }]);
    let mut answer: Value = serde_json::from_str(&assert_with(key, &options, origin())).unwrap();
    answer["response"]["userHandle"] = user_handle;
    answer.to_string()
}

async fn begin_registration(
    world: &World,
    signed_in: &SignedIn,
) -> Result<PasskeyChallenge, PasskeyError> {
    world
        .latchkey
        .passkeys
        .begin_registration(&signed_in.session, &signed_in.user)
        .await
}

async fn finish_registration(
    world: &World,
    signed_in: &SignedIn,
    ceremony: &CeremonyId,
    response: &str,
    name: Option<&str>,
) -> Result<RegisteredPasskey, PasskeyError> {
    world
        .latchkey
        .passkeys
        .finish_registration(
            &signed_in.session,
            &signed_in.user,
            ceremony,
            response,
            name,
        )
        .await
}

async fn register(
    world: &World,
    signed_in: &SignedIn,
    key: &mut impl WebauthnAuthenticator,
) -> Result<RegisteredPasskey, PasskeyError> {
    let challenge = begin_registration(world, signed_in).await?;
    let response = attest(key, &challenge, origin());
    finish_registration(world, signed_in, &challenge.ceremony, &response, None).await
}

async fn passkeys_of(world: &World, user: &User) -> Vec<RegisteredPasskey> {
    world.latchkey.passkeys.list(&user.id).await.unwrap()
}

/// The passkey challenge of a sign-in that has reached the step after the user name.
async fn passkey_challenge(world: &World, sign_in: &SignInId) -> PasskeyChallenge {
    world
        .latchkey
        .sign_in
        .begin_passkey_sign_in(sign_in)
        .await
        .expect("a passkey challenge")
}

/// A sign-in that has reached the step after the user name, and its passkey challenge.
async fn named_challenge(world: &World, user: &User) -> (SignInId, PasskeyChallenge) {
    let id = world.sign_in_as(user).await.id;
    let challenge = passkey_challenge(world, &id).await;
    (id, challenge)
}

/// Posts the browser's `answer` to the passkey step of `sign_in`, for `ceremony`.
async fn finish(
    world: &World,
    sign_in: &SignInId,
    ceremony: &CeremonyId,
    answer: &str,
) -> Result<SignedIn, SignInFailure> {
    world
        .latchkey
        .sign_in
        .finish_passkey_sign_in(sign_in, ceremony, answer, context())
        .await
}

/// Answers the passkey step of `sign_in` (past its user name) with `key`.
pub(crate) async fn sign_in_at(
    world: &World,
    sign_in: &SignInId,
    key: &mut impl WebauthnAuthenticator,
) -> Result<SignedIn, SignInFailure> {
    let challenge = passkey_challenge(world, sign_in).await;
    let response = assert_with(key, &challenge.options, origin());
    finish(world, sign_in, &challenge.ceremony, &response).await
}

async fn sign_in_with(
    world: &World,
    user: &User,
    key: &mut impl WebauthnAuthenticator,
) -> Result<SignedIn, SignInFailure> {
    let id = world.sign_in_as(user).await.id;
    sign_in_at(world, &id, key).await
}

/// Asserts that a sign-in was refused with a page that lets the user try again.
#[track_caller]
fn assert_try_again<T: std::fmt::Debug>(refused: &Result<T, SignInFailure>) {
    assert!(
        matches!(refused, Err(SignInFailure::TryAgain(_))),
        "{refused:?}"
    );
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

async fn audit_log(world: &World, query: LogQuery) -> Vec<AuditEvent> {
    world.latchkey.governance.audit_log(query).await.unwrap()
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
    let (signed_in, mut key, registered) = bobby_with_a_passkey(&world).await;
    assert_eq!(registered.kind, PasskeyKind::SecurityKey);
    assert_eq!(registered.aaguid, None, "SoftPasskey names no model");
    assert_eq!(registered.name, "Security key");
    let listed = passkeys_of(&world, &signed_in.user).await;
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
    let used = passkeys_of(&world, &signed_in.user).await;
    assert_eq!(used[0].last_used_at, Some(world.latchkey.now()));
    assert!(used[0].counter > 0, "the counter was recorded");

    let audit = audit_log(
        &world,
        LogQuery {
            category: Some("UserAuthenticationMethods".into()),
            ..Default::default()
        },
    )
    .await;
    assert!(
        audit
            .iter()
            .any(|e| e.activity == "Register security key or passkey")
    );
}

#[tokio::test]
async fn a_user_whose_only_method_is_a_passkey_is_never_asked_for_a_pass_or_password() {
    let world = World::new().await;
    let (signed_in, _, _) = bobby_with_a_passkey(&world).await;
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
    let challenge = begin_registration(&world, &signed_in).await.unwrap();
    assert_eq!(
        challenge.options["authenticatorSelection"]["residentKey"],
        "required"
    );
    let user_handle = challenge.options["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let response = attest(&mut key, &challenge, origin());
    let registered = finish_registration(
        &world,
        &signed_in,
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
    let answer = discoverable_answer(&mut key, &begun.options, &registered, json!(user_handle));
    let signed = finish(&world, &draft.id, &begun.ceremony, &answer)
        .await
        .expect("signed in without a user name");
    assert_eq!(signed.user.id, signed_in.user.id);
    assert_eq!(signed.sign_in.return_to.as_deref(), Some("/mysecurityinfo"));
}

#[tokio::test]
async fn discoverable_sign_in_refuses_a_user_handle_swapped_for_another_users() {
    let world = World::new().await;
    let (_, mut key, registered) = bobby_with_a_passkey(&world).await;
    // Alice's handle, as her registration options carry it.
    let alice = world.user("alice").await;
    let alice_in = world.signed_in(&alice).await;
    let alices = begin_registration(&world, &alice_in).await.unwrap();
    let draft = world.latchkey.sign_in.draft_sign_in(None);
    let begun = world
        .latchkey
        .sign_in
        .begin_discoverable_sign_in(&draft.id, None, false)
        .await
        .unwrap();
    assert_eq!(begun.mediation, None);
    let answer = discoverable_answer(
        &mut key,
        &begun.options,
        &registered,
        alices.options["user"]["id"].clone(),
    );
    let refused = finish(&world, &draft.id, &begun.ceremony, &answer).await;
    assert_try_again(&refused);
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
    let first = passkey_challenge(&world, &sign_in.id).await;
    let again = passkey_challenge(&world, &sign_in.id).await;
    assert_eq!(
        first.options["allowCredentials"], again.options["allowCredentials"],
        "the decoy list is stable for a name"
    );
    assert_ne!(first.ceremony, again.ceremony);
    assert_eq!(first.options["userVerification"], "required");
    // A known user's options have the same members, and their entries the same fields.
    let (signed_in, _, _) = bobby_with_a_passkey(&world).await;
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
    let (signed_in, mut key, registered) = bobby_with_a_passkey(&world).await;
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
    let refused = finish(&world, &pending, &challenge.ceremony, &answer).await;
    assert!(refused.is_err(), "a removed passkey no longer signs in");
    assert_eq!(
        latest_detail(&world, &signed_in.user).await,
        "credential not registered for this account"
    );
    let activities: Vec<String> = audit_log(&world, LogQuery::default())
        .await
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
    key_restrictions(&world, "block").await;
    let (mut token, _) = soft_token();
    let refused = register(&world, &signed_in, &mut token).await.unwrap_err();
    assert!(
        matches!(&refused, PasskeyError::Refused(m) if m.contains("key restrictions")),
        "{refused:?}"
    );
    assert!(passkeys_of(&world, &signed_in.user).await.is_empty());
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
    key_restrictions(&world, "block").await;
    let refused = sign_in_with(&world, &signed_in.user, &mut token).await;
    assert_try_again(&refused);
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
    key_restrictions(&world, "allow").await;
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
    let refused = begin_registration(&world, &signed_in).await.unwrap_err();
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
    // Registered before enforcement: keeps working afterwards.
    let (signed_in, mut earlier, _) = bobby_with_a_passkey(&world).await;
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
    let refusals: Vec<Value> = audit_log(&world, LogQuery::default())
        .await
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
    let (signed_in, mut key, _) = bobby_with_a_passkey(&world).await;
    // Two sign-ins; the key answers the first, then the second (counter n+1, n+2). The second
    // finishes first, so the first's answer carries a counter below the stored one: what a
    // clone of the key, used in parallel, looks like.
    let (first, first_challenge) = named_challenge(&world, &signed_in.user).await;
    let (second, second_challenge) = named_challenge(&world, &signed_in.user).await;
    let older = assert_with(&mut key, &first_challenge.options, origin());
    let newer = assert_with(&mut key, &second_challenge.options, origin());
    finish(&world, &second, &second_challenge.ceremony, &newer)
        .await
        .expect("the newer answer");
    let refused = finish(&world, &first, &first_challenge.ceremony, &older).await;
    assert_try_again(&refused);
    assert_eq!(
        latest_detail(&world, &signed_in.user).await,
        "counter went backwards"
    );
}

#[tokio::test]
async fn replayed_assertion_is_refused() {
    let world = World::new().await;
    let (signed_in, mut key, _) = bobby_with_a_passkey(&world).await;
    let (id, challenge) = named_challenge(&world, &signed_in.user).await;
    let answer = assert_with(&mut key, &challenge.options, origin());
    finish(&world, &id, &challenge.ceremony, &answer)
        .await
        .expect("first use");
    // The same answer for a new ceremony: its challenge does not match.
    let (again, fresh) = named_challenge(&world, &signed_in.user).await;
    let replay = finish(&world, &again, &fresh.ceremony, &answer).await;
    assert_try_again(&replay);
    assert!(
        latest_detail(&world, &signed_in.user)
            .await
            .contains("challenge mismatch")
    );
    // And the used ceremony is gone.
    let reused = finish(&world, &again, &challenge.ceremony, &answer).await;
    assert!(
        matches!(reused, Err(SignInFailure::TryAgain(m)) if m.contains("expired or was already used"))
    );
}

#[tokio::test]
async fn wrong_origin_phishing_answer_is_refused_at_sign_in_and_registration() {
    let world = World::new().await;
    let (signed_in, mut key, _) = bobby_with_a_passkey(&world).await;
    let (id, challenge) = named_challenge(&world, &signed_in.user).await;
    // A page on another origin under the relying party's domain (the client allows that rp id
    // there; the server must not).
    let evil = Url::parse("https://evil.idp.test").unwrap();
    let phished = assert_with(&mut key, &challenge.options, evil.clone());
    let refused = finish(&world, &id, &challenge.ceremony, &phished).await;
    assert!(refused.is_err());
    assert_eq!(latest_detail(&world, &signed_in.user).await, "wrong origin");

    let begun = begin_registration(&world, &signed_in).await.unwrap();
    let response = attest(&mut SoftPasskey::new(true), &begun, evil);
    let refused = finish_registration(&world, &signed_in, &begun.ceremony, &response, None).await;
    assert!(
        matches!(refused, Err(PasskeyError::Refused(_))),
        "{refused:?}"
    );
}

#[tokio::test]
async fn ceremony_of_one_sign_in_cannot_finish_another() {
    let world = World::new().await;
    let (signed_in, mut key, _) = bobby_with_a_passkey(&world).await;
    let (_, theirs) = named_challenge(&world, &signed_in.user).await;
    let (mine, _) = named_challenge(&world, &signed_in.user).await;
    let answer = assert_with(&mut key, &theirs.options, origin());
    let refused = finish(&world, &mine, &theirs.ceremony, &answer).await;
    assert!(matches!(refused, Err(SignInFailure::TryAgain(m)) if m.contains("another sign-in")));
    // A registration ceremony cannot finish a sign-in either.
    let registration = begin_registration(&world, &signed_in).await.unwrap();
    let refused = finish(&world, &mine, &registration.ceremony, &answer).await;
    assert!(matches!(refused, Err(SignInFailure::TryAgain(_))));
}

#[tokio::test]
async fn expired_ceremony_is_refused() {
    let world = World::new().await;
    let (signed_in, mut key, _) = bobby_with_a_passkey(&world).await;
    let (id, challenge) = named_challenge(&world, &signed_in.user).await;
    let answer = assert_with(&mut key, &challenge.options, origin());
    world.advance(7 * 60);
    let refused = finish(&world, &id, &challenge.ceremony, &answer).await;
    assert!(matches!(refused, Err(SignInFailure::TryAgain(m)) if m.contains("expired")));
}

#[tokio::test]
async fn oversized_or_malformed_responses_are_invalid() {
    let world = World::new().await;
    let signed_in = bobby_signed_in(&world).await;
    let begun = begin_registration(&world, &signed_in).await.unwrap();
    for bad in [
        "x".repeat(70_000),
        "{}".to_string(),
        "not json".to_string(),
        json!({"id": "a", "rawId": "!!", "response": {}, "type": "public-key"}).to_string(),
    ] {
        let refused = finish_registration(&world, &signed_in, &begun.ceremony, &bad, None).await;
        assert!(
            matches!(refused, Err(PasskeyError::Invalid(_))),
            "{refused:?}"
        );
    }
    // Malformed input does not spend the ceremony: the real answer still registers.
    let response = attest(&mut SoftPasskey::new(true), &begun, origin());
    finish_registration(&world, &signed_in, &begun.ceremony, &response, None)
        .await
        .expect("registered");
    let unknown = finish_registration(
        &world,
        &signed_in,
        &CeremonyId::from_string("nope"),
        &response,
        None,
    )
    .await;
    assert_eq!(unknown.unwrap_err(), PasskeyError::NotFound);
    let (id, challenge) = named_challenge(&world, &signed_in.user).await;
    for bad in ["y".repeat(70_000), "[]".to_string()] {
        let refused = finish(&world, &id, &challenge.ceremony, &bad).await;
        assert_try_again(&refused);
    }
    let refused = finish_registration(
        &world,
        &signed_in,
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
        begin_registration(&world, &signed_in).await,
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
        begin_registration(&world, &signed_in).await,
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
        begin_registration(&world, &signed_in).await,
        Err(PasskeyError::NotAllowed(_))
    ));
    // Self-service off.
    fido2_policy(&world, |c| {
        c["excludeTargets"] = json!([]);
        c["isSelfServiceRegistrationAllowed"] = json!(false);
    })
    .await;
    assert!(
        matches!(begin_registration(&world, &signed_in).await, Err(PasskeyError::NotAllowed(m)) if m.contains("yourself"))
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
        begin_registration(&world, &signed_in).await.unwrap_err(),
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
    let (signed_in, mut key, _) = bobby_with_a_passkey(&world).await;
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
