//! `SessionStore`: Temporary Access Passes, sessions, sign-ins in progress and their outcomes.

use latchkey_domain::clock::Timestamp;
use latchkey_domain::credential::TemporaryAccessPass;
use latchkey_domain::error::StoreError;
use latchkey_domain::ids::{SessionId, UserId};
use latchkey_domain::log::{SignInError, SignInRecord};
use latchkey_domain::oidc::AuthorizationCode;
use latchkey_domain::secret::TokenHash;
use latchkey_domain::session::Session;
use latchkey_domain::signin::{PendingSignIn, SignInStage};
use latchkey_domain::store::{Familiar, Store};
use latchkey_domain::user::User;

use super::fixtures::{
    NOW, by_user, failed, grant_revoked, is_conflict, log_sign_in, new_code, new_grant, new_pass,
    new_session, new_sign_in, new_sign_in_record, records, session_revoked, stored_application,
    stored_grant, stored_session, stored_user, unique_name,
};

/// Whether the store accepts `hash` as `user`'s pass at `at` (recording the use if so).
async fn pass_works(store: &dyn Store, user: &UserId, hash: &TokenHash, at: Timestamp) -> bool {
    store.mark_pass_used(user, hash, at).await.unwrap()
}

/// A stored user with a pass of their own, already stored.
async fn stored_pass(
    store: &dyn Store,
    secret: &str,
    usable_once: bool,
) -> (User, TemporaryAccessPass) {
    let user = stored_user(store).await;
    let pass = new_pass(&user.id, secret, usable_once);
    store.put_pass(&pass).await.expect("put_pass");
    (user, pass)
}

/// Stores a fresh pass, uses it at `NOW` (which must work) and again at `later`: whether the
/// second use worked, and the use time the store kept for the pass.
async fn use_twice(
    store: &dyn Store,
    secret: &str,
    usable_once: bool,
    later: Timestamp,
) -> (bool, Option<Timestamp>) {
    let (user, pass) = stored_pass(store, secret, usable_once).await;
    assert!(
        pass_works(store, &user.id, &pass.hash, NOW).await,
        "the first use succeeds"
    );
    let again = pass_works(store, &user.id, &pass.hash, later).await;
    let kept = store
        .pass_for_user(&user.id)
        .await
        .unwrap()
        .expect("the pass is kept");
    (again, kept.used_at)
}

/// Issuing a new pass must kill the old one, or a leaked old pass stays usable.
pub async fn putting_a_pass_replaces_the_previous_one(store: &dyn Store) {
    let (user, old) = stored_pass(store, "old pass", false).await;
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
        !pass_works(store, &user.id, &old.hash, NOW).await,
        "the replaced pass can no longer be used"
    );
}

pub async fn one_time_pass_is_spent_once(store: &dyn Store) {
    let (again, used_at) = use_twice(store, "one-time pass", true, NOW.plus_seconds(1)).await;
    assert!(!again, "a second use fails");
    assert_eq!(
        used_at,
        Some(NOW),
        "the first use's time is recorded and not overwritten"
    );
}

/// Two sign-ins racing with the same one-time pass must not both get in.
pub async fn concurrent_use_of_a_one_time_pass_has_one_winner(store: &dyn Store) {
    let (user, pass) = stored_pass(store, "raced pass", true).await;
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
    let later = NOW.plus_seconds(30);
    let (again, used_at) = use_twice(store, "multi-use pass", false, later).await;
    assert!(again, "a multi-use pass works again");
    assert_eq!(used_at, Some(later), "the latest use is recorded");
}

pub async fn wrong_pass_is_not_marked_used(store: &dyn Store) {
    let (user, pass) = stored_pass(store, "right pass", true).await;
    assert!(
        !pass_works(store, &user.id, &TokenHash::of("wrong pass"), NOW).await,
        "a wrong pass is not accepted"
    );
    let other = stored_user(store).await;
    assert!(
        !pass_works(store, &other.id, &pass.hash, NOW).await,
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
    let (user, pass) = stored_pass(store, "deleted pass", false).await;
    store.delete_pass(&user.id).await.expect("delete_pass");
    assert_eq!(
        store.pass_for_user(&user.id).await.unwrap(),
        None,
        "a deleted pass is gone"
    );
    assert!(
        !pass_works(store, &user.id, &pass.hash, NOW).await,
        "a deleted pass cannot be used"
    );
    store
        .delete_pass(&user.id)
        .await
        .expect("deleting a missing pass is not an error");
}

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
        session_revoked(store, &revoked.id).await,
        "the session is revoked"
    );
    assert!(
        !session_revoked(store, &kept.id).await,
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
            session_revoked(store, session).await,
            "each of the user's sessions is revoked"
        );
    }
    assert!(
        grant_revoked(store, &grant.id).await,
        "the user's grants are revoked"
    );
    assert!(
        !grant_revoked(store, &bystander.id).await,
        "other users' grants live on"
    );
    assert!(
        !session_revoked(store, &bystander.session_id).await,
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
        .create_grant(&other_grant, None)
        .await
        .expect("create_grant");

    store
        .revoke_session_grants(&grant.session_id)
        .await
        .expect("revoke_session_grants");
    assert!(
        grant_revoked(store, &grant.id).await,
        "the session's grant is revoked"
    );
    assert!(
        !grant_revoked(store, &other_grant.id).await,
        "another session's grant lives on"
    );
}

/// A step-up moves the replaced session's grants to the new session: they then end with it.
pub async fn moved_grants_are_revoked_with_the_session_they_moved_to(store: &dyn Store) {
    let grant = stored_grant(store).await;
    let app = store
        .application(&grant.client_id)
        .await
        .unwrap()
        .expect("application");
    let new_session = stored_session(store, &grant.user_id).await;
    let bystander_session = stored_session(store, &grant.user_id).await;
    let bystander = new_grant(&grant.user_id, &app.client_id, &bystander_session.id);
    store
        .create_grant(&bystander, None)
        .await
        .expect("create_grant");

    store
        .move_session_grants(&grant.session_id, &new_session.id)
        .await
        .expect("move_session_grants");
    let moved = store.grant(&grant.id).await.unwrap().expect("grant");
    assert_eq!(
        moved.session_id, new_session.id,
        "the grant names the new session"
    );
    assert!(!moved.revoked, "moving does not revoke");
    store
        .revoke_session_grants(&grant.session_id)
        .await
        .expect("revoke_session_grants");
    assert!(
        !grant_revoked(store, &grant.id).await,
        "ending the old session no longer reaches the moved grant"
    );
    store
        .revoke_session_grants(&new_session.id)
        .await
        .expect("revoke_session_grants");
    assert!(
        grant_revoked(store, &grant.id).await,
        "ending the new session revokes it"
    );
    assert!(
        !grant_revoked(store, &bystander.id).await,
        "another session's grant lives on"
    );
}

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

/// What a completion makes familiar in these tests: an address, a browser and a country.
fn familiar() -> Familiar {
    Familiar {
        places: vec!["address:198.51.100.7".into(), "browser:conformance".into()],
        country: Some("NZ".into()),
        at: NOW,
        forget_before: Timestamp(NOW.0 - 86_400),
    }
}

/// Nothing familiar: a completion from nowhere known.
fn nothing_familiar() -> Familiar {
    Familiar {
        places: Vec::new(),
        country: None,
        at: NOW,
        forget_before: NOW,
    }
}

/// A successful sign-in is one step: the session starts, the sign-in in progress ends (so it
/// cannot be completed twice), the log says so, and its places and country become familiar
/// for the user (places not seen for long are forgotten in the same step).
pub async fn completed_sign_in_creates_session_removes_pending_and_logs(store: &dyn Store) {
    let user = stored_user(store).await;
    let pending = new_sign_in(NOW.plus_seconds(900));
    store.put_sign_in(&pending).await.expect("put_sign_in");
    let session = new_session(&user.id);
    let record = SignInRecord {
        user_id: Some(user.id.clone()),
        ..new_sign_in_record(user.upn.as_str(), NOW)
    };

    let stale = "address:192.0.2.1";
    store
        .remember_familiar_place(&user.id, stale, Timestamp(NOW.0 - 2 * 86_400), Timestamp(0))
        .await
        .expect("an old familiar place");

    store
        .complete_sign_in(&session, &pending.id, &record, &familiar(), None)
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
    for place in familiar().places {
        assert_eq!(
            store.familiar_place_seen(&user.id, &place).await.unwrap(),
            Some(NOW),
            "{place} is familiar from the completion on"
        );
    }
    assert_eq!(
        store.familiar_place_seen(&user.id, stale).await.unwrap(),
        None,
        "a place not seen since before the cut-off is forgotten"
    );
    assert_eq!(
        store.sign_in_history(&user.id).await.unwrap().countries,
        vec!["NZ".to_string()],
        "the sign-in's country is remembered"
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

    let result = store
        .complete_sign_in(&clash, &pending.id, &record, &familiar(), None)
        .await;
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
    for place in familiar().places {
        assert_eq!(
            store.familiar_place_seen(&user.id, &place).await.unwrap(),
            None,
            "a sign-in that did not happen makes {place} familiar to no one"
        );
    }
    assert!(
        store
            .sign_in_history(&user.id)
            .await
            .unwrap()
            .countries
            .is_empty(),
        "nor its country"
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
        .complete_sign_in(&session, &pending.id, &duplicate, &familiar(), None)
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
            &nothing_familiar(),
            None,
        )
        .await
        .expect("the first completion");
    let second = new_session(&user.id);
    let result = store
        .complete_sign_in(
            &second,
            &pending.id,
            &new_sign_in_record(user.upn.as_str(), NOW),
            &nothing_familiar(),
            None,
        )
        .await;
    assert!(matches!(result, Err(StoreError::Conflict(_))), "{result:?}");
    assert_eq!(
        store.session(&second.id).await.unwrap(),
        None,
        "a second completion starts no second session"
    );
}

/// An application's sign-in ends in its code in the same step: the grant and code are stored
/// with the session, and a completion that is refused (a second one, or one whose code cannot
/// be stored) stores neither the session nor the code, so no code outlives a session that
/// never started, and no session starts with a code missing.
pub async fn a_completion_stores_its_code_with_the_session_or_neither(store: &dyn Store) {
    let app = stored_application(store).await;
    let user = stored_user(store).await;
    let pending = PendingSignIn::start(None, Some("/myapps".into()), NOW);
    store.put_sign_in(&pending).await.unwrap();
    let record = || SignInRecord {
        user_id: Some(user.id.clone()),
        ..new_sign_in_record(user.upn.as_str(), NOW)
    };
    let session = new_session(&user.id);
    let grant = new_grant(&user.id, &app.client_id, &session.id);
    let code = new_code(&grant, NOW.plus_seconds(60));
    store
        .complete_sign_in(
            &session,
            &pending.id,
            &record(),
            &nothing_familiar(),
            Some((&grant, &code)),
        )
        .await
        .expect("a completion with its code");
    assert_eq!(
        store.session(&session.id).await.unwrap(),
        Some(session.clone())
    );
    assert_eq!(store.grant(&grant.id).await.unwrap(), Some(grant.clone()));
    assert_eq!(store.code(&code.hash).await.unwrap(), Some(code.clone()));

    // A second completion of the same sign-in stores no second code.
    let second = new_session(&user.id);
    let second_grant = new_grant(&user.id, &app.client_id, &second.id);
    let second_code = new_code(&second_grant, NOW.plus_seconds(60));
    let result = store
        .complete_sign_in(
            &second,
            &pending.id,
            &record(),
            &nothing_familiar(),
            Some((&second_grant, &second_code)),
        )
        .await;
    assert!(matches!(result, Err(StoreError::Conflict(_))), "{result:?}");
    assert_eq!(store.grant(&second_grant.id).await.unwrap(), None);
    assert_eq!(store.code(&second_code.hash).await.unwrap(), None);

    // A code that cannot be stored (its hash is taken) takes the session and the rest with it.
    let another = PendingSignIn::start(None, Some("/myapps".into()), NOW);
    store.put_sign_in(&another).await.unwrap();
    let third = new_session(&user.id);
    let third_grant = new_grant(&user.id, &app.client_id, &third.id);
    let clash = AuthorizationCode {
        grant_id: third_grant.id.clone(),
        ..code.clone()
    };
    let result = store
        .complete_sign_in(
            &third,
            &another.id,
            &record(),
            &familiar(),
            Some((&third_grant, &clash)),
        )
        .await;
    assert!(
        is_conflict(&result),
        "a taken code hash is a conflict, got {result:?}"
    );
    assert_eq!(
        store.session(&third.id).await.unwrap(),
        None,
        "no session without its code"
    );
    assert_eq!(
        store.grant(&third_grant.id).await.unwrap(),
        None,
        "nor its grant"
    );
    assert_eq!(
        store.sign_in(&another.id).await.unwrap(),
        Some(another),
        "the sign-in is still in progress"
    );
    assert_eq!(
        records(store, by_user(user.id.as_str())).await.len(),
        1,
        "only the completion that happened is logged"
    );
}
