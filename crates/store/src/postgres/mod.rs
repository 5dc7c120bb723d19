//! The PostgreSQL store: one database shared by any number of Latchkey instances.
//!
//! Unlike SQLite, PostgreSQL has many writers at once, so nothing here relies on a single
//! writer. Every method that spends a single-use value or races another caller does it with a
//! conditional write that PostgreSQL makes atomic at READ COMMITTED (`UPDATE … WHERE <still
//! unspent> RETURNING …`, `DELETE … RETURNING …`, `INSERT … ON CONFLICT …`), or, where a
//! decision needs several rows, with `SELECT … FOR UPDATE` on the row every competitor must lock
//! first, inside a transaction. `docs/postgres.md` says, per method, which one.
//!
//! Connections come from an `sqlx` pool; every connection carries the statement timeout from
//! the settings, so a wedged query surfaces as an error rather than a hung request.
//! Migrations run when the store opens, on a connection of their own without that timeout,
//! under `sqlx`'s PostgreSQL migrator, which holds `pg_advisory_lock` (keyed on the database's
//! name) for the whole run: of two instances starting at once, one migrates and the other
//! waits, then finds nothing left to do.

use std::str::FromStr;
use std::time::Duration;

use latchkey_domain::clock::Timestamp;
use latchkey_domain::error::StoreError;
use latchkey_domain::ids::{ClientId, UserId};
use latchkey_domain::log::{AuditEvent, LogQuery, SignInRecord};
use latchkey_domain::oidc::{IssuedTokens, Redeemed};
use latchkey_domain::secret::TokenHash;
use latchkey_domain::session::AuthMethod;
use latchkey_domain::store::StoreResult;
use serde_json::Value;
use sqlx::error::ErrorKind;
use sqlx::migrate::Migrator;
use sqlx::postgres::{
    PgArguments, PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgQueryResult, PgRow,
    Postgres,
};
use sqlx::query::Query;
use sqlx::{Connection, QueryBuilder, Row};

mod admin_token;
mod application;
mod campaign;
mod device;
mod device_authorization;
pub mod events;
mod governance;
mod grant;
mod group;
mod maintenance;
mod passkey;
mod push;
pub mod scratch;
mod session;
mod throttle;
mod user;

#[cfg(test)]
mod tests;

/// The schema, embedded at compile time so a release binary carries its own migrations.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// How the PostgreSQL store connects: the pool's size and how long a statement may run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresSettings {
    /// The most connections this instance holds open. Several instances share the server's
    /// `max_connections` (100 by default), so keep their sum below it.
    pub max_connections: u32,
    /// A statement running longer than this is cancelled and its method fails.
    pub statement_timeout: Duration,
    /// How long a method waits for a free connection before failing.
    pub acquire_timeout: Duration,
}

impl Default for PostgresSettings {
    fn default() -> Self {
        PostgresSettings {
            max_connections: 10,
            statement_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// A [`Store`](latchkey_domain::store::Store) backed by PostgreSQL. Cloning shares the pool.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

/// Whether `url` names a PostgreSQL database (`postgres://` or `postgresql://`).
pub fn is_postgres_url(url: &str) -> bool {
    let lower = url.get(..13).unwrap_or(url).to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// Whether `url` parses as a PostgreSQL URL (the parser's message is not passed on: it may
/// quote the URL, password included).
pub fn is_valid_url(url: &str) -> bool {
    is_postgres_url(url) && PgConnectOptions::from_str(url).is_ok()
}

/// A pooled connection idle this long is pinged before it is used again.
const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(5);

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user@host:port/database?…`) and brings its
    /// schema up to date.
    pub async fn open(url: &str, settings: &PostgresSettings) -> Result<PostgresStore, StoreError> {
        // sqlx's messages about a malformed URL may quote it, and a URL can hold a password.
        let options = PgConnectOptions::from_str(url).map_err(|_| {
            StoreError::Backend("the database URL is not a valid PostgreSQL URL".into())
        })?;
        PostgresStore::open_with(options, settings).await
    }

    /// As [`open`](Self::open), with the connection options already built (the tests use this
    /// to put each test in a schema of its own).
    pub async fn open_with(
        options: PgConnectOptions,
        settings: &PostgresSettings,
    ) -> Result<PostgresStore, StoreError> {
        // An `application_name` in the URL is kept (operators and the benchmark tell instances
        // apart by it in `pg_stat_activity`); otherwise connections are named "latchkey".
        let options = match options.get_application_name() {
            Some(_) => options,
            None => options.application_name("latchkey"),
        };
        migrate_with(&options).await?;
        let timeout_ms = settings.statement_timeout.as_millis().max(1).to_string();
        let pooled = options.options([("statement_timeout", timeout_ms.as_str())]);
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections.max(1))
            .acquire_timeout(settings.acquire_timeout)
            // sqlx pings every connection it hands out by default: a round trip before every
            // statement. A connection in steady use is known to work; one that sat idle (a
            // database restart may have ended it unseen) is still checked first.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_WHEN_IDLE_FOR {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(pooled)
            .await
            .map_err(|e| backend("connecting to the database", e))?;
        tracing::debug!("PostgreSQL store opened");
        Ok(PostgresStore { pool })
    }

    /// Closes the pool, waiting for connections in use. Later calls fail as a closed store.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The pool, for the tests.
    #[cfg(test)]
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Runs one write statement on a pooled connection.
    async fn execute(
        &self,
        query: Query<'_, Postgres, PgArguments>,
    ) -> Result<PgQueryResult, sqlx::Error> {
        query.execute(&self.pool).await
    }

    /// Runs one write keyed by one value (`sql` has one `$1`, bound to `key`); `doing` names
    /// it in a backend error.
    async fn write_by_key(&self, sql: &'static str, key: &str, doing: &str) -> StoreResult<()> {
        self.execute(sqlx::query(sql).bind(key))
            .await
            .map_err(|e| backend(doing, e))?;
        Ok(())
    }

    /// Starts a transaction at the server's default isolation, READ COMMITTED.
    async fn begin(&self) -> StoreResult<sqlx::Transaction<'static, Postgres>> {
        self.pool
            .begin()
            .await
            .map_err(|e| backend("starting a transaction", e))
    }

    /// Runs a read that finds at most one row by one key (`$1`), and decodes it.
    async fn read_by_key<T>(
        &self,
        sql: &'static str,
        key: &str,
        decode: fn(&PgRow) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        sqlx::query(sql)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(read_error)?
            .as_ref()
            .map(decode)
            .transpose()
    }

    /// Runs a read that finds any number of rows, and decodes them in order.
    async fn read_all<T>(
        &self,
        query: Query<'_, Postgres, PgArguments>,
        decode: fn(&PgRow) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        query
            .fetch_all(&self.pool)
            .await
            .map_err(read_error)?
            .iter()
            .map(decode)
            .collect()
    }

    /// Spends a row of a single-use table and stores what the redemption issues, in one
    /// statement (`spend`, made by `spend_issuing!`): its `UPDATE … WHERE hash = $1 AND NOT
    /// spent RETURNING *` flips the row only while it is unspent, and the inserts take their
    /// rows from what it returned. At READ COMMITTED a second concurrent `UPDATE` waits for the
    /// first to commit, re-checks the `WHERE` on the new row version, finds it spent and
    /// returns nothing, so it issues nothing. The loser then reads the row to tell a replay
    /// from an unknown value. `spend` and `select` are fixed statements chosen by the caller,
    /// never input.
    async fn spend<T>(
        &self,
        spend: &'static str,
        select: &'static str,
        hash: &TokenHash,
        decode: fn(&PgRow) -> StoreResult<T>,
        issue: &IssuedTokens,
    ) -> StoreResult<Redeemed<T>> {
        let scopes = issue
            .access
            .scopes
            .as_ref()
            .map(|s| to_json("scopes", serde_json::to_string(s)))
            .transpose()?;
        let spent = sqlx::query(spend)
            .bind(hash.as_str())
            .bind(issue.access.hash.as_str())
            .bind(issue.access.grant_id.as_str())
            .bind(issue.access.expires_at.0)
            .bind(scopes)
            .bind(issue.refresh.as_ref().map(|r| r.hash.as_str()))
            .bind(issue.refresh.as_ref().map(|r| r.expires_at.0))
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| conflict_or_backend("a token", e))?;
        if let Some(row) = spent {
            return Ok(Redeemed::Fresh(decode(&row)?));
        }
        let row = sqlx::query(select)
            .bind(hash.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| backend("redeeming", e))?;
        match row {
            Some(row) => Ok(Redeemed::Replayed(decode(&row)?)),
            None => Ok(Redeemed::Unknown),
        }
    }
}

/// Brings the schema of the database at `url` up to date (for `latchkey migrate`).
pub async fn migrate(url: &str) -> Result<(), StoreError> {
    let options = PgConnectOptions::from_str(url).map_err(|_| {
        StoreError::Backend("the database URL is not a valid PostgreSQL URL".into())
    })?;
    migrate_with(&options.application_name("latchkey")).await
}

/// Brings the schema of the database `options` points at up to date, on a connection of its
/// own (no statement timeout: waiting for another instance's migration is expected). `sqlx`'s
/// migrator takes `pg_advisory_lock` for the whole run and applies each migration in a
/// transaction, so two instances starting at once never both apply one.
pub async fn migrate_with(options: &PgConnectOptions) -> Result<(), StoreError> {
    let mut conn = PgConnection::connect_with(options)
        .await
        .map_err(|e| backend("connecting to the database", e))?;
    MIGRATOR
        .run(&mut conn)
        .await
        .map_err(|e| StoreError::Backend(format!("migrating the database failed: {e}")))?;
    let _ = conn.close().await;
    Ok(())
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

/// A failure the caller cannot fix: the server is down, the pool is exhausted, a statement ran
/// past the statement timeout (SQLSTATE 57014), or a serialization failure or deadlock
/// (40001, 40P01) that the conditional writes here should never cause. As on SQLite (whose
/// busy timeout ends the same way), these are `Backend` errors; the request fails and the
/// client may retry. sqlx's database messages carry PostgreSQL's text, and PostgreSQL's
/// `DETAIL` (which can quote a value) is not part of sqlx's `Display`, so they are safe to log.
fn backend(context: &str, error: sqlx::Error) -> StoreError {
    let code = match &error {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    };
    let reason = match code.as_deref() {
        Some("57014") => "the statement timed out",
        Some("40001") => "a serialization failure",
        Some("40P01") => "a deadlock",
        _ => "",
    };
    tracing::error!(context, error = %error, reason, "PostgreSQL store operation failed");
    StoreError::Backend(format!("{context}: {error}"))
}

fn read_error(error: sqlx::Error) -> StoreError {
    backend("reading", error)
}

/// A stored value that no longer decodes: the database was edited by hand or is corrupt.
fn corrupt(what: &str) -> StoreError {
    tracing::error!(what, "PostgreSQL store holds a value it cannot decode");
    StoreError::Backend(format!("the stored {what} cannot be read"))
}

fn to_json(what: &str, value: serde_json::Result<String>) -> StoreResult<String> {
    value.map_err(|_| StoreError::Backend(format!("cannot encode the {what}")))
}

// Row decoding shared by every port: a value that no longer decodes is reported as corrupt.

fn get<'r, T>(row: &'r PgRow, column: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    row.try_get(column).map_err(read_error)
}

fn timestamp(row: &PgRow, column: &str) -> StoreResult<Timestamp> {
    get::<i64>(row, column).map(Timestamp)
}

fn optional_timestamp(row: &PgRow, column: &str) -> StoreResult<Option<Timestamp>> {
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

fn method_from(row: &PgRow) -> StoreResult<AuthMethod> {
    serde_json::from_value(Value::String(get(row, "method")?))
        .map_err(|_| corrupt("authentication method"))
}

fn string_list(row: &PgRow, column: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(&get::<String>(row, column)?).map_err(|_| corrupt(column))
}

// Statements shared by more than one port's writes, built in one place so that a method doing
// several things in one transaction has exactly the semantics of the single-purpose methods.

/// The filtered and ordered columns are copies of fields of the record, taken here, so they
/// can never disagree with the JSON that is read back.
fn insert_sign_in_record(
    record: &SignInRecord,
) -> StoreResult<Query<'static, Postgres, PgArguments>> {
    Ok(sqlx::query(
        "INSERT INTO sign_in_log (id, created_at, user_id, user_principal_name, app_id, app_display_name, \
         error_code, authentication_method, record) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(record.id.as_str().to_owned())
    .bind(record.created_date_time.0)
    .bind(record.user_id.as_ref().map(|id| UserId::as_str(id).to_owned()))
    .bind(record.user_principal_name.clone())
    .bind(record.app_id.as_ref().map(|id| ClientId::as_str(id).to_owned()))
    .bind(record.app_display_name.clone())
    .bind(i64::from(record.status.error_code))
    .bind(record.authentication_method.clone())
    .bind(to_json("sign-in record", serde_json::to_string(record))?))
}

const SIGN_IN_RECORD_CONFLICT: &str = "a sign-in record with this id";

fn insert_audit_event(event: &AuditEvent) -> StoreResult<Query<'static, Postgres, PgArguments>> {
    Ok(sqlx::query(
        "INSERT INTO audit_log (id, created_at, actor, target, category, event) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(event.id.as_str().to_owned())
    .bind(event.activity_date_time.0)
    .bind(event.actor.0.clone())
    .bind(event.target.clone())
    .bind(event.category.as_str().to_owned())
    .bind(to_json("audit event", serde_json::to_string(event))?))
}

const AUDIT_EVENT_CONFLICT: &str = "an audit event with this id";

/// The time range, order and page shared by both logs. Only fixed SQL text is pushed; every
/// value travels as a bound parameter.
fn push_time_range_and_page(sql: &mut QueryBuilder<Postgres>, query: &LogQuery) {
    if let Some(since) = query.since {
        sql.push(" AND created_at >= ").push_bind(since.0);
    }
    if let Some(until) = query.until {
        sql.push(" AND created_at < ").push_bind(until.0);
    }
    // Within one second, the most recently written first (`seq` grows with every insert).
    sql.push(" ORDER BY created_at DESC, seq DESC LIMIT ")
        .push_bind(i64::from(query.limit))
        .push(" OFFSET ")
        .push_bind(i64::from(query.skip));
}
