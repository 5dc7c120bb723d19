//! Micro-benchmarks of the work one sign-in does on the server's CPU: verifying the device's
//! answer, signing the ID token, and evaluating the authentication-methods policy.
//!
//! `cargo bench -p latchkey-bench --bench micro`; figures are in docs/performance.md.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use latchkey_authenticator::client::sign_answer;
use latchkey_domain::application::SigningAlg;
use latchkey_domain::authenticator::{Approval, ApprovalContext, Device};
use latchkey_domain::clock::Timestamp;
use latchkey_domain::ids::{DeviceId, GroupId, UserId};
use latchkey_domain::keys::SigningKey;
use latchkey_domain::policy::{
    AuthenticationMethodsPolicy, IncludeTarget, MethodKind, Target, UserGroups, evaluate,
};
use latchkey_protocol::wire::{ApprovalKind, Decision};
use latchkey_protocol::{DeviceKeyPair, context_digest, request_signing_input, verify_signature};

const NOW: Timestamp = Timestamp(1_796_083_200);

fn answer_verification(c: &mut Criterion) {
    let device_key = DeviceKeyPair::generate().unwrap();
    let passwordless = DeviceKeyPair::generate().unwrap();
    let device = Device {
        id: DeviceId::random(),
        user_id: UserId::random(),
        name: "Bench phone".into(),
        key: device_key.public_key(),
        passwordless_key: Some(passwordless.public_key()),
        created_at: NOW,
        confirmed_at: Some(NOW),
        phone_sign_in_at: Some(NOW),
        app: latchkey_protocol::wire::AppKind::Terminal,
        webauthn: None,
    };
    let approval = Approval::new(
        ApprovalKind::PhoneSignIn,
        device.user_id.clone(),
        None,
        vec![device.id.clone()],
        ApprovalContext {
            user_principal_name: "bobby@contoso.example".into(),
            application: Some("Contoso Expenses".into()),
            location: Some("Amsterdam, North Holland, Netherlands".into()),
            location_attribution: None,
            report_allowed: true,
        },
        NOW,
        90,
    );
    let answer = sign_answer(
        &passwordless,
        &approval.view,
        Decision::Approve,
        Some(approval.number),
    );
    c.bench_function("answer: judge (P-256 signature, number, context)", |b| {
        b.iter(|| {
            black_box(&approval)
                .judge(
                    &device,
                    Decision::Approve,
                    answer.number,
                    &answer.context_digest,
                    &answer.signature,
                )
                .unwrap()
        })
    });
    c.bench_function("answer: context digest", |b| {
        b.iter(|| context_digest(black_box(&approval.view)))
    });
    let body = serde_json::to_vec(&answer).unwrap();
    let path = format!("/authenticator/v1/requests/{}/answer", approval.view.id);
    let input = request_signing_input("POST", &path, NOW.0, "bm9uY2Vub25jZW5vbmNl", &body);
    let signature = device_key.sign(&input);
    c.bench_function("device request: verify signed headers (P-256)", |b| {
        b.iter(|| {
            assert!(verify_signature(
                &device.key,
                black_box(&input),
                black_box(&signature)
            ))
        })
    });
}

fn id_token_signing(c: &mut Criterion) {
    let claims = serde_json::json!({
        "iss": "https://login.contoso.example",
        "sub": "3f9a1c7e5b2d4f6a8c0e1b3d5f7a9c2e",
        "aud": "e7d1a9c3f5b24c6e8a0d2f4b6c8e1a39",
        "iat": NOW.0,
        "exp": NOW.0 + 3600,
        "nonce": "n0nce",
        "preferred_username": "bobby@contoso.example",
        "name": "Bobby Smith",
        "amr": ["swk", "pin", "mfa"],
        "acr": "urn:latchkey:acr:passwordless-mfa",
    });
    for alg in [SigningAlg::ES256, SigningAlg::RS256] {
        let signer = SigningKey::generate(alg, NOW).unwrap().signer().unwrap();
        c.bench_function(&format!("ID token: sign ({})", alg.as_str()), |b| {
            b.iter(|| signer.sign_jwt(black_box(&claims)).unwrap())
        });
    }
}

fn policy_evaluation(c: &mut Criterion) {
    // A policy that targets groups, and a user in twenty of them: the shape evaluation takes
    // when administrators roll out by group.
    let groups: Vec<GroupId> = (0..20).map(|_| GroupId::random()).collect();
    let mut policy = AuthenticationMethodsPolicy::default();
    let authenticator = &mut policy.authenticator.targeting;
    authenticator.include_targets = groups[..5]
        .iter()
        .map(|g| IncludeTarget {
            target: Target::Group(g.clone()),
            authentication_mode: None,
        })
        .collect();
    authenticator.exclude_targets = vec![Target::Group(GroupId::random())];
    let user = UserGroups {
        groups: groups
            .iter()
            .enumerate()
            .map(|(n, g)| (g.clone(), format!("Group {n}")))
            .collect::<BTreeMap<_, _>>(),
    };
    c.bench_function(
        "policy: evaluate the authenticator for a user in 20 groups",
        |b| {
            b.iter(|| {
                evaluate(
                    black_box(&policy),
                    MethodKind::MicrosoftAuthenticator,
                    black_box(&user),
                )
            })
        },
    );
}

criterion_group!(
    micro,
    answer_verification,
    id_token_signing,
    policy_evaluation
);
criterion_main!(micro);
