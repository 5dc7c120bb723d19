//! The conformance suite: what every [`Store`] must do, checked through the port alone.
//!
//! Each check is named after the behaviour it guarantees or the attack it stops, so a failure
//! reads as a broken promise rather than a broken line. Checks create their own rows with fresh
//! random ids and names, so they can share one database and run in any order.
//!
//! Some checks act on the whole database, not only on rows they created:
//! [`signing_keys_retire_except_kept`] retires every other unretired key,
//! [`purge_removes_only_expired`] purges everything that expired before a date in 1970,
//! [`purge_logs_removes_only_old_records`] purges every log entry from before a date in 1970,
//! and the policy checks save new versions of the one, global authentication methods policy
//! (each reads the stored version first and builds on it). Run the suite against a scratch
//! database, never a live one.
//!
//! [`policy_is_absent_until_first_save`] can only hold on an empty database, so it is not part
//! of [`run_all`]; call it on a fresh store.

use latchkey_domain::admin_token::AdminToken;
use latchkey_domain::anomaly::SignInHistory;
use latchkey_domain::application::{Application, ClientKind, SigningAlg};
use latchkey_domain::authenticator::{
    Activation, Approval, ApprovalContext, ApprovalState, Device, PinCheck,
};
use latchkey_domain::clock::Timestamp;
use latchkey_domain::credential::TemporaryAccessPass;
use latchkey_domain::error::StoreError;
use latchkey_domain::ids::{
    ActivationId, AdminTokenId, ClientId, DeviceId, GrantId, GroupId, SessionId, UserId,
};
use latchkey_domain::keys::SigningKey;
use latchkey_domain::location::Location;
use latchkey_domain::log::{
    Actor, AuditCategory, AuditEvent, AuthenticationStep, LogQuery, SignInError, SignInRecord,
    SignInStatus, StatusFilter,
};
use latchkey_domain::oidc::{
    AccessToken, AuthorizationCode, AuthorizationRequest, Grant, Prompt, Redeemed, RefreshToken,
};
use latchkey_domain::policy::{AuthenticationMethodsPolicy, TemporaryAccessPassConfig};
use latchkey_domain::secret::{TokenHash, random_hex, random_token};
use latchkey_domain::session::{AuthMethod, Session};
use latchkey_domain::signin::{PendingSignIn, SignInStage};
use latchkey_domain::store::Store;
use latchkey_domain::user::{Group, Upn, User};
use latchkey_protocol::DeviceKeyPair;
use latchkey_protocol::wire::ApprovalKind;

/// A moment well after anything the purge check uses, so that check never removes the rows
/// other checks rely on.
const NOW: Timestamp = Timestamp(1_800_000_000);

/// Runs every check in turn. Panics, with a message naming the broken behaviour, on the first
/// failure.
pub async fn run_all(store: &dyn Store) {
    store_answers_ping(store).await;

    user_round_trips(store).await;
    upn_is_unique(store).await;
    updating_a_user_changes_it(store).await;
    updating_a_missing_user_is_not_found(store).await;
    updating_a_user_to_a_taken_upn_is_a_conflict(store).await;
    password_hash_is_set_and_cleared(store).await;

    group_round_trips(store).await;
    group_name_is_unique_ignoring_case(store).await;
    group_membership_is_idempotent(store).await;

    application_round_trips(store).await;
    client_id_is_unique(store).await;
    deleting_an_application_removes_it(store).await;

    putting_a_pass_replaces_the_previous_one(store).await;
    one_time_pass_is_spent_once(store).await;
    concurrent_use_of_a_one_time_pass_has_one_winner(store).await;
    multi_use_pass_can_be_used_again(store).await;
    wrong_pass_is_not_marked_used(store).await;
    deleted_pass_is_gone(store).await;

    session_round_trips(store).await;
    session_token_hash_is_unique(store).await;
    revoking_a_session_revokes_only_that_session(store).await;
    revoking_a_user_revokes_sessions_and_grants(store).await;
    revoking_a_session_revokes_its_grants(store).await;

    sign_in_round_trips(store).await;
    sign_in_moves_forward_when_put_again(store).await;
    completed_sign_in_creates_session_removes_pending_and_logs(store).await;
    failed_sign_in_keeps_or_ends_pending_and_logs(store).await;
    complete_sign_in_with_a_refused_session_changes_nothing(store).await;
    sign_in_outcomes_that_cannot_be_logged_change_nothing(store).await;

    sign_in_log_filters_by_user_app_status_method_and_time(store).await;
    sign_in_log_pages_newest_first(store).await;
    sign_in_log_filter_values_are_data_not_sql(store).await;

    audit_log_filters_by_category_and_actor(store).await;
    audit_event_ids_are_unique(store).await;

    stale_policy_version_is_refused_and_changes_nothing(store).await;
    policy_save_writes_its_audit_event(store).await;
    policy_is_not_saved_when_its_audit_event_is_not(store).await;
    concurrent_policy_saves_of_one_version_have_one_winner(store).await;

    grant_round_trips(store).await;
    code_is_fresh_on_first_redemption(store).await;
    replayed_code_is_reported_as_replay(store).await;
    unknown_code_is_unknown(store).await;
    concurrent_redeem_of_a_code_has_one_winner(store).await;
    access_token_is_returned_even_when_expired(store).await;
    refresh_token_rotation_reports_reuse(store).await;
    concurrent_redeem_of_a_refresh_token_has_one_winner(store).await;

    signing_key_round_trips(store).await;
    signing_keys_retire_except_kept(store).await;

    server_secret_is_created_once(store).await;

    purge_removes_only_expired(store).await;
    purge_logs_removes_only_old_records(store).await;

    device_round_trips_and_updates(store).await;
    activation_is_redeemed_once_even_when_raced(store).await;
    expired_activation_cannot_be_redeemed(store).await;
    device_nonce_is_accepted_once(store).await;
    concurrent_answers_settle_an_approval_once(store).await;
    settling_changes_only_the_outcome_in_the_stored_approval(store).await;
    settling_logs_in_the_same_write(store).await;
    a_sign_in_completes_at_most_once(store).await;
    reported_risk_is_recorded_and_dismissed_once(store).await;
    throttle_counts_to_its_limit_even_when_raced_and_starts_over_each_window(store).await;
    only_one_sign_in_approval_waits_per_user_even_when_raced(store).await;

    sign_in_countries_are_remembered_once_each_and_per_user(store).await;
    the_latest_refusal_is_kept_even_when_an_older_one_arrives_late(store).await;
    sign_in_history_of_an_unknown_user_is_not_found(store).await;

    admin_tokens_are_found_by_hash_revoked_once_and_touched_at_most_once_a_period(store).await;
    legacy_admin_token_hashes_are_replaced_once(store).await;
    the_administrator_role_is_bound_to_one_group_id(store).await;
    codes_and_refresh_tokens_are_read_without_being_spent(store).await;
    devices_stop_at_the_limit_even_when_activations_are_redeemed_in_parallel(store).await;
    open_activations_stop_at_the_limit_and_used_or_expired_ones_do_not_count(store).await;

    familiar_places_are_remembered_per_user_and_old_ones_forgotten(store).await;
    pin_checks_count_wrong_pins_and_lock_at_the_limit_even_when_raced(store).await;
}

// --- Fixtures ------------------------------------------------------------------------------

fn unique_upn(prefix: &str) -> Upn {
    Upn::parse(&format!("{prefix}-{}@conformance.example", random_hex(4))).expect("a valid UPN")
}

fn new_user() -> User {
    User {
        id: UserId::random(),
        upn: unique_upn("user"),
        display_name: "Conformance User".into(),
        email: Some("user@conformance.example".into()),
        enabled: true,
        created_at: NOW,
    }
}

async fn stored_user(store: &dyn Store) -> User {
    let user = new_user();
    store.create_user(&user).await.expect("create_user");
    user
}

fn new_group() -> Group {
    Group {
        id: GroupId::random(),
        display_name: format!("Conformance Group {}", random_hex(4)),
        description: "made by the conformance suite".into(),
        created_at: NOW,
    }
}

fn new_application() -> Application {
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
        created_at: NOW,
    }
}

async fn stored_application(store: &dyn Store) -> Application {
    let app = new_application();
    store
        .create_application(&app)
        .await
        .expect("create_application");
    app
}

fn new_pass(user: &UserId, secret: &str, usable_once: bool) -> TemporaryAccessPass {
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

fn new_session(user: &UserId) -> Session {
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

async fn stored_session(store: &dyn Store, user: &UserId) -> Session {
    let session = new_session(user);
    store
        .create_session(&session)
        .await
        .expect("create_session");
    session
}

fn new_grant(user: &UserId, app: &ClientId, session: &SessionId) -> Grant {
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
async fn stored_grant(store: &dyn Store) -> Grant {
    let user = stored_user(store).await;
    let app = stored_application(store).await;
    let session = stored_session(store, &user.id).await;
    let grant = new_grant(&user.id, &app.client_id, &session.id);
    store.create_grant(&grant).await.expect("create_grant");
    grant
}

fn new_code(grant: &Grant, expires_at: Timestamp) -> AuthorizationCode {
    AuthorizationCode {
        hash: TokenHash::of(random_token().expose()),
        grant_id: grant.id.clone(),
        client_id: grant.client_id.clone(),
        redirect_uri: "https://app.conformance.example/cb".into(),
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
        expires_at,
    }
}

async fn stored_code(store: &dyn Store, grant: &Grant) -> AuthorizationCode {
    let code = new_code(grant, NOW.plus_seconds(60));
    store.put_code(&code).await.expect("put_code");
    code
}

fn new_refresh_token(grant: &Grant, expires_at: Timestamp) -> RefreshToken {
    RefreshToken {
        hash: TokenHash::of(random_token().expose()),
        grant_id: grant.id.clone(),
        expires_at,
    }
}

fn new_access_token(grant: &Grant, expires_at: Timestamp) -> AccessToken {
    AccessToken {
        hash: TokenHash::of(random_token().expose()),
        grant_id: grant.id.clone(),
        expires_at,
    }
}

fn new_sign_in(expires_at: Timestamp) -> PendingSignIn {
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
    };
    let mut sign_in = PendingSignIn::start(Some(authorization), None, NOW);
    sign_in.expires_at = expires_at;
    sign_in
}

fn is_conflict<T>(result: &Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::Conflict(_)))
}

fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}@conformance.example", random_hex(4))
}

/// A successful Temporary Access Pass sign-in by `upn` (who matches no user until the caller
/// sets `user_id`), with every optional field filled so a round trip shows nothing is lost.
fn new_sign_in_record(upn: &str, at: Timestamp) -> SignInRecord {
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

fn failed(mut record: SignInRecord, error: SignInError) -> SignInRecord {
    record.status.fail(error);
    for step in &mut record.authentication_details {
        step.succeeded = false;
        step.authentication_step_result_detail = error.failure_reason().into();
    }
    record
}

/// Writes a record through the port. The store does not judge records, so a failure outcome
/// that ends a throwaway sign-in is the plainest way to log any record.
async fn log_sign_in(store: &dyn Store, record: &SignInRecord) {
    store
        .fail_sign_in(&new_sign_in(NOW.plus_seconds(900)), true, record)
        .await
        .expect("fail_sign_in logs the record");
}

fn unique_actor() -> Actor {
    Actor::user(&unique_name("admin"))
}

fn new_audit_event(
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

fn policy_audit_event(actor: &Actor) -> AuditEvent {
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
fn policy_version(version: u64, pass_length: u32) -> AuthenticationMethodsPolicy {
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
async fn current_policy_version(store: &dyn Store) -> u64 {
    store
        .policy()
        .await
        .expect("policy")
        .map_or(0, |policy| policy.version)
}

/// The stored policy as JSON text, for byte-for-byte comparisons.
async fn stored_policy_json(store: &dyn Store) -> Option<String> {
    store
        .policy()
        .await
        .expect("policy")
        .map(|policy| serde_json::to_string(&policy).expect("a policy serialises"))
}

fn json(policy: &AuthenticationMethodsPolicy) -> String {
    serde_json::to_string(policy).expect("a policy serialises")
}

fn by_user(user: &str) -> LogQuery {
    LogQuery {
        user: Some(user.to_string()),
        ..LogQuery::default()
    }
}

async fn records(store: &dyn Store, query: LogQuery) -> Vec<SignInRecord> {
    store
        .sign_in_records(&query)
        .await
        .expect("sign_in_records")
}

async fn events(store: &dyn Store, query: LogQuery) -> Vec<AuditEvent> {
    store.audit_events(&query).await.expect("audit_events")
}

// --- Liveness ------------------------------------------------------------------------------

pub async fn store_answers_ping(store: &dyn Store) {
    store.ping().await.expect("a healthy store answers ping");
}

// --- Users ---------------------------------------------------------------------------------

pub async fn user_round_trips(store: &dyn Store) {
    let mut user = new_user();
    user.email = None;
    store.create_user(&user).await.expect("create_user");
    assert_eq!(
        store.user(&user.id).await.unwrap().as_ref(),
        Some(&user),
        "a user reads back by id unchanged"
    );
    assert_eq!(
        store.user_by_upn(&user.upn).await.unwrap().as_ref(),
        Some(&user),
        "a user reads back by UPN"
    );
    assert!(
        store.list_users().await.unwrap().contains(&user),
        "a new user is listed"
    );
    assert_eq!(
        store.user(&UserId::random()).await.unwrap(),
        None,
        "an unknown id finds no user"
    );
    assert_eq!(
        store.user_by_upn(&unique_upn("nobody")).await.unwrap(),
        None,
        "an unknown UPN finds no user"
    );
}

/// Two accounts with one name would let one person sign in as another.
pub async fn upn_is_unique(store: &dyn Store) {
    let first = stored_user(store).await;
    let second = User {
        id: UserId::random(),
        ..first.clone()
    };
    assert!(
        is_conflict(&store.create_user(&second).await),
        "a second user with a taken UPN is a conflict"
    );
    assert_eq!(
        store.user_by_upn(&first.upn).await.unwrap(),
        Some(first),
        "the first owner keeps the UPN"
    );
    assert_eq!(
        store.user(&second.id).await.unwrap(),
        None,
        "the refused user was not stored"
    );
}

pub async fn updating_a_user_changes_it(store: &dyn Store) {
    let user = stored_user(store).await;
    let updated = User {
        upn: unique_upn("renamed"),
        display_name: "Renamed".into(),
        email: None,
        enabled: false,
        ..user.clone()
    };
    store.update_user(&updated).await.expect("update_user");
    assert_eq!(
        store.user(&user.id).await.unwrap(),
        Some(updated.clone()),
        "the update is stored"
    );
    assert_eq!(
        store.user_by_upn(&user.upn).await.unwrap(),
        None,
        "the old UPN no longer finds the user"
    );
    assert_eq!(
        store.user_by_upn(&updated.upn).await.unwrap(),
        Some(updated),
        "the new UPN finds the user"
    );
}

pub async fn updating_a_missing_user_is_not_found(store: &dyn Store) {
    let result = store.update_user(&new_user()).await;
    assert!(
        matches!(result, Err(StoreError::NotFound)),
        "updating a missing user is NotFound, got {result:?}"
    );
}

/// Renaming onto someone else's UPN would be a takeover by rename.
pub async fn updating_a_user_to_a_taken_upn_is_a_conflict(store: &dyn Store) {
    let owner = stored_user(store).await;
    let other = stored_user(store).await;
    let renamed = User {
        upn: owner.upn.clone(),
        ..other.clone()
    };
    assert!(
        is_conflict(&store.update_user(&renamed).await),
        "renaming onto a taken UPN is a conflict"
    );
    assert_eq!(
        store.user(&other.id).await.unwrap(),
        Some(other),
        "the refused rename changed nothing"
    );
}

pub async fn password_hash_is_set_and_cleared(store: &dyn Store) {
    let user = stored_user(store).await;
    assert_eq!(
        store.password_hash(&user.id).await.unwrap(),
        None,
        "a new user has no password"
    );
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$conformance$hash";
    store
        .set_password_hash(&user.id, Some(hash))
        .await
        .expect("set_password_hash");
    assert_eq!(
        store.password_hash(&user.id).await.unwrap().as_deref(),
        Some(hash),
        "the password hash is stored"
    );
    store
        .set_password_hash(&user.id, None)
        .await
        .expect("clear password");
    assert_eq!(
        store.password_hash(&user.id).await.unwrap(),
        None,
        "clearing the password removes the hash"
    );
    assert_eq!(
        store.password_hash(&UserId::random()).await.unwrap(),
        None,
        "an unknown user has no password"
    );
}

// --- Groups --------------------------------------------------------------------------------

pub async fn group_round_trips(store: &dyn Store) {
    let group = new_group();
    store.create_group(&group).await.expect("create_group");
    assert_eq!(
        store.group(&group.id).await.unwrap().as_ref(),
        Some(&group),
        "a group reads back unchanged"
    );
    assert!(
        store.list_groups().await.unwrap().contains(&group),
        "a new group is listed"
    );
    assert_eq!(
        store.group(&GroupId::random()).await.unwrap(),
        None,
        "an unknown id finds no group"
    );
}

/// "Admins" and "admins" side by side would confuse whoever grants access by group name.
pub async fn group_name_is_unique_ignoring_case(store: &dyn Store) {
    let group = new_group();
    store.create_group(&group).await.expect("create_group");
    let same = Group {
        id: GroupId::random(),
        ..group.clone()
    };
    assert!(
        is_conflict(&store.create_group(&same).await),
        "a second group with the same name is a conflict"
    );
    let shouted = Group {
        id: GroupId::random(),
        display_name: group.display_name.to_uppercase(),
        ..group.clone()
    };
    assert!(
        is_conflict(&store.create_group(&shouted).await),
        "a name differing only in case is a conflict"
    );
}

pub async fn group_membership_is_idempotent(store: &dyn Store) {
    let group = new_group();
    store.create_group(&group).await.expect("create_group");
    let alice = stored_user(store).await;
    let bob = stored_user(store).await;
    store
        .add_group_member(&group.id, &alice.id)
        .await
        .expect("add member");
    store
        .add_group_member(&group.id, &alice.id)
        .await
        .expect("adding a member twice is not an error");
    store
        .add_group_member(&group.id, &bob.id)
        .await
        .expect("add second member");

    let mut members = store.group_members(&group.id).await.unwrap();
    members.sort();
    let mut expected = vec![alice.id.clone(), bob.id.clone()];
    expected.sort();
    assert_eq!(members, expected, "each member is listed once");
    assert_eq!(
        store.groups_of_user(&alice.id).await.unwrap(),
        vec![group.id.clone()],
        "the user's groups are listed"
    );

    store
        .remove_group_member(&group.id, &alice.id)
        .await
        .expect("remove member");
    store
        .remove_group_member(&group.id, &alice.id)
        .await
        .expect("removing a non-member is not an error");
    assert_eq!(
        store.group_members(&group.id).await.unwrap(),
        vec![bob.id],
        "only the remaining member is listed"
    );
    assert!(
        store.groups_of_user(&alice.id).await.unwrap().is_empty(),
        "a removed member has no groups"
    );
}

// --- Applications --------------------------------------------------------------------------

pub async fn application_round_trips(store: &dyn Store) {
    let confidential = stored_application(store).await;
    let public = Application {
        kind: ClientKind::Public,
        home_url: None,
        id_token_alg: SigningAlg::RS256,
        ..new_application()
    };
    store
        .create_application(&public)
        .await
        .expect("create_application");
    for app in [&confidential, &public] {
        assert_eq!(
            store.application(&app.client_id).await.unwrap().as_ref(),
            Some(app),
            "an application reads back unchanged, redirect URIs and client kind included"
        );
    }
    let listed = store.list_applications().await.unwrap();
    assert!(
        listed.contains(&confidential) && listed.contains(&public),
        "new applications are listed"
    );
    assert_eq!(
        store.application(&ClientId::random()).await.unwrap(),
        None,
        "an unknown client_id finds nothing"
    );
}

/// A second registration under an existing client_id would hijack the first app's redirects.
pub async fn client_id_is_unique(store: &dyn Store) {
    let app = stored_application(store).await;
    let impostor = Application {
        redirect_uris: vec!["https://evil.conformance.example/cb".into()],
        ..app.clone()
    };
    assert!(
        is_conflict(&store.create_application(&impostor).await),
        "a taken client_id is a conflict"
    );
    assert_eq!(
        store.application(&app.client_id).await.unwrap(),
        Some(app),
        "the original registration is unchanged"
    );
}

pub async fn deleting_an_application_removes_it(store: &dyn Store) {
    let app = stored_application(store).await;
    store
        .delete_application(&app.client_id)
        .await
        .expect("delete_application");
    assert_eq!(
        store.application(&app.client_id).await.unwrap(),
        None,
        "a deleted application is gone"
    );
    assert!(
        !store.list_applications().await.unwrap().contains(&app),
        "a deleted application is not listed"
    );
}

// --- Temporary Access Passes ---------------------------------------------------------------

/// Issuing a new pass must kill the old one, or a leaked old pass stays usable.
pub async fn putting_a_pass_replaces_the_previous_one(store: &dyn Store) {
    let user = stored_user(store).await;
    let old = new_pass(&user.id, "old pass", false);
    store.put_pass(&old).await.expect("put_pass");
    assert_eq!(
        store.pass_for_user(&user.id).await.unwrap().as_ref(),
        Some(&old),
        "a pass reads back unchanged"
    );

    let new = TemporaryAccessPass {
        lifetime_minutes: 120,
        usable_once: true,
        ..new_pass(&user.id, "new pass", true)
    };
    store.put_pass(&new).await.expect("put_pass again");
    assert_eq!(
        store.pass_for_user(&user.id).await.unwrap(),
        Some(new),
        "the new pass replaced the old"
    );
    assert!(
        !store
            .mark_pass_used(&user.id, &old.hash, NOW)
            .await
            .unwrap(),
        "the replaced pass can no longer be used"
    );
}

pub async fn one_time_pass_is_spent_once(store: &dyn Store) {
    let user = stored_user(store).await;
    let pass = new_pass(&user.id, "one-time pass", true);
    store.put_pass(&pass).await.expect("put_pass");
    assert!(
        store
            .mark_pass_used(&user.id, &pass.hash, NOW)
            .await
            .unwrap(),
        "the first use succeeds"
    );
    assert!(
        !store
            .mark_pass_used(&user.id, &pass.hash, NOW.plus_seconds(1))
            .await
            .unwrap(),
        "a second use fails"
    );
    let stored = store
        .pass_for_user(&user.id)
        .await
        .unwrap()
        .expect("the pass is kept");
    assert_eq!(
        stored.used_at,
        Some(NOW),
        "the first use's time is recorded and not overwritten"
    );
}

/// Two sign-ins racing with the same one-time pass must not both get in.
pub async fn concurrent_use_of_a_one_time_pass_has_one_winner(store: &dyn Store) {
    let user = stored_user(store).await;
    let pass = new_pass(&user.id, "raced pass", true);
    store.put_pass(&pass).await.expect("put_pass");
    let (a, b) = tokio::join!(
        store.mark_pass_used(&user.id, &pass.hash, NOW),
        store.mark_pass_used(&user.id, &pass.hash, NOW)
    );
    let winners = [a.unwrap(), b.unwrap()]
        .into_iter()
        .filter(|&won| won)
        .count();
    assert_eq!(
        winners, 1,
        "exactly one of two concurrent uses of a one-time pass succeeds"
    );
}

pub async fn multi_use_pass_can_be_used_again(store: &dyn Store) {
    let user = stored_user(store).await;
    let pass = new_pass(&user.id, "multi-use pass", false);
    store.put_pass(&pass).await.expect("put_pass");
    assert!(
        store
            .mark_pass_used(&user.id, &pass.hash, NOW)
            .await
            .unwrap(),
        "the first use succeeds"
    );
    let later = NOW.plus_seconds(30);
    assert!(
        store
            .mark_pass_used(&user.id, &pass.hash, later)
            .await
            .unwrap(),
        "a multi-use pass works again"
    );
    let stored = store
        .pass_for_user(&user.id)
        .await
        .unwrap()
        .expect("the pass is kept");
    assert_eq!(stored.used_at, Some(later), "the latest use is recorded");
}

pub async fn wrong_pass_is_not_marked_used(store: &dyn Store) {
    let user = stored_user(store).await;
    let pass = new_pass(&user.id, "right pass", true);
    store.put_pass(&pass).await.expect("put_pass");
    assert!(
        !store
            .mark_pass_used(&user.id, &TokenHash::of("wrong pass"), NOW)
            .await
            .unwrap(),
        "a wrong pass is not accepted"
    );
    let other = stored_user(store).await;
    assert!(
        !store
            .mark_pass_used(&other.id, &pass.hash, NOW)
            .await
            .unwrap(),
        "one user's pass does not work for another user"
    );
    assert_eq!(
        store
            .pass_for_user(&user.id)
            .await
            .unwrap()
            .and_then(|p| p.used_at),
        None,
        "failed attempts do not spend the pass"
    );
}

pub async fn deleted_pass_is_gone(store: &dyn Store) {
    let user = stored_user(store).await;
    let pass = new_pass(&user.id, "deleted pass", false);
    store.put_pass(&pass).await.expect("put_pass");
    store.delete_pass(&user.id).await.expect("delete_pass");
    assert_eq!(
        store.pass_for_user(&user.id).await.unwrap(),
        None,
        "a deleted pass is gone"
    );
    assert!(
        !store
            .mark_pass_used(&user.id, &pass.hash, NOW)
            .await
            .unwrap(),
        "a deleted pass cannot be used"
    );
    store
        .delete_pass(&user.id)
        .await
        .expect("deleting a missing pass is not an error");
}

// --- Sessions ------------------------------------------------------------------------------

pub async fn session_round_trips(store: &dyn Store) {
    let user = stored_user(store).await;
    let session = stored_session(store, &user.id).await;
    assert_eq!(
        store.session(&session.id).await.unwrap().as_ref(),
        Some(&session),
        "a session reads back by id"
    );
    assert_eq!(
        store
            .session_by_token(&session.token_hash)
            .await
            .unwrap()
            .as_ref(),
        Some(&session),
        "a session reads back by its cookie's hash"
    );
    assert_eq!(
        store
            .session_by_token(&TokenHash::of("not a cookie"))
            .await
            .unwrap(),
        None,
        "an unknown cookie finds no session"
    );
}

/// Two sessions answering to one cookie would hand one user's session to another.
pub async fn session_token_hash_is_unique(store: &dyn Store) {
    let user = stored_user(store).await;
    let session = stored_session(store, &user.id).await;
    let clash = Session {
        id: SessionId::random(),
        ..session.clone()
    };
    assert!(
        is_conflict(&store.create_session(&clash).await),
        "a second session with the same token hash is a conflict"
    );
}

pub async fn revoking_a_session_revokes_only_that_session(store: &dyn Store) {
    let user = stored_user(store).await;
    let revoked = stored_session(store, &user.id).await;
    let kept = stored_session(store, &user.id).await;
    store
        .revoke_session(&revoked.id)
        .await
        .expect("revoke_session");
    assert!(
        store
            .session(&revoked.id)
            .await
            .unwrap()
            .expect("kept as a record")
            .revoked,
        "the session is revoked"
    );
    assert!(
        !store
            .session(&kept.id)
            .await
            .unwrap()
            .expect("other session")
            .revoked,
        "other sessions live on"
    );
}

/// Disabling or resetting an account must end every way in: sessions and every issued token.
pub async fn revoking_a_user_revokes_sessions_and_grants(store: &dyn Store) {
    let grant = stored_grant(store).await;
    let user = grant.user_id.clone();
    let second_session = stored_session(store, &user).await;
    let bystander = stored_grant(store).await;

    store
        .revoke_user_sessions_and_grants(&user)
        .await
        .expect("revoke_user_sessions_and_grants");

    for session in [&grant.session_id, &second_session.id] {
        assert!(
            store
                .session(session)
                .await
                .unwrap()
                .expect("session")
                .revoked,
            "each of the user's sessions is revoked"
        );
    }
    assert!(
        store
            .grant(&grant.id)
            .await
            .unwrap()
            .expect("grant")
            .revoked,
        "the user's grants are revoked"
    );
    assert!(
        !store
            .grant(&bystander.id)
            .await
            .unwrap()
            .expect("grant")
            .revoked,
        "other users' grants live on"
    );
    assert!(
        !store
            .session(&bystander.session_id)
            .await
            .unwrap()
            .expect("session")
            .revoked,
        "other users' sessions live on"
    );
}

/// Signing out ends what the session handed to applications, too.
pub async fn revoking_a_session_revokes_its_grants(store: &dyn Store) {
    let grant = stored_grant(store).await;
    let app = store
        .application(&grant.client_id)
        .await
        .unwrap()
        .expect("application");
    let other_session = stored_session(store, &grant.user_id).await;
    let other_grant = new_grant(&grant.user_id, &app.client_id, &other_session.id);
    store
        .create_grant(&other_grant)
        .await
        .expect("create_grant");

    store
        .revoke_session_grants(&grant.session_id)
        .await
        .expect("revoke_session_grants");
    assert!(
        store
            .grant(&grant.id)
            .await
            .unwrap()
            .expect("grant")
            .revoked,
        "the session's grant is revoked"
    );
    assert!(
        !store
            .grant(&other_grant.id)
            .await
            .unwrap()
            .expect("grant")
            .revoked,
        "another session's grant lives on"
    );
}

// --- Sign-ins ------------------------------------------------------------------------------

pub async fn sign_in_round_trips(store: &dyn Store) {
    let sign_in = new_sign_in(NOW.plus_seconds(900));
    store.put_sign_in(&sign_in).await.expect("put_sign_in");
    assert_eq!(
        store.sign_in(&sign_in.id).await.unwrap().as_ref(),
        Some(&sign_in),
        "a sign-in reads back unchanged, authorization request included"
    );
    store
        .delete_sign_in(&sign_in.id)
        .await
        .expect("delete_sign_in");
    assert_eq!(
        store.sign_in(&sign_in.id).await.unwrap(),
        None,
        "a deleted sign-in is gone"
    );
    store
        .delete_sign_in(&sign_in.id)
        .await
        .expect("deleting a missing sign-in is not an error");
}

pub async fn sign_in_moves_forward_when_put_again(store: &dyn Store) {
    let mut sign_in = new_sign_in(NOW.plus_seconds(900));
    sign_in.authorization = None;
    sign_in.return_to = Some("/mysecurityinfo".into());
    store.put_sign_in(&sign_in).await.expect("put_sign_in");
    sign_in.stage = SignInStage::AwaitingCredential {
        upn: "bobby@conformance.example".into(),
        user_id: Some(UserId::random()),
        notice: None,
    };
    sign_in.failed_attempts = 2;
    store
        .put_sign_in(&sign_in)
        .await
        .expect("putting a sign-in again updates it");
    assert_eq!(
        store.sign_in(&sign_in.id).await.unwrap(),
        Some(sign_in),
        "the latest stage is stored"
    );
}

/// A successful sign-in is one step: the session starts, the sign-in in progress ends (so it
/// cannot be completed twice), and the log says so.
pub async fn completed_sign_in_creates_session_removes_pending_and_logs(store: &dyn Store) {
    let user = stored_user(store).await;
    let pending = new_sign_in(NOW.plus_seconds(900));
    store.put_sign_in(&pending).await.expect("put_sign_in");
    let session = new_session(&user.id);
    let record = SignInRecord {
        user_id: Some(user.id.clone()),
        ..new_sign_in_record(user.upn.as_str(), NOW)
    };

    store
        .complete_sign_in(&session, &pending.id, &record)
        .await
        .expect("complete_sign_in");
    assert_eq!(
        store.session_by_token(&session.token_hash).await.unwrap(),
        Some(session),
        "the completed sign-in's session exists"
    );
    assert_eq!(
        store.sign_in(&pending.id).await.unwrap(),
        None,
        "the completed sign-in is no longer in progress"
    );
    assert_eq!(
        records(store, by_user(user.id.as_str())).await,
        vec![record],
        "the sign-in is logged, and the record reads back unchanged"
    );
}

/// A wrong pass counts against the sign-in (so guessing is limited), and the last allowed
/// failure ends it; either way the attempt is logged.
pub async fn failed_sign_in_keeps_or_ends_pending_and_logs(store: &dyn Store) {
    let upn = unique_name("failing");
    let mut pending = new_sign_in(NOW.plus_seconds(900));
    pending.stage = SignInStage::AwaitingCredential {
        upn: upn.clone(),
        user_id: None,
        notice: None,
    };
    store.put_sign_in(&pending).await.expect("put_sign_in");

    pending.failed_attempts = 1;
    let first = failed(
        new_sign_in_record(&upn, NOW),
        SignInError::InvalidCredential,
    );
    store
        .fail_sign_in(&pending, false, &first)
        .await
        .expect("fail_sign_in");
    assert_eq!(
        store.sign_in(&pending.id).await.unwrap().as_ref(),
        Some(&pending),
        "a failure that does not end the sign-in saves its new failure count"
    );

    pending.failed_attempts = 2;
    let last = failed(
        new_sign_in_record(&upn, NOW.plus_seconds(1)),
        SignInError::TooManyAttempts,
    );
    store
        .fail_sign_in(&pending, true, &last)
        .await
        .expect("fail_sign_in ending the sign-in");
    assert_eq!(
        store.sign_in(&pending.id).await.unwrap(),
        None,
        "a failure that ends the sign-in removes it"
    );
    assert_eq!(
        records(store, by_user(&upn)).await,
        vec![last, first],
        "both failed attempts are logged, newest first"
    );
}

/// Atomicity: when the session cannot be created (here its token hash is taken), nothing else
/// happens either. The sign-in stays in progress, and the log does not claim a sign-in that
/// never happened.
pub async fn complete_sign_in_with_a_refused_session_changes_nothing(store: &dyn Store) {
    let user = stored_user(store).await;
    let existing = stored_session(store, &user.id).await;
    let pending = new_sign_in(NOW.plus_seconds(900));
    store.put_sign_in(&pending).await.expect("put_sign_in");
    let clash = Session {
        token_hash: existing.token_hash.clone(),
        ..new_session(&user.id)
    };
    let record = SignInRecord {
        user_id: Some(user.id.clone()),
        ..new_sign_in_record(user.upn.as_str(), NOW)
    };

    let result = store.complete_sign_in(&clash, &pending.id, &record).await;
    assert!(
        is_conflict(&result),
        "a session with a taken token hash is a conflict, got {result:?}"
    );
    assert_eq!(
        store.session(&clash.id).await.unwrap(),
        None,
        "the refused session was not stored"
    );
    assert_eq!(
        store.sign_in(&pending.id).await.unwrap(),
        Some(pending),
        "the sign-in is still in progress"
    );
    assert!(
        records(store, by_user(user.id.as_str())).await.is_empty(),
        "a sign-in that did not happen is not logged"
    );
}

/// Atomicity from the other end: the log record is the last write, and when it is refused
/// (here its id is taken) the session, the removal and the failure count are undone with it.
/// Otherwise a sign-in could succeed, or a guess be counted, with no trace in the log.
pub async fn sign_in_outcomes_that_cannot_be_logged_change_nothing(store: &dyn Store) {
    let user = stored_user(store).await;
    let logged = SignInRecord {
        user_id: Some(user.id.clone()),
        ..failed(
            new_sign_in_record(user.upn.as_str(), NOW),
            SignInError::InvalidCredential,
        )
    };
    log_sign_in(store, &logged).await;
    let pending = new_sign_in(NOW.plus_seconds(900));
    store.put_sign_in(&pending).await.expect("put_sign_in");
    let duplicate = SignInRecord {
        created_date_time: NOW.plus_seconds(1),
        ..logged.clone()
    };

    let session = new_session(&user.id);
    let result = store
        .complete_sign_in(&session, &pending.id, &duplicate)
        .await;
    assert!(
        result.is_err(),
        "completing with a record that cannot be written fails"
    );
    assert_eq!(
        store.session(&session.id).await.unwrap(),
        None,
        "the session of an unlogged sign-in was rolled back"
    );
    assert_eq!(
        store.sign_in(&pending.id).await.unwrap().as_ref(),
        Some(&pending),
        "the sign-in of an unlogged completion is still in progress"
    );

    let mut counted = pending.clone();
    counted.failed_attempts += 1;
    for ended in [false, true] {
        let result = store.fail_sign_in(&counted, ended, &duplicate).await;
        assert!(
            result.is_err(),
            "failing with a record that cannot be written fails (ended: {ended})"
        );
        assert_eq!(
            store.sign_in(&pending.id).await.unwrap().as_ref(),
            Some(&pending),
            "an unlogged failure neither counts nor ends the sign-in (ended: {ended})"
        );
    }
    assert_eq!(
        records(store, by_user(user.id.as_str())).await,
        vec![logged],
        "only the first record is in the log"
    );
}

// --- The sign-in log -----------------------------------------------------------------------

pub async fn sign_in_log_filters_by_user_app_status_method_and_time(store: &dyn Store) {
    let user_id = UserId::random();
    let upn = unique_name("logged");
    // A name typed at sign-in that matches no user, in whatever case it was typed.
    let ghost = unique_name("Ghost").replace("conformance", "Conformance");
    let app_a = (
        ClientId::from_string(format!("conformance-{}", random_hex(8))),
        format!("Log App {}", random_hex(4)),
    );
    let app_b = (
        ClientId::from_string(format!("conformance-{}", random_hex(8))),
        format!("Log App {}", random_hex(4)),
    );
    let with_app = |record: SignInRecord, app: &(ClientId, String)| SignInRecord {
        app_id: Some(app.0.clone()),
        app_display_name: Some(app.1.clone()),
        ..record
    };
    // The user id is not stored as a user: the log must accept (and outlive) ids of users
    // that no longer exist.
    let of_user = |record: SignInRecord| SignInRecord {
        user_id: Some(user_id.clone()),
        ..record
    };

    let r1 = with_app(of_user(new_sign_in_record(&upn, NOW)), &app_a);
    let r2 = SignInRecord {
        authentication_method: "password".into(),
        ..with_app(
            of_user(failed(
                new_sign_in_record(&upn, NOW.plus_seconds(10)),
                SignInError::InvalidCredential,
            )),
            &app_b,
        )
    };
    let r3 = with_app(
        failed(
            new_sign_in_record(&ghost, NOW.plus_seconds(20)),
            SignInError::InvalidCredential,
        ),
        &app_a,
    );
    let r4 = SignInRecord {
        authentication_method: "password".into(),
        ..of_user(new_sign_in_record(&upn, NOW.plus_seconds(30)))
    };
    for record in [&r1, &r2, &r3, &r4] {
        log_sign_in(store, record).await;
    }
    let mine = |query: LogQuery| LogQuery {
        user: Some(user_id.as_str().to_string()),
        ..query
    };

    assert_eq!(
        records(store, by_user(user_id.as_str())).await,
        vec![r4.clone(), r2.clone(), r1.clone()],
        "the user id finds the user's records, newest first, unchanged"
    );
    assert_eq!(
        records(store, by_user(&upn.to_uppercase())).await,
        vec![r4.clone(), r2.clone(), r1.clone()],
        "the UPN finds the user's records, ignoring case"
    );
    assert_eq!(
        records(store, by_user(&ghost.to_lowercase())).await,
        vec![r3.clone()],
        "a typed name that matches no user finds its records, ignoring case"
    );
    assert_eq!(
        records(
            store,
            LogQuery {
                app: Some(app_a.0.as_str().to_string()),
                ..LogQuery::default()
            }
        )
        .await,
        vec![r3.clone(), r1.clone()],
        "the app id finds the app's records"
    );
    assert_eq!(
        records(
            store,
            LogQuery {
                app: Some(app_a.1.to_uppercase()),
                ..LogQuery::default()
            }
        )
        .await,
        vec![r3.clone(), r1.clone()],
        "the app's display name finds its records, ignoring case"
    );
    assert_eq!(
        records(
            store,
            mine(LogQuery {
                app: Some(app_b.1.clone()),
                ..LogQuery::default()
            })
        )
        .await,
        vec![r2.clone()],
        "user and app filters combine"
    );
    assert_eq!(
        records(
            store,
            mine(LogQuery {
                status: Some(StatusFilter::Success),
                ..LogQuery::default()
            })
        )
        .await,
        vec![r4.clone(), r1.clone()],
        "success means error code 0"
    );
    assert_eq!(
        records(
            store,
            mine(LogQuery {
                status: Some(StatusFilter::Failure),
                ..LogQuery::default()
            })
        )
        .await,
        vec![r2.clone()],
        "failure means any other error code"
    );
    assert_eq!(
        records(
            store,
            mine(LogQuery {
                method: Some("password".into()),
                ..LogQuery::default()
            })
        )
        .await,
        vec![r4.clone(), r2.clone()],
        "the method filter matches the authentication method"
    );
    assert_eq!(
        records(
            store,
            mine(LogQuery {
                since: Some(NOW.plus_seconds(10)),
                ..LogQuery::default()
            })
        )
        .await,
        vec![r4.clone(), r2.clone()],
        "since is inclusive"
    );
    assert_eq!(
        records(
            store,
            mine(LogQuery {
                until: Some(NOW.plus_seconds(30)),
                ..LogQuery::default()
            })
        )
        .await,
        vec![r2.clone(), r1.clone()],
        "until is exclusive"
    );
    assert_eq!(
        records(
            store,
            mine(LogQuery {
                since: Some(NOW.plus_seconds(10)),
                until: Some(NOW.plus_seconds(30)),
                status: Some(StatusFilter::Failure),
                method: Some("password".into()),
                app: Some(app_b.0.as_str().to_string()),
                ..LogQuery::default()
            })
        )
        .await,
        vec![r2],
        "all filters combine"
    );
    assert!(
        records(
            store,
            mine(LogQuery {
                app: Some(app_a.0.as_str().to_string()),
                status: Some(StatusFilter::Failure),
                ..LogQuery::default()
            })
        )
        .await
        .is_empty(),
        "filters narrow, never widen"
    );
}

pub async fn sign_in_log_pages_newest_first(store: &dyn Store) {
    let upn = unique_name("paged");
    let mut written: Vec<SignInRecord> = [100, 200, 300, 400, 400]
        .into_iter()
        .map(|offset| new_sign_in_record(&upn, NOW.plus_seconds(offset)))
        .collect();
    for record in &written {
        log_sign_in(store, record).await;
    }
    // Newest first; records from the same second, the last written first, so pages neither
    // repeat nor skip a record and the log reads in the order things happened.
    written.reverse();
    written.sort_by_key(|r| std::cmp::Reverse(r.created_date_time));
    let page = |skip: u32, limit: u32| LogQuery {
        skip,
        limit,
        ..by_user(&upn)
    };

    assert_eq!(
        records(store, page(0, 2)).await,
        written[0..2],
        "the first page holds the newest records"
    );
    assert_eq!(
        records(store, page(2, 2)).await,
        written[2..4],
        "the second page continues where the first ended"
    );
    assert_eq!(
        records(store, page(4, 2)).await,
        written[4..],
        "the last page is short"
    );
    assert!(
        records(store, page(5, 2)).await.is_empty(),
        "skipping past the end finds nothing"
    );
    assert_eq!(
        records(store, page(0, 0)).await,
        written,
        "a limit of 0 means the default page size, not an empty page"
    );
    assert_eq!(
        records(store, page(1, u32::MAX)).await,
        written[1..],
        "an oversized limit is capped, not refused"
    );
}

/// Filter values come from administrators' query strings; they must be compared as data,
/// never spliced into SQL where they could widen the query.
pub async fn sign_in_log_filter_values_are_data_not_sql(store: &dyn Store) {
    let upn = unique_name("quoted");
    let record = new_sign_in_record(&upn, NOW);
    log_sign_in(store, &record).await;
    for hostile in [
        "' OR '1'='1",
        "x' OR 1=1 --",
        "\" OR \"\"=\"",
        "%",
        "*",
        "') OR ('a'='a",
    ] {
        for query in [
            by_user(hostile),
            LogQuery {
                app: Some(hostile.into()),
                ..LogQuery::default()
            },
            LogQuery {
                method: Some(hostile.into()),
                ..LogQuery::default()
            },
        ] {
            assert!(
                records(store, query.clone()).await.is_empty(),
                "{hostile:?} matches nothing: {query:?}"
            );
        }
        assert!(
            events(store, by_user(hostile)).await.is_empty(),
            "{hostile:?} matches no audit event"
        );
        assert!(
            events(
                store,
                LogQuery {
                    category: Some(hostile.into()),
                    ..LogQuery::default()
                }
            )
            .await
            .is_empty(),
            "{hostile:?} matches no audit category"
        );
    }
    assert_eq!(
        records(store, by_user(&upn)).await,
        vec![record],
        "the record is still found by its own name"
    );
}

// --- The audit log -------------------------------------------------------------------------

pub async fn audit_log_filters_by_category_and_actor(store: &dyn Store) {
    let alice = unique_actor();
    let bob = unique_actor();
    let target = UserId::random().as_str().to_string();
    let e1 = new_audit_event(&alice, AuditCategory::UserManagement, &target, NOW);
    let e2 = policy_audit_event(&alice);
    let e2 = AuditEvent {
        activity_date_time: NOW.plus_seconds(10),
        ..e2
    };
    let e3 = new_audit_event(
        &bob,
        AuditCategory::UserManagement,
        &target,
        NOW.plus_seconds(20),
    );
    for event in [&e1, &e2, &e3] {
        store.append_audit(event).await.expect("append_audit");
    }

    assert_eq!(
        events(store, by_user(&alice.0)).await,
        vec![e2.clone(), e1.clone()],
        "the actor finds their events, newest first, unchanged"
    );
    assert_eq!(
        events(store, by_user(&target)).await,
        vec![e3.clone(), e1.clone()],
        "the target finds the events that changed it, whoever made them"
    );
    assert_eq!(
        events(
            store,
            LogQuery {
                category: Some(AuditCategory::Policy.as_str().into()),
                ..by_user(&alice.0)
            }
        )
        .await,
        vec![e2.clone()],
        "the category filter matches the category's name"
    );
    assert_eq!(
        events(
            store,
            LogQuery {
                category: Some(AuditCategory::UserManagement.as_str().into()),
                ..by_user(&target)
            }
        )
        .await,
        vec![e3.clone(), e1.clone()],
        "category and target combine"
    );
    assert_eq!(
        events(
            store,
            LogQuery {
                app: Some("no such app".into()),
                status: Some(StatusFilter::Failure),
                method: Some("no such method".into()),
                ..by_user(&alice.0)
            }
        )
        .await,
        vec![e2.clone(), e1.clone()],
        "app, status and method do not apply to the audit log"
    );
    assert_eq!(
        events(
            store,
            LogQuery {
                since: Some(NOW.plus_seconds(10)),
                ..by_user(&target)
            }
        )
        .await,
        vec![e3.clone()],
        "since is inclusive"
    );
    assert_eq!(
        events(
            store,
            LogQuery {
                until: Some(NOW.plus_seconds(20)),
                ..by_user(&target)
            }
        )
        .await,
        vec![e1.clone()],
        "until is exclusive"
    );
    assert_eq!(
        events(
            store,
            LogQuery {
                skip: 1,
                limit: 1,
                ..by_user(&alice.0)
            }
        )
        .await,
        vec![e1],
        "the audit log pages like the sign-in log"
    );
    assert!(
        events(store, by_user(&alice.0[..alice.0.len() - 1]))
            .await
            .is_empty(),
        "the actor must match exactly, not as a prefix"
    );
}

/// The audit log is append-only: a second event with a taken id must not replace the first.
pub async fn audit_event_ids_are_unique(store: &dyn Store) {
    let actor = unique_actor();
    let first = new_audit_event(&actor, AuditCategory::GroupManagement, "group", NOW);
    store.append_audit(&first).await.expect("append_audit");
    let rewrite = AuditEvent {
        activity: "Nothing happened".into(),
        ..first.clone()
    };
    assert!(
        is_conflict(&store.append_audit(&rewrite).await),
        "an event with a taken id is a conflict"
    );
    assert_eq!(
        events(store, by_user(&actor.0)).await,
        vec![first],
        "the first event is unchanged"
    );
}

// --- The authentication methods policy -----------------------------------------------------

/// Before the first save there is no policy and the domain uses its defaults; the first save
/// must be version 1. The policy is global, so this holds only on a fresh store and is not
/// part of [`run_all`]: call it on an empty database.
pub async fn policy_is_absent_until_first_save(store: &dyn Store) {
    assert_eq!(
        store.policy().await.unwrap(),
        None,
        "a fresh store has no policy"
    );
    for version in [0, 2] {
        let actor = unique_actor();
        let result = store
            .save_policy(&policy_version(version, 12), &policy_audit_event(&actor))
            .await;
        assert!(
            is_conflict(&result),
            "a first save as version {version} is a conflict, got {result:?}"
        );
        assert_eq!(
            store.policy().await.unwrap(),
            None,
            "a refused first save stores nothing"
        );
        assert!(
            events(store, by_user(&actor.0)).await.is_empty(),
            "a refused first save logs nothing"
        );
    }
    let first = policy_version(1, 12);
    store
        .save_policy(&first, &policy_audit_event(&unique_actor()))
        .await
        .expect("the first save is version 1");
    assert_eq!(
        store.policy().await.unwrap(),
        Some(first),
        "the saved policy reads back unchanged"
    );
}

/// Lost update: two administrators edit the same version; the second save must not silently
/// overwrite the first administrator's change.
pub async fn stale_policy_version_is_refused_and_changes_nothing(store: &dyn Store) {
    let current = current_policy_version(store).await;
    let first = policy_version(current + 1, 10);
    store
        .save_policy(&first, &policy_audit_event(&unique_actor()))
        .await
        .expect("saving the next version");
    assert_eq!(
        stored_policy_json(store).await,
        Some(json(&first)),
        "the next version is stored"
    );

    let late = unique_actor();
    for version in [current + 1, current, current + 3] {
        let rival = policy_version(version, 14);
        let result = store.save_policy(&rival, &policy_audit_event(&late)).await;
        assert!(
            is_conflict(&result),
            "saving version {version} on top of version {} is a conflict, got {result:?}",
            current + 1
        );
        assert_eq!(
            stored_policy_json(store).await,
            Some(json(&first)),
            "a refused save leaves the stored policy byte for byte as it was"
        );
    }
    assert!(
        events(store, by_user(&late.0)).await.is_empty(),
        "refused saves write no audit event"
    );
}

pub async fn policy_save_writes_its_audit_event(store: &dyn Store) {
    let current = current_policy_version(store).await;
    let policy = policy_version(current + 1, 11);
    let actor = unique_actor();
    let event = policy_audit_event(&actor);
    store
        .save_policy(&policy, &event)
        .await
        .expect("save_policy");
    assert_eq!(
        events(store, by_user(&actor.0)).await,
        vec![event],
        "the save's audit event is in the audit log"
    );
    assert_eq!(
        store.policy().await.unwrap(),
        Some(policy),
        "the policy is saved with it"
    );
}

/// Atomicity: a policy change nobody can trace must not take effect.
pub async fn policy_is_not_saved_when_its_audit_event_is_not(store: &dyn Store) {
    let current = current_policy_version(store).await;
    let taken = new_audit_event(&unique_actor(), AuditCategory::Policy, "policy", NOW);
    store.append_audit(&taken).await.expect("append_audit");
    let before = stored_policy_json(store).await;

    let result = store
        .save_policy(&policy_version(current + 1, 13), &taken)
        .await;
    assert!(
        result.is_err(),
        "a save whose audit event cannot be written fails"
    );
    assert_eq!(
        stored_policy_json(store).await,
        before,
        "the policy is unchanged when its audit event was refused"
    );
}

/// Two saves racing on one version: exactly one wins, and the stored policy is the winner's.
pub async fn concurrent_policy_saves_of_one_version_have_one_winner(store: &dyn Store) {
    let current = current_policy_version(store).await;
    let a = policy_version(current + 1, 15);
    let b = policy_version(current + 1, 16);
    let (event_a, event_b) = (
        policy_audit_event(&unique_actor()),
        policy_audit_event(&unique_actor()),
    );
    let (result_a, result_b) = tokio::join!(
        store.save_policy(&a, &event_a),
        store.save_policy(&b, &event_b)
    );
    let winner = match (&result_a, &result_b) {
        (Ok(()), Err(StoreError::Conflict(_))) => &a,
        (Err(StoreError::Conflict(_)), Ok(())) => &b,
        _ => panic!("of two concurrent saves exactly one wins: {result_a:?}, {result_b:?}"),
    };
    assert_eq!(
        stored_policy_json(store).await,
        Some(json(winner)),
        "the stored policy is the winner's"
    );
}

// --- Grants, codes and tokens --------------------------------------------------------------

pub async fn grant_round_trips(store: &dyn Store) {
    let grant = stored_grant(store).await;
    assert_eq!(
        store.grant(&grant.id).await.unwrap().as_ref(),
        Some(&grant),
        "a grant reads back unchanged"
    );
    store.revoke_grant(&grant.id).await.expect("revoke_grant");
    assert!(
        store
            .grant(&grant.id)
            .await
            .unwrap()
            .expect("grant")
            .revoked,
        "a revoked grant reads back revoked"
    );
    assert_eq!(
        store.grant(&GrantId::random()).await.unwrap(),
        None,
        "an unknown id finds no grant"
    );
}

pub async fn code_is_fresh_on_first_redemption(store: &dyn Store) {
    let grant = stored_grant(store).await;
    let code = stored_code(store, &grant).await;
    assert_eq!(
        store.redeem_code(&code.hash).await.unwrap(),
        Redeemed::Fresh(code),
        "a new code redeems as fresh"
    );
}

/// RFC 6749 §4.1.2: a code used twice is a sign of theft; the caller must learn of it.
pub async fn replayed_code_is_reported_as_replay(store: &dyn Store) {
    let grant = stored_grant(store).await;
    let code = stored_code(store, &grant).await;
    assert!(
        matches!(
            store.redeem_code(&code.hash).await.unwrap(),
            Redeemed::Fresh(_)
        ),
        "the first redemption is fresh"
    );
    for attempt in 2..=3 {
        assert_eq!(
            store.redeem_code(&code.hash).await.unwrap(),
            Redeemed::Replayed(code.clone()),
            "redemption {attempt} of a code is reported as a replay, with the code so its grant can be revoked"
        );
    }
}

pub async fn unknown_code_is_unknown(store: &dyn Store) {
    assert_eq!(
        store
            .redeem_code(&TokenHash::of(random_token().expose()))
            .await
            .unwrap(),
        Redeemed::Unknown,
        "a code never issued is unknown"
    );
}

/// Two token requests racing with one code must not both get tokens.
pub async fn concurrent_redeem_of_a_code_has_one_winner(store: &dyn Store) {
    let grant = stored_grant(store).await;
    let code = stored_code(store, &grant).await;
    let (a, b) = tokio::join!(store.redeem_code(&code.hash), store.redeem_code(&code.hash));
    let outcomes = [a.unwrap(), b.unwrap()];
    let fresh = outcomes
        .iter()
        .filter(|o| matches!(o, Redeemed::Fresh(_)))
        .count();
    let replayed = outcomes
        .iter()
        .filter(|o| matches!(o, Redeemed::Replayed(_)))
        .count();
    assert_eq!(
        (fresh, replayed),
        (1, 1),
        "of two concurrent redemptions exactly one is fresh: {outcomes:?}"
    );
}

/// The store reports; the domain judges expiry and revocation.
pub async fn access_token_is_returned_even_when_expired(store: &dyn Store) {
    let grant = stored_grant(store).await;
    let expired = new_access_token(&grant, Timestamp(NOW.0 - 3600));
    store
        .put_access_token(&expired)
        .await
        .expect("put_access_token");
    assert_eq!(
        store.access_token(&expired.hash).await.unwrap(),
        Some(expired),
        "an expired token is still returned"
    );
    assert_eq!(
        store
            .access_token(&TokenHash::of(random_token().expose()))
            .await
            .unwrap(),
        None,
        "an unknown access token is not found"
    );
}

/// Refresh token rotation (OAuth 2.0 Security BCP §4.14): each token works once; presenting a
/// spent one again means it was stolen, and must be reported so the grant can be revoked.
pub async fn refresh_token_rotation_reports_reuse(store: &dyn Store) {
    let grant = stored_grant(store).await;
    let first = new_refresh_token(&grant, NOW.plus_seconds(86_400));
    store
        .put_refresh_token(&first)
        .await
        .expect("put_refresh_token");
    assert_eq!(
        store.redeem_refresh_token(&first.hash).await.unwrap(),
        Redeemed::Fresh(first.clone()),
        "first use is fresh"
    );

    let second = new_refresh_token(&grant, NOW.plus_seconds(86_400));
    store
        .put_refresh_token(&second)
        .await
        .expect("put rotated refresh token");
    assert_eq!(
        store.redeem_refresh_token(&first.hash).await.unwrap(),
        Redeemed::Replayed(first),
        "reusing a rotated-out refresh token is reported as a replay"
    );
    assert_eq!(
        store.redeem_refresh_token(&second.hash).await.unwrap(),
        Redeemed::Fresh(second),
        "the rotated-in token is fresh"
    );
    assert_eq!(
        store
            .redeem_refresh_token(&TokenHash::of(random_token().expose()))
            .await
            .unwrap(),
        Redeemed::Unknown,
        "a refresh token never issued is unknown"
    );
}

pub async fn concurrent_redeem_of_a_refresh_token_has_one_winner(store: &dyn Store) {
    let grant = stored_grant(store).await;
    let token = new_refresh_token(&grant, NOW.plus_seconds(86_400));
    store
        .put_refresh_token(&token)
        .await
        .expect("put_refresh_token");
    let (a, b) = tokio::join!(
        store.redeem_refresh_token(&token.hash),
        store.redeem_refresh_token(&token.hash)
    );
    let outcomes = [a.unwrap(), b.unwrap()];
    let fresh = outcomes
        .iter()
        .filter(|o| matches!(o, Redeemed::Fresh(_)))
        .count();
    assert_eq!(
        fresh, 1,
        "of two concurrent refreshes exactly one is fresh: {outcomes:?}"
    );
}

// --- Signing keys --------------------------------------------------------------------------

pub async fn signing_key_round_trips(store: &dyn Store) {
    for alg in SigningAlg::ALL {
        let key = SigningKey::generate(alg, NOW).expect("generate a key");
        store.put_signing_key(&key).await.expect("put_signing_key");
        let stored = store
            .signing_keys()
            .await
            .unwrap()
            .into_iter()
            .find(|k| k.kid == key.kid);
        let stored = stored.expect("a stored key is listed");
        assert_eq!(stored.alg, key.alg, "the algorithm is kept");
        assert_eq!(
            stored.private_pkcs8, key.private_pkcs8,
            "the private key is kept byte for byte"
        );
        assert_eq!(
            (stored.created_at, stored.retired_at),
            (key.created_at, None),
            "the key's dates are kept"
        );
        assert!(
            stored.signer().is_ok(),
            "a stored key still loads for signing"
        );
    }
}

/// Rotation retires old keys but must never retire the one now signing.
pub async fn signing_keys_retire_except_kept(store: &dyn Store) {
    let old = SigningKey::generate(SigningAlg::ES256, NOW).expect("generate");
    let current = SigningKey::generate(SigningAlg::ES256, NOW.plus_seconds(1)).expect("generate");
    let mut already_retired = SigningKey::generate(SigningAlg::ES256, NOW).expect("generate");
    already_retired.retired_at = Some(NOW);
    for key in [&old, &current, &already_retired] {
        store.put_signing_key(key).await.expect("put_signing_key");
    }

    let at = NOW.plus_seconds(100);
    store
        .retire_signing_keys_except(std::slice::from_ref(&current.kid), at)
        .await
        .expect("retire");
    let keys = store.signing_keys().await.unwrap();
    let retired_at = |kid| {
        keys.iter()
            .find(|k| &k.kid == kid)
            .expect("key listed")
            .retired_at
    };
    assert_eq!(
        retired_at(&old.kid),
        Some(at),
        "an unkept key is retired at the given time"
    );
    assert_eq!(retired_at(&current.kid), None, "the kept key stays active");
    assert_eq!(
        retired_at(&already_retired.kid),
        Some(NOW),
        "an already retired key keeps its retirement date"
    );
}

// --- Administrator tokens and server secrets -----------------------------------------------

/// A server secret (for example the CSRF key) must never change once set, or every
/// outstanding form breaks and two servers would disagree.
pub async fn server_secret_is_created_once(store: &dyn Store) {
    let name = format!("conformance-{}", random_hex(4));
    let first = store
        .server_secret(&name, b"first candidate")
        .await
        .expect("server_secret");
    assert_eq!(first, b"first candidate", "the first candidate is stored");
    let second = store
        .server_secret(&name, b"second candidate")
        .await
        .expect("server_secret again");
    assert_eq!(
        second, first,
        "later calls return the first value, not their candidate"
    );

    let other = format!("conformance-{}", random_hex(4));
    let (a, b) = tokio::join!(
        store.server_secret(&other, b"racer a"),
        store.server_secret(&other, b"racer b")
    );
    assert_eq!(
        a.unwrap(),
        b.unwrap(),
        "concurrent first calls agree on one value"
    );
}

// --- Housekeeping --------------------------------------------------------------------------

/// Purging must remove expired secrets and never anything still valid.
pub async fn purge_removes_only_expired(store: &dyn Store) {
    // Dates in 1970, far before anything other checks create, so purging only touches this
    // check's rows (and leftovers of earlier runs of it).
    let now = Timestamp(1_000);
    let expired = Timestamp(now.0 - 1);
    let live = NOW.plus_seconds(86_400);

    let grant = stored_grant(store).await;
    let user = grant.user_id.clone();

    let expired_code = new_code(&grant, expired);
    let live_code = new_code(&grant, live);
    let expired_access = new_access_token(&grant, now); // expiring exactly now counts as expired
    let live_access = new_access_token(&grant, live);
    let expired_refresh = new_refresh_token(&grant, expired);
    let live_refresh = new_refresh_token(&grant, live);
    let expired_sign_in = new_sign_in(expired);
    let live_sign_in = new_sign_in(live);
    let expired_session = Session {
        expires_at: expired,
        ..new_session(&user)
    };
    let live_session = Session {
        expires_at: live,
        ..new_session(&user)
    };

    for code in [&expired_code, &live_code] {
        store.put_code(code).await.expect("put_code");
    }
    for token in [&expired_access, &live_access] {
        store
            .put_access_token(token)
            .await
            .expect("put_access_token");
    }
    for token in [&expired_refresh, &live_refresh] {
        store
            .put_refresh_token(token)
            .await
            .expect("put_refresh_token");
    }
    for sign_in in [&expired_sign_in, &live_sign_in] {
        store.put_sign_in(sign_in).await.expect("put_sign_in");
    }
    for session in [&expired_session, &live_session] {
        store.create_session(session).await.expect("create_session");
    }

    let removed = store.purge_expired(now).await.expect("purge_expired");
    assert!(
        removed >= 5,
        "at least this check's five expired rows are counted, got {removed}"
    );

    assert_eq!(
        store.redeem_code(&expired_code.hash).await.unwrap(),
        Redeemed::Unknown,
        "the expired code is gone"
    );
    assert_eq!(
        store.access_token(&expired_access.hash).await.unwrap(),
        None,
        "the expired access token is gone"
    );
    assert_eq!(
        store
            .redeem_refresh_token(&expired_refresh.hash)
            .await
            .unwrap(),
        Redeemed::Unknown,
        "the expired refresh token is gone"
    );
    assert_eq!(
        store.sign_in(&expired_sign_in.id).await.unwrap(),
        None,
        "the expired sign-in is gone"
    );
    assert_eq!(
        store.session(&expired_session.id).await.unwrap(),
        None,
        "the expired session is gone"
    );

    assert_eq!(
        store.redeem_code(&live_code.hash).await.unwrap(),
        Redeemed::Fresh(live_code),
        "the live code stays"
    );
    assert_eq!(
        store.access_token(&live_access.hash).await.unwrap(),
        Some(live_access),
        "the live access token stays"
    );
    assert_eq!(
        store
            .redeem_refresh_token(&live_refresh.hash)
            .await
            .unwrap(),
        Redeemed::Fresh(live_refresh),
        "the live refresh token stays"
    );
    assert_eq!(
        store.sign_in(&live_sign_in.id).await.unwrap(),
        Some(live_sign_in),
        "the live sign-in stays"
    );
    assert_eq!(
        store.session(&live_session.id).await.unwrap(),
        Some(live_session),
        "the live session stays"
    );
    assert!(
        store.grant(&grant.id).await.unwrap().is_some(),
        "grants are not purged with their tokens"
    );
}

/// Retention: old log entries go, recent ones stay, and the cut-off itself is kept.
pub async fn purge_logs_removes_only_old_records(store: &dyn Store) {
    // Dates in 1970, far before anything other checks log, as in `purge_removes_only_expired`.
    let before = Timestamp(2_000);
    let old = Timestamp(1_000);
    let upn = unique_name("retained");
    let actor = unique_actor();

    let old_record = new_sign_in_record(&upn, old);
    let cut_off_record = new_sign_in_record(&upn, before);
    let recent_record = new_sign_in_record(&upn, NOW);
    for record in [&old_record, &cut_off_record, &recent_record] {
        log_sign_in(store, record).await;
    }
    let old_event = new_audit_event(&actor, AuditCategory::UserManagement, "user", old);
    let cut_off_event = new_audit_event(&actor, AuditCategory::UserManagement, "user", before);
    let recent_event = new_audit_event(&actor, AuditCategory::UserManagement, "user", NOW);
    for event in [&old_event, &cut_off_event, &recent_event] {
        store.append_audit(event).await.expect("append_audit");
    }

    let removed = store.purge_logs(before).await.expect("purge_logs");
    assert!(
        removed >= 2,
        "at least this check's old record and old event are counted, got {removed}"
    );
    assert_eq!(
        records(store, by_user(&upn)).await,
        vec![recent_record, cut_off_record],
        "only sign-in records older than the cut-off are removed"
    );
    assert_eq!(
        events(store, by_user(&actor.0)).await,
        vec![recent_event, cut_off_event],
        "only audit events older than the cut-off are removed"
    );
}

// --- The authenticator app ---------------------------------------------------------------

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
    }
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

pub async fn device_round_trips_and_updates(store: &dyn Store) {
    let user = stored_user(store).await;
    let device = new_device(&user.id);
    let approval = new_approval(&device);
    let activation = new_activation(&user.id, &random_hex(16));
    store
        .put_activation(&activation)
        .await
        .expect("put_activation");
    store
        .redeem_activation(&activation.code_hash, NOW, &device, &approval, 10)
        .await
        .expect("redeem")
        .expect("redeemed");
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
    let activation = new_activation(&user.id, &random_hex(16));
    store.put_activation(&activation).await.unwrap();
    store
        .redeem_activation(
            &activation.code_hash,
            NOW,
            &device,
            &new_approval(&device),
            10,
        )
        .await
        .unwrap();
    let nonce = random_hex(16);
    let (a, b) = tokio::join!(
        store.use_device_nonce(&device.id, &nonce, NOW.plus_seconds(60)),
        store.use_device_nonce(&device.id, &nonce, NOW.plus_seconds(60)),
    );
    assert_eq!(
        [a.unwrap(), b.unwrap()].iter().filter(|&&ok| ok).count(),
        1,
        "a replayed nonce is refused, even concurrently"
    );
}

async fn stored_approval(store: &dyn Store) -> (Device, Approval) {
    let user = stored_user(store).await;
    let device = new_device(&user.id);
    let approval = new_approval(&device);
    let activation = new_activation(&user.id, &random_hex(16));
    store.put_activation(&activation).await.unwrap();
    store
        .redeem_activation(&activation.code_hash, NOW, &device, &approval, 10)
        .await
        .unwrap()
        .expect("redeemed");
    (device, approval)
}

pub async fn concurrent_answers_settle_an_approval_once(store: &dyn Store) {
    let (device, approval) = stored_approval(store).await;
    assert_eq!(
        store.pending_approvals(&device.user_id).await.unwrap(),
        vec![approval.clone()]
    );
    let (a, b) = tokio::join!(
        store.settle_approval(
            &approval.id,
            ApprovalState::Approved,
            Some(&device.id),
            NOW,
            None
        ),
        store.settle_approval(
            &approval.id,
            ApprovalState::Denied,
            Some(&device.id),
            NOW,
            None
        ),
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
        store
            .settle_approval(
                &approval.id,
                ApprovalState::Denied,
                Some(&device.id),
                NOW,
                Some(&record)
            )
            .await
            .unwrap()
    );
    // A second settle (with a new record) neither changes the state nor logs.
    let again = new_sign_in_record(upn.as_str(), NOW);
    assert!(
        !store
            .settle_approval(
                &approval.id,
                ApprovalState::Approved,
                Some(&device.id),
                NOW,
                Some(&again)
            )
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
        store
            .settle_approval(
                &approval.id,
                ApprovalState::Denied,
                Some(&device.id),
                NOW,
                Some(&record)
            )
            .await
            .is_err()
    );
    assert_eq!(
        store.approval(&approval.id).await.unwrap().unwrap().state,
        ApprovalState::Pending,
        "an outcome that cannot be logged does not happen"
    );
}

pub async fn a_sign_in_completes_at_most_once(store: &dyn Store) {
    let user = stored_user(store).await;
    let pending = PendingSignIn::start(None, Some("/myapps".into()), NOW);
    store.put_sign_in(&pending).await.unwrap();
    let first = new_session(&user.id);
    store
        .complete_sign_in(
            &first,
            &pending.id,
            &new_sign_in_record(user.upn.as_str(), NOW),
        )
        .await
        .expect("the first completion");
    let second = new_session(&user.id);
    let result = store
        .complete_sign_in(
            &second,
            &pending.id,
            &new_sign_in_record(user.upn.as_str(), NOW),
        )
        .await;
    assert!(matches!(result, Err(StoreError::Conflict(_))), "{result:?}");
    assert_eq!(
        store.session(&second.id).await.unwrap(),
        None,
        "a second completion starts no second session"
    );
}

pub async fn reported_risk_is_recorded_and_dismissed_once(store: &dyn Store) {
    use latchkey_domain::risk::{RiskDetection, RiskState, USER_REPORTED_SUSPICIOUS_ACTIVITY};
    let user = stored_user(store).await;
    assert_eq!(store.user_risk(&user.id).await.unwrap(), None);
    let detection = RiskDetection {
        id: random_hex(16),
        user_id: user.id.clone(),
        risk_event_type: USER_REPORTED_SUSPICIOUS_ACTIVITY.into(),
        detected_date_time: NOW,
        ip_address: Some("203.0.113.9".into()),
        location: None,
        app_display_name: Some("Conformance App".into()),
        device_name: Some("phone".into()),
    };
    store.record_risk(&detection).await.expect("record_risk");
    let risk = store.user_risk(&user.id).await.unwrap().expect("at risk");
    assert_eq!(risk.state, RiskState::AtRisk);
    assert!(
        store
            .risky_users()
            .await
            .unwrap()
            .iter()
            .any(|r| r.user_id == user.id)
    );
    assert_eq!(
        store.risk_detections(&user.id).await.unwrap(),
        vec![detection]
    );
    let (a, b) = tokio::join!(
        store.dismiss_risk(&user.id, NOW.plus_seconds(5)),
        store.dismiss_risk(&user.id, NOW.plus_seconds(5)),
    );
    assert!(a.unwrap() ^ b.unwrap(), "a risk is dismissed once");
    assert_eq!(
        store.user_risk(&user.id).await.unwrap().unwrap().state,
        RiskState::Dismissed
    );
}

pub async fn throttle_counts_to_its_limit_even_when_raced_and_starts_over_each_window(
    store: &dyn Store,
) {
    let key = format!("conformance:{}", random_hex(8));
    let window = 600;
    let at = Timestamp(NOW.0 - NOW.0.rem_euclid(window));
    let tries =
        futures_join_all((0..8).map(|_| store.take_throttle_slot(&key, at, window, 5))).await;
    let allowed = tries.into_iter().filter(|t| *t.as_ref().unwrap()).count();
    assert_eq!(allowed, 5, "never more than the limit, even when raced");
    assert_eq!(store.throttle_count(&key, at, window).await.unwrap(), 5);
    store.release_throttle_slot(&key, at, window).await.unwrap();
    assert_eq!(store.throttle_count(&key, at, window).await.unwrap(), 4);
    assert!(store.take_throttle_slot(&key, at, window, 5).await.unwrap());
    assert!(!store.take_throttle_slot(&key, at, window, 5).await.unwrap());
    let next = at.plus_seconds(window);
    assert_eq!(store.throttle_count(&key, next, window).await.unwrap(), 0);
    assert!(
        store
            .take_throttle_slot(&key, next, window, 5)
            .await
            .unwrap(),
        "a new window starts from zero"
    );
    assert_eq!(store.throttle_count(&key, next, window).await.unwrap(), 1);
}

/// Runs the futures concurrently on the current task and collects their outputs in order.
async fn futures_join_all<F: std::future::Future>(
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

pub async fn only_one_sign_in_approval_waits_per_user_even_when_raced(store: &dyn Store) {
    let (device, first) = stored_approval(store).await;
    let blocked = new_approval(&device);
    assert!(
        !store
            .put_approval_if_none_waiting(&blocked, NOW)
            .await
            .unwrap(),
        "a pending sign-in approval blocks another"
    );
    assert_eq!(store.approval(&blocked.id).await.unwrap(), None);
    store
        .settle_approval(&first.id, ApprovalState::Denied, None, NOW, None)
        .await
        .unwrap();
    let (a, b) = (new_approval(&device), new_approval(&device));
    let (one, two) = tokio::join!(
        store.put_approval_if_none_waiting(&a, NOW),
        store.put_approval_if_none_waiting(&b, NOW),
    );
    assert!(
        one.unwrap() ^ two.unwrap(),
        "exactly one of two racing sign-ins notifies"
    );
    let later = new_approval(&device);
    let after_expiry = NOW.plus_seconds(90);
    assert!(
        store
            .put_approval_if_none_waiting(&later, after_expiry)
            .await
            .unwrap(),
        "an expired request no longer blocks a new one"
    );
}

// --- Sign-in history -----------------------------------------------------------------------

/// A country stays familiar once the user signed in from it, and one user's countries never
/// make another user's sign-in look familiar.
pub async fn sign_in_countries_are_remembered_once_each_and_per_user(store: &dyn Store) {
    let user = stored_user(store).await;
    let other = stored_user(store).await;
    assert_eq!(
        store.sign_in_history(&user.id).await.unwrap(),
        SignInHistory::default(),
        "a new user has no history"
    );
    store
        .remember_sign_in_country(&user.id, "GB", NOW)
        .await
        .expect("remember_sign_in_country");
    store
        .remember_sign_in_country(&user.id, "AU", NOW.plus_seconds(10))
        .await
        .unwrap();
    store
        .remember_sign_in_country(&user.id, "GB", NOW.plus_seconds(20))
        .await
        .expect("the same country again is not an error");
    let history = store.sign_in_history(&user.id).await.unwrap();
    assert_eq!(history.countries, vec!["AU".to_string(), "GB".to_string()]);
    assert_eq!(history.last_refusal, None);
    assert_eq!(
        store.sign_in_history(&other.id).await.unwrap(),
        SignInHistory::default(),
        "countries belong to their user"
    );
}

/// The window after a refusal runs from the latest one: a write that arrives late with an
/// older time must not shorten it.
pub async fn the_latest_refusal_is_kept_even_when_an_older_one_arrives_late(store: &dyn Store) {
    let user = stored_user(store).await;
    store
        .remember_refusal(&user.id, NOW.plus_seconds(60))
        .await
        .expect("remember_refusal");
    store.remember_refusal(&user.id, NOW).await.unwrap();
    assert_eq!(
        store.sign_in_history(&user.id).await.unwrap().last_refusal,
        Some(NOW.plus_seconds(60))
    );
    store
        .remember_refusal(&user.id, NOW.plus_seconds(120))
        .await
        .unwrap();
    assert_eq!(
        store.sign_in_history(&user.id).await.unwrap().last_refusal,
        Some(NOW.plus_seconds(120))
    );
}

/// History is only ever written for a user who exists.
pub async fn sign_in_history_of_an_unknown_user_is_not_found(store: &dyn Store) {
    let nobody = UserId::random();
    let country = store.remember_sign_in_country(&nobody, "GB", NOW).await;
    assert!(
        matches!(country, Err(StoreError::NotFound)),
        "a country for a missing user: {country:?}"
    );
    let refusal = store.remember_refusal(&nobody, NOW).await;
    assert!(
        matches!(refusal, Err(StoreError::NotFound)),
        "a refusal of a missing user: {refusal:?}"
    );
    assert_eq!(
        store.sign_in_history(&nobody).await.unwrap(),
        SignInHistory::default()
    );
}

// --- Administration and tokens --------------------------------------------------------------

fn new_admin_token(hash: TokenHash) -> AdminToken {
    AdminToken {
        id: AdminTokenId::random(),
        name: "conformance".into(),
        hash,
        legacy_sha256: false,
        created_at: NOW,
        created_by: "system".into(),
        expires_at: Some(NOW.plus_seconds(3600)),
        last_used_at: None,
        revoked_at: None,
        revoked_by: None,
    }
}

pub async fn admin_tokens_are_found_by_hash_revoked_once_and_touched_at_most_once_a_period(
    store: &dyn Store,
) {
    let before = store.count_admin_tokens().await.unwrap();
    let token = new_admin_token(TokenHash::keyed(b"key", random_token().expose()));
    store
        .create_admin_token(&token)
        .await
        .expect("create_admin_token");
    assert_eq!(
        store.admin_token_by_hash(&token.hash).await.unwrap(),
        Some(token.clone()),
        "a stored token round-trips and is found by its hash"
    );
    assert_eq!(
        store
            .admin_token_by_hash(&TokenHash::of(random_token().expose()))
            .await
            .unwrap(),
        None,
        "an unknown hash finds nothing"
    );
    assert!(matches!(
        store.create_admin_token(&token).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.count_admin_tokens().await.unwrap(), before + 1);
    assert!(
        store
            .list_admin_tokens()
            .await
            .unwrap()
            .iter()
            .any(|t| t.id == token.id)
    );

    store
        .touch_admin_token(&token.id, NOW.plus_seconds(10), NOW.plus_seconds(-50))
        .await
        .unwrap();
    let used = |t: Option<AdminToken>| t.and_then(|t| t.last_used_at);
    assert_eq!(
        used(store.admin_token(&token.id).await.unwrap()),
        Some(NOW.plus_seconds(10))
    );
    // A second use within the period changes nothing.
    store
        .touch_admin_token(&token.id, NOW.plus_seconds(20), NOW.plus_seconds(-40))
        .await
        .unwrap();
    assert_eq!(
        used(store.admin_token(&token.id).await.unwrap()),
        Some(NOW.plus_seconds(10))
    );

    assert!(
        store
            .revoke_admin_token(&token.id, NOW.plus_seconds(30), "user:a@b.example")
            .await
            .unwrap()
    );
    assert!(
        !store
            .revoke_admin_token(&token.id, NOW.plus_seconds(40), "user:c@d.example")
            .await
            .unwrap(),
        "revoking twice changes nothing"
    );
    let revoked = store.admin_token(&token.id).await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(NOW.plus_seconds(30)));
    assert_eq!(revoked.revoked_by.as_deref(), Some("user:a@b.example"));
    assert!(
        !store
            .revoke_admin_token(&AdminTokenId::random(), NOW, "x")
            .await
            .unwrap()
    );
}

pub async fn legacy_admin_token_hashes_are_replaced_once(store: &dyn Store) {
    let secret = random_token();
    let legacy = AdminToken {
        legacy_sha256: true,
        ..new_admin_token(TokenHash::of(secret.expose()))
    };
    store.create_admin_token(&legacy).await.unwrap();
    let keyed = TokenHash::keyed(b"key", secret.expose());
    store.rehash_admin_token(&legacy.id, &keyed).await.unwrap();
    let now = store.admin_token_by_hash(&keyed).await.unwrap().unwrap();
    assert!(!now.legacy_sha256);
    assert_eq!(store.admin_token_by_hash(&legacy.hash).await.unwrap(), None);
    // A row that is no longer legacy is never rewritten.
    store
        .rehash_admin_token(&legacy.id, &TokenHash::of("other"))
        .await
        .unwrap();
    assert!(store.admin_token_by_hash(&keyed).await.unwrap().is_some());
}

pub async fn the_administrator_role_is_bound_to_one_group_id(store: &dyn Store) {
    let first = new_group();
    store.create_group(&first).await.unwrap();
    let second = new_group();
    store.create_group(&second).await.unwrap();
    store.bind_administrators_group(&first.id).await.unwrap();
    assert_eq!(store.administrators_group().await.unwrap(), Some(first.id));
    store.bind_administrators_group(&second.id).await.unwrap();
    assert_eq!(
        store.administrators_group().await.unwrap(),
        Some(second.id.clone())
    );
    assert!(matches!(
        store.bind_administrators_group(&GroupId::random()).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.administrators_group().await.unwrap(), Some(second.id));
}

pub async fn codes_and_refresh_tokens_are_read_without_being_spent(store: &dyn Store) {
    let grant = stored_grant(store).await;
    let code = new_code(&grant, NOW.plus_seconds(60));
    store.put_code(&code).await.unwrap();
    assert_eq!(store.code(&code.hash).await.unwrap(), Some(code.clone()));
    assert_eq!(store.code(&code.hash).await.unwrap(), Some(code.clone()));
    assert!(matches!(
        store.redeem_code(&code.hash).await.unwrap(),
        Redeemed::Fresh(_)
    ));
    assert_eq!(
        store.code(&code.hash).await.unwrap(),
        Some(code.clone()),
        "a spent code is still read"
    );
    let token = new_refresh_token(&grant, NOW.plus_seconds(60));
    store.put_refresh_token(&token).await.unwrap();
    assert_eq!(
        store.refresh_token(&token.hash).await.unwrap(),
        Some(token.clone())
    );
    assert!(matches!(
        store.redeem_refresh_token(&token.hash).await.unwrap(),
        Redeemed::Fresh(_)
    ));
    assert_eq!(
        store
            .refresh_token(&TokenHash::of("unknown"))
            .await
            .unwrap(),
        None
    );
}

// --- Limits on adding the authenticator app -------------------------------------------------

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

// --- Smart lockout ---------------------------------------------------------------------------

/// A place is familiar for the user who signed in from it, with its latest time; a user's
/// places last seen before the cut-off go when the user is next remembered somewhere.
pub async fn familiar_places_are_remembered_per_user_and_old_ones_forgotten(store: &dyn Store) {
    let user = stored_user(store).await;
    let other = stored_user(store).await;
    let place = "address:203.0.113.7";
    assert_eq!(
        store.familiar_place_seen(&user.id, place).await.unwrap(),
        None
    );
    store
        .remember_familiar_place(&user.id, place, NOW, Timestamp(0))
        .await
        .expect("remember_familiar_place");
    store
        .remember_familiar_place(&user.id, place, NOW.plus_seconds(60), Timestamp(0))
        .await
        .expect("the same place again is not an error");
    store
        .remember_familiar_place(&user.id, place, NOW.plus_seconds(30), Timestamp(0))
        .await
        .unwrap();
    assert_eq!(
        store.familiar_place_seen(&user.id, place).await.unwrap(),
        Some(NOW.plus_seconds(60)),
        "the latest time is kept"
    );
    assert_eq!(
        store.familiar_place_seen(&other.id, place).await.unwrap(),
        None,
        "places belong to their user"
    );
    store
        .remember_familiar_place(
            &user.id,
            "browser:abc",
            NOW.plus_seconds(120),
            NOW.plus_seconds(61),
        )
        .await
        .unwrap();
    assert_eq!(
        store.familiar_place_seen(&user.id, place).await.unwrap(),
        None,
        "a place not seen since the cut-off is forgotten"
    );
    assert_eq!(
        store
            .familiar_place_seen(&user.id, "browser:abc")
            .await
            .unwrap(),
        Some(NOW.plus_seconds(120))
    );
    let nobody = store
        .remember_familiar_place(&UserId::random(), place, NOW, Timestamp(0))
        .await;
    assert!(
        matches!(nobody, Err(StoreError::NotFound)),
        "a place of a missing user: {nobody:?}"
    );
}

/// A device with phone sign-in and a PIN record, stored through a redeemed activation.
async fn device_with_pin(store: &dyn Store) -> Device {
    let user = stored_user(store).await;
    let mut device = new_device(&user.id);
    let activation = new_activation(&user.id, &random_hex(16));
    store.put_activation(&activation).await.unwrap();
    store
        .redeem_activation(
            &activation.code_hash,
            NOW,
            &device,
            &new_approval(&device),
            10,
        )
        .await
        .unwrap()
        .expect("redeemed");
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
        store
            .record_pin_check(&device.id, false, 5, NOW)
            .await
            .unwrap(),
        PinCheck::Wrong { remaining: 4 }
    );
    assert_eq!(
        store
            .record_pin_check(&device.id, true, 5, NOW)
            .await
            .unwrap(),
        PinCheck::Right
    );
    assert_eq!(
        store
            .pin_lock(&device.id)
            .await
            .unwrap()
            .unwrap()
            .wrong_pins,
        0
    );
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
    let lock = store.pin_lock(&device.id).await.unwrap().unwrap();
    assert_eq!((lock.locked_at, lock.verifier_mac), (Some(NOW), None));
    assert_eq!(
        store
            .record_pin_check(&device.id, true, 5, NOW)
            .await
            .unwrap(),
        PinCheck::Locked
    );
    // Allowing it again is recorded; enabling again clears the lock.
    assert!(
        store
            .allow_phone_sign_in_again(&device.id, Timestamp(NOW.0 + 5))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .pin_lock(&device.id)
            .await
            .unwrap()
            .unwrap()
            .reenable_allowed_at,
        Some(Timestamp(NOW.0 + 5))
    );
    store
        .set_phone_sign_in(&device, Some("a new mac"))
        .await
        .unwrap();
    let lock = store.pin_lock(&device.id).await.unwrap().unwrap();
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
        store
            .record_pin_check(&device.id, false, 5, NOW)
            .await
            .unwrap(),
        PinCheck::Locked,
        "no record, nothing to count"
    );
    store.delete_device(&device.id).await.unwrap();
}
