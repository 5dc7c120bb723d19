//! The conformance suite: what every [`Store`] must do, checked through the port alone.
//!
//! Each check is named after the behaviour it guarantees or the attack it stops, so a failure
//! reads as a broken promise rather than a broken line. Checks create their own rows with fresh
//! random ids and names, so they can share one database and run in any order.
//!
//! Two checks act on the whole database, not only on rows they created:
//! [`signing_keys_retire_except_kept`] retires every other unretired key, and
//! [`purge_removes_only_expired`] purges everything that expired before a date in 1970. Run the
//! suite against a scratch database, never a live one.

use latchkey_domain::application::{Application, ClientKind, SigningAlg};
use latchkey_domain::clock::Timestamp;
use latchkey_domain::credential::TemporaryAccessPass;
use latchkey_domain::error::StoreError;
use latchkey_domain::ids::{ClientId, GrantId, GroupId, SessionId, UserId};
use latchkey_domain::keys::SigningKey;
use latchkey_domain::oidc::{
    AccessToken, AuthorizationCode, AuthorizationRequest, Grant, Prompt, Redeemed, RefreshToken,
};
use latchkey_domain::secret::{TokenHash, random_hex, random_token};
use latchkey_domain::session::{AuthMethod, Session};
use latchkey_domain::signin::{PendingSignIn, SignInStage};
use latchkey_domain::store::Store;
use latchkey_domain::user::{Group, Upn, User};

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

    admin_tokens_are_found_by_hash(store).await;
    server_secret_is_created_once(store).await;

    purge_removes_only_expired(store).await;
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

pub async fn admin_tokens_are_found_by_hash(store: &dyn Store) {
    let before = store.count_admin_tokens().await.unwrap();
    let hash = TokenHash::of(random_token().expose());
    store
        .put_admin_token(&hash, "conformance", NOW)
        .await
        .expect("put_admin_token");
    assert!(
        store.admin_token_exists(&hash).await.unwrap(),
        "a stored token is found by its hash"
    );
    assert!(
        !store
            .admin_token_exists(&TokenHash::of(random_token().expose()))
            .await
            .unwrap(),
        "an unknown token is not found"
    );
    assert_eq!(
        store.count_admin_tokens().await.unwrap(),
        before + 1,
        "the count includes the new token"
    );
}

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
