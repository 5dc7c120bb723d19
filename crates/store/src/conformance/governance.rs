//! `GovernanceStore`: the sign-in and audit logs, the authentication methods policy, user risk
//! and sign-in history.

use latchkey_domain::anomaly::SignInHistory;
use latchkey_domain::clock::Timestamp;
use latchkey_domain::error::StoreError;
use latchkey_domain::ids::{ClientId, UserId};
use latchkey_domain::log::{
    AuditCategory, AuditEvent, LogQuery, SignInError, SignInRecord, StatusFilter,
};
use latchkey_domain::secret::random_hex;
use latchkey_domain::store::Store;

use super::fixtures::{
    NOW, by_user, current_policy_version, events, failed, is_conflict, json, log_sign_in,
    new_audit_event, new_sign_in_record, policy_audit_event, policy_version, records,
    stored_policy_json, stored_user, unique_actor, unique_name,
};

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

/// Before the first save there is no policy and the domain uses its defaults; the first save
/// must be version 1. The policy is global, so this holds only on a fresh store (it is listed
/// as `fresh`, so it never shares a database with the other checks).
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

/// An application refusing an unassigned user changes nothing but the log, which must still
/// show it exactly as written, and only once.
pub async fn a_sign_in_record_appended_on_its_own_is_listed(store: &dyn Store) {
    let upn = unique_name("unassigned");
    let record = failed(
        new_sign_in_record(&upn, NOW.plus_seconds(50)),
        SignInError::NotAssigned,
    );
    store
        .append_sign_in_record(&record)
        .await
        .expect("append_sign_in_record");
    assert_eq!(
        records(store, by_user(&upn)).await,
        vec![record.clone()],
        "the record reads back unchanged"
    );
    assert!(
        is_conflict(&store.append_sign_in_record(&record).await),
        "a taken record id is a conflict"
    );
    assert_eq!(records(store, by_user(&upn)).await.len(), 1);
}
