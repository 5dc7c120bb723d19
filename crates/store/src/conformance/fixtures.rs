//! Fixtures shared by the checks: fresh rows with random ids and names, so checks can share
//! one database and run in any order.

use latchkey_domain::application::{Application, ClientKind, GroupsClaim, SigningAlg};
use latchkey_domain::clock::Timestamp;
use latchkey_domain::credential::TemporaryAccessPass;
use latchkey_domain::error::StoreError;
use latchkey_domain::ids::{ClientId, GrantId, GroupId, SessionId, UserId};
use latchkey_domain::location::Location;
use latchkey_domain::log::{
    Actor, AuditCategory, AuditEvent, AuthenticationStep, LogQuery, SignInError, SignInRecord,
    SignInStatus,
};
use latchkey_domain::oidc::{
    AccessToken, AuthorizationCode, AuthorizationRequest, Grant, IssuedTokens, Prompt, RefreshToken,
};
use latchkey_domain::policy::{AuthenticationMethodsPolicy, TemporaryAccessPassConfig};
use latchkey_domain::secret::{TokenHash, random_hex, random_token};
use latchkey_domain::session::{AuthMethod, Session};
use latchkey_domain::signin::PendingSignIn;
use latchkey_domain::store::Store;
use latchkey_domain::strength::AuthStrength;
use latchkey_domain::user::{Group, Upn, User};

/// A moment well after anything the purge check uses, so that check never removes the rows
/// other checks rely on.
pub(super) const NOW: Timestamp = Timestamp(1_800_000_000);

pub(super) fn unique_upn(prefix: &str) -> Upn {
    Upn::parse(&format!("{prefix}-{}@conformance.example", random_hex(4))).expect("a valid UPN")
}

pub(super) fn new_user() -> User {
    User {
        id: UserId::random(),
        upn: unique_upn("user"),
        display_name: "Conformance User".into(),
        email: Some("user@conformance.example".into()),
        enabled: true,
        created_at: NOW,
    }
}

pub(super) async fn stored_user(store: &dyn Store) -> User {
    let user = new_user();
    store.create_user(&user).await.expect("create_user");
    user
}

pub(super) fn new_group() -> Group {
    Group {
        id: GroupId::random(),
        display_name: format!("Conformance Group {}", random_hex(4)),
        description: "made by the conformance suite".into(),
        created_at: NOW,
    }
}

pub(super) fn new_application() -> Application {
    Application {
        client_id: ClientId::from_string(format!("conformance-{}", random_hex(8))),
        display_name: "Conformance App".into(),
        redirect_uris: vec![
            "https://app.conformance.example/cb".into(),
            "http://localhost:3000/cb".into(),
        ],
        post_logout_redirect_uris: vec!["https://app.conformance.example/bye".into()],
        kind: ClientKind::Confidential {
            secret_hash: TokenHash::of("client secret"),
        },
        id_token_alg: SigningAlg::ES256,
        home_url: Some("https://app.conformance.example/".into()),
        required_strength: Some(AuthStrength::PhishingResistantMfa),
        created_at: NOW,
        allowed_origins: vec!["https://spa.conformance.example".into()],
        groups_claim: GroupsClaim::Names,
        assignment_required: true,
        backchannel_logout_uri: Some("https://app.conformance.example/backchannel-logout".into()),
    }
}

pub(super) async fn stored_group(store: &dyn Store) -> Group {
    let group = new_group();
    store.create_group(&group).await.expect("create_group");
    group
}

pub(super) async fn stored_application(store: &dyn Store) -> Application {
    let app = new_application();
    store
        .create_application(&app)
        .await
        .expect("create_application");
    app
}

pub(super) fn new_pass(user: &UserId, secret: &str, usable_once: bool) -> TemporaryAccessPass {
    TemporaryAccessPass {
        user_id: user.clone(),
        hash: TokenHash::of(secret),
        created_at: NOW,
        starts_at: NOW,
        lifetime_minutes: 60,
        usable_once,
        used_at: None,
    }
}

pub(super) fn new_session(user: &UserId) -> Session {
    Session {
        id: SessionId::random(),
        token_hash: TokenHash::of(random_token().expose()),
        user_id: user.clone(),
        method: AuthMethod::TemporaryAccessPass,
        auth_time: NOW,
        created_at: NOW,
        expires_at: NOW.plus_seconds(3600),
        revoked: false,
    }
}

pub(super) async fn stored_session(store: &dyn Store, user: &UserId) -> Session {
    let session = new_session(user);
    store
        .create_session(&session)
        .await
        .expect("create_session");
    session
}

/// Whether the stored session is revoked; it must still be there, kept as a record.
pub(super) async fn session_revoked(store: &dyn Store, id: &SessionId) -> bool {
    store
        .session(id)
        .await
        .unwrap()
        .expect("the session is kept as a record")
        .revoked
}

/// Whether the stored grant is revoked; it must still be there, kept as a record.
pub(super) async fn grant_revoked(store: &dyn Store, id: &GrantId) -> bool {
    store
        .grant(id)
        .await
        .unwrap()
        .expect("the grant is kept as a record")
        .revoked
}

pub(super) fn new_grant(user: &UserId, app: &ClientId, session: &SessionId) -> Grant {
    Grant {
        id: GrantId::random(),
        user_id: user.clone(),
        client_id: app.clone(),
        session_id: session.clone(),
        scopes: vec!["openid".into(), "profile".into(), "email".into()],
        nonce: Some(random_hex(8)),
        auth_time: NOW,
        method: AuthMethod::Password,
        created_at: NOW,
        revoked: false,
    }
}

/// A user, an application, a session and a grant tying them together: what tokens hang off.
pub(super) async fn stored_grant(store: &dyn Store) -> Grant {
    let user = stored_user(store).await;
    let app = stored_application(store).await;
    let session = stored_session(store, &user.id).await;
    let grant = new_grant(&user.id, &app.client_id, &session.id);
    store
        .create_grant(&grant, None)
        .await
        .expect("create_grant");
    grant
}

/// What a redemption for `grant` issues: an access token and a refresh token, not stored.
pub(super) fn issued(grant: &GrantId) -> IssuedTokens {
    let token = |what: &str| TokenHash::of(&format!("{what}-{}", random_token().expose()));
    IssuedTokens {
        access: AccessToken {
            hash: token("access"),
            grant_id: grant.clone(),
            expires_at: NOW.plus_seconds(600),
            scopes: None,
        },
        refresh: Some(RefreshToken {
            hash: token("refresh"),
            grant_id: grant.clone(),
            expires_at: NOW.plus_seconds(3600),
        }),
    }
}

pub(super) fn new_code(grant: &Grant, expires_at: Timestamp) -> AuthorizationCode {
    AuthorizationCode {
        hash: TokenHash::of(random_token().expose()),
        grant_id: grant.id.clone(),
        client_id: grant.client_id.clone(),
        redirect_uri: "https://app.conformance.example/cb".into(),
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
        expires_at,
    }
}

pub(super) async fn stored_code(store: &dyn Store, grant: &Grant) -> AuthorizationCode {
    let code = new_code(grant, NOW.plus_seconds(60));
    store.put_code(&code).await.expect("put_code");
    code
}

pub(super) fn new_refresh_token(grant: &Grant, expires_at: Timestamp) -> RefreshToken {
    RefreshToken {
        hash: TokenHash::of(random_token().expose()),
        grant_id: grant.id.clone(),
        expires_at,
    }
}

pub(super) fn new_access_token(grant: &Grant, expires_at: Timestamp) -> AccessToken {
    AccessToken {
        hash: TokenHash::of(random_token().expose()),
        grant_id: grant.id.clone(),
        expires_at,
        scopes: None,
    }
}

pub(super) fn new_sign_in(expires_at: Timestamp) -> PendingSignIn {
    let authorization = AuthorizationRequest {
        client_id: ClientId::from_string("conformance-client"),
        redirect_uri: "https://app.conformance.example/cb".into(),
        scopes: vec!["openid".into(), "profile".into()],
        state: Some("opaque state".into()),
        nonce: Some(random_hex(8)),
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
        prompt: Prompt::Login,
        login_hint: Some("bobby@conformance.example".into()),
        max_age: Some(300),
        required_strength: Some(AuthStrength::PasswordlessMfa),
    };
    let mut sign_in = PendingSignIn::start(Some(authorization), None, NOW);
    sign_in.expires_at = expires_at;
    sign_in.step_up_from = Some(AuthMethod::PhoneSignIn);
    sign_in
}

pub(super) fn is_conflict<T>(result: &Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::Conflict(_)))
}

pub(super) fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}@conformance.example", random_hex(4))
}

/// A successful Temporary Access Pass sign-in by `upn` (who matches no user until the caller
/// sets `user_id`), with every optional field filled so a round trip shows nothing is lost.
pub(super) fn new_sign_in_record(upn: &str, at: Timestamp) -> SignInRecord {
    SignInRecord {
        id: random_hex(16),
        created_date_time: at,
        user_id: None,
        user_principal_name: upn.to_string(),
        user_display_name: Some("Conformance User".into()),
        app_id: None,
        app_display_name: None,
        ip_address: Some("203.0.113.7".into()),
        // Binary fractions, so the coordinates survive any JSON number round trip exactly.
        location: Some(Location {
            city: Some("Sydney".into()),
            region: Some("New South Wales".into()),
            country: Some("Australia".into()),
            country_code: Some("AU".into()),
            latitude: Some(-33.875),
            longitude: Some(151.25),
        }),
        authentication_method: "temporaryAccessPass".into(),
        status: SignInStatus {
            error_code: 0,
            failure_reason: None,
            additional_details: Some("Notification not pushed: unfamiliar country".into()),
        },
        authentication_details: vec![AuthenticationStep {
            authentication_method: "Temporary Access Pass".into(),
            authentication_method_detail: None,
            authentication_step_date_time: at.to_rfc3339(),
            authentication_step_result_detail: "Correct credential".into(),
            succeeded: true,
        }],
    }
}

pub(super) fn failed(mut record: SignInRecord, error: SignInError) -> SignInRecord {
    record.status.fail(error);
    for step in &mut record.authentication_details {
        step.succeeded = false;
        step.authentication_step_result_detail = error.failure_reason().into();
    }
    record
}

/// Writes a record through the port. The store does not judge records, so a failure outcome
/// that ends a throwaway sign-in is the plainest way to log any record.
pub(super) async fn log_sign_in(store: &dyn Store, record: &SignInRecord) {
    store
        .fail_sign_in(&new_sign_in(NOW.plus_seconds(900)), true, record)
        .await
        .expect("fail_sign_in logs the record");
}

pub(super) fn unique_actor() -> Actor {
    Actor::user(&unique_name("admin"))
}

pub(super) fn new_audit_event(
    actor: &Actor,
    category: AuditCategory,
    target: &str,
    at: Timestamp,
) -> AuditEvent {
    AuditEvent {
        id: random_hex(16),
        activity_date_time: at,
        actor: actor.clone(),
        category,
        activity: "Update user".into(),
        target: target.to_string(),
        before: Some(serde_json::json!({ "enabled": true, "displayName": "Before" })),
        after: Some(serde_json::json!({ "enabled": false, "displayName": "After" })),
    }
}

pub(super) fn policy_audit_event(actor: &Actor) -> AuditEvent {
    AuditEvent {
        activity: "Update authentication methods policy".into(),
        ..new_audit_event(
            actor,
            AuditCategory::Policy,
            "authenticationMethodsPolicy",
            NOW,
        )
    }
}

/// The defaults, as version `version`, with a Temporary Access Pass length that tells
/// otherwise identical documents apart.
pub(super) fn policy_version(version: u64, pass_length: u32) -> AuthenticationMethodsPolicy {
    let defaults = AuthenticationMethodsPolicy::default();
    AuthenticationMethodsPolicy {
        version,
        temporary_access_pass: TemporaryAccessPassConfig {
            default_length: pass_length,
            ..defaults.temporary_access_pass
        },
        ..defaults
    }
}

/// The policy row is global, so policy checks build on whatever version is stored now.
pub(super) async fn current_policy_version(store: &dyn Store) -> u64 {
    store
        .policy()
        .await
        .expect("policy")
        .map_or(0, |policy| policy.version)
}

/// The stored policy as JSON text, for byte-for-byte comparisons.
pub(super) async fn stored_policy_json(store: &dyn Store) -> Option<String> {
    store
        .policy()
        .await
        .expect("policy")
        .map(|policy| serde_json::to_string(&policy).expect("a policy serialises"))
}

pub(super) fn json(policy: &AuthenticationMethodsPolicy) -> String {
    serde_json::to_string(policy).expect("a policy serialises")
}

pub(super) fn by_user(user: &str) -> LogQuery {
    LogQuery {
        user: Some(user.to_string()),
        ..LogQuery::default()
    }
}

pub(super) async fn records(store: &dyn Store, query: LogQuery) -> Vec<SignInRecord> {
    store
        .sign_in_records(&query)
        .await
        .expect("sign_in_records")
}

pub(super) async fn events(store: &dyn Store, query: LogQuery) -> Vec<AuditEvent> {
    store.audit_events(&query).await.expect("audit_events")
}

/// Runs the futures concurrently on the current task and collects their outputs in order.
pub(super) async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, future) in out.iter_mut().zip(pinned.iter_mut()) {
            if slot.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *slot = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter()
        .map(|v| v.expect("every future finished"))
        .collect()
}
