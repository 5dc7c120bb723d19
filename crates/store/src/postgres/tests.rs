//! Tests of what is particular to the PostgreSQL store (schemas, migrations, the pool); the
//! behaviour every store shares is checked by the conformance suite, run here on PostgreSQL.
//!
//! Each test gets a schema of its own (`lk_<random>`) in the database named by
//! `LATCHKEY_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`), dropped
//! when the test closes its store, so runs never collide.

use std::str::FromStr;

use latchkey_domain::secret::random_hex;
use latchkey_domain::store::Store;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, Executor};

use super::*;
use crate::conformance;

const DEFAULT_TEST_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

fn test_url() -> String {
    std::env::var("LATCHKEY_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_TEST_URL.to_string())
}

fn test_options() -> PgConnectOptions {
    PgConnectOptions::from_str(&test_url()).expect("LATCHKEY_TEST_POSTGRES_URL is a PostgreSQL URL")
}

/// A connection to the test database, or a failure that says how to get one.
async fn admin_connection() -> PgConnection {
    match PgConnection::connect_with(&test_options()).await {
        Ok(conn) => conn,
        Err(error) => panic!(
            "PostgreSQL is not reachable at {} ({error}). Start it with `.ci/run` (which runs \
             `pg_ctlcluster 15 main start` when `pg_isready -h 127.0.0.1` fails), or point \
             LATCHKEY_TEST_POSTGRES_URL at a database this user may create schemas in.",
            test_url()
        ),
    }
}

/// A schema of its own in the test database, dropped by `close`.
pub(crate) struct ScratchSchema {
    name: String,
}

impl ScratchSchema {
    pub(crate) async fn new() -> ScratchSchema {
        let name = format!("lk_{}", random_hex(8));
        let mut conn = admin_connection().await;
        // The name is made here of hex digits only, never input.
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .await
            .expect("create a scratch schema");
        let _ = conn.close().await;
        ScratchSchema { name }
    }

    /// Connection options whose every connection works in this schema only.
    pub(crate) fn options(&self) -> PgConnectOptions {
        test_options().options([("search_path", self.name.as_str())])
    }

    pub(crate) async fn drop_schema(self) {
        let mut conn = admin_connection().await;
        conn.execute(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA {} CASCADE",
            self.name
        )))
        .await
        .expect("drop a scratch schema");
        let _ = conn.close().await;
    }
}

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
        self.schema.drop_schema().await;
    }
}

pub(crate) async fn scratch_postgres() -> ScratchPostgres {
    let schema = ScratchSchema::new().await;
    let store = PostgresStore::open_with(schema.options(), &PostgresSettings::default())
        .await
        .expect("open a PostgreSQL store in a scratch schema");
    ScratchPostgres { store, schema }
}

/// Every conformance check, one named test each, on a fresh schema.
mod conformance_suite {
    crate::store_conformance_tests!(super::scratch_postgres);
}
