//! Tests of what is particular to the PostgreSQL store (schemas, migrations, the pool); the
//! behaviour every store shares is checked by the conformance suite, run here on PostgreSQL.
//!
//! Each test gets a schema of its own (`lk_<random>`) in the database named by
//! `LATCHKEY_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`), dropped
//! when the test closes its store, so runs never collide.

use latchkey_domain::secret::random_hex;
use latchkey_domain::store::Store;

use super::scratch::ScratchSchema;
use super::*;
use crate::conformance;

/// A store in a scratch schema of its own, dropped after the test.
pub(crate) struct ScratchPostgres {
    store: PostgresStore,
    schema: ScratchSchema,
}

impl conformance::ScratchStore for ScratchPostgres {
    fn store(&self) -> &dyn Store {
        &self.store
    }

    async fn close(self) {
        self.store.close().await;
        self.schema
            .drop_schema()
            .await
            .expect("drop the scratch schema");
    }
}

pub(crate) async fn scratch_postgres() -> ScratchPostgres {
    let schema = ScratchSchema::create()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let store = PostgresStore::open_with(schema.options(), &PostgresSettings::default())
        .await
        .expect("open a PostgreSQL store in a scratch schema");
    ScratchPostgres { store, schema }
}

/// Every conformance check, one named test each, on a fresh schema.
mod conformance_suite {
    crate::store_conformance_tests!(super::scratch_postgres);
}

async fn scratch_schema() -> ScratchSchema {
    ScratchSchema::create()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The suite promises its checks can share a database; running them all twice on one proves it
/// on PostgreSQL too (where rows of one check are visible to the next).
#[tokio::test]
async fn the_conformance_suite_can_run_twice_on_one_database() {
    let schema = scratch_schema().await;
    let store = PostgresStore::open_with(schema.options(), &PostgresSettings::default())
        .await
        .expect("open");
    for round in 1..=2 {
        for check in conformance::CHECKS.iter().filter(|c| c.shares_a_database) {
            eprintln!("round {round}: {}", check.name);
            (check.run)(&store).await;
        }
    }
    store.close().await;
    schema.drop_schema().await.expect("drop");
}

/// Two instances starting at once on an empty database (a rolling deploy, two replicas): both
/// open, and each migration is applied exactly once. Without the advisory lock one would fail
/// on "relation already exists" or record a migration twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_at_once_migrate_once_and_both_open() {
    let schema = scratch_schema().await;
    let settings = PostgresSettings::default();
    let (a, b, c) = tokio::join!(
        PostgresStore::open_with(schema.options(), &settings),
        PostgresStore::open_with(schema.options(), &settings),
        PostgresStore::open_with(schema.options(), &settings),
    );
    let (a, b, c) = (a.expect("a"), b.expect("b"), c.expect("c"));
    let applied: Vec<(i64, bool)> =
        sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(a.pool())
            .await
            .expect("read the migrations table");
    let expected: Vec<(i64, bool)> = MIGRATOR.iter().map(|m| (m.version, true)).collect();
    assert_eq!(
        applied, expected,
        "every migration applied once, successfully"
    );
    for store in [&a, &b, &c] {
        latchkey_domain::store::MaintenanceStore::ping(store)
            .await
            .expect("every instance answers");
    }
    // Opening again later finds nothing to do.
    PostgresStore::open_with(schema.options(), &settings)
        .await
        .expect("reopen")
        .close()
        .await;
    for store in [a, b, c] {
        store.close().await;
    }
    schema.drop_schema().await.expect("drop");
}

/// A write stuck behind a lock that never goes (another instance wedged mid-transaction) fails
/// once the statement timeout passes, as a backend error, instead of holding the request and
/// its connection forever.
#[tokio::test]
async fn a_write_blocked_by_a_held_lock_fails_after_the_statement_timeout_instead_of_hanging() {
    use latchkey_domain::clock::Timestamp;
    use latchkey_domain::error::StoreError;
    use latchkey_domain::ids::UserId;
    use latchkey_domain::store::UserStore;
    use latchkey_domain::user::{Upn, User};

    let schema = scratch_schema().await;
    let settings = PostgresSettings {
        statement_timeout: std::time::Duration::from_millis(300),
        ..PostgresSettings::default()
    };
    let store = PostgresStore::open_with(schema.options(), &settings)
        .await
        .expect("open");
    let user = User {
        id: UserId::random(),
        upn: Upn::parse(&format!("locked-{}@example.com", random_hex(4))).expect("upn"),
        display_name: "Locked".into(),
        email: None,
        enabled: true,
        created_at: Timestamp(1_700_000_000),
    };
    store.create_user(&user).await.expect("create");

    let mut holder = sqlx::postgres::PgConnection::connect_with(&schema.options())
        .await
        .expect("connect");
    sqlx::raw_sql("BEGIN")
        .execute(&mut holder)
        .await
        .expect("begin");
    sqlx::query("SELECT id FROM users WHERE id = $1 FOR UPDATE")
        .bind(user.id.as_str())
        .execute(&mut holder)
        .await
        .expect("lock the row");

    let started = std::time::Instant::now();
    let blocked = store
        .update_user(&User {
            display_name: "Changed".into(),
            ..user.clone()
        })
        .await;
    let waited = started.elapsed();
    assert!(
        matches!(blocked, Err(StoreError::Backend(_))),
        "a write past the statement timeout is a backend error: {blocked:?}"
    );
    assert!(
        waited < std::time::Duration::from_secs(3),
        "the write gave up after about the timeout, not {waited:?}"
    );

    sqlx::raw_sql("ROLLBACK")
        .execute(&mut holder)
        .await
        .expect("rollback");
    let _ = holder.close().await;
    assert_eq!(
        store
            .user(&user.id)
            .await
            .expect("read")
            .expect("user")
            .display_name,
        "Locked",
        "the timed-out write changed nothing"
    );
    store.close().await;
    schema.drop_schema().await.expect("drop");
}

/// Pooled connections in steady use are not pinged before each statement (docs/postgres.md,
/// "Pool"). When the database ends them (a restart, a failover, an administrator), each costs
/// at most the one request that next uses it; the pool then opens fresh ones.
#[tokio::test]
async fn connections_the_database_ends_cost_at_most_one_failed_request_each_then_the_pool_recovers()
{
    use latchkey_domain::ids::UserId;
    use latchkey_domain::store::UserStore;

    const POOL: u32 = 3;
    let schema = scratch_schema().await;
    // A name of its own, so that only this test's connections are ended.
    let name = format!("lk-ended-{}", random_hex(6));
    let settings = PostgresSettings {
        max_connections: POOL,
        ..PostgresSettings::default()
    };
    let store = PostgresStore::open_with(schema.options().application_name(&name), &settings)
        .await
        .expect("open");
    let nobody = UserId::random();
    // Fill the pool: connections held at once are each opened.
    let mut held = Vec::new();
    for _ in 0..POOL {
        held.push(store.pool().acquire().await.expect("a connection"));
    }
    drop(held);
    assert!(store.user(&nobody).await.expect("a read before").is_none());

    let mut admin = sqlx::postgres::PgConnection::connect_with(&schema.options())
        .await
        .expect("connect");
    let ended: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind(&name)
    .fetch_one(&mut admin)
    .await
    .expect("end the pool's connections");
    let _ = admin.close().await;
    assert!(ended >= 1, "the pool had connections to end");

    let mut failed = 0;
    for _ in 0..(POOL * 2 + 3) {
        if store.user(&nobody).await.is_err() {
            failed += 1;
        }
        // The release of a failed connection (which drops it) runs after the request returns.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        failed <= ended,
        "{failed} requests failed for {ended} ended connections"
    );
    for _ in 0..3 {
        assert!(
            store
                .user(&nobody)
                .await
                .expect("the pool recovered")
                .is_none(),
            "reads answer again"
        );
    }
    store.close().await;
    schema.drop_schema().await.expect("drop");
}

/// A database URL can hold a password: an error about it (malformed, or a server that does not
/// answer) must never quote it, since errors reach logs and the console.
#[tokio::test]
async fn database_url_errors_never_reveal_the_password_in_it() {
    let password = "pw-Zq81-never-shown";
    let malformed = format!("postgres://admin:{password}@[not-a-host/latchkey");
    let error = PostgresStore::open(&malformed, &PostgresSettings::default())
        .await
        .expect_err("a malformed URL is refused")
        .to_string();
    assert!(!error.contains(password), "malformed URL error: {error}");

    // Nothing listens on port 1.
    let unreachable = format!("postgres://admin:{password}@127.0.0.1:1/latchkey");
    let settings = PostgresSettings {
        acquire_timeout: std::time::Duration::from_secs(2),
        ..PostgresSettings::default()
    };
    let error = PostgresStore::open(&unreachable, &settings)
        .await
        .expect_err("an unreachable server is an error")
        .to_string();
    assert!(
        !error.contains(password),
        "unreachable server error: {error}"
    );
    let error = migrate(&unreachable)
        .await
        .expect_err("migrate fails")
        .to_string();
    assert!(!error.contains(password), "migrate error: {error}");
}

#[test]
fn postgres_urls_are_told_apart_from_everything_else() {
    assert!(is_postgres_url("postgres://u@h/db"));
    assert!(is_postgres_url("PostgreSQL://u@h/db"));
    assert!(!is_postgres_url("sqlite:"));
    assert!(!is_postgres_url("mysql://u@h/db"));
    assert!(!is_postgres_url("postgres:/u"));
    assert!(is_valid_url("postgres://u@127.0.0.1:5432/db"));
    assert!(!is_valid_url("postgres://u@[bad/db"));
}
