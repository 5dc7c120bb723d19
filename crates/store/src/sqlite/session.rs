//! SQLite: temporary Access Passes, sessions, sign-ins in progress and their outcomes.

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

use super::SqliteStore;
use super::db::{get, stmt};
use super::grant;
use super::hot::Written;
use super::rows::{pass_from, session_from};
use super::statements::{
    SESSION_CONFLICT, SIGN_IN_RECORD_CONFLICT, insert_session, insert_sign_in_record,
    upsert_sign_in,
};
use super::throttle::remember_familiar;
use super::{backend, conflict_or_backend, corrupt};

#[async_trait]
impl SessionStore for SqliteStore {
    async fn put_pass(&self, pass: &TemporaryAccessPass) -> StoreResult<()> {
        // An upsert on the user's row: issuing a new pass invalidates the old one in the same
        // statement, so there is never a moment with two valid passes.
        let query = stmt(
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
        self.read_by_key(
            "SELECT * FROM passes WHERE user_id = ?",
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
        // One conditional UPDATE: a one-time pass matches only while unused, so of two racing
        // sign-ins exactly one changes the row. Comparing SHA-256 hashes in SQL leaks nothing
        // useful about the pass itself.
        let query = stmt(
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
        self.write_by_key(
            "DELETE FROM passes WHERE user_id = ?",
            user.as_str(),
            "deleting a pass",
        )
        .await
    }

    async fn create_session(&self, session: &Session) -> StoreResult<()> {
        self.execute(insert_session(session)?)
            .await
            .map_err(|e| conflict_or_backend(SESSION_CONFLICT, e))?;
        Ok(())
    }

    async fn session_by_token(&self, token_hash: &TokenHash) -> StoreResult<Option<Session>> {
        self.read_by_key(
            "SELECT * FROM sessions WHERE token_hash = ?",
            token_hash.as_str(),
            session_from,
        )
        .await
    }

    async fn session(&self, id: &SessionId) -> StoreResult<Option<Session>> {
        self.read_by_key(
            "SELECT * FROM sessions WHERE id = ?",
            id.as_str(),
            session_from,
        )
        .await
    }

    async fn revoke_session(&self, id: &SessionId) -> StoreResult<()> {
        self.write_by_key(
            "UPDATE sessions SET revoked = 1 WHERE id = ?",
            id.as_str(),
            "revoking a session",
        )
        .await
    }

    async fn revoke_user_sessions_and_grants(&self, user: &UserId) -> StoreResult<()> {
        // One transaction: there is no moment where sessions are gone but tokens still work.
        let sessions =
            stmt("UPDATE sessions SET revoked = 1 WHERE user_id = ?").bind(user.as_str());
        let grants = stmt("UPDATE grants SET revoked = 1 WHERE user_id = ?").bind(user.as_str());
        self.write("revoking a user's sessions", move |conn| {
            let tx = conn
                .savepoint()
                .map_err(|e| backend("revoking a user's sessions", e))?;
            sessions
                .execute(&tx)
                .map_err(|e| backend("revoking a user's sessions", e))?;
            grants
                .execute(&tx)
                .map_err(|e| backend("revoking a user's grants", e))?;
            tx.commit()
                .map_err(|e| backend("revoking a user's sessions", e))
        })
        .await
    }

    async fn put_sign_in(&self, sign_in: &PendingSignIn) -> StoreResult<()> {
        let query = upsert_sign_in(sign_in)?;
        self.sign_ins
            .write_through(sign_in.id.as_str(), sign_in, self.execute(query))
            .await
            .map_err(|e| backend("saving a sign-in", e))?;
        Ok(())
    }

    async fn sign_in(&self, id: &SignInId) -> StoreResult<Option<PendingSignIn>> {
        let read = self.read_one(
            stmt("SELECT body FROM sign_ins WHERE id = ?").bind(id.as_str()),
            |row| serde_json::from_str(&get::<String>(row, 0)?).map_err(|_| corrupt("sign-in")),
        );
        self.sign_ins.read_through(id.as_str(), read).await
    }

    async fn delete_sign_in(&self, id: &SignInId) -> StoreResult<()> {
        let ticket = self.sign_ins.begin_write(id.as_str());
        let done = self
            .write_by_key(
                "DELETE FROM sign_ins WHERE id = ?",
                id.as_str(),
                "deleting a sign-in",
            )
            .await;
        self.sign_ins.finish_write(
            ticket,
            match done {
                Ok(()) => Written::Deleted,
                Err(_) => Written::Unknown,
            },
        );
        done
    }

    async fn complete_sign_in(
        &self,
        session: &Session,
        sign_in: &SignInId,
        record: &SignInRecord,
        familiar: &Familiar,
        code: Option<(&Grant, &AuthorizationCode)>,
    ) -> StoreResult<()> {
        let ticket = self.sign_ins.begin_write(sign_in.as_str());
        let done = self
            .complete_sign_in_now(session, sign_in, record, familiar, code)
            .await;
        self.sign_ins.finish_write(
            ticket,
            match done {
                Ok(()) => Written::Deleted,
                Err(_) => Written::Unknown,
            },
        );
        done
    }

    async fn fail_sign_in(
        &self,
        sign_in: &PendingSignIn,
        ended: bool,
        record: &SignInRecord,
    ) -> StoreResult<()> {
        let ticket = self.sign_ins.begin_write(sign_in.id.as_str());
        let done = self.fail_sign_in_now(sign_in, ended, record).await;
        self.sign_ins.finish_write(
            ticket,
            match done {
                Ok(()) if ended => Written::Deleted,
                Ok(()) => Written::Value(sign_in.clone()),
                Err(_) => Written::Unknown,
            },
        );
        done
    }
}

impl SqliteStore {
    async fn complete_sign_in_now(
        &self,
        session: &Session,
        sign_in: &SignInId,
        record: &SignInRecord,
        familiar: &Familiar,
        code: Option<(&Grant, &AuthorizationCode)>,
    ) -> StoreResult<()> {
        // All or nothing: a session never exists without its log record, and a refused session
        // leaves the sign-in in progress, unlogged, and its places unremembered (and stores no
        // code for it).
        let insert_session = insert_session(session)?;
        // After the log record: the places remembered, then any grant and code.
        let mut rest = remember_familiar(&session.user_id, familiar);
        if let Some((grant, code)) = code {
            rest.push((grant::insert_grant(grant)?, grant::GRANT_CONFLICT));
            rest.push((grant::insert_code(code), grant::CODE_CONFLICT));
        }
        let end = stmt("DELETE FROM sign_ins WHERE id = ?").bind(sign_in.as_str());
        let insert_record = insert_sign_in_record(record)?;
        self.write("completing a sign-in", move |conn| {
            let tx = conn
                .savepoint()
                .map_err(|e| backend("completing a sign-in", e))?;
            insert_session
                .execute(&tx)
                .map_err(|e| conflict_or_backend(SESSION_CONFLICT, e))?;
            let ended = end
                .execute(&tx)
                .map_err(|e| backend("ending a sign-in", e))?;
            if ended.rows_affected() != 1 {
                // Finished (or purged) already: a second completion must not start a second
                // session.
                return Err(StoreError::Conflict("the sign-in already ended".into()));
            }
            insert_record
                .execute(&tx)
                .map_err(|e| conflict_or_backend(SIGN_IN_RECORD_CONFLICT, e))?;
            for (statement, doing) in rest {
                statement
                    .execute(&tx)
                    .map_err(|e| conflict_or_backend(doing, e))?;
            }
            tx.commit().map_err(|e| backend("completing a sign-in", e))
        })
        .await
    }

    async fn fail_sign_in_now(
        &self,
        sign_in: &PendingSignIn,
        ended: bool,
        record: &SignInRecord,
    ) -> StoreResult<()> {
        // All or nothing: the failure count can never move without the attempt being logged.
        let (write, doing) = if ended {
            (
                stmt("DELETE FROM sign_ins WHERE id = ?").bind(sign_in.id.as_str()),
                "ending a sign-in",
            )
        } else {
            (upsert_sign_in(sign_in)?, "saving a sign-in")
        };
        let insert_record = insert_sign_in_record(record)?;
        self.write("recording a failed sign-in", move |conn| {
            let tx = conn
                .savepoint()
                .map_err(|e| backend("recording a failed sign-in", e))?;
            write.execute(&tx).map_err(|e| backend(doing, e))?;
            insert_record
                .execute(&tx)
                .map_err(|e| conflict_or_backend(SIGN_IN_RECORD_CONFLICT, e))?;
            tx.commit()
                .map_err(|e| backend("recording a failed sign-in", e))
        })
        .await
    }
}
