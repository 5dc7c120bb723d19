//! PostgreSQL: Temporary Access Passes, sessions, sign-ins in progress and their outcomes.
//!
//! Also the counter decoder and the query type the device and passkey ports reuse.

use async_trait::async_trait;
use latchkey_domain::clock::Timestamp;
use latchkey_domain::credential::TemporaryAccessPass;
use latchkey_domain::error::StoreError;
use latchkey_domain::ids::{SessionId, SignInId, UserId};
use latchkey_domain::log::SignInRecord;
use latchkey_domain::oidc::{AuthorizationCode, Grant};
use latchkey_domain::secret::TokenHash;
use latchkey_domain::session::Session;
use latchkey_domain::signin::PendingSignIn;
use latchkey_domain::store::{Familiar, SessionStore, StoreResult};
use sqlx::postgres::{PgArguments, PgRow, Postgres};
use sqlx::query::Query;

use super::device::lock_user;
use super::grant;
use super::throttle::remember_familiar;
use super::{
    PostgresStore, SIGN_IN_RECORD_CONFLICT, backend, conflict_or_backend, corrupt, get,
    insert_sign_in_record, method_from, method_text, optional_timestamp, read_error, timestamp,
    to_json,
};

/// A query whose values are all bound and owned, ready to run on the pool or in a transaction.
pub(super) type Bound = Query<'static, Postgres, PgArguments>;

/// A non-negative integer column that must fit a `u32`.
pub(super) fn unsigned(row: &PgRow, column: &str, what: &str) -> StoreResult<u32> {
    u32::try_from(get::<i64>(row, column)?).map_err(|_| corrupt(what))
}

fn pass_from(row: &PgRow) -> StoreResult<TemporaryAccessPass> {
    Ok(TemporaryAccessPass {
        user_id: UserId::from_string(get::<String>(row, "user_id")?),
        hash: TokenHash::from_stored(get::<String>(row, "hash")?),
        created_at: timestamp(row, "created_at")?,
        starts_at: timestamp(row, "starts_at")?,
        lifetime_minutes: unsigned(row, "lifetime_minutes", "pass lifetime")?,
        usable_once: get(row, "usable_once")?,
        used_at: optional_timestamp(row, "used_at")?,
    })
}

fn session_from(row: &PgRow) -> StoreResult<Session> {
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

pub(super) fn insert_session(session: &Session) -> StoreResult<Bound> {
    Ok(sqlx::query(
        "INSERT INTO sessions (id, token_hash, user_id, method, auth_time, created_at, expires_at, revoked) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(session.id.as_str().to_owned())
    .bind(session.token_hash.as_str().to_owned())
    .bind(session.user_id.as_str().to_owned())
    .bind(method_text(session.method)?)
    .bind(session.auth_time.0)
    .bind(session.created_at.0)
    .bind(session.expires_at.0)
    .bind(session.revoked))
}

pub(super) const SESSION_CONFLICT: &str = "a session with this id or token";

/// The sign-in moves through stages by being put again, hence the upsert.
pub(super) fn upsert_sign_in(sign_in: &PendingSignIn) -> StoreResult<Bound> {
    let body = to_json("sign-in", serde_json::to_string(sign_in))?;
    Ok(sqlx::query(
        "INSERT INTO sign_ins (id, body, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (id) DO UPDATE SET body = excluded.body, expires_at = excluded.expires_at",
    )
    .bind(sign_in.id.as_str().to_owned())
    .bind(body)
    .bind(sign_in.expires_at.0))
}

#[async_trait]
impl SessionStore for PostgresStore {
    async fn put_pass(&self, pass: &TemporaryAccessPass) -> StoreResult<()> {
        // An upsert on the user's row: issuing a new pass invalidates the old one in the same
        // statement, so there is never a moment with two valid passes.
        sqlx::query(
            "INSERT INTO passes (user_id, hash, created_at, starts_at, lifetime_minutes, usable_once, used_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (user_id) DO UPDATE SET hash = excluded.hash, created_at = excluded.created_at, \
             starts_at = excluded.starts_at, lifetime_minutes = excluded.lifetime_minutes, \
             usable_once = excluded.usable_once, used_at = excluded.used_at",
        )
        .bind(pass.user_id.as_str())
        .bind(pass.hash.as_str())
        .bind(pass.created_at.0)
        .bind(pass.starts_at.0)
        .bind(i64::from(pass.lifetime_minutes))
        .bind(pass.usable_once)
        .bind(pass.used_at.map(|t| t.0))
        .execute(&self.pool)
        .await
        .map_err(|e| conflict_or_backend("a Temporary Access Pass", e))?;
        Ok(())
    }

    async fn pass_for_user(&self, user: &UserId) -> StoreResult<Option<TemporaryAccessPass>> {
        self.read_by_key(
            "SELECT * FROM passes WHERE user_id = $1",
            user.as_str(),
            pass_from,
        )
        .await
    }

    async fn mark_pass_used(
        &self,
        user: &UserId,
        hash: &TokenHash,
        at: Timestamp,
    ) -> StoreResult<bool> {
        // One conditional UPDATE: a one-time pass matches only while unused. A second racer
        // waits on the first one's row lock, then re-checks the condition on the committed row
        // (READ COMMITTED), finds `used_at` set and changes nothing. Comparing SHA-256 hashes
        // in SQL leaks nothing useful about the pass itself.
        let done = sqlx::query(
            "UPDATE passes SET used_at = $1 \
             WHERE user_id = $2 AND hash = $3 AND (NOT usable_once OR used_at IS NULL)",
        )
        .bind(at.0)
        .bind(user.as_str())
        .bind(hash.as_str())
        .execute(&self.pool)
        .await
        .map_err(|e| backend("recording a pass use", e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_pass(&self, user: &UserId) -> StoreResult<()> {
        self.write_by_key(
            "DELETE FROM passes WHERE user_id = $1",
            user.as_str(),
            "deleting a pass",
        )
        .await
    }

    async fn create_session(&self, session: &Session) -> StoreResult<()> {
        insert_session(session)?
            .execute(&self.pool)
            .await
            .map_err(|e| conflict_or_backend(SESSION_CONFLICT, e))?;
        Ok(())
    }

    async fn session_by_token(&self, token_hash: &TokenHash) -> StoreResult<Option<Session>> {
        self.read_by_key(
            "SELECT * FROM sessions WHERE token_hash = $1",
            token_hash.as_str(),
            session_from,
        )
        .await
    }

    async fn session(&self, id: &SessionId) -> StoreResult<Option<Session>> {
        self.read_by_key(
            "SELECT * FROM sessions WHERE id = $1",
            id.as_str(),
            session_from,
        )
        .await
    }

    async fn revoke_session(&self, id: &SessionId) -> StoreResult<()> {
        self.write_by_key(
            "UPDATE sessions SET revoked = TRUE WHERE id = $1",
            id.as_str(),
            "revoking a session",
        )
        .await
    }

    async fn revoke_user_sessions_and_grants(&self, user: &UserId) -> StoreResult<()> {
        // One transaction: there is no moment where sessions are gone but tokens still work.
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE sessions SET revoked = TRUE WHERE user_id = $1")
            .bind(user.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|e| backend("revoking a user's sessions", e))?;
        sqlx::query("UPDATE grants SET revoked = TRUE WHERE user_id = $1")
            .bind(user.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|e| backend("revoking a user's grants", e))?;
        tx.commit()
            .await
            .map_err(|e| backend("revoking a user's sessions", e))
    }

    async fn put_sign_in(&self, sign_in: &PendingSignIn) -> StoreResult<()> {
        upsert_sign_in(sign_in)?
            .execute(&self.pool)
            .await
            .map_err(|e| backend("saving a sign-in", e))?;
        Ok(())
    }

    async fn sign_in(&self, id: &SignInId) -> StoreResult<Option<PendingSignIn>> {
        let body: Option<String> = sqlx::query_scalar("SELECT body FROM sign_ins WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(read_error)?;
        body.map(|body| serde_json::from_str(&body).map_err(|_| corrupt("sign-in")))
            .transpose()
    }

    async fn delete_sign_in(&self, id: &SignInId) -> StoreResult<()> {
        self.write_by_key(
            "DELETE FROM sign_ins WHERE id = $1",
            id.as_str(),
            "deleting a sign-in",
        )
        .await
    }

    async fn complete_sign_in(
        &self,
        session: &Session,
        sign_in: &SignInId,
        record: &SignInRecord,
        familiar: &Familiar,
        code: Option<(&Grant, &AuthorizationCode)>,
    ) -> StoreResult<()> {
        // All or nothing: a session never exists without its log record, and a refused session
        // leaves the sign-in in progress, unlogged and its places unremembered (and stores no
        // code for it). The DELETE is
        // the "at most once": a second completion waits on the first one's row lock and, once
        // that commits, deletes nothing, so it rolls back its session. The user's row is
        // locked first, as every per-user check-then-insert does (`device.rs`), so two of the
        // user's sign-ins completing at once remember their places one after the other and
        // cannot each hold a place row the other waits for.
        let mut tx = self.begin().await?;
        lock_user(&mut tx, &session.user_id, "completing a sign-in").await?;
        let ended = sqlx::query("DELETE FROM sign_ins WHERE id = $1")
            .bind(sign_in.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|e| backend("ending a sign-in", e))?;
        if ended.rows_affected() != 1 {
            // Finished (or purged) already: a second completion must not start a second session.
            return Err(StoreError::Conflict("the sign-in already ended".into()));
        }
        insert_session(session)?
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict_or_backend(SESSION_CONFLICT, e))?;
        insert_sign_in_record(record)?
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict_or_backend(SIGN_IN_RECORD_CONFLICT, e))?;
        remember_familiar(&mut tx, &session.user_id, familiar).await?;
        if let Some((grant, code)) = code {
            grant::grant_with_code(grant, code)?
                .execute(&mut *tx)
                .await
                .map_err(|e| conflict_or_backend(grant::GRANT_OR_CODE_CONFLICT, e))?;
        }
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
        let mut tx = self.begin().await?;
        if ended {
            sqlx::query("DELETE FROM sign_ins WHERE id = $1")
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

/// Two instances of the store (two pools, as two Latchkey servers would have) on one scratch
/// schema, for the tests that race them against each other.
#[cfg(test)]
pub(super) struct TwoInstances {
    pub(super) a: PostgresStore,
    pub(super) b: PostgresStore,
    schema: super::scratch::ScratchSchema,
}

#[cfg(test)]
impl TwoInstances {
    pub(super) async fn open() -> TwoInstances {
        let schema = super::scratch::ScratchSchema::create()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let settings = super::PostgresSettings::default();
        let a = PostgresStore::open_with(schema.options(), &settings)
            .await
            .expect("open instance A");
        let b = PostgresStore::open_with(schema.options(), &settings)
            .await
            .expect("open instance B");
        TwoInstances { a, b, schema }
    }

    pub(super) async fn close(self) {
        self.a.close().await;
        self.b.close().await;
        self.schema
            .drop_schema()
            .await
            .expect("drop the scratch schema");
    }
}
