//! Scratch schemas for tests: each test (of this crate, or of the server's integration suite)
//! works in a PostgreSQL schema of its own, so runs never collide and leave nothing behind.
//!
//! The database is the one `LATCHKEY_TEST_POSTGRES_URL` names (default
//! `postgres://postgres@127.0.0.1:5432/test`, the machines' trust-auth server).

use std::str::FromStr;

use latchkey_domain::secret::random_hex;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, Executor};

/// Where the tests' PostgreSQL is unless `LATCHKEY_TEST_POSTGRES_URL` says otherwise.
pub const DEFAULT_TEST_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The tests' database URL.
pub fn test_url() -> String {
    std::env::var("LATCHKEY_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_TEST_URL.to_string())
}

fn test_options() -> Result<PgConnectOptions, String> {
    PgConnectOptions::from_str(&test_url())
        .map_err(|_| "LATCHKEY_TEST_POSTGRES_URL is not a PostgreSQL URL".to_string())
}

/// A connection to the tests' database, or an error that says how to get one.
async fn connect() -> Result<PgConnection, String> {
    PgConnection::connect_with(&test_options()?)
        .await
        .map_err(|error| {
            format!(
                "PostgreSQL is not reachable at {} ({error}). Start it with `.ci/run` (which \
                 starts the local cluster with `pg_ctlcluster` when `pg_isready -h 127.0.0.1` \
                 fails), or point LATCHKEY_TEST_POSTGRES_URL at a database whose user may \
                 create schemas.",
                test_url()
            )
        })
}

/// A schema of its own (`lk_` and 16 hex digits) in the tests' database. Drop it with
/// [`drop_schema`](Self::drop_schema) once done; a test that panics leaves it behind, named so
/// it can be told apart (`DROP SCHEMA lk_… CASCADE`).
#[derive(Debug)]
pub struct ScratchSchema {
    name: String,
}

impl ScratchSchema {
    /// Creates the schema; fails with instructions when PostgreSQL is not reachable.
    pub async fn create() -> Result<ScratchSchema, String> {
        let name = format!("lk_{}", random_hex(8));
        let mut conn = connect().await?;
        // The name is made here of hex digits only, never input.
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .await
            .map_err(|e| format!("creating a scratch schema: {e}"))?;
        let _ = conn.close().await;
        Ok(ScratchSchema { name })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Connection options whose every connection works in this schema only.
    pub fn options(&self) -> PgConnectOptions {
        test_options()
            .unwrap_or_else(|_| PgConnectOptions::new())
            .options([("search_path", self.name.as_str())])
    }

    /// A database URL for this schema, as a server's `database_url`.
    pub fn url(&self) -> String {
        let base = test_url();
        let separator = if base.contains('?') { '&' } else { '?' };
        format!("{base}{separator}options%5Bsearch_path%5D={}", self.name)
    }

    /// How many device-event listeners (connections named
    /// [`LISTENER_APPLICATION_NAME`](super::events::LISTENER_APPLICATION_NAME)) listen on this
    /// schema's channel now.
    pub async fn listeners(&self) -> Result<i64, String> {
        self.on_listeners("count(*)").await
    }

    /// Ends the connection of every device-event listener on this schema's channel (as a
    /// failover or an administrator would); returns how many were ended.
    pub async fn end_listeners(&self) -> Result<i64, String> {
        self.on_listeners("count(pg_terminate_backend(pid))").await
    }

    async fn on_listeners(&self, what: &'static str) -> Result<i64, String> {
        let mut conn = connect().await?;
        // A listener's last statement is its `LISTEN "<prefix><schema>"`.
        let count = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
            "SELECT {what} FROM pg_stat_activity \
             WHERE application_name = $1 AND position($2 in query) > 0 AND pid <> pg_backend_pid()"
        )))
        .bind(super::events::LISTENER_APPLICATION_NAME)
        .bind(format!(
            "\"{}{}\"",
            super::events::CHANNEL_PREFIX,
            self.name
        ))
        .fetch_one(&mut conn)
        .await
        .map_err(|e| format!("reading pg_stat_activity: {e}"))?;
        let _ = conn.close().await;
        Ok(count)
    }

    /// Drops the schema and everything in it. Sessions still holding locks on its tables (a
    /// test's server stopped in the middle of a transaction, whose runtime will never roll it
    /// back) are ended first, and the drop waits at most 10 s for a lock, so a test's clean-up
    /// cannot hang.
    pub async fn drop_schema(self) -> Result<(), String> {
        let mut conn = connect().await?;
        conn.execute("SET lock_timeout = '10s'")
            .await
            .map_err(|e| format!("dropping a scratch schema: {e}"))?;
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM (SELECT DISTINCT l.pid FROM pg_locks l \
             JOIN pg_class c ON c.oid = l.relation \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND l.pid <> pg_backend_pid() \
             AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())) holders",
        )
        .bind(&self.name)
        .execute(&mut conn)
        .await
        .map_err(|e| format!("ending sessions in a scratch schema: {e}"))?;
        conn.execute(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA {} CASCADE",
            self.name
        )))
        .await
        .map_err(|e| format!("dropping the scratch schema {}: {e}", self.name))?;
        let _ = conn.close().await;
        Ok(())
    }
}
