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

use async_trait::async_trait;
use latchkey_domain::admin_token::AdminToken;
use latchkey_domain::anomaly::SignInHistory;
use latchkey_domain::application::{Application, ClientKind, SigningAlg};
use latchkey_domain::authenticator::{
    Activation, Approval, ApprovalState, Device, PinCheck, PinLock,
};
use latchkey_domain::clock::Timestamp;
use latchkey_domain::credential::TemporaryAccessPass;
use latchkey_domain::error::StoreError;
use latchkey_domain::ids::{
    ActivationId, AdminTokenId, ApprovalId, ClientId, DeviceId, GrantId, GroupId, KeyId, SessionId,
    SignInId, UserId,
};
use latchkey_domain::keys::SigningKey;
use latchkey_domain::log::{AuditEvent, LogQuery, SignInRecord, StatusFilter};
use latchkey_domain::oidc::{AccessToken, AuthorizationCode, Grant, Redeemed, RefreshToken};
use latchkey_domain::policy::AuthenticationMethodsPolicy;
use latchkey_domain::risk::{RiskDetection, RiskState, UserRisk};
use latchkey_domain::secret::TokenHash;
use latchkey_domain::session::{AuthMethod, Session};
use latchkey_domain::signin::PendingSignIn;
use latchkey_domain::store::{
    AdminTokenStore, ApplicationStore, DeviceStore, GovernanceStore, GrantStore, GroupStore,
    MaintenanceStore, SessionStore, StoreResult, ThrottleStore, UserStore,
};
use latchkey_domain::user::{Group, Upn, User};
use latchkey_protocol::PublicKey;
use serde_json::Value;
use sqlx::error::ErrorKind;
use sqlx::migrate::Migrator;
use sqlx::query::Query;
use sqlx::sqlite::{
    Sqlite, SqliteArguments, SqliteConnectOptions, SqliteConnection, SqliteJournalMode,
    SqliteQueryResult, SqliteRow, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, QueryBuilder, Row, Transaction};
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard, mpsc, oneshot};

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

/// A [`Store`] backed by a SQLite file. Cloning shares the connections.
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
}

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

fn get<'r, T>(row: &'r SqliteRow, column: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
{
    row.try_get(column).map_err(read_error)
}

fn timestamp(row: &SqliteRow, column: &str) -> StoreResult<Timestamp> {
    get::<i64>(row, column).map(Timestamp)
}

fn optional_timestamp(row: &SqliteRow, column: &str) -> StoreResult<Option<Timestamp>> {
    Ok(get::<Option<i64>>(row, column)?.map(Timestamp))
}

/// Enums are stored as their serde names, so the text in the database matches the JSON the
/// domain would produce and survives variant reordering.
fn method_text(method: AuthMethod) -> StoreResult<String> {
    match serde_json::to_value(method) {
        Ok(Value::String(text)) => Ok(text),
        _ => Err(StoreError::Backend(
            "cannot encode the authentication method".into(),
        )),
    }
}

fn method_from(row: &SqliteRow) -> StoreResult<AuthMethod> {
    serde_json::from_value(Value::String(get(row, "method")?))
        .map_err(|_| corrupt("authentication method"))
}

/// Stored UPNs were validated on the way in; decoding them without re-validating keeps old rows
/// readable even if the domain's UPN rules tighten later.
fn upn_from(row: &SqliteRow) -> StoreResult<Upn> {
    serde_json::from_value(Value::String(get(row, "upn")?))
        .map_err(|_| corrupt("user principal name"))
}

fn string_list(row: &SqliteRow, column: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(&get::<String>(row, column)?).map_err(|_| corrupt(column))
}

fn user_from(row: &SqliteRow) -> StoreResult<User> {
    Ok(User {
        id: UserId::from_string(get::<String>(row, "id")?),
        upn: upn_from(row)?,
        display_name: get(row, "display_name")?,
        email: get(row, "email")?,
        enabled: get(row, "enabled")?,
        created_at: timestamp(row, "created_at")?,
    })
}

fn group_from(row: &SqliteRow) -> StoreResult<Group> {
    Ok(Group {
        id: GroupId::from_string(get::<String>(row, "id")?),
        display_name: get(row, "display_name")?,
        description: get(row, "description")?,
        created_at: timestamp(row, "created_at")?,
    })
}

fn application_from(row: &SqliteRow) -> StoreResult<Application> {
    let kind: ClientKind =
        serde_json::from_str(&get::<String>(row, "kind")?).map_err(|_| corrupt("client kind"))?;
    let alg = SigningAlg::parse(&get::<String>(row, "id_token_alg")?)
        .map_err(|_| corrupt("ID token algorithm"))?;
    Ok(Application {
        client_id: ClientId::from_string(get::<String>(row, "client_id")?),
        display_name: get(row, "display_name")?,
        redirect_uris: string_list(row, "redirect_uris")?,
        post_logout_redirect_uris: string_list(row, "post_logout_redirect_uris")?,
        kind,
        id_token_alg: alg,
        home_url: get(row, "home_url")?,
        created_at: timestamp(row, "created_at")?,
    })
}

fn pass_from(row: &SqliteRow) -> StoreResult<TemporaryAccessPass> {
    Ok(TemporaryAccessPass {
        user_id: UserId::from_string(get::<String>(row, "user_id")?),
        hash: TokenHash::from_stored(get::<String>(row, "hash")?),
        created_at: timestamp(row, "created_at")?,
        starts_at: timestamp(row, "starts_at")?,
        lifetime_minutes: get(row, "lifetime_minutes")?,
        usable_once: get(row, "usable_once")?,
        used_at: optional_timestamp(row, "used_at")?,
    })
}

fn session_from(row: &SqliteRow) -> StoreResult<Session> {
    Ok(Session {
        id: SessionId::from_string(get::<String>(row, "id")?),
        token_hash: TokenHash::from_stored(get::<String>(row, "token_hash")?),
        user_id: UserId::from_string(get::<String>(row, "user_id")?),
        method: method_from(row)?,
        auth_time: timestamp(row, "auth_time")?,
        created_at: timestamp(row, "created_at")?,
        expires_at: timestamp(row, "expires_at")?,
        revoked: get(row, "revoked")?,
    })
}

fn grant_from(row: &SqliteRow) -> StoreResult<Grant> {
    Ok(Grant {
        id: GrantId::from_string(get::<String>(row, "id")?),
        user_id: UserId::from_string(get::<String>(row, "user_id")?),
        client_id: ClientId::from_string(get::<String>(row, "client_id")?),
        session_id: SessionId::from_string(get::<String>(row, "session_id")?),
        scopes: string_list(row, "scopes")?,
        nonce: get(row, "nonce")?,
        auth_time: timestamp(row, "auth_time")?,
        method: method_from(row)?,
        created_at: timestamp(row, "created_at")?,
        revoked: get(row, "revoked")?,
    })
}

fn code_from(row: &SqliteRow) -> StoreResult<AuthorizationCode> {
    Ok(AuthorizationCode {
        hash: TokenHash::from_stored(get::<String>(row, "hash")?),
        grant_id: GrantId::from_string(get::<String>(row, "grant_id")?),
        client_id: ClientId::from_string(get::<String>(row, "client_id")?),
        redirect_uri: get(row, "redirect_uri")?,
        code_challenge: get(row, "code_challenge")?,
        expires_at: timestamp(row, "expires_at")?,
    })
}

fn refresh_token_from(row: &SqliteRow) -> StoreResult<RefreshToken> {
    Ok(RefreshToken {
        hash: TokenHash::from_stored(get::<String>(row, "hash")?),
        grant_id: GrantId::from_string(get::<String>(row, "grant_id")?),
        expires_at: timestamp(row, "expires_at")?,
    })
}

fn activation_from(row: &SqliteRow) -> StoreResult<Activation> {
    Ok(Activation {
        id: ActivationId::from_string(get::<String>(row, "id")?),
        code_hash: TokenHash::from_stored(get::<String>(row, "code_hash")?),
        user_id: UserId::from_string(get::<String>(row, "user_id")?),
        created_at: timestamp(row, "created_at")?,
        expires_at: timestamp(row, "expires_at")?,
        device_id: get::<Option<String>>(row, "device_id")?.map(DeviceId::from_string),
        test_approval: get::<Option<String>>(row, "test_approval")?.map(ApprovalId::from_string),
    })
}

fn public_key(text: String) -> StoreResult<PublicKey> {
    PublicKey::parse(&text).map_err(|_| corrupt("device key"))
}

fn device_from(row: &SqliteRow) -> StoreResult<Device> {
    Ok(Device {
        id: DeviceId::from_string(get::<String>(row, "id")?),
        user_id: UserId::from_string(get::<String>(row, "user_id")?),
        name: get(row, "name")?,
        key: public_key(get(row, "device_key")?)?,
        passwordless_key: get::<Option<String>>(row, "passwordless_key")?
            .map(public_key)
            .transpose()?,
        created_at: timestamp(row, "created_at")?,
        confirmed_at: optional_timestamp(row, "confirmed_at")?,
        phone_sign_in_at: optional_timestamp(row, "phone_sign_in_at")?,
    })
}

fn approval_from(row: &SqliteRow) -> StoreResult<Approval> {
    let body: String = get(row, "body")?;
    serde_json::from_str(&body).map_err(|_| corrupt("approval"))
}

fn insert_device(device: &Device) -> Query<'static, Sqlite, SqliteArguments> {
    sqlx::query(
        "INSERT INTO devices (id, user_id, name, device_key, passwordless_key, created_at, confirmed_at, \
         phone_sign_in_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(device.id.as_str())
    .bind(device.user_id.as_str())
    .bind(device.name.as_str())
    .bind(device.key.as_str())
    .bind(device.passwordless_key.as_ref().map(PublicKey::as_str))
    .bind(device.created_at.0)
    .bind(device.confirmed_at.map(|t| t.0))
    .bind(device.phone_sign_in_at.map(|t| t.0))
}

fn insert_approval(approval: &Approval) -> StoreResult<Query<'static, Sqlite, SqliteArguments>> {
    bind_approval(
        "INSERT INTO approvals (id, user_id, state, created_at, expires_at, body) VALUES (?, ?, ?, ?, ?, ?)",
        approval,
    )
}

/// Binds an approval's six columns, in table order, as the first parameters of `sql`.
fn bind_approval(
    sql: &'static str,
    approval: &Approval,
) -> StoreResult<Query<'static, Sqlite, SqliteArguments>> {
    let body = to_json("approval", serde_json::to_string(approval))?;
    Ok(sqlx::query(sql)
        .bind(approval.id.as_str())
        .bind(approval.user_id.as_str())
        .bind(approval.state.as_str())
        .bind(approval.view.created_at)
        .bind(approval.view.expires_at)
        .bind(body))
}

fn user_risk_from(row: &SqliteRow) -> StoreResult<UserRisk> {
    let state = match get::<String>(row, "state")?.as_str() {
        "atRisk" => RiskState::AtRisk,
        "dismissed" => RiskState::Dismissed,
        _ => return Err(corrupt("user risk")),
    };
    Ok(UserRisk {
        user_id: UserId::from_string(get::<String>(row, "user_id")?),
        state,
        detail: get(row, "detail")?,
        last_updated: timestamp(row, "last_updated")?,
    })
}

fn signing_key_from(row: &SqliteRow) -> StoreResult<SigningKey> {
    Ok(SigningKey {
        kid: KeyId::from_string(get::<String>(row, "kid")?),
        alg: SigningAlg::parse(&get::<String>(row, "alg")?)
            .map_err(|_| corrupt("signing key algorithm"))?,
        private_pkcs8: get(row, "private_pkcs8")?,
        created_at: timestamp(row, "created_at")?,
        retired_at: optional_timestamp(row, "retired_at")?,
    })
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

// --- Statements shared by more than one write ----------------------------------------------
//
// Each is built in one place so that a method doing several things in one transaction (such as
// `complete_sign_in`) has exactly the semantics of the single-purpose methods it combines.

fn insert_session(session: &Session) -> StoreResult<Query<'static, Sqlite, SqliteArguments>> {
    Ok(sqlx::query(
        "INSERT INTO sessions (id, token_hash, user_id, method, auth_time, created_at, expires_at, revoked) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(session.id.as_str())
    .bind(session.token_hash.as_str())
    .bind(session.user_id.as_str())
    .bind(method_text(session.method)?)
    .bind(session.auth_time.0)
    .bind(session.created_at.0)
    .bind(session.expires_at.0)
    .bind(session.revoked))
}

/// The sign-in moves through stages by being put again, hence the upsert.
fn upsert_sign_in(sign_in: &PendingSignIn) -> StoreResult<Query<'static, Sqlite, SqliteArguments>> {
    let body = to_json("sign-in", serde_json::to_string(sign_in))?;
    Ok(sqlx::query(
        "INSERT INTO sign_ins (id, body, expires_at) VALUES (?, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET body = excluded.body, expires_at = excluded.expires_at",
    )
    .bind(sign_in.id.as_str())
    .bind(body)
    .bind(sign_in.expires_at.0))
}

const SESSION_CONFLICT: &str = "a session with this id or token";

/// The filtered and ordered columns are copies of fields of the record, taken here, so they
/// can never disagree with the JSON that is read back.
fn insert_sign_in_record(
    record: &SignInRecord,
) -> StoreResult<Query<'static, Sqlite, SqliteArguments>> {
    Ok(sqlx::query(
        "INSERT INTO sign_in_log (id, created_at, user_id, user_principal_name, app_id, app_display_name, \
         error_code, authentication_method, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(record.id.as_str())
    .bind(record.created_date_time.0)
    .bind(record.user_id.as_ref().map(UserId::as_str))
    .bind(record.user_principal_name.as_str())
    .bind(record.app_id.as_ref().map(ClientId::as_str))
    .bind(record.app_display_name.as_deref())
    .bind(i64::from(record.status.error_code))
    .bind(record.authentication_method.as_str())
    .bind(to_json("sign-in record", serde_json::to_string(record))?))
}

const SIGN_IN_RECORD_CONFLICT: &str = "a sign-in record with this id";

fn insert_audit_event(event: &AuditEvent) -> StoreResult<Query<'static, Sqlite, SqliteArguments>> {
    Ok(sqlx::query(
        "INSERT INTO audit_log (id, created_at, actor, target, category, event) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(event.id.as_str())
    .bind(event.activity_date_time.0)
    .bind(event.actor.0.as_str())
    .bind(event.target.as_str())
    .bind(event.category.as_str())
    .bind(to_json("audit event", serde_json::to_string(event))?))
}

const AUDIT_EVENT_CONFLICT: &str = "an audit event with this id";

/// The time range, order and page shared by both logs. Only fixed SQL text is pushed; every
/// value travels as a bound parameter.
fn push_time_range_and_page(sql: &mut QueryBuilder<Sqlite>, query: &LogQuery) {
    if let Some(since) = query.since {
        sql.push(" AND created_at >= ").push_bind(since.0);
    }
    if let Some(until) = query.until {
        sql.push(" AND created_at < ").push_bind(until.0);
    }
    // Within one second, the most recently written first (rowid grows with every insert).
    sql.push(" ORDER BY created_at DESC, rowid DESC LIMIT ")
        .push_bind(i64::from(query.limit))
        .push(" OFFSET ")
        .push_bind(i64::from(query.skip));
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, user: &User) -> StoreResult<()> {
        let query = sqlx::query(
            "INSERT INTO users (id, upn, display_name, email, enabled, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(user.id.as_str())
        .bind(user.upn.as_str())
        .bind(&user.display_name)
        .bind(&user.email)
        .bind(user.enabled)
        .bind(user.created_at.0);
        self.execute(query)
            .await
            .map_err(|e| conflict_or_backend(&format!("a user named {}", user.upn), e))?;
        Ok(())
    }

    async fn update_user(&self, user: &User) -> StoreResult<()> {
        // `created_at` is history, not state: an update never rewrites it.
        let query = sqlx::query(
            "UPDATE users SET upn = ?, display_name = ?, email = ?, enabled = ? WHERE id = ?",
        )
        .bind(user.upn.as_str())
        .bind(&user.display_name)
        .bind(&user.email)
        .bind(user.enabled)
        .bind(user.id.as_str());
        let done = self
            .execute(query)
            .await
            .map_err(|e| conflict_or_backend(&format!("a user named {}", user.upn), e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn user(&self, id: &UserId) -> StoreResult<Option<User>> {
        sqlx::query("SELECT * FROM users WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&mut *self.reader().await?)
            .await
            .map_err(read_error)?
            .as_ref()
            .map(user_from)
            .transpose()
    }

    async fn user_by_upn(&self, upn: &Upn) -> StoreResult<Option<User>> {
        sqlx::query("SELECT * FROM users WHERE upn = ?")
            .bind(upn.as_str())
            .fetch_optional(&mut *self.reader().await?)
            .await
            .map_err(read_error)?
            .as_ref()
            .map(user_from)
            .transpose()
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        sqlx::query("SELECT * FROM users ORDER BY upn")
            .fetch_all(&mut *self.reader().await?)
            .await
            .map_err(read_error)?
            .iter()
            .map(user_from)
            .collect()
    }

    async fn set_password_hash(&self, id: &UserId, hash: Option<&str>) -> StoreResult<()> {
        let query = sqlx::query("UPDATE users SET password_hash = ? WHERE id = ?")
            .bind(hash)
            .bind(id.as_str());
        let done = self
            .execute(query)
            .await
            .map_err(|e| backend("setting a password", e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn password_hash(&self, id: &UserId) -> StoreResult<Option<String>> {
        let hash: Option<Option<String>> =
            sqlx::query_scalar("SELECT password_hash FROM users WHERE id = ?")
                .bind(id.as_str())
                .fetch_optional(&mut *self.reader().await?)
                .await
                .map_err(read_error)?;
        Ok(hash.flatten())
    }
}

#[async_trait]
impl GroupStore for SqliteStore {
    async fn create_group(&self, group: &Group) -> StoreResult<()> {
        let query = sqlx::query(
            "INSERT INTO groups (id, display_name, description, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(group.id.as_str())
        .bind(&group.display_name)
        .bind(&group.description)
        .bind(group.created_at.0);
        self.execute(query).await.map_err(|e| {
            conflict_or_backend(&format!("a group named {}", group.display_name), e)
        })?;
        Ok(())
    }

    async fn group(&self, id: &GroupId) -> StoreResult<Option<Group>> {
        sqlx::query("SELECT * FROM groups WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&mut *self.reader().await?)
            .await
            .map_err(read_error)?
            .as_ref()
            .map(group_from)
            .transpose()
    }

    async fn list_groups(&self) -> StoreResult<Vec<Group>> {
        sqlx::query("SELECT * FROM groups ORDER BY display_name, id")
            .fetch_all(&mut *self.reader().await?)
            .await
            .map_err(read_error)?
            .iter()
            .map(group_from)
            .collect()
    }

    async fn add_group_member(&self, group: &GroupId, user: &UserId) -> StoreResult<()> {
        let query = sqlx::query(
            "INSERT INTO group_members (group_id, user_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(group.as_str())
        .bind(user.as_str());
        self.execute(query)
            .await
            .map_err(|e| conflict_or_backend("a group membership", e))?;
        Ok(())
    }

    async fn remove_group_member(&self, group: &GroupId, user: &UserId) -> StoreResult<()> {
        let query = sqlx::query("DELETE FROM group_members WHERE group_id = ? AND user_id = ?")
            .bind(group.as_str())
            .bind(user.as_str());
        self.execute(query)
            .await
            .map_err(|e| backend("removing a group member", e))?;
        Ok(())
    }

    async fn group_members(&self, group: &GroupId) -> StoreResult<Vec<UserId>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT user_id FROM group_members WHERE group_id = ? ORDER BY user_id",
        )
        .bind(group.as_str())
        .fetch_all(&mut *self.reader().await?)
        .await
        .map_err(read_error)?;
        Ok(ids.into_iter().map(UserId::from_string).collect())
    }

    async fn groups_of_user(&self, user: &UserId) -> StoreResult<Vec<GroupId>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT group_id FROM group_members WHERE user_id = ? ORDER BY group_id",
        )
        .bind(user.as_str())
        .fetch_all(&mut *self.reader().await?)
        .await
        .map_err(read_error)?;
        Ok(ids.into_iter().map(GroupId::from_string).collect())
    }

    async fn administrators_group(&self) -> StoreResult<Option<GroupId>> {
        let id: Option<String> =
            sqlx::query_scalar("SELECT group_id FROM role_bindings WHERE role = 'administrators'")
                .fetch_optional(&mut *self.reader().await?)
                .await
                .map_err(read_error)?;
        Ok(id.map(GroupId::from_string))
    }

    async fn bind_administrators_group(&self, group: &GroupId) -> StoreResult<()> {
        let query = sqlx::query(
            "INSERT INTO role_bindings (role, group_id) VALUES ('administrators', ?) \
             ON CONFLICT (role) DO UPDATE SET group_id = excluded.group_id",
        )
        .bind(group.as_str());
        self.execute(query)
            .await
            .map_err(|e| conflict_or_backend("the administrator role", e))?;
        Ok(())
    }
}

#[async_trait]
impl ApplicationStore for SqliteStore {
    async fn create_application(&self, app: &Application) -> StoreResult<()> {
        let query = sqlx::query(
            "INSERT INTO applications (client_id, display_name, redirect_uris, post_logout_redirect_uris, kind, \
             id_token_alg, home_url, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(app.client_id.as_str())
        .bind(&app.display_name)
        .bind(to_json("redirect URIs", serde_json::to_string(&app.redirect_uris))?)
        .bind(to_json("post-logout redirect URIs", serde_json::to_string(&app.post_logout_redirect_uris))?)
        .bind(to_json("client kind", serde_json::to_string(&app.kind))?)
        .bind(app.id_token_alg.as_str())
        .bind(&app.home_url)
        .bind(app.created_at.0);
        self.execute(query).await.map_err(|e| {
            conflict_or_backend(
                &format!("an application with client ID {}", app.client_id),
                e,
            )
        })?;
        Ok(())
    }

    async fn application(&self, client_id: &ClientId) -> StoreResult<Option<Application>> {
        sqlx::query("SELECT * FROM applications WHERE client_id = ?")
            .bind(client_id.as_str())
            .fetch_optional(&mut *self.reader().await?)
            .await
            .map_err(read_error)?
            .as_ref()
            .map(application_from)
            .transpose()
    }

    async fn list_applications(&self) -> StoreResult<Vec<Application>> {
        sqlx::query("SELECT * FROM applications ORDER BY display_name, client_id")
            .fetch_all(&mut *self.reader().await?)
            .await
            .map_err(read_error)?
            .iter()
            .map(application_from)
            .collect()
    }

    async fn delete_application(&self, client_id: &ClientId) -> StoreResult<()> {
        // Cascades to the application's grants and their codes and tokens.
        let query =
            sqlx::query("DELETE FROM applications WHERE client_id = ?").bind(client_id.as_str());
        self.execute(query)
            .await
            .map_err(|e| backend("deleting an application", e))?;
        Ok(())
    }
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn put_pass(&self, pass: &TemporaryAccessPass) -> StoreResult<()> {
        // An upsert on the user's row: issuing a new pass invalidates the old one in the same
        // statement, so there is never a moment with two valid passes.
        let query = sqlx::query(
            "INSERT INTO passes (user_id, hash, created_at, starts_at, lifetime_minutes, usable_once, used_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (user_id) DO UPDATE SET hash = excluded.hash, created_at = excluded.created_at, \
             starts_at = excluded.starts_at, lifetime_minutes = excluded.lifetime_minutes, \
             usable_once = excluded.usable_once, used_at = excluded.used_at",
        )
        .bind(pass.user_id.as_str())
        .bind(pass.hash.as_str())
        .bind(pass.created_at.0)
        .bind(pass.starts_at.0)
        .bind(pass.lifetime_minutes)
        .bind(pass.usable_once)
        .bind(pass.used_at.map(|t| t.0));
        self.execute(query)
            .await
            .map_err(|e| conflict_or_backend("a Temporary Access Pass", e))?;
        Ok(())
    }

    async fn pass_for_user(&self, user: &UserId) -> StoreResult<Option<TemporaryAccessPass>> {
        sqlx::query("SELECT * FROM passes WHERE user_id = ?")
            .bind(user.as_str())
            .fetch_optional(&mut *self.reader().await?)
            .await
            .map_err(read_error)?
            .as_ref()
            .map(pass_from)
            .transpose()
    }

    async fn mark_pass_used(
        &self,
        user: &UserId,
        hash: &TokenHash,
        at: Timestamp,
    ) -> StoreResult<bool> {
        // One conditional UPDATE: a one-time pass matches only while unused, so of two racing
        // sign-ins exactly one changes the row. Comparing SHA-256 hashes in SQL leaks nothing
        // useful about the pass itself.
        let query = sqlx::query(
            "UPDATE passes SET used_at = ? WHERE user_id = ? AND hash = ? AND (usable_once = 0 OR used_at IS NULL)",
        )
        .bind(at.0)
        .bind(user.as_str())
        .bind(hash.as_str());
        let done = self
            .execute(query)
            .await
            .map_err(|e| backend("recording a pass use", e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_pass(&self, user: &UserId) -> StoreResult<()> {
        let query = sqlx::query("DELETE FROM passes WHERE user_id = ?").bind(user.as_str());
        self.execute(query)
            .await
            .map_err(|e| backend("deleting a pass", e))?;
        Ok(())
    }

    async fn create_session(&self, session: &Session) -> StoreResult<()> {
        self.execute(insert_session(session)?)
            .await
            .map_err(|e| conflict_or_backend(SESSION_CONFLICT, e))?;
        Ok(())
    }

    async fn session_by_token(&self, token_hash: &TokenHash) -> StoreResult<Option<Session>> {
        sqlx::query("SELECT * FROM sessions WHERE token_hash = ?")
            .bind(token_hash.as_str())
            .fetch_optional(&mut *self.reader().await?)
            .await
            .map_err(read_error)?
            .as_ref()
            .map(session_from)
            .transpose()
    }

    async fn session(&self, id: &SessionId) -> StoreResult<Option<Session>> {
        sqlx::query("SELECT * FROM sessions WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&mut *self.reader().await?)
            .await
            .map_err(read_error)?
            .as_ref()
            .map(session_from)
            .transpose()
    }

    async fn revoke_session(&self, id: &SessionId) -> StoreResult<()> {
        let query = sqlx::query("UPDATE sessions SET revoked = 1 WHERE id = ?").bind(id.as_str());
        self.execute(query)
            .await
            .map_err(|e| backend("revoking a session", e))?;
        Ok(())
    }

    async fn revoke_user_sessions_and_grants(&self, user: &UserId) -> StoreResult<()> {
        // One transaction: there is no moment where sessions are gone but tokens still work.
        let mut writer = self.write_lock().await?;
        let mut tx = begin(&mut writer).await?;
        sqlx::query("UPDATE sessions SET revoked = 1 WHERE user_id = ?")
            .bind(user.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|e| backend("revoking a user's sessions", e))?;
        sqlx::query("UPDATE grants SET revoked = 1 WHERE user_id = ?")
            .bind(user.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|e| backend("revoking a user's grants", e))?;
        tx.commit()
            .await
            .map_err(|e| backend("revoking a user's sessions", e))
    }

    async fn put_sign_in(&self, sign_in: &PendingSignIn) -> StoreResult<()> {
        self.execute(upsert_sign_in(sign_in)?)
            .await
            .map_err(|e| backend("saving a sign-in", e))?;
        Ok(())
    }

    async fn sign_in(&self, id: &SignInId) -> StoreResult<Option<PendingSignIn>> {
        let body: Option<String> = sqlx::query_scalar("SELECT body FROM sign_ins WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&mut *self.reader().await?)
            .await
            .map_err(read_error)?;
        body.map(|body| serde_json::from_str(&body).map_err(|_| corrupt("sign-in")))
            .transpose()
    }

    async fn delete_sign_in(&self, id: &SignInId) -> StoreResult<()> {
        let query = sqlx::query("DELETE FROM sign_ins WHERE id = ?").bind(id.as_str());
        self.execute(query)
            .await
            .map_err(|e| backend("deleting a sign-in", e))?;
        Ok(())
    }

    async fn complete_sign_in(
        &self,
        session: &Session,
        sign_in: &SignInId,
        record: &SignInRecord,
    ) -> StoreResult<()> {
        // All or nothing: a session never exists without its log record, and a refused session
        // leaves the sign-in in progress and unlogged.
        let mut writer = self.write_lock().await?;
        let mut tx = begin(&mut writer).await?;
        insert_session(session)?
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict_or_backend(SESSION_CONFLICT, e))?;
        let ended = sqlx::query("DELETE FROM sign_ins WHERE id = ?")
            .bind(sign_in.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|e| backend("ending a sign-in", e))?;
        if ended.rows_affected() != 1 {
            // Finished (or purged) already: a second completion must not start a second session.
            return Err(StoreError::Conflict("the sign-in already ended".into()));
        }
        insert_sign_in_record(record)?
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict_or_backend(SIGN_IN_RECORD_CONFLICT, e))?;
        tx.commit()
            .await
            .map_err(|e| backend("completing a sign-in", e))
    }

    async fn fail_sign_in(
        &self,
        sign_in: &PendingSignIn,
        ended: bool,
        record: &SignInRecord,
    ) -> StoreResult<()> {
        // All or nothing: the failure count can never move without the attempt being logged.
        let mut writer = self.write_lock().await?;
        let mut tx = begin(&mut writer).await?;
        if ended {
            sqlx::query("DELETE FROM sign_ins WHERE id = ?")
                .bind(sign_in.id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(|e| backend("ending a sign-in", e))?;
        } else {
            upsert_sign_in(sign_in)?
                .execute(&mut *tx)
                .await
                .map_err(|e| backend("saving a sign-in", e))?;
        }
        insert_sign_in_record(record)?
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict_or_backend(SIGN_IN_RECORD_CONFLICT, e))?;
        tx.commit()
            .await
            .map_err(|e| backend("recording a failed sign-in", e))
    }
}

#[async_trait]
impl GrantStore for SqliteStore {
    async fn create_grant(&self, grant: &Grant) -> StoreResult<()> {
        let query = sqlx::query(
            "INSERT INTO grants (id, user_id, client_id, session_id, scopes, nonce, auth_time, method, created_at, \
             revoked) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(grant.id.as_str())
        .bind(grant.user_id.as_str())
        .bind(grant.client_id.as_str())
        .bind(grant.session_id.as_str())
        .bind(to_json("scopes", serde_json::to_string(&grant.scopes))?)
        .bind(&grant.nonce)
        .bind(grant.auth_time.0)
        .bind(method_text(grant.method)?)
        .bind(grant.created_at.0)
        .bind(grant.revoked);
        self.execute(query)
            .await
            .map_err(|e| conflict_or_backend("a grant with this id", e))?;
        Ok(())
    }

    async fn grant(&self, id: &GrantId) -> StoreResult<Option<Grant>> {
        sqlx::query("SELECT * FROM grants WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&mut *self.reader().await?)
            .await
            .map_err(read_error)?
            .as_ref()
            .map(grant_from)
            .transpose()
    }

    async fn revoke_grant(&self, id: &GrantId) -> StoreResult<()> {
        let query = sqlx::query("UPDATE grants SET revoked = 1 WHERE id = ?").bind(id.as_str());
        self.execute(query)
            .await
            .map_err(|e| backend("revoking a grant", e))?;
        Ok(())
    }

    async fn revoke_session_grants(&self, session: &SessionId) -> StoreResult<()> {
        let query = sqlx::query("UPDATE grants SET revoked = 1 WHERE session_id = ?")
            .bind(session.as_str());
        self.execute(query)
            .await
            .map_err(|e| backend("revoking a session's grants", e))?;
        Ok(())
    }

    async fn put_code(&self, code: &AuthorizationCode) -> StoreResult<()> {
        let query = sqlx::query(
            "INSERT INTO codes (hash, grant_id, client_id, redirect_uri, code_challenge, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(code.hash.as_str())
        .bind(code.grant_id.as_str())
        .bind(code.client_id.as_str())
        .bind(&code.redirect_uri)
        .bind(&code.code_challenge)
        .bind(code.expires_at.0);
        self.execute(query)
            .await
            .map_err(|e| conflict_or_backend("an authorization code", e))?;
        Ok(())
    }

    async fn redeem_code(&self, hash: &TokenHash) -> StoreResult<Redeemed<AuthorizationCode>> {
        self.spend(
            "UPDATE codes SET spent = 1 WHERE hash = ? AND spent = 0 RETURNING *",
            "SELECT * FROM codes WHERE hash = ?",
            hash,
            code_from,
        )
        .await
        .map(Redeemed::from)
    }

    async fn put_access_token(&self, token: &AccessToken) -> StoreResult<()> {
        let query =
            sqlx::query("INSERT INTO access_tokens (hash, grant_id, expires_at) VALUES (?, ?, ?)")
                .bind(token.hash.as_str())
                .bind(token.grant_id.as_str())
                .bind(token.expires_at.0);
        self.execute(query)
            .await
            .map_err(|e| conflict_or_backend("an access token", e))?;
        Ok(())
    }

    async fn access_token(&self, hash: &TokenHash) -> StoreResult<Option<AccessToken>> {
        // Expired rows are returned too: the domain decides, and can say why a token failed.
        let row = sqlx::query("SELECT * FROM access_tokens WHERE hash = ?")
            .bind(hash.as_str())
            .fetch_optional(&mut *self.reader().await?)
            .await
            .map_err(read_error)?;
        row.map(|row| {
            Ok(AccessToken {
                hash: TokenHash::from_stored(get::<String>(&row, "hash")?),
                grant_id: GrantId::from_string(get::<String>(&row, "grant_id")?),
                expires_at: timestamp(&row, "expires_at")?,
            })
        })
        .transpose()
    }

    async fn put_refresh_token(&self, token: &RefreshToken) -> StoreResult<()> {
        let query =
            sqlx::query("INSERT INTO refresh_tokens (hash, grant_id, expires_at) VALUES (?, ?, ?)")
                .bind(token.hash.as_str())
                .bind(token.grant_id.as_str())
                .bind(token.expires_at.0);
        self.execute(query)
            .await
            .map_err(|e| conflict_or_backend("a refresh token", e))?;
        Ok(())
    }

    async fn redeem_refresh_token(&self, hash: &TokenHash) -> StoreResult<Redeemed<RefreshToken>> {
        self.spend(
            "UPDATE refresh_tokens SET spent = 1 WHERE hash = ? AND spent = 0 RETURNING *",
            "SELECT * FROM refresh_tokens WHERE hash = ?",
            hash,
            refresh_token_from,
        )
        .await
        .map(Redeemed::from)
    }

    async fn code(&self, hash: &TokenHash) -> StoreResult<Option<AuthorizationCode>> {
        sqlx::query("SELECT * FROM codes WHERE hash = ?")
            .bind(hash.as_str())
            .fetch_optional(&mut *self.reader().await?)
            .await
            .map_err(read_error)?
            .as_ref()
            .map(code_from)
            .transpose()
    }

    async fn refresh_token(&self, hash: &TokenHash) -> StoreResult<Option<RefreshToken>> {
        sqlx::query("SELECT * FROM refresh_tokens WHERE hash = ?")
            .bind(hash.as_str())
            .fetch_optional(&mut *self.reader().await?)
            .await
            .map_err(read_error)?
            .as_ref()
            .map(refresh_token_from)
            .transpose()
    }

    async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>> {
        sqlx::query("SELECT * FROM signing_keys ORDER BY created_at, kid")
            .fetch_all(&mut *self.reader().await?)
            .await
            .map_err(read_error)?
            .iter()
            .map(signing_key_from)
            .collect()
    }

    async fn put_signing_key(&self, key: &SigningKey) -> StoreResult<()> {
        let query = sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_pkcs8, created_at, retired_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(key.kid.as_str())
        .bind(key.alg.as_str())
        .bind(key.private_pkcs8.as_slice())
        .bind(key.created_at.0)
        .bind(key.retired_at.map(|t| t.0));
        self.execute(query)
            .await
            .map_err(|e| conflict_or_backend(&format!("a signing key with kid {}", key.kid), e))?;
        Ok(())
    }

    async fn retire_signing_keys_except(&self, keep: &[KeyId], at: Timestamp) -> StoreResult<()> {
        // The kept kids travel as one JSON array bound as a parameter, so the statement stays
        // fixed text whatever the list's length.
        let keep: Vec<&str> = keep.iter().map(KeyId::as_str).collect();
        let query = sqlx::query(
            "UPDATE signing_keys SET retired_at = ? \
             WHERE retired_at IS NULL AND kid NOT IN (SELECT value FROM json_each(?))",
        )
        .bind(at.0)
        .bind(to_json("key ids", serde_json::to_string(&keep))?);
        self.execute(query)
            .await
            .map_err(|e| backend("retiring signing keys", e))?;
        Ok(())
    }

    async fn server_secret(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>> {
        // Insert-if-absent then read back, in one write transaction: two servers starting at
        // once agree on the first value, and a restart never replaces it.
        let mut writer = self.write_lock().await?;
        let mut tx = begin(&mut writer).await?;
        sqlx::query(
            "INSERT INTO server_secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(candidate)
        .execute(&mut *tx)
        .await
        .map_err(|e| backend("storing a server secret", e))?;
        let value: Vec<u8> = sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = ?")
            .bind(name)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| backend("reading a server secret", e))?;
        tx.commit()
            .await
            .map_err(|e| backend("storing a server secret", e))?;
        Ok(value)
    }
}

#[async_trait]
impl DeviceStore for SqliteStore {
    async fn put_activation(&self, activation: &Activation) -> StoreResult<()> {
        let query = sqlx::query(
            "INSERT INTO activations (id, code_hash, user_id, created_at, expires_at, device_id, test_approval) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(activation.id.as_str())
        .bind(activation.code_hash.as_str())
        .bind(activation.user_id.as_str())
        .bind(activation.created_at.0)
        .bind(activation.expires_at.0)
        .bind(activation.device_id.as_ref().map(DeviceId::as_str))
        .bind(activation.test_approval.as_ref().map(ApprovalId::as_str));
        self.execute(query)
            .await
            .map_err(|e| conflict_or_backend("an activation", e))?;
        Ok(())
    }

    async fn put_activation_within(
        &self,
        activation: &Activation,
        now: Timestamp,
        max_outstanding: u32,
    ) -> StoreResult<bool> {
        // One statement: the count of the user's open activations and the insert cannot be
        // split by another writer.
        let query = sqlx::query(
            "INSERT INTO activations (id, code_hash, user_id, created_at, expires_at, device_id, test_approval) \
             SELECT ?, ?, ?, ?, ?, NULL, NULL \
             WHERE (SELECT count(*) FROM activations \
                    WHERE user_id = ? AND device_id IS NULL AND expires_at > ?) < ?",
        )
        .bind(activation.id.as_str())
        .bind(activation.code_hash.as_str())
        .bind(activation.user_id.as_str())
        .bind(activation.created_at.0)
        .bind(activation.expires_at.0)
        .bind(activation.user_id.as_str())
        .bind(now.0)
        .bind(max_outstanding);
        let done = self
            .execute(query)
            .await
            .map_err(|e| conflict_or_backend("an activation", e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn activation(&self, id: &ActivationId) -> StoreResult<Option<Activation>> {
        sqlx::query("SELECT * FROM activations WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&mut *self.reader().await?)
            .await
            .map_err(read_error)?
            .as_ref()
            .map(activation_from)
            .transpose()
    }

    async fn activation_by_code(&self, code_hash: &TokenHash) -> StoreResult<Option<Activation>> {
        sqlx::query("SELECT * FROM activations WHERE code_hash = ?")
            .bind(code_hash.as_str())
            .fetch_optional(&mut *self.reader().await?)
            .await
            .map_err(read_error)?
            .as_ref()
            .map(activation_from)
            .transpose()
    }

    async fn redeem_activation(
        &self,
        code_hash: &TokenHash,
        now: Timestamp,
        device: &Device,
        test: &Approval,
        max_devices: u32,
    ) -> StoreResult<Option<Activation>> {
        // The conditional UPDATE is the single-use check and the device limit: only an unused,
        // unexpired code of a user below the limit matches, and the write lock (held from
        // BEGIN IMMEDIATE) makes the count and the insert below one step for every racer.
        let mut writer = self.write_lock().await?;
        let mut tx = begin(&mut writer).await?;
        let done = sqlx::query(
            "UPDATE activations SET device_id = ?, test_approval = ? \
             WHERE code_hash = ? AND device_id IS NULL AND expires_at > ? AND user_id = ? \
               AND (SELECT count(*) FROM devices WHERE user_id = activations.user_id) < ?",
        )
        .bind(device.id.as_str())
        .bind(test.id.as_str())
        .bind(code_hash.as_str())
        .bind(now.0)
        .bind(device.user_id.as_str())
        .bind(max_devices)
        .execute(&mut *tx)
        .await
        .map_err(|e| backend("redeeming an activation", e))?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        insert_device(device)
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict_or_backend("a device with this id", e))?;
        insert_approval(test)?
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict_or_backend("an approval with this id", e))?;
        let row = sqlx::query("SELECT * FROM activations WHERE code_hash = ?")
            .bind(code_hash.as_str())
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| backend("redeeming an activation", e))?;
        let activation = activation_from(&row)?;
        tx.commit()
            .await
            .map_err(|e| backend("redeeming an activation", e))?;
        Ok(Some(activation))
    }

    async fn device(&self, id: &DeviceId) -> StoreResult<Option<Device>> {
        sqlx::query("SELECT * FROM devices WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&mut *self.reader().await?)
            .await
            .map_err(read_error)?
            .as_ref()
            .map(device_from)
            .transpose()
    }

    async fn devices_of_user(&self, user: &UserId) -> StoreResult<Vec<Device>> {
        sqlx::query("SELECT * FROM devices WHERE user_id = ? ORDER BY created_at, id")
            .bind(user.as_str())
            .fetch_all(&mut *self.reader().await?)
            .await
            .map_err(read_error)?
            .iter()
            .map(device_from)
            .collect()
    }

    async fn update_device(&self, device: &Device) -> StoreResult<()> {
        let query = sqlx::query(
            "UPDATE devices SET name = ?, passwordless_key = ?, confirmed_at = ?, phone_sign_in_at = ? \
             WHERE id = ?",
        )
        .bind(device.name.as_str())
        .bind(device.passwordless_key.as_ref().map(PublicKey::as_str))
        .bind(device.confirmed_at.map(|t| t.0))
        .bind(device.phone_sign_in_at.map(|t| t.0))
        .bind(device.id.as_str());
        let done = self
            .execute(query)
            .await
            .map_err(|e| backend("updating a device", e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn delete_device(&self, id: &DeviceId) -> StoreResult<()> {
        let query = sqlx::query("DELETE FROM devices WHERE id = ?").bind(id.as_str());
        self.execute(query)
            .await
            .map_err(|e| backend("deleting a device", e))?;
        Ok(())
    }

    async fn use_device_nonce(
        &self,
        device: &DeviceId,
        nonce: &str,
        expires_at: Timestamp,
    ) -> StoreResult<bool> {
        let query = sqlx::query(
            "INSERT INTO device_nonces (device_id, nonce, expires_at) VALUES (?, ?, ?) \
             ON CONFLICT (device_id, nonce) DO NOTHING",
        )
        .bind(device.as_str())
        .bind(nonce)
        .bind(expires_at.0);
        let done = self
            .execute(query)
            .await
            .map_err(|e| backend("recording a nonce", e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn put_approval(&self, approval: &Approval) -> StoreResult<()> {
        self.execute(insert_approval(approval)?)
            .await
            .map_err(|e| conflict_or_backend("an approval with this id", e))?;
        Ok(())
    }

    async fn put_approval_if_none_waiting(
        &self,
        approval: &Approval,
        now: Timestamp,
    ) -> StoreResult<bool> {
        // One statement, so the check and the insert happen under one write lock.
        let query = bind_approval(
            "INSERT INTO approvals (id, user_id, state, created_at, expires_at, body) \
             SELECT ?, ?, ?, ?, ?, ? WHERE NOT EXISTS ( \
               SELECT 1 FROM approvals WHERE user_id = ? AND state = 'pending' AND expires_at > ? \
               AND json_extract(body, '$.view.kind') <> 'registration_test')",
            approval,
        )?
        .bind(approval.user_id.as_str())
        .bind(now.0);
        let done = self
            .execute(query)
            .await
            .map_err(|e| conflict_or_backend("an approval with this id", e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn approval(&self, id: &ApprovalId) -> StoreResult<Option<Approval>> {
        sqlx::query("SELECT body FROM approvals WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&mut *self.reader().await?)
            .await
            .map_err(read_error)?
            .as_ref()
            .map(approval_from)
            .transpose()
    }

    async fn pending_approvals(&self, user: &UserId) -> StoreResult<Vec<Approval>> {
        sqlx::query(
            "SELECT body FROM approvals WHERE user_id = ? AND state = 'pending' ORDER BY created_at, id",
        )
        .bind(user.as_str())
        .fetch_all(&mut *self.reader().await?)
        .await
        .map_err(read_error)?
        .iter()
        .map(approval_from)
        .collect()
    }

    async fn overdue_approvals(&self, now: Timestamp, limit: u32) -> StoreResult<Vec<Approval>> {
        sqlx::query(
            "SELECT body FROM approvals WHERE state = 'pending' AND expires_at <= ? ORDER BY expires_at LIMIT ?",
        )
        .bind(now.0)
        .bind(limit)
        .fetch_all(&mut *self.reader().await?)
        .await
        .map_err(read_error)?
        .iter()
        .map(approval_from)
        .collect()
    }

    async fn settle_approval(
        &self,
        id: &ApprovalId,
        state: ApprovalState,
        answered_by: Option<&DeviceId>,
        at: Timestamp,
        record: Option<&SignInRecord>,
    ) -> StoreResult<bool> {
        let Some(record) = record else {
            // Nothing else to write (an approval, usually): one statement changes the three
            // fields in the stored body as serde writes them, and only while still pending.
            let done = self
                .execute(
                    sqlx::query(
                        "UPDATE approvals SET state = ?, body = json_set(body, '$.state', ?, \
                         '$.answered_by', ?, '$.settled_at', ?) WHERE id = ? AND state = 'pending'",
                    )
                    .bind(state.as_str())
                    .bind(state.as_str())
                    .bind(answered_by.map(|d| d.as_str()))
                    .bind(at.0)
                    .bind(id.as_str()),
                )
                .await
                .map_err(|e| backend("settling an approval", e))?;
            return Ok(done.rows_affected() == 1);
        };
        let mut writer = self.write_lock().await?;
        let mut tx = begin(&mut writer).await?;
        let row = sqlx::query("SELECT body FROM approvals WHERE id = ? AND state = 'pending'")
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| backend("settling an approval", e))?;
        let Some(row) = row else {
            return Ok(false);
        };
        let mut approval = approval_from(&row)?;
        approval.state = state;
        approval.answered_by = answered_by.cloned();
        approval.settled_at = Some(at);
        let body = to_json("approval", serde_json::to_string(&approval))?;
        sqlx::query("UPDATE approvals SET state = ?, body = ? WHERE id = ? AND state = 'pending'")
            .bind(state.as_str())
            .bind(body)
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|e| backend("settling an approval", e))?;
        insert_sign_in_record(record)?
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict_or_backend(SIGN_IN_RECORD_CONFLICT, e))?;
        tx.commit()
            .await
            .map_err(|e| backend("settling an approval", e))?;
        Ok(true)
    }

    async fn set_phone_sign_in(
        &self,
        device: &Device,
        verifier_mac: Option<&str>,
    ) -> StoreResult<()> {
        let fail = |e| backend("setting phone sign-in", e);
        let mut writer = self.write_lock().await?;
        let mut tx = begin(&mut writer).await?;
        let done = sqlx::query(
            "UPDATE devices SET passwordless_key = ?, phone_sign_in_at = ? WHERE id = ?",
        )
        .bind(device.passwordless_key.as_ref().map(PublicKey::as_str))
        .bind(device.phone_sign_in_at.map(|t| t.0))
        .bind(device.id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        match verifier_mac {
            Some(mac) => sqlx::query(
                "INSERT INTO device_pin_locks (device_id, verifier_mac, wrong_pins, locked_at, reenable_allowed_at) \
                 VALUES (?, ?, 0, NULL, NULL) ON CONFLICT (device_id) DO UPDATE SET \
                 verifier_mac = excluded.verifier_mac, wrong_pins = 0, locked_at = NULL, reenable_allowed_at = NULL",
            )
            .bind(device.id.as_str())
            .bind(mac),
            None => sqlx::query("DELETE FROM device_pin_locks WHERE device_id = ?")
                .bind(device.id.as_str()),
        }
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        tx.commit().await.map_err(fail)
    }

    async fn pin_lock(&self, device: &DeviceId) -> StoreResult<Option<PinLock>> {
        let row = sqlx::query("SELECT * FROM device_pin_locks WHERE device_id = ?")
            .bind(device.as_str())
            .fetch_optional(&mut *self.reader().await?)
            .await
            .map_err(read_error)?;
        Ok(row.map(|row| PinLock {
            device_id: DeviceId::from_string(row.get::<String, _>("device_id")),
            verifier_mac: row.get("verifier_mac"),
            wrong_pins: row.get::<i64, _>("wrong_pins").clamp(0, u32::MAX.into()) as u32,
            locked_at: row.get::<Option<i64>, _>("locked_at").map(Timestamp),
            reenable_allowed_at: row
                .get::<Option<i64>, _>("reenable_allowed_at")
                .map(Timestamp),
        }))
    }

    async fn record_pin_check(
        &self,
        device: &DeviceId,
        right: bool,
        limit: u32,
        now: Timestamp,
    ) -> StoreResult<PinCheck> {
        let fail = |e| backend("recording a PIN check", e);
        let mut writer = self.write_lock().await?;
        let mut tx = begin(&mut writer).await?;
        if right {
            let done = sqlx::query(
                "UPDATE device_pin_locks SET wrong_pins = 0 \
                 WHERE device_id = ? AND locked_at IS NULL AND verifier_mac IS NOT NULL",
            )
            .bind(device.as_str())
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
            tx.commit().await.map_err(fail)?;
            return Ok(if done.rows_affected() == 1 {
                PinCheck::Right
            } else {
                PinCheck::Locked
            });
        }
        let counted: Option<i64> = sqlx::query_scalar(
            "UPDATE device_pin_locks SET wrong_pins = wrong_pins + 1 \
             WHERE device_id = ? AND locked_at IS NULL AND verifier_mac IS NOT NULL RETURNING wrong_pins",
        )
        .bind(device.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(fail)?;
        let Some(counted) = counted else {
            return Ok(PinCheck::Locked);
        };
        if counted < i64::from(limit) {
            tx.commit().await.map_err(fail)?;
            return Ok(PinCheck::Wrong {
                remaining: (i64::from(limit) - counted) as u32,
            });
        }
        sqlx::query(
            "UPDATE device_pin_locks SET locked_at = ?, verifier_mac = NULL, reenable_allowed_at = NULL \
             WHERE device_id = ?",
        )
        .bind(now.0)
        .bind(device.as_str())
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        sqlx::query(
            "UPDATE devices SET passwordless_key = NULL, phone_sign_in_at = NULL WHERE id = ?",
        )
        .bind(device.as_str())
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        Ok(PinCheck::LockedNow)
    }

    async fn allow_phone_sign_in_again(
        &self,
        device: &DeviceId,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let done = self
            .execute(
                sqlx::query(
                    "UPDATE device_pin_locks SET reenable_allowed_at = ? \
                     WHERE device_id = ? AND locked_at IS NOT NULL",
                )
                .bind(now.0)
                .bind(device.as_str()),
            )
            .await
            .map_err(|e| backend("allowing phone sign-in again", e))?;
        Ok(done.rows_affected() == 1)
    }
}

#[async_trait]
impl GovernanceStore for SqliteStore {
    async fn policy(&self) -> StoreResult<Option<AuthenticationMethodsPolicy>> {
        let row = sqlx::query("SELECT version, document FROM policy WHERE id = 1")
            .fetch_optional(&mut *self.reader().await?)
            .await
            .map_err(read_error)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut policy: AuthenticationMethodsPolicy =
            serde_json::from_str(&get::<String>(&row, "document")?)
                .map_err(|_| corrupt("authentication methods policy"))?;
        // The column is the concurrency token `save_policy` compares against; it wins over the
        // copy inside the document should the two ever disagree.
        policy.version = u64::try_from(get::<i64>(&row, "version")?)
            .map_err(|_| corrupt("authentication methods policy version"))?;
        Ok(Some(policy))
    }

    async fn save_policy(
        &self,
        policy: &AuthenticationMethodsPolicy,
        audit: &AuditEvent,
    ) -> StoreResult<()> {
        let document = to_json(
            "authentication methods policy",
            serde_json::to_string(policy),
        )?;
        let version = i64::try_from(policy.version)
            .map_err(|_| StoreError::Backend("the policy version is out of range".into()))?;
        // Read and write under one write lock: of two administrators saving on top of the same
        // version, exactly one finds it still current.
        let mut writer = self.write_lock().await?;
        let mut tx = begin(&mut writer).await?;
        let stored: Option<i64> = sqlx::query_scalar("SELECT version FROM policy WHERE id = 1")
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| backend("reading the policy version", e))?;
        let stored = stored.unwrap_or(0);
        if stored.checked_add(1) != Some(version) {
            // Dropping the transaction rolls it back; nothing was written.
            return Err(StoreError::Conflict(format!(
                "version {stored} of the authentication methods policy (this change was made to \
                 version {}); reload the policy and try again",
                policy.version.saturating_sub(1)
            )));
        }
        sqlx::query(
            "INSERT INTO policy (id, version, document) VALUES (1, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET version = excluded.version, document = excluded.document",
        )
        .bind(version)
        .bind(document)
        .execute(&mut *tx)
        .await
        .map_err(|e| backend("saving the policy", e))?;
        insert_audit_event(audit)?
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict_or_backend(AUDIT_EVENT_CONFLICT, e))?;
        tx.commit()
            .await
            .map_err(|e| backend("saving the policy", e))
    }

    async fn sign_in_records(&self, query: &LogQuery) -> StoreResult<Vec<SignInRecord>> {
        let query = query.clone().normalised();
        let mut sql = QueryBuilder::<Sqlite>::new("SELECT record FROM sign_in_log WHERE 1 = 1");
        // `user_principal_name` and `app_display_name` are NOCASE columns, so `=` folds case.
        if let Some(user) = &query.user {
            sql.push(" AND (user_id = ")
                .push_bind(user.clone())
                .push(" OR user_principal_name = ")
                .push_bind(user.clone())
                .push(")");
        }
        if let Some(app) = &query.app {
            sql.push(" AND (app_id = ")
                .push_bind(app.clone())
                .push(" OR app_display_name = ")
                .push_bind(app.clone())
                .push(")");
        }
        match query.status {
            Some(StatusFilter::Success) => {
                sql.push(" AND error_code = 0");
            }
            Some(StatusFilter::Failure) => {
                sql.push(" AND error_code <> 0");
            }
            None => {}
        }
        if let Some(method) = &query.method {
            sql.push(" AND authentication_method = ")
                .push_bind(method.clone());
        }
        push_time_range_and_page(&mut sql, &query);
        let records: Vec<String> = sql
            .build_query_scalar()
            .fetch_all(&mut *self.reader().await?)
            .await
            .map_err(read_error)?;
        records
            .iter()
            .map(|record| serde_json::from_str(record).map_err(|_| corrupt("sign-in record")))
            .collect()
    }

    async fn append_audit(&self, event: &AuditEvent) -> StoreResult<()> {
        self.execute(insert_audit_event(event)?)
            .await
            .map_err(|e| conflict_or_backend(AUDIT_EVENT_CONFLICT, e))?;
        Ok(())
    }

    async fn audit_events(&self, query: &LogQuery) -> StoreResult<Vec<AuditEvent>> {
        let query = query.clone().normalised();
        let mut sql = QueryBuilder::<Sqlite>::new("SELECT event FROM audit_log WHERE 1 = 1");
        if let Some(user) = &query.user {
            sql.push(" AND (actor = ")
                .push_bind(user.clone())
                .push(" OR target = ")
                .push_bind(user.clone())
                .push(")");
        }
        if let Some(category) = &query.category {
            sql.push(" AND category = ").push_bind(category.clone());
        }
        push_time_range_and_page(&mut sql, &query);
        let events: Vec<String> = sql
            .build_query_scalar()
            .fetch_all(&mut *self.reader().await?)
            .await
            .map_err(read_error)?;
        events
            .iter()
            .map(|event| serde_json::from_str(event).map_err(|_| corrupt("audit event")))
            .collect()
    }

    async fn purge_logs(&self, before: Timestamp) -> StoreResult<u64> {
        const PURGES: [&str; 2] = [
            "DELETE FROM sign_in_log WHERE created_at < ?",
            "DELETE FROM audit_log WHERE created_at < ?",
        ];
        let mut writer = self.write_lock().await?;
        let mut tx = begin(&mut writer).await?;
        let mut removed = 0;
        for statement in PURGES {
            let done = sqlx::query(statement)
                .bind(before.0)
                .execute(&mut *tx)
                .await
                .map_err(|e| backend("purging old log records", e))?;
            removed += done.rows_affected();
        }
        tx.commit()
            .await
            .map_err(|e| backend("purging old log records", e))?;
        Ok(removed)
    }

    async fn record_risk(&self, detection: &RiskDetection) -> StoreResult<()> {
        let body = to_json("risk detection", serde_json::to_string(detection))?;
        let mut writer = self.write_lock().await?;
        let mut tx = begin(&mut writer).await?;
        sqlx::query(
            "INSERT INTO risk_detections (id, user_id, detected_at, body) VALUES (?, ?, ?, ?)",
        )
        .bind(detection.id.as_str())
        .bind(detection.user_id.as_str())
        .bind(detection.detected_date_time.0)
        .bind(body)
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_or_backend("a risk detection with this id", e))?;
        sqlx::query(
            "INSERT INTO user_risk (user_id, state, detail, last_updated) VALUES (?, 'atRisk', ?, ?) \
             ON CONFLICT (user_id) DO UPDATE SET state = 'atRisk', detail = excluded.detail, \
             last_updated = excluded.last_updated",
        )
        .bind(detection.user_id.as_str())
        .bind(detection.risk_event_type.as_str())
        .bind(detection.detected_date_time.0)
        .execute(&mut *tx)
        .await
        .map_err(|e| backend("raising a user's risk", e))?;
        tx.commit()
            .await
            .map_err(|e| backend("raising a user's risk", e))
    }

    async fn user_risk(&self, user: &UserId) -> StoreResult<Option<UserRisk>> {
        sqlx::query("SELECT * FROM user_risk WHERE user_id = ?")
            .bind(user.as_str())
            .fetch_optional(&mut *self.reader().await?)
            .await
            .map_err(read_error)?
            .as_ref()
            .map(user_risk_from)
            .transpose()
    }

    async fn risky_users(&self) -> StoreResult<Vec<UserRisk>> {
        sqlx::query(
            "SELECT * FROM user_risk ORDER BY state = 'atRisk' DESC, last_updated DESC, user_id",
        )
        .fetch_all(&mut *self.reader().await?)
        .await
        .map_err(read_error)?
        .iter()
        .map(user_risk_from)
        .collect()
    }

    async fn risk_detections(&self, user: &UserId) -> StoreResult<Vec<RiskDetection>> {
        let bodies: Vec<String> = sqlx::query_scalar(
            "SELECT body FROM risk_detections WHERE user_id = ? ORDER BY detected_at DESC, id",
        )
        .bind(user.as_str())
        .fetch_all(&mut *self.reader().await?)
        .await
        .map_err(read_error)?;
        bodies
            .iter()
            .map(|b| serde_json::from_str(b).map_err(|_| corrupt("risk detection")))
            .collect()
    }

    async fn dismiss_risk(&self, user: &UserId, at: Timestamp) -> StoreResult<bool> {
        let query = sqlx::query(
            "UPDATE user_risk SET state = 'dismissed', detail = 'adminDismissedAllRiskForUser', \
             last_updated = ? WHERE user_id = ? AND state = 'atRisk'",
        )
        .bind(at.0)
        .bind(user.as_str());
        let done = self
            .execute(query)
            .await
            .map_err(|e| backend("dismissing a user's risk", e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn remember_sign_in_country(
        &self,
        user: &UserId,
        country: &str,
        at: Timestamp,
    ) -> StoreResult<()> {
        let query = sqlx::query(
            "INSERT INTO sign_in_countries (user_id, country, first_seen, last_seen) VALUES (?, ?, ?, ?) \
             ON CONFLICT (user_id, country) DO UPDATE SET \
               first_seen = min(first_seen, excluded.first_seen), \
               last_seen = max(last_seen, excluded.last_seen)",
        )
        .bind(user.as_str())
        .bind(country)
        .bind(at.0)
        .bind(at.0);
        self.execute(query)
            .await
            .map_err(|e| conflict_or_backend("remembering a sign-in country", e))?;
        Ok(())
    }

    async fn remember_refusal(&self, user: &UserId, at: Timestamp) -> StoreResult<()> {
        let query = sqlx::query(
            "INSERT INTO sign_in_refusals (user_id, last_refused_at) VALUES (?, ?) \
             ON CONFLICT (user_id) DO UPDATE SET \
               last_refused_at = max(last_refused_at, excluded.last_refused_at)",
        )
        .bind(user.as_str())
        .bind(at.0);
        self.execute(query)
            .await
            .map_err(|e| conflict_or_backend("remembering a refusal", e))?;
        Ok(())
    }

    async fn sign_in_history(&self, user: &UserId) -> StoreResult<SignInHistory> {
        let countries: Vec<String> = sqlx::query_scalar(
            "SELECT country FROM sign_in_countries WHERE user_id = ? ORDER BY country",
        )
        .bind(user.as_str())
        .fetch_all(&mut *self.reader().await?)
        .await
        .map_err(read_error)?;
        let last_refusal: Option<i64> =
            sqlx::query_scalar("SELECT last_refused_at FROM sign_in_refusals WHERE user_id = ?")
                .bind(user.as_str())
                .fetch_optional(&mut *self.reader().await?)
                .await
                .map_err(read_error)?;
        Ok(SignInHistory {
            countries,
            last_refusal: last_refusal.map(Timestamp),
        })
    }
}

#[async_trait]
impl ThrottleStore for SqliteStore {
    async fn take_throttle_slot(
        &self,
        key: &str,
        now: Timestamp,
        window_seconds: i64,
        limit: u32,
    ) -> StoreResult<bool> {
        let window_start = now.0 - now.0.rem_euclid(window_seconds.max(1));
        // One statement: a new window starts at 1, the current one grows while below the
        // limit; the write lock makes the check and the increment one step.
        let query = sqlx::query(
            "INSERT INTO throttle (key, window_start, count) VALUES (?, ?, 1) \
             ON CONFLICT (key) DO UPDATE SET \
               count = CASE WHEN throttle.window_start = excluded.window_start THEN throttle.count + 1 ELSE 1 END, \
               window_start = excluded.window_start \
             WHERE throttle.window_start <> excluded.window_start OR throttle.count < ?",
        )
        .bind(key)
        .bind(window_start)
        .bind(limit);
        let done = self
            .execute(query)
            .await
            .map_err(|e| backend("counting for a throttle", e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn release_throttle_slot(
        &self,
        key: &str,
        now: Timestamp,
        window_seconds: i64,
    ) -> StoreResult<()> {
        let window_start = now.0 - now.0.rem_euclid(window_seconds.max(1));
        let query = sqlx::query(
            "UPDATE throttle SET count = count - 1 WHERE key = ? AND window_start = ? AND count > 0",
        )
        .bind(key)
        .bind(window_start);
        self.execute(query)
            .await
            .map_err(|e| backend("releasing a throttle count", e))?;
        Ok(())
    }

    async fn throttle_count(
        &self,
        key: &str,
        now: Timestamp,
        window_seconds: i64,
    ) -> StoreResult<u32> {
        let window_start = now.0 - now.0.rem_euclid(window_seconds.max(1));
        let count: Option<i64> =
            sqlx::query_scalar("SELECT count FROM throttle WHERE key = ? AND window_start = ?")
                .bind(key)
                .bind(window_start)
                .fetch_optional(&mut *self.reader().await?)
                .await
                .map_err(read_error)?;
        Ok(count.unwrap_or(0).try_into().unwrap_or(u32::MAX))
    }

    async fn remember_familiar_place(
        &self,
        user: &UserId,
        place: &str,
        at: Timestamp,
        forget_before: Timestamp,
    ) -> StoreResult<()> {
        let mut writer = self.write_lock().await?;
        let mut tx = begin(&mut writer).await?;
        sqlx::query("DELETE FROM familiar_places WHERE user_id = ? AND last_seen < ?")
            .bind(user.as_str())
            .bind(forget_before.0)
            .execute(&mut *tx)
            .await
            .map_err(|e| backend("forgetting old familiar places", e))?;
        sqlx::query(
            "INSERT INTO familiar_places (user_id, place, first_seen, last_seen) VALUES (?, ?, ?, ?) \
             ON CONFLICT (user_id, place) DO UPDATE SET \
               first_seen = min(first_seen, excluded.first_seen), \
               last_seen = max(last_seen, excluded.last_seen)",
        )
        .bind(user.as_str())
        .bind(place)
        .bind(at.0)
        .bind(at.0)
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_or_backend("remembering a familiar place", e))?;
        tx.commit()
            .await
            .map_err(|e| backend("remembering a familiar place", e))?;
        Ok(())
    }

    async fn familiar_place_seen(
        &self,
        user: &UserId,
        place: &str,
    ) -> StoreResult<Option<Timestamp>> {
        let seen: Option<i64> = sqlx::query_scalar(
            "SELECT last_seen FROM familiar_places WHERE user_id = ? AND place = ?",
        )
        .bind(user.as_str())
        .bind(place)
        .fetch_optional(&mut *self.reader().await?)
        .await
        .map_err(read_error)?;
        Ok(seen.map(Timestamp))
    }
}

#[async_trait]
impl AdminTokenStore for SqliteStore {
    async fn create_admin_token(&self, token: &AdminToken) -> StoreResult<()> {
        let query = sqlx::query(
            "INSERT INTO admin_tokens (id, hash, legacy_sha256, name, created_at, created_by, \
             expires_at, last_used_at, revoked_at, revoked_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(token.id.as_str())
        .bind(token.hash.as_str())
        .bind(token.legacy_sha256)
        .bind(&token.name)
        .bind(token.created_at.0)
        .bind(&token.created_by)
        .bind(token.expires_at.map(|t| t.0))
        .bind(token.last_used_at.map(|t| t.0))
        .bind(token.revoked_at.map(|t| t.0))
        .bind(&token.revoked_by);
        self.execute(query)
            .await
            .map_err(|e| conflict_or_backend("an administrator token", e))?;
        Ok(())
    }

    async fn admin_token_by_hash(&self, hash: &TokenHash) -> StoreResult<Option<AdminToken>> {
        sqlx::query("SELECT * FROM admin_tokens WHERE hash = ?")
            .bind(hash.as_str())
            .fetch_optional(&mut *self.reader().await?)
            .await
            .map_err(read_error)?
            .as_ref()
            .map(admin_token_from)
            .transpose()
    }

    async fn admin_token(&self, id: &AdminTokenId) -> StoreResult<Option<AdminToken>> {
        sqlx::query("SELECT * FROM admin_tokens WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&mut *self.reader().await?)
            .await
            .map_err(read_error)?
            .as_ref()
            .map(admin_token_from)
            .transpose()
    }

    async fn list_admin_tokens(&self) -> StoreResult<Vec<AdminToken>> {
        sqlx::query("SELECT * FROM admin_tokens ORDER BY created_at, id")
            .fetch_all(&mut *self.reader().await?)
            .await
            .map_err(read_error)?
            .iter()
            .map(admin_token_from)
            .collect()
    }

    async fn count_admin_tokens(&self) -> StoreResult<u64> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM admin_tokens")
            .fetch_one(&mut *self.reader().await?)
            .await
            .map_err(read_error)?;
        Ok(count.unsigned_abs())
    }

    async fn revoke_admin_token(
        &self,
        id: &AdminTokenId,
        at: Timestamp,
        by: &str,
    ) -> StoreResult<bool> {
        let query = sqlx::query(
            "UPDATE admin_tokens SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL",
        )
        .bind(at.0)
        .bind(by.to_string())
        .bind(id.as_str());
        let done = self
            .execute(query)
            .await
            .map_err(|e| backend("revoking an administrator token", e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn touch_admin_token(
        &self,
        id: &AdminTokenId,
        at: Timestamp,
        not_before: Timestamp,
    ) -> StoreResult<()> {
        let query = sqlx::query(
            "UPDATE admin_tokens SET last_used_at = ? \
             WHERE id = ? AND (last_used_at IS NULL OR last_used_at <= ?)",
        )
        .bind(at.0)
        .bind(id.as_str())
        .bind(not_before.0);
        self.execute(query)
            .await
            .map_err(|e| backend("recording an administrator token's use", e))?;
        Ok(())
    }

    async fn rehash_admin_token(&self, id: &AdminTokenId, hash: &TokenHash) -> StoreResult<()> {
        let query = sqlx::query(
            "UPDATE admin_tokens SET hash = ?, legacy_sha256 = 0 WHERE id = ? AND legacy_sha256 = 1",
        )
        .bind(hash.as_str())
        .bind(id.as_str());
        self.execute(query)
            .await
            .map_err(|e| conflict_or_backend("an administrator token", e))?;
        Ok(())
    }
}

#[async_trait]
impl MaintenanceStore for SqliteStore {
    async fn purge_expired(&self, now: Timestamp) -> StoreResult<u64> {
        const PURGES: [&str; 9] = [
            "DELETE FROM codes WHERE expires_at <= ?",
            "DELETE FROM activations WHERE expires_at <= ? AND device_id IS NULL",
            "DELETE FROM device_nonces WHERE expires_at <= ?",
            // Settled or not, a day after expiry an approval is only history (the log has it).
            "DELETE FROM approvals WHERE expires_at + 86400 <= ?",
            // Windows are at most a day long.
            "DELETE FROM throttle WHERE window_start + 86400 <= ?",
            "DELETE FROM access_tokens WHERE expires_at <= ?",
            "DELETE FROM refresh_tokens WHERE expires_at <= ?",
            "DELETE FROM sign_ins WHERE expires_at <= ?",
            "DELETE FROM sessions WHERE expires_at <= ?",
        ];
        let mut writer = self.write_lock().await?;
        let mut tx = begin(&mut writer).await?;
        let mut removed = 0;
        for statement in PURGES {
            let done = sqlx::query(statement)
                .bind(now.0)
                .execute(&mut *tx)
                .await
                .map_err(|e| backend("purging expired rows", e))?;
            removed += done.rows_affected();
        }
        tx.commit()
            .await
            .map_err(|e| backend("purging expired rows", e))?;
        Ok(removed)
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&mut *self.reader().await?)
            .await
            .map_err(read_error)?;
        Ok(())
    }
}

fn admin_token_from(row: &SqliteRow) -> StoreResult<AdminToken> {
    Ok(AdminToken {
        id: AdminTokenId::from_string(get::<String>(row, "id")?),
        name: get(row, "name")?,
        hash: TokenHash::from_stored(get::<String>(row, "hash")?),
        legacy_sha256: get(row, "legacy_sha256")?,
        created_at: timestamp(row, "created_at")?,
        created_by: get(row, "created_by")?,
        expires_at: optional_timestamp(row, "expires_at")?,
        last_used_at: optional_timestamp(row, "last_used_at")?,
        revoked_at: optional_timestamp(row, "revoked_at")?,
        revoked_by: get(row, "revoked_by")?,
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use latchkey_domain::secret::random_hex;

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

    #[tokio::test]
    async fn sqlite_store_passes_the_conformance_suite() {
        let dir = TempDir::new();
        let store = SqliteStore::open(&dir.0).await.expect("open");
        conformance::run_all(&store).await;
        store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_store_passes_the_conformance_suite_on_a_multi_threaded_runtime() {
        let dir = TempDir::new();
        let store = SqliteStore::open(&dir.0).await.expect("open");
        conformance::concurrent_redeem_of_a_code_has_one_winner(&store).await;
        conformance::concurrent_redeem_of_a_refresh_token_has_one_winner(&store).await;
        conformance::concurrent_use_of_a_one_time_pass_has_one_winner(&store).await;
        conformance::concurrent_policy_saves_of_one_version_have_one_winner(&store).await;
        store.close().await;
    }

    #[tokio::test]
    async fn a_fresh_store_has_no_policy_until_the_first_save() {
        let dir = TempDir::new();
        let store = SqliteStore::open(&dir.0).await.expect("open");
        conformance::policy_is_absent_until_first_save(&store).await;
        store.close().await;
    }

    /// The suite promises its checks can share a database; running it twice proves it.
    #[tokio::test]
    async fn the_conformance_suite_can_run_twice_on_one_database() {
        let dir = TempDir::new();
        let store = SqliteStore::open(&dir.0).await.expect("open");
        conformance::run_all(&store).await;
        conformance::run_all(&store).await;
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
            created_at: now,
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
        store.create_grant(&grant).await.unwrap();
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
            store.redeem_refresh_token(&token.hash).await.unwrap(),
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
        // The writer checkpoints only past 10,000 WAL pages, so a few hundred rows reach the
        // main file only through the background checkpoint; without it the WAL would grow
        // until that safety net.
        let dir = TempDir::new();
        let store = SqliteStore::open(&dir.0).await.expect("open");
        let size = || std::fs::metadata(dir.0.join(DATABASE_FILE)).unwrap().len();
        tokio::time::sleep(CHECKPOINT_EVERY * 2).await;
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
    async fn a_closed_store_refuses_reads_and_writes_instead_of_hanging() {
        let dir = TempDir::new();
        let store = SqliteStore::open(&dir.0).await.expect("open");
        let user = some_user("closed");
        store.create_user(&user).await.unwrap();
        store.close().await;
        let read = tokio::time::timeout(Duration::from_secs(5), store.user_by_upn(&user.upn))
            .await
            .expect("answers at once");
        assert!(matches!(read, Err(StoreError::Backend(_))), "{read:?}");
        let write =
            tokio::time::timeout(Duration::from_secs(5), store.create_user(&some_user("x")))
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
        sqlx::raw_sql(
            "DROP TABLE sign_in_countries; DROP TABLE sign_in_refusals; \
             DELETE FROM _sqlx_migrations WHERE version = 5;",
        )
        .execute(&mut *store.write_lock().await.unwrap())
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
        let (first, last): (i64, i64) = sqlx::query_as(
            "SELECT first_seen, last_seen FROM sign_in_countries WHERE user_id = ? AND country = 'GB'",
        )
        .bind(user.id.as_str())
        .fetch_one(&mut *store.reader().await.unwrap())
        .await
        .unwrap();
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
        sqlx::query("INSERT INTO policy (id, version, document) VALUES (1, 3, ?)")
            .bind(document.to_string())
            .execute(&mut *store.write_lock().await.unwrap())
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
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *store.reader().await.unwrap())
            .await
            .unwrap();
        assert_eq!(mode.to_ascii_lowercase(), "wal");
        let fks: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&mut *store.write_lock().await.unwrap())
            .await
            .unwrap();
        assert_eq!(fks, 1);
        store.close().await;
    }

    /// Counts the rows of the writer tests' probe table holding `n`.
    async fn probe_rows(store: &SqliteStore, n: i64) -> i64 {
        sqlx::query("SELECT count(*) FROM batch_probe WHERE n = ?")
            .bind(n)
            .fetch_one(&mut *store.reader().await.unwrap())
            .await
            .unwrap()
            .get(0)
    }

    #[tokio::test]
    async fn a_write_whose_error_rolls_back_its_batch_leaves_nothing_behind_that_was_reported_failed()
     {
        // SQLITE_INTERRUPT in a writing statement makes SQLite roll back the whole
        // transaction, as FULL, IOERR and NOMEM can: later writes of the batch then ran outside
        // any transaction and stayed, while their callers heard the batch failed.
        let dir = TempDir::new();
        let store = SqliteStore::open(&dir.0).await.expect("open");
        store
            .execute(sqlx::query("CREATE TABLE batch_probe (n INTEGER NOT NULL)"))
            .await
            .unwrap();
        {
            let mut guard = store.write.lock().await;
            let conn = guard.as_mut().unwrap();
            // Interrupts any statement that runs long; the probe's inserts never do.
            conn.lock_handle()
                .await
                .unwrap()
                .set_progress_handler(100_000, || false);
        }
        let long = "INSERT INTO batch_probe SELECT -1 FROM (WITH RECURSIVE c(x) AS \
                    (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 10000000) SELECT count(*) FROM c)";
        // Queued back to back without yielding, so the writer takes them as one batch.
        let mut answers = Vec::new();
        for n in 1..=6i64 {
            let query = if n == 3 {
                sqlx::query(long)
            } else {
                sqlx::query("INSERT INTO batch_probe (n) VALUES (?)").bind(n)
            };
            let (done, answer) = oneshot::channel();
            store.writes.try_send(WriteJob { query, done }).unwrap();
            answers.push((n, answer));
        }
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
        let dir = TempDir::new();
        let store = SqliteStore::open(&dir.0).await.expect("open");
        store
            .execute(sqlx::query("CREATE TABLE batch_probe (n INTEGER NOT NULL)"))
            .await
            .unwrap();
        // A stalled writer (a slow disk, say): nothing leaves the queue.
        let stalled = store.write.lock().await;
        let callers = WRITE_QUEUE * 2 + MAX_BATCH;
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..callers {
            let store = store.clone();
            tasks.spawn(async move {
                store
                    .execute(sqlx::query("INSERT INTO batch_probe (n) VALUES (7)"))
                    .await
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let queued = store.writes.max_capacity() - store.writes.capacity();
        assert!(
            queued <= WRITE_QUEUE,
            "{queued} writes queued; the queue holds {WRITE_QUEUE}"
        );
        assert_eq!(store.writes.capacity(), 0, "the rest wait to get in line");
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
}
