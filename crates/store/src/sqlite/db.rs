//! The SQLite store's connections and how work reaches them.
//!
//! - **Reads** run on the calling thread, on one of a few read-only connections (WAL mode: a
//!   reader never waits for the writer). A read is a few microseconds of b-tree work on pages
//!   that are almost always cached; handing it to another thread and back cost more than the
//!   read itself (docs/performance.md).
//! - **Writes** run on the writer thread, which owns the one write connection. A write is a
//!   closure over that connection, so a whole store operation (a transaction of several
//!   statements, a spend and its replay check) crosses threads once. The thread takes every
//!   write waiting and runs them back to back in one transaction (group commit): one commit,
//!   one WAL append, however many callers. Each caller hears only after that commit.
//!
//! Statements are prepared once per connection and kept (`prepare_cached`); every value is a
//! bound parameter.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use latchkey_domain::error::StoreError;
use latchkey_domain::store::StoreResult;
use rusqlite::hooks::Action;
use rusqlite::types::{FromSql, Value};
use rusqlite::{Connection, OpenFlags, Row, RowIndex, params_from_iter};
use tokio::sync::{mpsc, oneshot};

use super::steady::Generations;

/// How long a connection waits for a lock before giving up. Long enough to ride out a
/// checkpoint, short enough that a wedged database surfaces as an error.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Prepared statements kept per connection (the store has about 150 distinct statements; the
/// hot paths use a few dozen).
const STATEMENT_CACHE: usize = 256;

/// At most this many writes share one transaction.
pub(super) const MAX_BATCH: usize = 64;

/// At most this many writes wait for the writer; further callers wait to get in line
/// (back-pressure) instead of growing the queue without bound while the disk is slow.
pub(super) const WRITE_QUEUE: usize = 1024;

/// How often the background checkpoint copies the WAL into the database file.
pub(super) const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// Once the WAL holds this many pages (32 MiB) and the background checkpoint has copied all
/// but a few of them, the writer finishes the checkpoint so the WAL starts again from the
/// beginning (see `checkpoint_in_background`).
const RESTART_WAL_PAGES: i64 = 8_000;

/// "A few": what the writer copies itself at most when it finishes a checkpoint.
const FINISH_AT_MOST_PAGES: i64 = 128;

/// Passes the background checkpoint makes in a row to get there.
const MAX_PASSES: u32 = 4;

/// The writer checkpoints by itself only past this many WAL pages (80 MiB), a safety net for
/// when the background checkpoints fall behind; SQLite's default is 1,000.
const WRITER_CHECKPOINT_PAGES: i64 = 20_000;

/// After a checkpoint, a WAL file larger than this is truncated back to it.
const WAL_KEEP_BYTES: i64 = 96 * 1024 * 1024;

/// The writer's page cache, in SQLite's negative-means-KiB form: 8 MiB, against SQLite's
/// default of 2 MiB, which had the writer reading pages back from the file for every batch.
/// Not larger: when an insert splits a b-tree page, SQLite swaps pages under a temporary
/// number past the end of the file (the lock-byte page's), so the commit that ends the
/// transaction walks the whole cache to drop pages past the end. At 64 MiB that walk was a
/// quarter of the writer's time (docs/performance.md, version 7).
const WRITER_CACHE_KIB: i64 = -8 * 1024;

/// Why a statement or a write did not happen.
#[derive(Debug)]
pub(super) enum DbError {
    Sqlite(rusqlite::Error),
    /// The store was closed (or its writer thread ended).
    Closed,
    /// The write ran, but the transaction it was part of did not commit.
    Lost(String),
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::Sqlite(error) => error.fmt(f),
            DbError::Closed => f.write_str("the store is closed"),
            DbError::Lost(why) => f.write_str(why),
        }
    }
}

impl From<rusqlite::Error> for DbError {
    fn from(error: rusqlite::Error) -> Self {
        DbError::Sqlite(error)
    }
}

impl DbError {
    /// The extended result code of a failed statement, if that is what this is.
    pub(super) fn extended_code(&self) -> Option<i32> {
        match self {
            DbError::Sqlite(rusqlite::Error::SqliteFailure(error, _)) => Some(error.extended_code),
            _ => None,
        }
    }
}

/// A value that can be bound to a `?` parameter.
pub(super) trait Bind {
    fn value(self) -> Value;
}

macro_rules! bind_via_into {
    ($($t:ty),*) => {$(
        impl Bind for $t {
            fn value(self) -> Value {
                Value::from(self)
            }
        }
    )*};
}
bind_via_into!(i64, i32, u32, u16, u8, bool, String, Vec<u8>, f64);

impl Bind for &str {
    fn value(self) -> Value {
        Value::Text(self.to_owned())
    }
}

impl Bind for &String {
    fn value(self) -> Value {
        Value::Text(self.clone())
    }
}

impl Bind for &[u8] {
    fn value(self) -> Value {
        Value::Blob(self.to_vec())
    }
}

impl Bind for u64 {
    /// SQLite integers are signed 64-bit; the store never binds a count past that.
    fn value(self) -> Value {
        Value::Integer(i64::try_from(self).unwrap_or(i64::MAX))
    }
}

impl<T: Bind> Bind for Option<T> {
    fn value(self) -> Value {
        self.map_or(Value::Null, Bind::value)
    }
}

/// How many rows a write changed.
#[derive(Debug, Clone, Copy)]
pub(super) struct Done(usize);

impl Done {
    pub(super) fn rows_affected(&self) -> u64 {
        self.0 as u64
    }
}

/// One statement and its bound values, owned so it can travel to the writer thread. The SQL is
/// fixed text chosen by the code (or assembled by [`SqlBuilder`] from fixed pieces), never
/// input.
#[derive(Debug, Clone)]
pub(super) struct Stmt {
    sql: std::borrow::Cow<'static, str>,
    values: Vec<Value>,
}

/// A statement of fixed SQL whose `?`s are bound in order with [`Stmt::bind`].
pub(super) fn stmt(sql: &'static str) -> Stmt {
    Stmt {
        sql: std::borrow::Cow::Borrowed(sql),
        values: Vec::new(),
    }
}

impl Stmt {
    pub(super) fn bind(mut self, value: impl Bind) -> Stmt {
        self.values.push(value.value());
        self
    }

    /// Runs a statement that returns no rows.
    pub(super) fn execute(&self, conn: &Connection) -> rusqlite::Result<Done> {
        let mut prepared = conn.prepare_cached(&self.sql)?;
        Ok(Done(
            prepared.execute(params_from_iter(self.values.iter()))?,
        ))
    }

    /// Runs a statement and decodes its first row, if any.
    pub(super) fn fetch_optional<T>(
        &self,
        conn: &Connection,
        decode: impl Fn(&Row<'_>) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        Ok(self.fetch(conn, 1, decode)?.pop())
    }

    /// Runs a statement and decodes every row, in order.
    pub(super) fn fetch_all<T>(
        &self,
        conn: &Connection,
        decode: impl Fn(&Row<'_>) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        self.fetch(conn, usize::MAX, decode)
    }

    /// Runs a statement and decodes its rows, in order, up to `at_most` of them. A statement
    /// that changes rows (`… RETURNING`) has made every change by the time its first row is
    /// read.
    fn fetch<T>(
        &self,
        conn: &Connection,
        at_most: usize,
        decode: impl Fn(&Row<'_>) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        let mut prepared = conn.prepare_cached(&self.sql).map_err(read_error)?;
        let mut rows = prepared
            .query(params_from_iter(self.values.iter()))
            .map_err(read_error)?;
        let mut found = Vec::new();
        while found.len() < at_most
            && let Some(row) = rows.next().map_err(read_error)?
        {
            found.push(decode(row)?);
        }
        Ok(found)
    }
}

/// Builds a statement from fixed pieces of SQL and bound values, for filters that vary.
#[derive(Debug)]
pub(super) struct SqlBuilder {
    sql: String,
    values: Vec<Value>,
}

impl SqlBuilder {
    pub(super) fn new(sql: &'static str) -> SqlBuilder {
        SqlBuilder {
            sql: sql.to_owned(),
            values: Vec::new(),
        }
    }

    /// Appends fixed SQL text (never input).
    pub(super) fn push(&mut self, sql: &'static str) -> &mut SqlBuilder {
        self.sql.push_str(sql);
        self
    }

    /// Appends a `?` bound to `value`.
    pub(super) fn push_bind(&mut self, value: impl Bind) -> &mut SqlBuilder {
        self.sql.push('?');
        self.values.push(value.value());
        self
    }

    pub(super) fn build(self) -> Stmt {
        Stmt {
            sql: std::borrow::Cow::Owned(self.sql),
            values: self.values,
        }
    }
}

/// A column of a row, decoded; a column that is missing or of the wrong type is an error.
pub(super) fn get<T: FromSql>(row: &Row<'_>, column: impl RowIndex) -> StoreResult<T> {
    row.get(column).map_err(read_error)
}

/// A failure the caller cannot fix. SQLite's messages carry its text and column names, never
/// bound values, so they are safe to log and return.
pub(super) fn backend(context: &str, error: impl Into<DbError>) -> StoreError {
    let error = error.into();
    tracing::error!(context, error = %error, "SQLite store operation failed");
    StoreError::Backend(format!("{context}: {error}"))
}

pub(super) fn read_error(error: impl Into<DbError>) -> StoreError {
    backend("reading", error)
}

/// Maps a database error to the port's vocabulary. `what` names the thing that already exists,
/// for a unique violation; it must never contain a secret or a secret's hash.
pub(super) fn conflict_or_backend(what: &str, error: impl Into<DbError>) -> StoreError {
    let error = error.into();
    match error.extended_code() {
        Some(
            rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY,
        ) => StoreError::Conflict(what.to_string()),
        // A row referring to a user, group, application or grant that does not exist.
        Some(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => StoreError::NotFound,
        _ => backend(what, error),
    }
}

/// What a write tells its caller once its batch has committed (or has not).
type Answer = Box<dyn FnOnce(Option<String>) + Send>;

/// A write waiting for the writer thread: runs on the write connection and says whether it
/// succeeded, and how to answer its caller.
type Job = Box<dyn FnOnce(&mut Connection) -> (bool, Answer) + Send>;

/// What the writer thread is asked to do.
enum Work {
    Job(Job),
    /// Finish what is queued before this, close the connection and end.
    Stop,
}

/// One connection, used by one caller at a time; `None` once the store is closed.
type Slot = Mutex<Option<Connection>>;

/// The connections of one database file.
#[derive(Debug)]
pub(super) struct Db {
    readers: Box<[Slot]>,
    next_reader: AtomicUsize,
    writes: mpsc::Sender<Work>,
    closed: AtomicBool,
    /// Set by the background checkpoint when the writer should finish one (see
    /// `checkpoint_in_background`).
    finish_checkpoint: Arc<AtomicBool>,
    /// Lets `close` wait for the writer thread to finish and close its connection.
    writer_done: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
    /// Bumped by the writer as it changes the tables kept in memory (see [`super::steady`]).
    pub(super) generations: Arc<Generations>,
}

impl fmt::Debug for Work {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Work::Job(_) => "Work::Job",
            Work::Stop => "Work::Stop",
        })
    }
}

fn open_connection(file: &Path, flags: OpenFlags) -> Result<Connection, DbError> {
    let conn = Connection::open_with_flags(file, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    // A savepoint's journal (every write runs in one) and sorting space stay in memory: on
    // disk they were a temporary file created, written and unlinked many times a second.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

impl Db {
    /// Opens `readers` read-only connections, the writer and the checkpointer of `file`, which
    /// must exist and be in WAL mode already (the migrations made it so).
    pub(super) fn open(file: &Path, readers: usize) -> Result<Arc<Db>, DbError> {
        let writer = open_connection(file, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        // NORMAL is durable across application crashes in WAL mode; only a power loss can lose
        // the last transactions, which is the usual trade for far fewer fsyncs.
        writer.pragma_update(None, "journal_mode", "WAL")?;
        writer.pragma_update(None, "synchronous", "NORMAL")?;
        writer.pragma_update(None, "wal_autocheckpoint", WRITER_CHECKPOINT_PAGES)?;
        writer.pragma_update(None, "journal_size_limit", WAL_KEEP_BYTES)?;
        // The writer's cache stays valid across its own commits (a reader's is emptied by each
        // one), so a large one saves it reading back the pages it changes most.
        writer.pragma_update(None, "cache_size", WRITER_CACHE_KIB)?;
        // Every row the writer changes, cascades included, drops its table's copies in memory.
        let generations = Arc::new(Generations::default());
        let hooked = generations.clone();
        writer.update_hook(Some(move |_: Action, _: &str, table: &str, _: i64| {
            hooked.row_changed(table);
        }))?;
        // Read-only, so a bug can never write around the single-writer discipline.
        let readers = (0..readers)
            .map(|_| {
                open_connection(file, OpenFlags::SQLITE_OPEN_READ_ONLY).map(|c| Mutex::new(Some(c)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let checkpointer = open_connection(file, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        checkpointer.pragma_update(None, "synchronous", "NORMAL")?;
        checkpointer.pragma_update(None, "wal_autocheckpoint", 0)?;

        let (writes, jobs) = mpsc::channel(WRITE_QUEUE);
        let (done, writer_done) = std::sync::mpsc::channel();
        let finish_checkpoint = Arc::new(AtomicBool::new(false));
        let finish = finish_checkpoint.clone();
        let settled = generations.clone();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                run_writes(writer, jobs, &finish, &settled);
                let _ = done.send(());
            })
            .map_err(|e| DbError::Lost(format!("starting the writer thread: {e}")))?;
        let db = Arc::new(Db {
            readers: readers.into(),
            next_reader: AtomicUsize::new(0),
            writes,
            closed: AtomicBool::new(false),
            finish_checkpoint,
            writer_done: Mutex::new(Some(writer_done)),
            generations,
        });
        let watched = Arc::downgrade(&db);
        let database = file.to_path_buf();
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpoint_in_background(checkpointer, database, watched))
            .map_err(|e| DbError::Lost(format!("starting the checkpoint thread: {e}")))?;
        Ok(db)
    }

    /// Runs `read` on a read connection, on this thread: the first idle one, or else the next
    /// in turn once it is free.
    pub(super) fn read<T>(
        &self,
        read: impl FnOnce(&Connection) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let mut guard = None;
        for slot in self.readers.iter() {
            if let Ok(free) = slot.try_lock() {
                guard = Some(free);
                break;
            }
        }
        let guard = match guard {
            Some(guard) => guard,
            None => {
                let turn = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
                lock(&self.readers[turn])
            }
        };
        match guard.as_ref() {
            Some(conn) => read(conn),
            None => Err(read_error(DbError::Closed)),
        }
    }

    /// Runs `write` on the writer thread as part of its next batch, and answers once that batch
    /// has committed. A write of several statements that must stand or fall together opens a
    /// savepoint (`conn.savepoint()`) and commits it, exactly as it would a transaction; an
    /// error, or a savepoint dropped uncommitted, undoes it alone. `lost` turns "the batch did
    /// not commit" into the caller's error type.
    pub(super) async fn write<T, E>(
        &self,
        write: impl FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
        lost: impl Fn(DbError) -> E + Clone + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: Send + 'static,
    {
        let lost_here = lost.clone();
        let (answer, result) = oneshot::channel::<Result<T, E>>();
        let job: Job = Box::new(move |conn: &mut Connection| {
            let outcome = write(conn);
            let succeeded = outcome.is_ok();
            let answer: Answer = Box::new(move |failure: Option<String>| {
                let _ = answer.send(match failure {
                    None => outcome,
                    Some(why) if succeeded => Err(lost(DbError::Lost(why))),
                    // It failed by itself; its own error says more.
                    Some(_) => outcome,
                });
            });
            (succeeded, answer)
        });
        if self.writes.send(Work::Job(job)).await.is_err() {
            return Err(lost_here(DbError::Closed));
        }
        result
            .await
            .unwrap_or_else(|_| Err(lost_here(DbError::Closed)))
    }

    /// Whether [`Db::close`] was called: nothing may be read any more, from memory either.
    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Whether the writer thread has ended (closed, or gone for another reason): no write can
    /// be taken any more.
    pub(super) fn writer_stopped(&self) -> bool {
        self.writes.is_closed()
    }

    /// Closes every connection, waiting for reads and writes in progress, so the WAL is
    /// checkpointed and the file can be reopened or copied cleanly. Writes already queued
    /// still run; later calls fail as a closed store.
    pub(super) async fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        for slot in self.readers.iter() {
            if let Some(conn) = lock(slot).take() {
                let _ = conn.close();
            }
        }
        let receiver = lock(&self.writer_done).take();
        if let Some(receiver) = receiver {
            let _ = self.writes.send(Work::Stop).await;
            let _ = tokio::task::spawn_blocking(move || receiver.recv()).await;
        }
    }
}

/// Keeps the writer thread busy until dropped (tests of the queue and of batches).
#[cfg(test)]
pub(super) struct HeldWriter(#[allow(dead_code)] std::sync::mpsc::Sender<()>);

#[cfg(test)]
impl Db {
    /// Occupies the writer thread with a write that waits for the returned guard to drop;
    /// answers once the writer is inside it, so nothing queued after leaves the queue.
    pub(super) async fn hold_writer(&self) -> HeldWriter {
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (started, inside) = oneshot::channel();
        let job: Job = Box::new(move |_| {
            let _ = started.send(());
            let _ = held.recv();
            (true, Box::new(|_| ()))
        });
        assert!(
            self.writes.send(Work::Job(job)).await.is_ok(),
            "the writer is running"
        );
        inside.await.expect("the writer took the holding write");
        HeldWriter(release)
    }

    /// Ends the writer thread alone, as if it had died, leaving the readers open.
    pub(super) async fn stop_writer(&self) {
        let receiver = lock(&self.writer_done).take();
        assert!(
            self.writes.send(Work::Stop).await.is_ok(),
            "the writer is running"
        );
        if let Some(receiver) = receiver {
            let _ = tokio::task::spawn_blocking(move || receiver.recv()).await;
        }
    }

    /// How many writes wait in the queue.
    pub(super) fn queued(&self) -> usize {
        self.writes.max_capacity() - self.writes.capacity()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs the writes as they come, every write waiting at once in one transaction (group commit;
/// see the module's notes), until the store is closed or dropped.
///
/// A failed write is undone alone: a lone statement by SQLite's statement rollback, a write of
/// several statements by its savepoint. Some errors (SQLITE_FULL, IOERR, NOMEM, BUSY) make
/// SQLite roll back the whole transaction instead, after which later statements would run, and
/// stay, outside any transaction. The writer sees that (the connection is back in autocommit
/// mode): the batch's earlier writes are reported lost, and its later ones run alone, each
/// answered with its own outcome.
fn run_writes(
    mut conn: Connection,
    mut work: mpsc::Receiver<Work>,
    finish_checkpoint: &AtomicBool,
    generations: &Generations,
) {
    let mut stopping = false;
    while !stopping {
        let Some(Work::Job(first)) = work.blocking_recv() else {
            break;
        };
        if finish_checkpoint.swap(false, Ordering::SeqCst) {
            finish_the_checkpoint(&conn);
        }
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match work.try_recv() {
                Ok(Work::Job(job)) => batch.push(job),
                Ok(Work::Stop) => {
                    stopping = true;
                    break;
                }
                Err(_) => break,
            }
        }
        // Should the transaction not start, each write runs alone and answers for itself.
        let mut in_transaction = match conn.execute_batch("BEGIN IMMEDIATE") {
            Ok(()) => true,
            Err(error) => {
                tracing::error!(error = %error, "SQLite writer cannot start a transaction");
                false
            }
        };
        let mut answers: Vec<(bool, Answer)> = Vec::with_capacity(batch.len());
        for job in batch {
            // A write that panics (a bug) is dropped with its answer, so its caller hears of a
            // failure; whatever it wrote is undone with its batch, whose earlier writes are
            // reported failed, and the thread and the later writes go on, each alone.
            let Ok((succeeded, answer)) =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut conn)))
            else {
                tracing::error!("a SQLite write panicked; its batch is rolled back");
                if in_transaction {
                    if !conn.is_autocommit() {
                        let _ = conn.execute_batch("ROLLBACK");
                    }
                    in_transaction = false;
                    generations.settled();
                    batch_lost(&mut answers);
                }
                // A write outside a transaction may have committed part of itself.
                generations.settled();
                continue;
            };
            if !in_transaction {
                // Outside a transaction now: this write stands (or failed) on its own.
                generations.settled();
                answer(None);
                continue;
            }
            if !succeeded && conn.is_autocommit() {
                in_transaction = false;
                tracing::warn!("a write's error rolled back its whole batch");
                generations.settled();
                batch_lost(&mut answers);
                answer(None);
                continue;
            }
            answers.push((succeeded, answer));
        }
        if !in_transaction {
            continue;
        }
        match conn.execute_batch("COMMIT") {
            Ok(()) => {
                generations.settled();
                answers.into_iter().for_each(|(_, answer)| answer(None));
            }
            Err(error) => {
                let _ = conn.execute_batch("ROLLBACK");
                generations.settled();
                let why = format!("committing a batch of writes: {error}");
                answers
                    .into_iter()
                    .for_each(|(_, answer)| answer(Some(why.clone())));
            }
        }
    }
    if let Err((_, error)) = conn.close() {
        tracing::warn!(error = %error, "closing the SQLite write connection failed");
    }
}

/// Answers the writes of a batch that was rolled back: those that had succeeded are lost,
/// those that had failed keep their own error.
fn batch_lost(answers: &mut Vec<(bool, Answer)>) {
    for (succeeded, answer) in answers.drain(..) {
        answer(succeeded.then(|| "the batch this write was in was rolled back".to_string()));
    }
}

/// Copies committed pages from the WAL into the database file, on a connection of its own so
/// that the writer never waits for it. Left to SQLite, the commit that fills the WAL to 1,000
/// pages runs the checkpoint and its two fsyncs while holding the write lock: under sign-in
/// load that was a fifth of the throughput. A passive checkpoint takes no lock that writers or
/// readers need.
///
/// Under a steady stream of writes a passive checkpoint never quite catches up (new pages
/// arrive while it syncs), and SQLite starts the WAL again from its beginning only when a
/// write begins with every page copied. The WAL would grow until the writer's own safety-net
/// checkpoint copied 40 MiB and synced it while every write waited (a 50 ms stall a second
/// under load). So once the WAL is large, this checkpoint makes a few passes in a row until
/// all but a few pages are copied, syncs the database file (SQLite itself syncs it only after
/// a checkpoint that reached the end of the WAL), and asks the writer to finish: the writer
/// copies the rest (at most 128 pages, and a sync of only those) between two batches, and its
/// next write starts the WAL again. Ends once the store is closed or dropped.
fn checkpoint_in_background(conn: Connection, file: PathBuf, db: Weak<Db>) {
    let checkpoint = || {
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
        })
    };
    loop {
        std::thread::sleep(CHECKPOINT_EVERY);
        let finish = match db.upgrade() {
            Some(db) if !db.closed.load(Ordering::SeqCst) => db.finish_checkpoint.clone(),
            _ => break,
        };
        let mut passes = 0;
        let outcome = loop {
            passes += 1;
            match checkpoint() {
                // Each pass is shorter than the last (fewer pages arrived meanwhile), so a few
                // leave only what arrived during a short one.
                Ok((log, copied))
                    if log >= RESTART_WAL_PAGES
                        && log - copied > FINISH_AT_MOST_PAGES
                        && passes < MAX_PASSES => {}
                done => break done,
            }
        };
        match outcome {
            Ok((log, copied))
                if log >= RESTART_WAL_PAGES && log - copied <= FINISH_AT_MOST_PAGES =>
            {
                // SQLite syncs the database file only after a checkpoint that reached the end
                // of the WAL, which under load is the writer's. Syncing what was copied so far
                // here leaves the writer a sync of the few pages it copies itself.
                if let Err(error) = std::fs::File::open(&file).and_then(|f| f.sync_data()) {
                    tracing::warn!(%error, "syncing the SQLite database file failed");
                }
                finish.store(true, Ordering::SeqCst);
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "SQLite background checkpoint failed"),
        }
    }
    let _ = conn.close();
}

/// Copies what the background checkpoint has not yet, on the writer between two batches, so
/// that the next write starts the WAL again (see `checkpoint_in_background`).
fn finish_the_checkpoint(conn: &Connection) {
    if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
        tracing::warn!(%error, "SQLite checkpoint on the writer failed");
    }
}
