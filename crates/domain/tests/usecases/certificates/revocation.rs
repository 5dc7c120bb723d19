//! Revocation lists: a revoked certificate is refused, a list that cannot be had or that is
//! not the CA's fails closed, and a current list is fetched once.

use std::sync::Arc;

use latchkey_domain::service::CertificateFailure;
use serde_json::{Value, json};

use super::pki::{Ca, Leaf, MemoryCrls};
use super::{enable, failure, verify};
use crate::fixture::World;

const URL: &str = "http://pki.contoso.example/issuing.crl";

async fn with_crl(world: &World, ca: &Ca) -> Arc<MemoryCrls> {
    let crls = Arc::new(MemoryCrls::default());
    world.latchkey.certificates.set_crl_source(crls.clone());
    enable(world, &[ca], |c| {
        c["certificateAuthorities"][0]["certificateRevocationListUrl"] = Value::from(URL);
    })
    .await;
    crls
}

#[tokio::test]
async fn a_certificate_revoked_by_its_cas_crl_is_refused() {
    let world = World::new().await;
    world.user("bobby").await;
    world.user("alice").await;
    let ca = Ca::new("Contoso Issuing CA");
    let crls = with_crl(&world, &ca).await;
    let mut revoked = Leaf::for_upn("bobby@contoso.example");
    revoked.serial = 666;
    crls.serve(URL, ca.crl(&[666]));
    assert_eq!(
        failure(verify(&world, &revoked.issued_by(&ca)).await),
        CertificateFailure::Revoked
    );
    let good = Leaf::for_upn("alice@contoso.example").issued_by(&ca);
    assert!(verify(&world, &good).await.is_ok());
    assert_eq!(
        *crls.fetches.lock().unwrap(),
        1,
        "the list is cached until nextUpdate"
    );
    // Past nextUpdate the list is fetched again.
    world.advance(86_400 + 1);
    crls.serve(URL, ca.crl(&[]));
    let _ = verify(&world, &good).await;
    assert_eq!(*crls.fetches.lock().unwrap(), 2);
}

#[tokio::test]
async fn a_crl_that_cannot_be_had_fails_closed() {
    let world = World::new().await;
    world.user("bobby").await;
    let ca = Ca::new("Contoso Issuing CA");
    with_crl(&world, &ca).await;
    let chain = Leaf::for_upn("bobby@contoso.example").issued_by(&ca);
    assert_eq!(
        failure(verify(&world, &chain).await),
        CertificateFailure::RevocationUnavailable
    );
}

#[tokio::test]
async fn a_crl_from_the_wrong_issuer_fails_closed() {
    let world = World::new().await;
    world.user("bobby").await;
    let ca = Ca::new("Contoso Issuing CA");
    let other = Ca::new("Fabrikam CA");
    let crls = with_crl(&world, &ca).await;
    crls.serve(URL, other.crl(&[]));
    let chain = Leaf::for_upn("bobby@contoso.example").issued_by(&ca);
    assert_eq!(
        failure(verify(&world, &chain).await),
        CertificateFailure::RevocationUnavailable
    );
}

#[tokio::test]
async fn a_crl_with_the_cas_name_but_another_key_fails_closed() {
    let world = World::new().await;
    world.user("bobby").await;
    let ca = Ca::new("Contoso Issuing CA");
    let impostor = Ca::new("Contoso Issuing CA");
    let crls = with_crl(&world, &ca).await;
    crls.serve(URL, impostor.crl(&[]));
    let chain = Leaf::for_upn("bobby@contoso.example").issued_by(&ca);
    assert_eq!(
        failure(verify(&world, &chain).await),
        CertificateFailure::RevocationUnavailable
    );
}

#[tokio::test]
async fn a_crl_url_that_is_not_http_is_refused_by_the_policy() {
    let world = World::new().await;
    let ca = Ca::new("Contoso Issuing CA");
    let policy = world.latchkey.governance.policy().await.unwrap();
    let mut config = serde_json::to_value(
        policy.configuration(latchkey_domain::policy::MethodKind::X509Certificate),
    )
    .unwrap();
    for url in ["file:///etc/passwd", "ldap://dc/crl", "not a url"] {
        config["certificateAuthorities"] = json!([{"displayName": "CA", "certificate": ca.pem,
            "certificateRevocationListUrl": url}]);
        let refused = world
            .latchkey
            .governance
            .set_method_configuration(
                &latchkey_domain::log::Actor::system(),
                latchkey_domain::policy::MethodKind::X509Certificate,
                config.clone(),
            )
            .await;
        assert!(refused.is_err(), "{url} was accepted");
    }
}
