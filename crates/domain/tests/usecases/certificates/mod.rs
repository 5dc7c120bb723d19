//! Certificate-based sign-in in the domain: chain validation, revocation, username bindings,
//! authentication mode rules and policy targets, over certificates made in the test.

mod bindings;
mod pki;
mod revocation;

use latchkey_domain::log::Actor;
use latchkey_domain::policy::{MethodKind, X509AuthenticationMode};
use latchkey_domain::service::{
    CertificateFailure, CertificateResult, ModeDecision, PresentedChain,
};
use serde_json::{Value, json};

use crate::fixture::World;
use pki::{Ca, Leaf};

/// Turns certificate sign-in on for everyone with `cas`, then applies `adjust` to the
/// configuration (as the admin API's JSON).
pub(crate) async fn enable(world: &World, cas: &[&Ca], adjust: impl FnOnce(&mut Value)) {
    let policy = world.latchkey.governance.policy().await.unwrap();
    let mut config =
        serde_json::to_value(policy.configuration(MethodKind::X509Certificate)).unwrap();
    config["state"] = json!("enabled");
    config["certificateAuthorities"] = Value::Array(
        cas.iter()
            .map(|ca| json!({"displayName": ca.name, "certificate": ca.pem}))
            .collect(),
    );
    adjust(&mut config);
    world
        .latchkey
        .governance
        .set_method_configuration(&Actor::system(), MethodKind::X509Certificate, config)
        .await
        .expect("the configuration is valid");
}

pub(crate) async fn verify(world: &World, chain: &PresentedChain) -> CertificateResult {
    world.latchkey.certificates.verify(chain).await
}

pub(crate) fn failure(result: CertificateResult) -> CertificateFailure {
    match result {
        Ok(signed) => panic!(
            "signed in as {} where a failure was expected",
            signed.user.upn
        ),
        Err((failure, _)) => failure,
    }
}

pub(crate) fn bindings(list: &[(&str, &str, u32, &str)]) -> Value {
    Value::Array(
        list.iter()
            .map(|(field, property, priority, affinity)| {
                json!({"x509CertificateField": field, "userProperty": property,
                       "priority": priority, "trustAffinityLevel": affinity})
            })
            .collect(),
    )
}

#[tokio::test]
async fn a_certificate_from_a_trusted_ca_signs_in_its_principal_name() {
    let world = World::new().await;
    let bobby = world.user("bobby").await;
    let ca = Ca::new("Contoso Issuing CA");
    enable(&world, &[&ca], |_| {}).await;

    let signed = verify(
        &world,
        &Leaf::for_upn("Bobby@contoso.example").issued_by(&ca),
    )
    .await
    .expect("signed in");
    assert_eq!(signed.user.id, bobby.id);
    assert_eq!(signed.facts.subject, "O=Contoso,CN=Bobby");
    assert_eq!(signed.facts.issuer, "O=Contoso,CN=Contoso Issuing CA");
    assert_eq!(signed.facts.serial, "03e9");
    assert_eq!(signed.facts.principal_names, vec!["Bobby@contoso.example"]);
    assert_eq!(
        signed.mode,
        X509AuthenticationMode::X509CertificateSingleFactor
    );
    assert_eq!(signed.decision, ModeDecision::Default);
    assert_eq!(
        world
            .latchkey
            .certificates
            .trusted_authorities()
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn a_certificate_is_refused_while_the_method_is_disabled() {
    let world = World::new().await;
    world.user("bobby").await;
    let ca = Ca::new("Contoso Issuing CA");
    enable(&world, &[&ca], |c| c["state"] = json!("disabled")).await;
    let chain = Leaf::for_upn("bobby@contoso.example").issued_by(&ca);
    assert_eq!(
        failure(verify(&world, &chain).await),
        CertificateFailure::MethodDisabled
    );
}

#[tokio::test]
async fn a_certificate_from_an_unknown_ca_is_refused() {
    let world = World::new().await;
    world.user("bobby").await;
    let trusted = Ca::new("Contoso Issuing CA");
    let rogue = Ca::new("Contoso Issuing CA");
    enable(&world, &[&trusted], |_| {}).await;
    let result = verify(
        &world,
        &Leaf::for_upn("bobby@contoso.example").issued_by(&rogue),
    )
    .await;
    let Err((CertificateFailure::UntrustedIssuer, Some(facts))) = result else {
        panic!("expected an untrusted issuer with the facts, got {result:?}");
    };
    assert_eq!(facts.principal_names, vec!["bobby@contoso.example"]);
}

#[tokio::test]
async fn an_expired_certificate_is_refused() {
    let world = World::new().await;
    world.user("bobby").await;
    let ca = Ca::new("Contoso Issuing CA");
    enable(&world, &[&ca], |_| {}).await;
    let chain = Leaf::for_upn("bobby@contoso.example").issued_by(&ca);
    world.advance(366 * 86_400);
    assert_eq!(
        failure(verify(&world, &chain).await),
        CertificateFailure::Expired
    );
}

#[tokio::test]
async fn a_certificate_not_yet_valid_is_refused() {
    let world = World::new().await;
    world.user("bobby").await;
    let ca = Ca::new("Contoso Issuing CA");
    enable(&world, &[&ca], |_| {}).await;
    let mut leaf = Leaf::for_upn("bobby@contoso.example");
    leaf.not_before = crate::fixture::START.plus_seconds(3600);
    assert_eq!(
        failure(verify(&world, &leaf.issued_by(&ca)).await),
        CertificateFailure::NotYetValid
    );
}

#[tokio::test]
async fn a_server_certificate_is_refused_for_client_sign_in() {
    let world = World::new().await;
    world.user("bobby").await;
    let ca = Ca::new("Contoso Issuing CA");
    enable(&world, &[&ca], |_| {}).await;
    let mut leaf = Leaf::for_upn("bobby@contoso.example");
    leaf.client_auth = false;
    assert_eq!(
        failure(verify(&world, &leaf.issued_by(&ca)).await),
        CertificateFailure::WrongKeyUsage
    );
}

#[tokio::test]
async fn garbage_instead_of_a_certificate_is_malformed() {
    let world = World::new().await;
    let ca = Ca::new("Contoso Issuing CA");
    enable(&world, &[&ca], |_| {}).await;
    let chain = PresentedChain {
        leaf: b"not a certificate".to_vec(),
        intermediates: vec![],
    };
    assert_eq!(
        failure(verify(&world, &chain).await),
        CertificateFailure::Malformed
    );
}

#[tokio::test]
async fn a_certificate_naming_no_user_finds_none() {
    let world = World::new().await;
    world.user("bobby").await;
    let ca = Ca::new("Contoso Issuing CA");
    enable(&world, &[&ca], |_| {}).await;
    let chain = Leaf::for_upn("mallory@contoso.example").issued_by(&ca);
    assert_eq!(
        failure(verify(&world, &chain).await),
        CertificateFailure::NoMatchingUser
    );
}

#[tokio::test]
async fn a_disabled_user_cannot_sign_in_with_a_certificate() {
    let world = World::new().await;
    let bobby = world.user("bobby").await;
    world
        .latchkey
        .directory
        .update_user(
            &Actor::system(),
            &bobby.id,
            latchkey_domain::service::UserPatch {
                account_enabled: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let ca = Ca::new("Contoso Issuing CA");
    enable(&world, &[&ca], |_| {}).await;
    let chain = Leaf::for_upn("bobby@contoso.example").issued_by(&ca);
    assert_eq!(
        failure(verify(&world, &chain).await),
        CertificateFailure::UserDisabled
    );
}
