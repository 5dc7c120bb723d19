//! The SQLite store: one database file, `<data_dir>/latchkey.db`.
//!
//! SQLite allows one writer at a time. Rather than let concurrent writers collide and retry on
//! `SQLITE_BUSY`, every write runs on one thread that owns the one write connection, inside a
//! `BEGIN IMMEDIATE` transaction, which takes the write lock up front. That makes each write
//! method a serialised unit, which is what lets "spend this secret once" be a plain
//! read-then-update. Reads use separate read-only connections; in WAL mode they never block,
//! and are never blocked by, the writer. How work reaches the connections is in [`db`].
//!
//! The statements run through rusqlite; sqlx (which the PostgreSQL store uses) only brings the
//! schema up to date when the store opens and takes backups, so both stores keep one migration
//! history format.

use std::path::Path;
use std::sync::Arc;

use latchkey_domain::authenticator::Approval;
use latchkey_domain::error::StoreError;
use latchkey_domain::oidc::Redeemed;
use latchkey_domain::secret::TokenHash;
use latchkey_domain::signin::PendingSignIn;
use latchkey_domain::store::StoreResult;
use rusqlite::{Connection, Row};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection as _};

#[cfg(test)]
use db::WRITE_QUEUE;
use db::{Db, DbError, Done, Stmt};
use db::{backend, conflict_or_backend, read_error};

mod admin_token;
mod application;
mod backup;
mod campaign;
mod db;
mod device;
mod device_authorization;
mod governance;
mod grant;
mod group;
mod hot;
mod maintenance;
mod passkey;
mod push;
mod rows;
mod session;
mod statements;
mod steady;
mod throttle;
mod user;

#[cfg(test)]
mod tests;

pub use backup::backup_into;

/// The schema, embedded at compile time so a release binary carries its own migrations.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// The database file's name inside the data directory.
pub const DATABASE_FILE: &str = "latchkey.db";

/// Readers are cheap in WAL mode (a page cache each) and run on the calling thread, so there
/// need be no more than threads that may read at once.
const READ_CONNECTIONS: usize = 8;

/// A [`Store`](latchkey_domain::store::Store) backed by a SQLite file. Cloning shares the
/// connections (see [`db`] for how reads and writes reach them).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    db: Arc<Db>,
    /// Sign-ins in progress as last written here (see [`hot`]).
    sign_ins: Arc<hot::Hot<PendingSignIn>>,
    /// Approval requests as last written here.
    approvals: Arc<hot::Hot<Approval>>,
    /// Users, devices and the policy as the database holds them (see [`steady`]).
    steady: Arc<steady::SteadyRows>,
}

/// How many sign-ins and how many approvals are kept in memory at most (each about a kilobyte).
const HOT_ROWS: usize = 50_000;

impl SqliteStore {
    /// Opens (creating if needed) the database in `data_dir` and brings its schema up to date.
    pub async fn open(data_dir: &Path) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::Backend(format!(
                "cannot create the data directory {}: {e}",
                data_dir.display()
            ))
        })?;
        let file = data_dir.join(DATABASE_FILE);

        // The schema is brought up to date on a connection of its own before the store's
        // connections open, so they all see it.
        let mut migrating = SqliteConnectOptions::new()
            .filename(&file)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(5))
            .connect()
            .await
            .map_err(|e| StoreError::Backend(format!("opening the database: {e}")))?;
        MIGRATOR
            .run(&mut migrating)
            .await
            .map_err(|e| StoreError::Backend(format!("migrating the database failed: {e}")))?;
        migrating
            .close()
            .await
            .map_err(|e| StoreError::Backend(format!("opening the database: {e}")))?;

        let db =
            Db::open(&file, READ_CONNECTIONS).map_err(|e| backend("opening the database", e))?;
        tracing::debug!(path = %file.display(), "SQLite store opened");
        Ok(SqliteStore {
            db,
            sign_ins: Arc::new(hot::Hot::new(HOT_ROWS)),
            approvals: Arc::new(hot::Hot::new(HOT_ROWS)),
            steady: Arc::new(steady::SteadyRows::new()),
        })
    }

    /// Closes every connection, waiting for those in use, so the WAL is checkpointed and the
    /// file can be reopened or copied cleanly. Later calls fail as a closed store.
    pub async fn close(&self) {
        self.db.close().await;
    }

    /// Runs `read` on a read connection, on this thread.
    fn read<T>(&self, read: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        self.db.read(read)
    }

    /// Runs `write` on the write connection, as one step of the writer's next batch, and
    /// answers once that batch is committed. Several statements that must stand or fall
    /// together open a savepoint (`conn.savepoint()`) and commit it, as a transaction.
    /// `doing` names the write in an error.
    async fn write<T: Send + 'static>(
        &self,
        doing: &'static str,
        write: impl FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        self.db.write(write, move |e| backend(doing, e)).await
    }

    /// Runs one write statement on its own, as one step of the writer's next batch; answers
    /// once that batch is committed.
    async fn execute(&self, stmt: Stmt) -> Result<Done, DbError> {
        self.db
            .write(move |conn| stmt.execute(conn).map_err(DbError::from), |e| e)
            .await
    }

    /// Runs one write keyed by one value (`sql` has one `?`, bound to `key`), such as a
    /// delete or a revoke by id; `doing` names it in a backend error.
    async fn write_by_key(&self, sql: &'static str, key: &str, doing: &str) -> StoreResult<()> {
        self.execute(db::stmt(sql).bind(key))
            .await
            .map_err(|e| backend(doing, e))?;
        Ok(())
    }
}

/// A stored value that no longer decodes: the database was edited by hand or is corrupt.
fn corrupt(what: &str) -> StoreError {
    tracing::error!(what, "SQLite store holds a value it cannot decode");
    StoreError::Backend(format!("the stored {what} cannot be read"))
}

fn to_json(what: &str, value: serde_json::Result<String>) -> StoreResult<String> {
    value.map_err(|_| StoreError::Backend(format!("cannot encode the {what}")))
}

impl SqliteStore {
    /// Runs a read that finds at most one row by one key (`sql` names the table and the key
    /// column, `key` is bound to its one `?`), and decodes it. Every "by id" look-up of every
    /// port goes through here, so a read error is reported the same way everywhere.
    async fn read_by_key<T>(
        &self,
        sql: &'static str,
        key: &str,
        decode: fn(&Row<'_>) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        let stmt = db::stmt(sql).bind(key);
        self.read(|conn| stmt.fetch_optional(conn, decode))
    }

    /// Reads through one of the caches of [`steady`].
    fn read_steady<T: Clone>(
        &self,
        rows: impl FnOnce(&steady::SteadyRows) -> &steady::Steady<T>,
        key: &str,
        read: impl FnOnce() -> StoreResult<Option<T>>,
    ) -> StoreResult<Option<T>> {
        // A closed store answers nothing, not even what it still holds in memory.
        if self.db.is_closed() {
            return Err(read_error(DbError::Closed));
        }
        rows(&self.steady).read_through(&self.db.generations, key, read)
    }

    /// Runs a read that finds at most one row, and decodes it.
    async fn read_one<T>(
        &self,
        stmt: Stmt,
        decode: impl Fn(&Row<'_>) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        self.read(|conn| stmt.fetch_optional(conn, decode))
    }

    /// Runs a read that finds any number of rows, and decodes them in order.
    async fn read_all<T>(
        &self,
        stmt: Stmt,
        decode: impl Fn(&Row<'_>) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        self.read(|conn| stmt.fetch_all(conn, decode))
    }

    /// Spends a row of a single-use table (`codes` or `refresh_tokens`) and, when it was
    /// unspent, runs `issue` in the same savepoint. `spend` flips the row only while it is
    /// unspent and returns it, in one statement, so of two concurrent redemptions exactly one
    /// gets the row back; the other then reads it to tell a replay from an unknown value, and
    /// issues nothing. `spend` and `select` are fixed statements chosen by the caller, never
    /// input. All of it runs on the writer, one trip there and back.
    async fn spend<T: Send + 'static>(
        &self,
        spend: &'static str,
        select: &'static str,
        hash: &TokenHash,
        decode: fn(&Row<'_>) -> StoreResult<T>,
        issue: Vec<(Stmt, &'static str)>,
    ) -> StoreResult<Redeemed<T>> {
        let hash = hash.as_str().to_owned();
        self.write("redeeming", move |conn| {
            let tx = conn.savepoint().map_err(|e| backend("redeeming", e))?;
            let Some(fresh) = db::stmt(spend)
                .bind(hash.as_str())
                .fetch_optional(&tx, decode)?
            else {
                return Ok(
                    match db::stmt(select).bind(hash).fetch_optional(&tx, decode)? {
                        Some(spent) => Redeemed::Replayed(spent),
                        None => Redeemed::Unknown,
                    },
                );
            };
            for (statement, conflict) in issue {
                statement
                    .execute(&tx)
                    .map_err(|e| conflict_or_backend(conflict, e))?;
            }
            tx.commit().map_err(|e| backend("redeeming", e))?;
            Ok(Redeemed::Fresh(fresh))
        })
        .await
    }
}
