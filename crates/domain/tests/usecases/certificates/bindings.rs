//! Username bindings, authentication mode rules, policy targets and certificate user ids.

use latchkey_domain::error::{DomainError, StoreError};
use latchkey_domain::log::Actor;
use latchkey_domain::policy::{CertificateField, X509AuthenticationMode};
use latchkey_domain::service::{CertificateFailure, ModeDecision};
use latchkey_domain::user::User;
use serde_json::json;

use super::pki::{Ca, Leaf};
use super::{bindings, enable, failure, verify};
use crate::fixture::World;

const MFA: X509AuthenticationMode = X509AuthenticationMode::X509CertificateMultiFactor;
const SFA: X509AuthenticationMode = X509AuthenticationMode::X509CertificateSingleFactor;

async fn set_ids(world: &World, user: &User, ids: &[&str]) -> Result<Vec<String>, DomainError> {
    let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    world
        .latchkey
        .directory
        .set_certificate_user_ids(&Actor::system(), &user.id, &ids)
        .await
}

#[tokio::test]
async fn binding_priority_picks_the_lowest_numbered_binding_that_finds_a_user() {
    let world = World::new().await;
    let bobby = world.user("bobby").await;
    let alice = world.user("alice").await;
    let ca = Ca::new("Contoso Issuing CA");
    // The certificate's principal name is Bobby's UPN, and its subject is bound to Alice.
    let leaf = Leaf::for_upn("bobby@contoso.example");
    let subject = "X509:<S>O=Contoso,CN=bobby";
    set_ids(&world, &alice, &[subject]).await.unwrap();
    enable(&world, &[&ca], |c| {
        c["certificateUserBindings"] = bindings(&[
            ("PrincipalName", "userPrincipalName", 2, "low"),
            ("Subject", "certificateUserIds", 1, "low"),
        ])
    })
    .await;
    let signed = verify(&world, &leaf.issued_by(&ca)).await.unwrap();
    assert_eq!(signed.user.id, alice.id, "priority 1 (subject) wins");
    assert_eq!(
        signed.binding.x509_certificate_field,
        CertificateField::Subject
    );

    enable(&world, &[&ca], |c| {
        c["certificateUserBindings"] = bindings(&[
            ("PrincipalName", "userPrincipalName", 1, "low"),
            ("Subject", "certificateUserIds", 2, "low"),
        ])
    })
    .await;
    let signed = verify(&world, &leaf.issued_by(&ca)).await.unwrap();
    assert_eq!(signed.user.id, bobby.id, "priority 1 (principal name) wins");
}

#[tokio::test]
async fn a_binding_that_finds_nobody_falls_through_to_the_next() {
    let world = World::new().await;
    let bobby = world.user("bobby").await;
    let ca = Ca::new("Contoso Issuing CA");
    let mut leaf = Leaf::for_upn("someone-else@contoso.example");
    leaf.email = Some("Bobby@contoso.example".into());
    enable(&world, &[&ca], |c| {
        c["certificateUserBindings"] = bindings(&[
            ("PrincipalName", "userPrincipalName", 1, "low"),
            ("RFC822Name", "userPrincipalName", 2, "low"),
        ])
    })
    .await;
    let signed = verify(&world, &leaf.issued_by(&ca)).await.unwrap();
    assert_eq!(signed.user.id, bobby.id);
    assert_eq!(
        signed.binding.x509_certificate_field,
        CertificateField::RFC822Name
    );
}

#[tokio::test]
async fn high_affinity_ignores_a_subject_only_match() {
    let world = World::new().await;
    let alice = world.user("alice").await;
    let ca = Ca::new("Contoso Issuing CA");
    let chain = Leaf::for_upn("nobody@contoso.example").issued_by(&ca);
    set_ids(&world, &alice, &["X509:<S>O=Contoso,CN=nobody"])
        .await
        .unwrap();
    enable(&world, &[&ca], |c| {
        c["certificateUserBindings"] = bindings(&[("Subject", "certificateUserIds", 1, "low")]);
    })
    .await;
    assert_eq!(verify(&world, &chain).await.unwrap().user.id, alice.id);

    enable(&world, &[&ca], |c| {
        c["certificateUserBindings"] = bindings(&[("Subject", "certificateUserIds", 1, "low")]);
        c["requireHighAffinityBinding"] = json!(true);
    })
    .await;
    assert_eq!(
        failure(verify(&world, &chain).await),
        CertificateFailure::NoMatchingUser
    );
}

#[tokio::test]
async fn high_affinity_bindings_find_users_by_key_and_serial() {
    let world = World::new().await;
    let alice = world.user("alice").await;
    let ca = Ca::new("Contoso Issuing CA");
    let chain = Leaf::for_upn("nobody@contoso.example").issued_by(&ca);
    enable(&world, &[&ca], |c| {
        c["certificateUserBindings"] = bindings(&[
            ("SHA1PublicKey", "certificateUserIds", 1, "high"),
            ("IssuerAndSerialNumber", "certificateUserIds", 2, "high"),
        ]);
        c["requireHighAffinityBinding"] = json!(true);
    })
    .await;
    // What the certificate says, read the way the bindings read it (the failure carries it).
    let Err((CertificateFailure::NoMatchingUser, Some(facts))) = verify(&world, &chain).await
    else {
        panic!("no user has the certificate's ids yet");
    };
    let by_key = format!("X509:<SHA1-PUKEY>{}", facts.sha1_public_key.to_uppercase());
    set_ids(&world, &alice, &[&by_key]).await.unwrap();
    let signed = verify(&world, &chain).await.unwrap();
    assert_eq!(signed.user.id, alice.id);
    assert_eq!(
        signed.binding.x509_certificate_field,
        CertificateField::SHA1PublicKey
    );

    let by_serial = format!("X509:<I>{}<SR>{}", facts.issuer, facts.serial);
    set_ids(&world, &alice, &[&by_serial]).await.unwrap();
    let signed = verify(&world, &chain).await.unwrap();
    assert_eq!(
        signed.binding.x509_certificate_field,
        CertificateField::IssuerAndSerialNumber
    );
}

#[tokio::test]
async fn two_users_matching_one_certificate_are_refused() {
    let world = World::new().await;
    world.user("alice").await;
    world.user("bobby").await;
    let ca = Ca::new("Contoso Issuing CA");
    enable(&world, &[&ca], |_| {}).await;
    // Two principal names, each another user's UPN: the binding finds two users.
    let mut leaf = Leaf::for_upn("bobby@contoso.example");
    leaf.extra_principal_name = Some("alice@contoso.example".into());
    assert_eq!(
        failure(verify(&world, &leaf.issued_by(&ca)).await),
        CertificateFailure::SeveralUsers
    );
}

#[tokio::test]
async fn one_certificate_user_id_cannot_be_given_to_two_users() {
    let world = World::new().await;
    let alice = world.user("alice").await;
    let bobby = world.user("bobby").await;
    set_ids(&world, &alice, &["X509:<SKI>ABCD"]).await.unwrap();
    let taken = set_ids(&world, &bobby, &["x509:<SKI>abcd", "X509:<SKI>abcd"]).await;
    assert!(
        matches!(taken, Err(DomainError::Invalid { .. })),
        "{taken:?}"
    );
    let taken = set_ids(&world, &bobby, &["X509:<SKI>abcd"]).await;
    assert!(
        matches!(taken, Err(DomainError::Store(StoreError::Conflict(_)))),
        "{taken:?}"
    );
    let ids = world
        .latchkey
        .directory
        .certificate_user_ids(&alice.id)
        .await
        .unwrap();
    assert_eq!(ids, vec!["X509:<SKI>abcd"]);
}

#[tokio::test]
async fn malformed_oversized_duplicate_and_too_many_certificate_user_ids_are_refused() {
    let world = World::new().await;
    let alice = world.user("alice").await;
    for bad in [
        vec!["bob@contoso.example".to_string()],
        vec!["X509:<PN>".to_string()],
        vec!["X509:<SKI>xyz".to_string()],
        vec!["X509:<SHA1-PUKEY>abcd".to_string()],
        vec!["X509:<I>CN=CA".to_string()],
        vec!["X509:<PN>bob\n@contoso.example".to_string()],
        vec![format!("X509:<PN>{}", "a".repeat(1020))],
        vec!["X509:<PN>a@b.c".to_string(), "X509:<PN>A@B.C".to_string()],
        (0..6)
            .map(|i| format!("X509:<PN>u{i}@contoso.example"))
            .collect(),
    ] {
        let refused = world
            .latchkey
            .directory
            .set_certificate_user_ids(&Actor::system(), &alice.id, &bad)
            .await;
        assert!(
            matches!(refused, Err(DomainError::Invalid { .. })),
            "{bad:?}: {refused:?}"
        );
    }
    let five: Vec<String> = (0..5)
        .map(|i| format!("X509:<PN>u{i}@contoso.example"))
        .collect();
    let saved = world
        .latchkey
        .directory
        .set_certificate_user_ids(&Actor::system(), &alice.id, &five)
        .await
        .unwrap();
    assert_eq!(saved, five);
    let unknown = world
        .latchkey
        .directory
        .set_certificate_user_ids(
            &Actor::system(),
            &latchkey_domain::ids::UserId::random(),
            &five,
        )
        .await;
    assert!(
        matches!(unknown, Err(DomainError::NotFound(_))),
        "{unknown:?}"
    );
}

#[tokio::test]
async fn a_user_outside_the_method_targets_is_refused() {
    let world = World::new().await;
    world.user("bobby").await;
    let group = world
        .latchkey
        .directory
        .create_group(&Actor::system(), "Smart card users", "")
        .await
        .unwrap();
    let ca = Ca::new("Contoso Issuing CA");
    enable(&world, &[&ca], |c| {
        c["includeTargets"] = json!([{"targetType": "group", "id": group.id}]);
    })
    .await;
    let chain = Leaf::for_upn("bobby@contoso.example").issued_by(&ca);
    assert_eq!(
        failure(verify(&world, &chain).await),
        CertificateFailure::MethodNotAllowed
    );
}

fn rule(issuer: Option<&str>, oid: Option<&str>, mode: &str) -> serde_json::Value {
    let mut rule = json!({ "authenticationMode": mode });
    if let Some(issuer) = issuer {
        rule["issuerSubject"] = json!(issuer);
    }
    if let Some(oid) = oid {
        rule["policyOid"] = json!(oid);
    }
    rule
}

const MULTI: &str = "x509CertificateMultiFactor";
const SINGLE: &str = "x509CertificateSingleFactor";
const ISSUER: &str = "O=Contoso, CN=Contoso Issuing CA";

async fn mode_for(
    rules: Vec<serde_json::Value>,
    oids: Vec<Vec<u64>>,
) -> (X509AuthenticationMode, ModeDecision) {
    let world = World::new().await;
    world.user("bobby").await;
    let ca = Ca::new("Contoso Issuing CA");
    enable(&world, &[&ca], |c| c["rules"] = json!(rules)).await;
    let mut leaf = Leaf::for_upn("bobby@contoso.example");
    leaf.policy_oids = oids;
    let signed = verify(&world, &leaf.issued_by(&ca)).await.unwrap();
    (signed.mode, signed.decision)
}

#[tokio::test]
async fn issuer_and_oid_rule_beats_oid_rule_beats_issuer_rule() {
    let oid = || vec![1, 2, 3, 4];
    let all = vec![
        rule(Some(ISSUER), None, SINGLE),
        rule(None, Some("1.2.3.4"), SINGLE),
        rule(Some(ISSUER), Some("1.2.3.4"), MULTI),
    ];
    assert_eq!(
        mode_for(all, vec![oid()]).await,
        (MFA, ModeDecision::IssuerAndPolicyOid)
    );
    let oid_and_issuer = vec![
        rule(Some(ISSUER), None, SINGLE),
        rule(None, Some("1.2.3.4"), MULTI),
    ];
    assert_eq!(
        mode_for(oid_and_issuer, vec![oid()]).await,
        (MFA, ModeDecision::PolicyOid)
    );
    let issuer_only = vec![
        rule(Some(ISSUER), None, MULTI),
        rule(None, Some("1.2.3.5"), SINGLE),
    ];
    assert_eq!(
        mode_for(issuer_only, vec![oid()]).await,
        (MFA, ModeDecision::Issuer)
    );
}

#[tokio::test]
async fn two_policy_oids_mapping_to_different_modes_make_the_certificate_single_factor() {
    let rules = vec![
        rule(None, Some("1.2.3.4"), MULTI),
        rule(None, Some("1.2.3.5"), SINGLE),
    ];
    assert_eq!(
        mode_for(rules, vec![vec![1, 2, 3, 4], vec![1, 2, 3, 5]]).await,
        (SFA, ModeDecision::ConflictingRules)
    );
}

#[tokio::test]
async fn without_a_matching_rule_the_default_mode_applies() {
    let world = World::new().await;
    world.user("bobby").await;
    let ca = Ca::new("Contoso Issuing CA");
    enable(&world, &[&ca], |c| {
        c["defaultMode"] = json!(MULTI);
        c["rules"] = json!([rule(None, Some("1.2.3.9"), SINGLE)]);
    })
    .await;
    let signed = verify(
        &world,
        &Leaf::for_upn("bobby@contoso.example").issued_by(&ca),
    )
    .await
    .unwrap();
    assert_eq!((signed.mode, signed.decision), (MFA, ModeDecision::Default));
    assert!(signed.rule.is_none());
}
