//! The SQLite store: one database file, `<data_dir>/latchkey.db`.
//!
//! SQLite allows one writer at a time. Rather than let concurrent writers collide and retry on
//! `SQLITE_BUSY`, every write goes through a pool of exactly one connection and runs inside a
//! `BEGIN IMMEDIATE` transaction, which takes the write lock up front. That makes each write
//! method a serialised unit, which is what lets "spend this secret once" be a plain
//! read-then-update. Reads use a separate pool of read-only connections; in WAL mode they never
//! block, and are never blocked by, the writer.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use latchkey_domain::authenticator::Approval;
use latchkey_domain::error::StoreError;
use latchkey_domain::oidc::Redeemed;
use latchkey_domain::secret::TokenHash;
use latchkey_domain::signin::PendingSignIn;
use latchkey_domain::store::StoreResult;
use sqlx::error::ErrorKind;
use sqlx::migrate::Migrator;
use sqlx::query::Query;
use sqlx::sqlite::{
    Sqlite, SqliteArguments, SqliteConnectOptions, SqliteConnection, SqliteJournalMode,
    SqliteQueryResult, SqliteRow, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, Transaction};
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard, mpsc, oneshot};

mod admin_token;
mod application;
mod backup;
mod campaign;
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
mod throttle;
mod user;

#[cfg(test)]
mod tests;

pub use backup::backup_into;

/// The schema, embedded at compile time so a release binary carries its own migrations.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// The database file's name inside the data directory.
pub const DATABASE_FILE: &str = "latchkey.db";

/// How long a connection waits for a lock before giving up. Long enough to ride out a
/// checkpoint or a slow writer, short enough that a wedged database surfaces as an error.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Readers are cheap in WAL mode (a thread and a page cache each). A sign-in makes about 25
/// reads; with eight, sign-ins on a 2-core machine rarely wait for one (four gave 4 % fewer
/// sign-ins per second).
const READ_CONNECTIONS: u32 = 8;

/// One connection, used by one task at a time; `None` once the store is closed.
type Slot = Mutex<Option<SqliteConnection>>;

/// A connection lent to one task until the guard is dropped.
type Lent<'a> = MappedMutexGuard<'a, SqliteConnection>;

/// A [`Store`](latchkey_domain::store::Store) backed by a SQLite file. Cloning shares the connections.
///
/// The connections are held directly rather than in an `sqlx` pool: a pool pings each
/// connection on its thread every time it is given back, so every statement cost two
/// round trips to the connection's thread and a spawned task, and under sign-in load those
/// thread hand-offs were most of the server's CPU time (docs/performance.md). A local file
/// connection does not go stale, so nothing needs testing between uses. Lone writes go
/// through the writer task (`run_writes`), transactions take the write connection themselves.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    read: Arc<[Slot]>,
    write: Arc<Slot>,
    next_reader: Arc<AtomicUsize>,
    writes: mpsc::Sender<WriteJob>,
    /// Sign-ins in progress as last written here (see [`hot`]).
    sign_ins: Arc<hot::Hot<PendingSignIn>>,
    /// Approval requests as last written here.
    approvals: Arc<hot::Hot<Approval>>,
}

/// How many sign-ins and how many approvals are kept in memory at most (each about a kilobyte).
const HOT_ROWS: usize = 50_000;

fn lend(guard: MutexGuard<'_, Option<SqliteConnection>>) -> Result<Lent<'_>, sqlx::Error> {
    MutexGuard::try_map(guard, Option::as_mut).map_err(|_| sqlx::Error::PoolClosed)
}

type WriteResult = Result<SqliteQueryResult, sqlx::Error>;
type WriteAnswer = oneshot::Sender<WriteResult>;

/// A lone write statement waiting for the writer task, and where its result goes.
struct WriteJob {
    query: Query<'static, Sqlite, SqliteArguments>,
    done: WriteAnswer,
}

impl std::fmt::Debug for WriteJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteJob")
    }
}

/// At most this many lone writes share one transaction.
const MAX_BATCH: usize = 64;

/// At most this many lone writes wait for the writer; further callers wait to get in line
/// (back-pressure) instead of growing the queue without bound while the disk is slow.
pub(crate) const WRITE_QUEUE: usize = 1024;

/// Runs the store's lone writes (most of them: counters, inserts, single updates), taking
/// every write that is waiting and running them back to back in one transaction (group
/// commit). Each write then costs one round trip to the connection's thread, with no hand-off
/// of the write lock between callers, and the batch one commit, whose WAL frames hold each
/// page once however many of the writes touched it. A failed statement (a conflict, say) is
/// undone alone, as SQLite does for a statement inside a transaction, and reported to its
/// caller; every caller hears only after the commit, so nobody reads before their write is
/// in. A failed commit fails the whole batch. A write with nothing waiting beside it runs on
/// its own (SQLite makes a lone statement its own transaction, taking the write lock before
/// it reads). Ends when the store is dropped.
///
/// Some errors (SQLITE_FULL, IOERR, NOMEM, INTERRUPT, BUSY) make SQLite roll back the whole
/// transaction rather than the statement, after which later statements would run, and stay,
/// outside any transaction. `rolled_back` (set by the connection's rollback hook) tells the
/// writer when that happened: the batch's earlier writes are then reported failed (they are
/// gone) and its later ones run alone, each answered with its own outcome.
async fn run_writes(
    writer: Weak<Slot>,
    mut jobs: mpsc::Receiver<WriteJob>,
    rolled_back: Arc<AtomicBool>,
) {
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let Some(slot) = writer.upgrade() else { break };
        let mut guard = slot.lock().await;
        // Closed: dropping the batch tells every caller so.
        let Some(conn) = guard.as_mut() else { continue };
        if batch.len() == 1 {
            let job = batch.remove(0);
            let _ = job.done.send(job.query.execute(&mut *conn).await);
            continue;
        }
        rolled_back.store(false, Ordering::SeqCst);
        if let Err(error) = sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut *conn).await {
            for job in batch {
                let _ = job.done.send(Err(sqlx::Error::Protocol(format!(
                    "starting a batch of writes: {error}"
                ))));
            }
            continue;
        }
        let mut results: Vec<(WriteAnswer, WriteResult)> = Vec::with_capacity(batch.len());
        let mut transaction_lost = false;
        for job in batch {
            let result = job.query.execute(&mut *conn).await;
            if transaction_lost {
                // Outside a transaction now: this write stands (or failed) on its own.
                let _ = job.done.send(result);
                continue;
            }
            if let Err(error) = &result
                && rolled_back.load(Ordering::SeqCst)
            {
                transaction_lost = true;
                tracing::warn!(%error, "a write's error rolled back its whole batch");
                for (done, _) in results.drain(..) {
                    let _ = done.send(Err(sqlx::Error::Protocol(format!(
                        "the batch this write was in was rolled back: {error}"
                    ))));
                }
            }
            if transaction_lost {
                let _ = job.done.send(result);
            } else {
                results.push((job.done, result));
            }
        }
        if transaction_lost {
            continue;
        }
        match sqlx::raw_sql("COMMIT").execute(&mut *conn).await {
            Ok(_) => {
                for (done, result) in results {
                    let _ = done.send(result);
                }
            }
            Err(error) => {
                let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
                for (done, _) in results {
                    let _ = done.send(Err(sqlx::Error::Protocol(format!(
                        "committing a batch of writes: {error}"
                    ))));
                }
            }
        }
    }
}

/// How often the background checkpoint copies the WAL into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// The writer checkpoints by itself only past this many WAL pages (40 MiB), a safety net for
/// when the background checkpoints fall behind; SQLite's default is 1,000.
const WRITER_CHECKPOINT_PAGES: &str = "10000";

/// After a checkpoint, a WAL file larger than this is truncated back to it.
const WAL_KEEP_BYTES: &str = "67108864";

/// Copies committed pages from the WAL into the database file, on a connection of its own
/// so that the writer never waits for it. Left to SQLite, the commit that fills the WAL to
/// 1,000 pages runs the checkpoint and its two fsyncs while holding the write lock: under
/// sign-in load that was a fifth of the throughput. A passive checkpoint takes no lock that
/// writers or readers need. Ends once the store is dropped or closed.
async fn checkpoint_in_background(mut conn: SqliteConnection, writer: Weak<Slot>) {
    loop {
        tokio::time::sleep(CHECKPOINT_EVERY).await;
        match writer.upgrade() {
            Some(slot) if slot.try_lock().map_or(true, |open| open.is_some()) => {}
            _ => break,
        }
        if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&mut conn)
            .await
        {
            tracing::warn!(%error, "SQLite background checkpoint failed");
        }
    }
    let _ = conn.close().await;
}

/// Starts a write transaction that holds the database's write lock from the start, so two
/// writers never both read a row and then race to update it.
async fn begin(conn: &mut SqliteConnection) -> StoreResult<Transaction<'_, Sqlite>> {
    conn.begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(|e| backend("starting a write", e))
}

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

        let writer_options = SqliteConnectOptions::new()
            .filename(&file)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL is durable across application crashes in WAL mode; only a power loss can
            // lose the last transactions, which is the usual trade for far fewer fsyncs.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let mut write = writer_options
            .clone()
            // Checkpoints run beside the writer (see `checkpoint_in_background`); the writer
            // only checkpoints itself if those fall far behind.
            .pragma("wal_autocheckpoint", WRITER_CHECKPOINT_PAGES)
            .pragma("journal_size_limit", WAL_KEEP_BYTES)
            .connect()
            .await
            .map_err(|e| backend("opening the database", e))?;

        MIGRATOR
            .run(&mut write)
            .await
            .map_err(|e| StoreError::Backend(format!("migrating the database failed: {e}")))?;

        // Opened after the writer so the file exists and is already in WAL mode (a persistent
        // setting); read-only, so a bug can never write around the single-writer discipline.
        let reader_options = SqliteConnectOptions::new()
            .filename(&file)
            .read_only(true)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let mut read = Vec::new();
        for _ in 0..READ_CONNECTIONS {
            let conn = reader_options
                .connect()
                .await
                .map_err(|e| backend("opening the database for reading", e))?;
            read.push(Mutex::new(Some(conn)));
        }

        let checkpointer = writer_options
            .pragma("wal_autocheckpoint", "0")
            .connect()
            .await
            .map_err(|e| backend("opening the database for checkpoints", e))?;
        // Tells the writer task when an error rolled back a whole batch (see `run_writes`).
        let rolled_back = Arc::new(AtomicBool::new(false));
        {
            let flag = rolled_back.clone();
            write
                .lock_handle()
                .await
                .map_err(|e| backend("opening the database", e))?
                .set_rollback_hook(move || flag.store(true, Ordering::SeqCst));
        }
        let write = Arc::new(Mutex::new(Some(write)));
        tokio::spawn(checkpoint_in_background(
            checkpointer,
            Arc::downgrade(&write),
        ));
        let (writes, jobs) = mpsc::channel(WRITE_QUEUE);
        tokio::spawn(run_writes(Arc::downgrade(&write), jobs, rolled_back));

        tracing::debug!(path = %file.display(), "SQLite store opened");
        Ok(SqliteStore {
            read: read.into(),
            write,
            next_reader: Arc::new(AtomicUsize::new(0)),
            writes,
            sign_ins: Arc::new(hot::Hot::new(HOT_ROWS)),
            approvals: Arc::new(hot::Hot::new(HOT_ROWS)),
        })
    }

    /// Closes every connection, waiting for those in use, so the WAL is checkpointed and the
    /// file can be reopened or copied cleanly. Later calls fail as a closed store.
    pub async fn close(&self) {
        for slot in self.read.iter().chain([&*self.write]) {
            if let Some(conn) = slot.lock().await.take() {
                let _ = conn.close().await;
            }
        }
    }

    /// The write connection, once no other task holds it.
    async fn write_lock(&self) -> StoreResult<Lent<'_>> {
        lend(self.write.lock().await).map_err(|e| backend("starting a write", e))
    }

    /// A read connection: the first idle one, or else the next in turn once it is free.
    async fn reader(&self) -> StoreResult<Lent<'_>> {
        for slot in self.read.iter() {
            if let Ok(guard) = slot.try_lock() {
                return lend(guard).map_err(read_error);
            }
        }
        let turn = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.read.len();
        lend(self.read[turn].lock().await).map_err(read_error)
    }

    /// Runs one write keyed by one value (`sql` has one `?`, bound to `key`), such as a
    /// delete or a revoke by id; `doing` names it in a backend error.
    async fn write_by_key(&self, sql: &'static str, key: &str, doing: &str) -> StoreResult<()> {
        let query = sqlx::query(sql).bind(key);
        self.execute(query).await.map_err(|e| backend(doing, e))?;
        Ok(())
    }

    /// Runs one write statement on its own, as one step of the writer task's next batch (see
    /// `run_writes`); answers once that batch is committed.
    async fn execute(
        &self,
        query: Query<'static, Sqlite, SqliteArguments>,
    ) -> Result<SqliteQueryResult, sqlx::Error> {
        let (done, result) = oneshot::channel();
        self.writes
            .send(WriteJob { query, done })
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        result.await.map_err(|_| sqlx::Error::PoolClosed)?
    }
}

/// Maps a database error to the port's vocabulary. `what` names the thing that already exists,
/// for a unique violation; it must never contain a secret or a secret's hash.
fn conflict_or_backend(what: &str, error: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &error {
        match db.kind() {
            ErrorKind::UniqueViolation => return StoreError::Conflict(what.to_string()),
            // A row referring to a user, group, application or grant that does not exist.
            ErrorKind::ForeignKeyViolation => return StoreError::NotFound,
            _ => {}
        }
    }
    backend(what, error)
}

/// A failure the caller cannot fix. sqlx's messages carry SQLite's text and column names,
/// never bound values, so they are safe to log and return.
fn backend(context: &str, error: sqlx::Error) -> StoreError {
    tracing::error!(context, error = %error, "SQLite store operation failed");
    StoreError::Backend(format!("{context}: {error}"))
}

fn read_error(error: sqlx::Error) -> StoreError {
    backend("reading", error)
}

/// A stored value that no longer decodes: the database was edited by hand or is corrupt.
fn corrupt(what: &str) -> StoreError {
    tracing::error!(what, "SQLite store holds a value it cannot decode");
    StoreError::Backend(format!("the stored {what} cannot be read"))
}

fn to_json(what: &str, value: serde_json::Result<String>) -> StoreResult<String> {
    value.map_err(|_| StoreError::Backend(format!("cannot encode the {what}")))
}

/// Whether a single-use row was spent before this redemption, and what it was.
enum Spend<T> {
    Fresh(T),
    Replayed(T),
    Unknown,
}

impl<T> From<Spend<T>> for Redeemed<T> {
    fn from(spend: Spend<T>) -> Self {
        match spend {
            Spend::Fresh(value) => Redeemed::Fresh(value),
            Spend::Replayed(value) => Redeemed::Replayed(value),
            Spend::Unknown => Redeemed::Unknown,
        }
    }
}

impl SqliteStore {
    /// Runs a read that finds at most one row by one key (`sql` names the table and the key
    /// column, `key` is bound to its one `?`), and decodes it. Every "by id" look-up of every
    /// port goes through here, so a read error is reported the same way everywhere.
    async fn read_by_key<T>(
        &self,
        sql: &'static str,
        key: &str,
        decode: fn(&SqliteRow) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        sqlx::query(sql)
            .bind(key)
            .fetch_optional(&mut *self.reader().await?)
            .await
            .map_err(read_error)?
            .as_ref()
            .map(decode)
            .transpose()
    }

    /// Runs a read that finds any number of rows, and decodes them in order.
    async fn read_all<'q, T>(
        &self,
        query: Query<'q, Sqlite, SqliteArguments>,
        decode: fn(&SqliteRow) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        query
            .fetch_all(&mut *self.reader().await?)
            .await
            .map_err(read_error)?
            .iter()
            .map(decode)
            .collect()
    }

    /// Spends a row of a single-use table (`codes` or `refresh_tokens`). `spend` flips the row
    /// only while it is unspent and returns it, in one statement, so of two concurrent
    /// redemptions exactly one gets the row back; the other then reads it to tell a replay from
    /// an unknown value. `spend` and `select` are fixed statements chosen by the caller, never
    /// input.
    async fn spend<T>(
        &self,
        spend: &'static str,
        select: &'static str,
        hash: &TokenHash,
        decode: fn(&SqliteRow) -> StoreResult<T>,
    ) -> StoreResult<Spend<T>> {
        let spent = sqlx::query(spend)
            .bind(hash.as_str())
            .fetch_optional(&mut *self.write_lock().await?)
            .await
            .map_err(|e| backend("redeeming", e))?;
        if let Some(row) = spent {
            return Ok(Spend::Fresh(decode(&row)?));
        }
        let row = sqlx::query(select)
            .bind(hash.as_str())
            .fetch_optional(&mut *self.reader().await?)
            .await
            .map_err(|e| backend("redeeming", e))?;
        match row {
            Some(row) => Ok(Spend::Replayed(decode(&row)?)),
            None => Ok(Spend::Unknown),
        }
    }
}
