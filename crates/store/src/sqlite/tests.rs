//! Tests of what is particular to the SQLite store (files, WAL, the writer queue, migrations);
//! the behaviour every store shares is checked by the conformance suite.

use std::path::PathBuf;
use std::time::Duration;

use latchkey_domain::application::{Application, ClientKind, SigningAlg};
use latchkey_domain::clock::Timestamp;
use latchkey_domain::ids::{ClientId, GrantId, GroupId, SessionId, UserId};
use latchkey_domain::log::SignInRecord;
use latchkey_domain::oidc::{AccessToken, Grant, IssuedTokens, RefreshToken};
use latchkey_domain::policy::AuthenticationMethodsPolicy;
use latchkey_domain::secret::random_hex;
use latchkey_domain::session::AuthMethod;
use latchkey_domain::store::{
    ApplicationStore, GovernanceStore, GrantStore, GroupStore, MaintenanceStore, Store, UserStore,
};
use latchkey_domain::user::{Upn, User};

use super::statements::insert_sign_in_record;
use super::*;
use crate::conformance;

/// A fresh directory under the system temp dir, removed when dropped (even on panic).
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        TempDir(std::env::temp_dir().join(format!("latchkey-store-test-{}", random_hex(8))))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A store in a scratch directory of its own, removed after the test.
struct ScratchSqlite {
    store: SqliteStore,
    _dir: TempDir,
}

impl conformance::ScratchStore for ScratchSqlite {
    fn store(&self) -> &dyn Store {
        &self.store
    }

    async fn close(self) {
        self.store.close().await;
    }
}

async fn scratch_sqlite() -> ScratchSqlite {
    let dir = TempDir::new();
    let store = SqliteStore::open(&dir.0).await.expect("open");
    ScratchSqlite { store, _dir: dir }
}

/// Every conformance check, one named test each, on a fresh database.
mod conformance_suite {
    crate::store_conformance_tests!(super::scratch_sqlite);
}

/// The suite promises its checks can share a database; running them all twice on one proves it.
#[tokio::test]
async fn the_conformance_suite_can_run_twice_on_one_database() {
    let dir = TempDir::new();
    let store = SqliteStore::open(&dir.0).await.expect("open");
    for round in 1..=2 {
        for check in conformance::CHECKS.iter().filter(|c| c.shares_a_database) {
            eprintln!("round {round}: {}", check.name);
            (check.run)(&store).await;
        }
    }
    store.close().await;
}

#[tokio::test]
async fn rows_pointing_at_missing_parents_are_not_found() {
    let dir = TempDir::new();
    let store = SqliteStore::open(&dir.0).await.expect("open");
    let result = store
        .add_group_member(&GroupId::random(), &UserId::random())
        .await;
    assert!(
        matches!(result, Err(StoreError::NotFound)),
        "membership of a missing group: {result:?}"
    );
    let result = store
        .set_password_hash(&UserId::random(), Some("hash"))
        .await;
    assert!(
        matches!(result, Err(StoreError::NotFound)),
        "password of a missing user: {result:?}"
    );
    store.close().await;
}

#[tokio::test]
async fn deleting_an_application_ends_its_grants_and_tokens() {
    let dir = TempDir::new();
    let store = SqliteStore::open(&dir.0).await.expect("open");
    let now = Timestamp(1_700_000_000);
    let user = User {
        id: UserId::random(),
        upn: Upn::parse("cascade@conformance.example").unwrap(),
        display_name: "Cascade".into(),
        email: None,
        enabled: true,
        created_at: now,
    };
    store.create_user(&user).await.unwrap();
    let app = Application {
        client_id: ClientId::random(),
        display_name: "Cascade".into(),
        redirect_uris: vec!["https://app.example/cb".into()],
        post_logout_redirect_uris: vec![],
        kind: ClientKind::Public,
        id_token_alg: SigningAlg::ES256,
        home_url: None,
        required_strength: None,
        created_at: now,
        allowed_origins: Vec::new(),
        groups_claim: Default::default(),
        assignment_required: false,
        backchannel_logout_uri: None,
    };
    store.create_application(&app).await.unwrap();
    let grant = Grant {
        id: GrantId::random(),
        user_id: user.id.clone(),
        client_id: app.client_id.clone(),
        session_id: SessionId::random(),
        scopes: vec!["openid".into()],
        nonce: None,
        auth_time: now,
        method: AuthMethod::Password,
        created_at: now,
        revoked: false,
    };
    store.create_grant(&grant, None).await.unwrap();
    let token = RefreshToken {
        hash: TokenHash::of("refresh"),
        grant_id: grant.id.clone(),
        expires_at: now.plus_seconds(3600),
    };
    store.put_refresh_token(&token).await.unwrap();

    store.delete_application(&app.client_id).await.unwrap();
    assert_eq!(
        store.grant(&grant.id).await.unwrap(),
        None,
        "the grant went with its application"
    );
    assert_eq!(
        store
            .redeem_refresh_token(
                &token.hash,
                &IssuedTokens {
                    access: AccessToken {
                        hash: TokenHash::of("access"),
                        grant_id: grant.id.clone(),
                        expires_at: now.plus_seconds(600),
                        scopes: None,
                    },
                    refresh: None,
                },
            )
            .await
            .unwrap(),
        Redeemed::Unknown,
        "the refresh token went with its grant"
    );
    store.close().await;
}

fn some_user(name: &str) -> User {
    User {
        id: UserId::random(),
        upn: Upn::parse(&format!("{name}-{}@conformance.example", random_hex(4))).unwrap(),
        display_name: name.into(),
        email: None,
        enabled: true,
        created_at: Timestamp(1_700_000_000),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_more_tasks_than_connections_all_get_their_turn_without_deadlock() {
    // Forty tasks on five connections, each writing and then reading back: a task that
    // waited for a connection it already held, or a connection never given back, hangs.
    let dir = TempDir::new();
    let store = SqliteStore::open(&dir.0).await.expect("open");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let store = store.clone();
        tasks.spawn(async move {
            let user = some_user(&format!("crowd{i}"));
            store.create_user(&user).await.unwrap();
            let found = store.user_by_upn(&user.upn).await.unwrap();
            assert_eq!(found, Some(user));
        });
    }
    let all = async {
        while let Some(done) = tasks.join_next().await {
            done.expect("a task failed");
        }
    };
    tokio::time::timeout(Duration::from_secs(30), all)
        .await
        .expect("every task finished");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflicting_write_fails_alone_when_batched_with_others() {
    // Writes that arrive together share one transaction. A duplicate in the middle of
    // them must fail on its own: the writes around it stay, and the caller of each one
    // hears its own outcome.
    let dir = TempDir::new();
    let store = SqliteStore::open(&dir.0).await.expect("open");
    let taken = some_user("taken");
    store.create_user(&taken).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..60 {
        let store = store.clone();
        let user = if i % 10 == 5 {
            User {
                id: UserId::random(),
                ..taken.clone()
            }
        } else {
            some_user(&format!("batch{i}"))
        };
        tasks.spawn(async move { (user.clone(), store.create_user(&user).await) });
    }
    let (mut created, mut refused) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        let (user, result) = done.unwrap();
        let stored = store.user_by_upn(&user.upn).await.unwrap();
        match result {
            Ok(()) => {
                created += 1;
                assert_eq!(stored, Some(user), "a write reported done is there");
            }
            Err(StoreError::Conflict(_)) => {
                refused += 1;
                assert_eq!(
                    stored,
                    Some(taken.clone()),
                    "the refused write changed nothing"
                );
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((created, refused), (54, 6));
    store.close().await;
}

#[tokio::test]
async fn committed_pages_reach_the_database_file_without_a_writer_checkpointing() {
    // The writer checkpoints only past 20,000 WAL pages, so a few hundred rows reach the
    // main file only through the background checkpoint; without it the WAL would grow
    // until that safety net.
    let dir = TempDir::new();
    let store = SqliteStore::open(&dir.0).await.expect("open");
    let size = || std::fs::metadata(dir.0.join(DATABASE_FILE)).unwrap().len();
    tokio::time::sleep(db::CHECKPOINT_EVERY * 2).await;
    let before = size();
    for i in 0..300 {
        store
            .create_user(&some_user(&format!("bulk{i}")))
            .await
            .unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while size() <= before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the database file stayed at {before} bytes: nothing was checkpointed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    store.close().await;
}

#[tokio::test]
async fn a_write_that_panics_is_undone_and_the_writer_goes_on() {
    let dir = TempDir::new();
    let store = SqliteStore::open(&dir.0).await.expect("open");
    let before = some_user("before");
    store.create_user(&before).await.unwrap();
    let panicked = tokio::time::timeout(
        Duration::from_secs(5),
        store.write("test", |conn| -> StoreResult<()> {
            conn.execute_batch("DELETE FROM users")
                .map_err(|e| backend("test", e))?;
            panic!("a bug in a write");
        }),
    )
    .await
    .expect("answers at once");
    assert!(
        matches!(panicked, Err(StoreError::Backend(_))),
        "{panicked:?}"
    );
    let after = some_user("after");
    store
        .create_user(&after)
        .await
        .expect("later writes still run");
    assert_eq!(
        store.user_by_upn(&before.upn).await.unwrap(),
        Some(before),
        "what the panicking write did before it panicked was undone"
    );
    assert_eq!(store.user_by_upn(&after.upn).await.unwrap(), Some(after));
    store.close().await;
}

#[tokio::test]
async fn a_store_whose_writer_is_gone_is_not_ready_although_it_still_reads() {
    let dir = TempDir::new();
    let store = SqliteStore::open(&dir.0).await.expect("open");
    store.ping().await.expect("ready while the writer runs");
    store.db.stop_writer().await;
    let user = some_user("after");
    assert!(matches!(
        store.create_user(&user).await,
        Err(StoreError::Backend(_))
    ));
    assert_eq!(
        store.user_by_upn(&user.upn).await.unwrap(),
        None,
        "reads still answer"
    );
    let ping = store.ping().await;
    assert!(matches!(ping, Err(StoreError::Backend(_))), "{ping:?}");
    store.close().await;
}

#[tokio::test]
async fn a_closed_store_refuses_reads_and_writes_instead_of_hanging() {
    let dir = TempDir::new();
    let store = SqliteStore::open(&dir.0).await.expect("open");
    let user = some_user("closed");
    store.create_user(&user).await.unwrap();
    // Read once, so a copy is kept in memory: that copy is not answered either.
    assert!(store.user_by_upn(&user.upn).await.unwrap().is_some());
    store.close().await;
    let read = tokio::time::timeout(Duration::from_secs(5), store.user_by_upn(&user.upn))
        .await
        .expect("answers at once");
    assert!(matches!(read, Err(StoreError::Backend(_))), "{read:?}");
    let write = tokio::time::timeout(Duration::from_secs(5), store.create_user(&some_user("x")))
        .await
        .expect("answers at once");
    assert!(matches!(write, Err(StoreError::Backend(_))), "{write:?}");
}

#[tokio::test]
async fn data_survives_a_restart() {
    let dir = TempDir::new();
    let upn = Upn::parse(&format!("restart-{}@conformance.example", random_hex(4))).unwrap();
    let user = User {
        id: UserId::random(),
        upn: upn.clone(),
        display_name: "Restart".into(),
        email: None,
        enabled: true,
        created_at: Timestamp(1_700_000_000),
    };
    let first = SqliteStore::open(&dir.0).await.expect("first open");
    first.create_user(&user).await.unwrap();
    let secret = first.server_secret("csrf", b"first").await.unwrap();
    first.close().await;

    // Reopening runs the migrations again; they must be a no-op on an up-to-date file.
    let second = SqliteStore::open(&dir.0).await.expect("second open");
    assert_eq!(
        second.user_by_upn(&upn).await.unwrap(),
        Some(user),
        "the user survives a restart"
    );
    assert_eq!(
        second.server_secret("csrf", b"second").await.unwrap(),
        secret,
        "server secrets survive a restart"
    );
    second.close().await;
    assert!(
        dir.0.join(DATABASE_FILE).exists(),
        "the database lives in the data directory"
    );
}

/// Upgrading to the sign-in history (0005) starts it from the successful sign-ins the log
/// still holds, so an existing user's usual countries are known at once.
#[tokio::test]
async fn the_sign_in_history_migration_starts_from_the_sign_in_log() {
    use latchkey_domain::location::Location;
    use latchkey_domain::log::{SignInError, SignInStatus};
    let dir = TempDir::new();
    let store = SqliteStore::open(&dir.0).await.expect("open");
    let user = User {
        id: UserId::random(),
        upn: Upn::parse("history@conformance.example").unwrap(),
        display_name: "History".into(),
        email: None,
        enabled: true,
        created_at: Timestamp(1_700_000_000),
    };
    store.create_user(&user).await.unwrap();
    let record = |user: &UserId, at: i64, country: Option<&str>, ok: bool| {
        let mut status = SignInStatus::success();
        if !ok {
            status.fail(SignInError::ApprovalDenied);
        }
        SignInRecord {
            id: random_hex(16),
            created_date_time: Timestamp(at),
            user_id: Some(user.clone()),
            user_principal_name: "history@conformance.example".into(),
            user_display_name: None,
            app_id: None,
            app_display_name: None,
            ip_address: None,
            location: country.map(|c| Location {
                country_code: Some(c.into()),
                ..Default::default()
            }),
            authentication_method: "authenticator".into(),
            status,
            authentication_details: vec![],
        }
    };
    let logged = [
        record(&user.id, 1_700_000_100, Some("GB"), true),
        record(&user.id, 1_700_000_300, Some("GB"), true),
        record(&user.id, 1_700_000_200, Some("au"), true),
        record(&user.id, 1_700_000_400, Some("FR"), false),
        record(&user.id, 1_700_000_500, None, true),
        record(&UserId::random(), 1_700_000_600, Some("DE"), true),
    ];
    for r in &logged {
        store
            .execute(insert_sign_in_record(r).unwrap())
            .await
            .unwrap();
    }
    // Back to the schema before 0005, with the log as it was.
    store
        .write("test", |conn| {
            conn.execute_batch(
                "DROP TABLE sign_in_countries; DROP TABLE sign_in_refusals; \
                 DELETE FROM _sqlx_migrations WHERE version = 5;",
            )
            .map_err(|e| backend("test", e))
        })
        .await
        .unwrap();
    store.close().await;

    let store = SqliteStore::open(&dir.0).await.expect("the upgrade runs");
    let history = store.sign_in_history(&user.id).await.unwrap();
    assert_eq!(
        history.countries,
        vec!["AU".to_string(), "GB".to_string()],
        "only successful sign-ins with a country, of users that exist"
    );
    let (first, last): (i64, i64) = store
        .read_one(
            db::stmt(
                "SELECT first_seen, last_seen FROM sign_in_countries WHERE user_id = ? AND country = 'GB'",
            )
            .bind(user.id.as_str()),
            |row| Ok((db::get(row, 0)?, db::get(row, 1)?)),
        )
        .await
        .unwrap()
        .expect("a row");
    assert_eq!((first, last), (1_700_000_100, 1_700_000_300));
    assert_eq!(history.last_refusal, None, "refusals start empty");
    store.close().await;
}

/// A policy saved before `suppressAnomalousNotificationsState` existed has no such field;
/// it must still load, with the switch at its default (off).
#[tokio::test]
async fn a_policy_stored_before_the_suppression_switch_still_loads() {
    let dir = TempDir::new();
    let store = SqliteStore::open(&dir.0).await.expect("open");
    let mut document =
        serde_json::to_value(AuthenticationMethodsPolicy::default()).expect("encode");
    document["version"] = 3.into();
    document["authenticator"]["featureSettings"]
        .as_object_mut()
        .unwrap()
        .remove("suppressAnomalousNotificationsState");
    store
        .execute(
            db::stmt("INSERT INTO policy (id, version, document) VALUES (1, 3, ?)")
                .bind(document.to_string()),
        )
        .await
        .unwrap();
    let loaded = store.policy().await.unwrap().expect("the stored policy");
    assert_eq!(loaded.version, 3);
    assert_eq!(
        loaded.authenticator.feature_settings,
        latchkey_domain::policy::AuthenticatorFeatures::default()
    );
    store.close().await;
}

#[tokio::test]
async fn open_creates_a_missing_data_directory() {
    let dir = TempDir::new();
    let nested = dir.0.join("a").join("b");
    let store = SqliteStore::open(&nested).await.expect("open");
    store.ping().await.unwrap();
    store.close().await;
    assert!(nested.join(DATABASE_FILE).exists());
}

#[tokio::test]
async fn the_database_is_in_wal_mode_with_foreign_keys_on() {
    let dir = TempDir::new();
    let store = SqliteStore::open(&dir.0).await.expect("open");
    let mode: String = store
        .read(|conn| {
            conn.query_row("PRAGMA journal_mode", [], |row| row.get(0))
                .map_err(read_error)
        })
        .unwrap();
    assert_eq!(mode.to_ascii_lowercase(), "wal");
    let fks: i64 = store
        .write("test", |conn| {
            conn.query_row("PRAGMA foreign_keys", [], |row| row.get(0))
                .map_err(read_error)
        })
        .await
        .unwrap();
    assert_eq!(fks, 1, "the writer enforces foreign keys");
    let fks: i64 = store
        .read(|conn| {
            conn.query_row("PRAGMA foreign_keys", [], |row| row.get(0))
                .map_err(read_error)
        })
        .unwrap();
    assert_eq!(fks, 1, "and so do the readers");
    store.close().await;
}

/// A scratch store with the writer tests' probe table, a table of numbers only they write.
async fn probe_store() -> ScratchSqlite {
    let scratch = scratch_sqlite().await;
    scratch
        .store
        .execute(db::stmt("CREATE TABLE batch_probe (n INTEGER NOT NULL)"))
        .await
        .unwrap();
    scratch
}

/// Counts the rows of the writer tests' probe table holding `n`.
async fn probe_rows(store: &SqliteStore, n: i64) -> i64 {
    store
        .read_one(
            db::stmt("SELECT count(*) FROM batch_probe WHERE n = ?").bind(n),
            |row| db::get(row, 0),
        )
        .await
        .unwrap()
        .expect("a count")
}

#[tokio::test]
async fn a_write_whose_error_rolls_back_its_batch_leaves_nothing_behind_that_was_reported_failed() {
    // SQLITE_INTERRUPT in a writing statement makes SQLite roll back the whole
    // transaction, as FULL, IOERR and NOMEM can: later writes of the batch then ran outside
    // any transaction and stayed, while their callers heard the batch failed.
    let ScratchSqlite { store, _dir } = probe_store().await;
    // Interrupts any statement that runs long; the probe's inserts never do.
    store
        .write("test", |conn| {
            conn.progress_handler(100_000, Some(|| true))
                .map_err(|e| backend("test", e))
        })
        .await
        .unwrap();
    let long = "INSERT INTO batch_probe SELECT -1 FROM (WITH RECURSIVE c(x) AS \
                (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 10000000) SELECT count(*) FROM c)";
    // Queued while the writer is held, so that it takes them as one batch.
    let release = store.db.hold_writer().await;
    let mut answers = Vec::new();
    for n in 1..=6i64 {
        let stmt = if n == 3 {
            db::stmt(long)
        } else {
            db::stmt("INSERT INTO batch_probe (n) VALUES (?)").bind(n)
        };
        let writer = store.clone();
        answers.push((n, tokio::spawn(async move { writer.execute(stmt).await })));
        while store.db.queued() < n as usize {
            tokio::task::yield_now().await;
        }
    }
    drop(release);
    let mut failed = 0;
    for (n, answer) in answers {
        let result = answer.await.unwrap();
        let kept = probe_rows(&store, n).await;
        match result {
            Ok(_) => assert_eq!(kept, 1, "write {n} was reported done but is not there"),
            Err(_) => {
                failed += 1;
                assert_eq!(kept, 0, "write {n} was reported failed but stayed");
            }
        }
    }
    assert!(failed >= 1, "the interrupted write failed");
    assert_eq!(probe_rows(&store, -1).await, 0);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_writes_waits_in_a_bounded_queue_instead_of_growing_memory() {
    let ScratchSqlite { store, _dir } = probe_store().await;
    // A stalled writer (a slow disk, say): nothing leaves the queue.
    let stalled = store.db.hold_writer().await;
    let callers = WRITE_QUEUE * 2 + db::MAX_BATCH;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..callers {
        let store = store.clone();
        tasks.spawn(async move {
            store
                .execute(db::stmt("INSERT INTO batch_probe (n) VALUES (7)"))
                .await
        });
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let queued = store.db.queued();
    assert!(
        queued <= WRITE_QUEUE,
        "{queued} writes queued; the queue holds {WRITE_QUEUE}"
    );
    assert_eq!(
        store.db.queued(),
        WRITE_QUEUE,
        "the rest wait to get in line"
    );
    drop(stalled);
    let all = async {
        while let Some(done) = tasks.join_next().await {
            done.unwrap().expect("a queued write succeeds");
        }
    };
    tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .expect("every write finished");
    assert_eq!(probe_rows(&store, 7).await, callers as i64);
    store.close().await;
}

/// A new user with one device (a terminal authenticator), both stored.
async fn stored_user_and_device(
    store: &SqliteStore,
    name: &str,
) -> (User, latchkey_domain::authenticator::Device) {
    use latchkey_domain::authenticator::Device;
    use latchkey_domain::ids::DeviceId;
    use latchkey_protocol::DeviceKeyPair;
    use latchkey_protocol::wire::AppKind;

    let user = some_user(name);
    store.create_user(&user).await.unwrap();
    let device = Device {
        id: DeviceId::random(),
        user_id: user.id.clone(),
        name: "Phone".into(),
        key: DeviceKeyPair::generate().expect("key").public_key(),
        passwordless_key: None,
        created_at: Timestamp(1_700_000_000),
        confirmed_at: None,
        phone_sign_in_at: None,
        app: AppKind::Terminal,
        webauthn: None,
    };
    let insert = super::statements::insert_device(&device);
    store
        .write("adding a device", move |conn| {
            insert
                .execute(conn)
                .map_err(|e| backend("adding a device", e))
        })
        .await
        .unwrap();
    (user, device)
}

/// Threat: a disabled account, a renamed or removed device, or a device deleted with its user,
/// still used from a copy kept in memory ([`super::steady`]). Every write reaches the copies,
/// the rows a foreign key's cascade deletes included.
#[tokio::test]
async fn users_and_devices_kept_in_memory_follow_every_write_including_cascades() {
    use latchkey_domain::authenticator::Device;
    use latchkey_domain::store::DeviceStore;

    let scratch = scratch_sqlite().await;
    let store = &scratch.store;
    let (user, device) = stored_user_and_device(store, "steady").await;
    let name_of = |found: Option<Device>| found.map(|d| d.name);
    // Read everything twice, so the second answers come from memory.
    for _ in 0..2 {
        assert_eq!(store.user(&user.id).await.unwrap(), Some(user.clone()));
        assert_eq!(
            store.user_by_upn(&user.upn).await.unwrap(),
            Some(user.clone())
        );
        assert_eq!(
            name_of(store.device(&device.id).await.unwrap()),
            Some("Phone".into())
        );
        assert_eq!(store.devices_of_user(&user.id).await.unwrap().len(), 1);
    }

    let disabled = User {
        enabled: false,
        ..user.clone()
    };
    store.update_user(&disabled).await.unwrap();
    assert_eq!(store.user(&user.id).await.unwrap(), Some(disabled.clone()));
    assert_eq!(store.user_by_upn(&user.upn).await.unwrap(), Some(disabled));

    let renamed = Device {
        name: "Renamed".into(),
        ..device.clone()
    };
    store.update_device(&renamed).await.unwrap();
    assert_eq!(
        name_of(store.device(&device.id).await.unwrap()),
        Some("Renamed".into())
    );
    assert_eq!(
        name_of(store.devices_of_user(&user.id).await.unwrap().pop()),
        Some("Renamed".into())
    );

    // The user's row deleted by hand: its device goes by `ON DELETE CASCADE`.
    let id = user.id.clone();
    store
        .write("deleting a user", move |conn| {
            db::stmt("DELETE FROM users WHERE id = ?")
                .bind(id.as_str())
                .execute(conn)
                .map_err(|e| backend("deleting a user", e))
        })
        .await
        .unwrap();
    assert_eq!(store.user(&user.id).await.unwrap(), None);
    assert_eq!(store.user_by_upn(&user.upn).await.unwrap(), None);
    assert_eq!(
        name_of(store.device(&device.id).await.unwrap()),
        None,
        "the cascade's delete reaches the device's copy"
    );
    assert!(store.devices_of_user(&user.id).await.unwrap().is_empty());
    store.close().await;
}

/// A push subscription, absent or present, is answered from memory and follows every write,
/// the cascade of a deleted device too.
#[tokio::test]
async fn subscriptions_kept_in_memory_follow_every_write_including_cascades() {
    use latchkey_domain::push::PushSubscription;
    use latchkey_domain::store::PushStore;

    let scratch = scratch_sqlite().await;
    let store = &scratch.store;
    let (_, device) = stored_user_and_device(store, "steady-push").await;
    // Absence, read twice so the second answer comes from memory.
    for _ in 0..2 {
        assert_eq!(store.push_subscription(&device.id).await.unwrap(), None);
    }
    let subscription = PushSubscription {
        device_id: device.id.clone(),
        endpoint: "https://push.example/steady".into(),
        p256dh: "key".into(),
        auth: "auth".into(),
        created_at: Timestamp(1_700_000_000),
    };
    store.put_push_subscription(&subscription).await.unwrap();
    for _ in 0..2 {
        assert_eq!(
            store.push_subscription(&device.id).await.unwrap(),
            Some(subscription.clone()),
            "a subscription added is seen at once"
        );
    }
    // The device's row deleted by hand: its subscription goes by `ON DELETE CASCADE`.
    let id = device.id.clone();
    store
        .write("deleting a device", move |conn| {
            db::stmt("DELETE FROM devices WHERE id = ?")
                .bind(id.as_str())
                .execute(conn)
                .map_err(|e| backend("deleting a device", e))
        })
        .await
        .unwrap();
    assert_eq!(
        store.push_subscription(&device.id).await.unwrap(),
        None,
        "the cascade's delete reaches the subscription's copy"
    );
    store.close().await;
}

/// The update hook that keeps cached rows true is not called for tables `WITHOUT ROWID`: none
/// of the tables kept in memory may be one.
#[tokio::test]
async fn every_table_kept_in_memory_is_a_rowid_table_whose_writes_the_hook_sees() {
    let scratch = scratch_sqlite().await;
    let store = &scratch.store;
    for (table, _) in super::steady::TABLES {
        let name = table.to_string();
        let sql: Option<String> = store
            .read(|conn| {
                db::stmt("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?")
                    .bind(name)
                    .fetch_optional(conn, |row| db::get::<String>(row, 0))
            })
            .unwrap();
        let sql = sql.unwrap_or_else(|| panic!("no table {table}"));
        assert!(
            !sql.to_ascii_uppercase().contains("WITHOUT ROWID"),
            "{table} is WITHOUT ROWID, so its writes would go unseen"
        );
    }
    store.close().await;
}
