//! SQLite: the authentication methods policy, the sign-in and audit logs, risk and sign-in history.

use async_trait::async_trait;
use latchkey_domain::anomaly::SignInHistory;
use latchkey_domain::clock::Timestamp;
use latchkey_domain::error::StoreError;
use latchkey_domain::ids::UserId;
use latchkey_domain::log::{AuditEvent, LogQuery, SignInRecord, StatusFilter};
use latchkey_domain::policy::AuthenticationMethodsPolicy;
use latchkey_domain::risk::{RiskDetection, UserRisk};
use latchkey_domain::store::{Familiar, GovernanceStore, StoreResult};

use super::SqliteStore;
use super::db::{SqlBuilder, stmt};
use super::rows::{get, user_risk_from};
use super::statements::{
    AUDIT_EVENT_CONFLICT, SIGN_IN_RECORD_CONFLICT, insert_audit_event, insert_sign_in_record,
    push_time_range_and_page,
};
use super::{backend, conflict_or_backend, corrupt, to_json};

fn policy_from(row: &rusqlite::Row<'_>) -> StoreResult<AuthenticationMethodsPolicy> {
    let mut policy: AuthenticationMethodsPolicy =
        serde_json::from_str(&get::<String>(row, "document")?)
            .map_err(|_| corrupt("authentication methods policy"))?;
    // The column is the concurrency token `save_policy` compares against; it wins over the
    // copy inside the document should the two ever disagree.
    policy.version = u64::try_from(get::<i64>(row, "version")?)
        .map_err(|_| corrupt("authentication methods policy version"))?;
    Ok(policy)
}

#[async_trait]
impl GovernanceStore for SqliteStore {
    async fn policy(&self) -> StoreResult<Option<AuthenticationMethodsPolicy>> {
        // Its absence is cached too: until a policy is saved, every sign-in would read it.
        self.read_steady(
            |rows| &rows.policy,
            "",
            || {
                let read = stmt("SELECT version, document FROM policy WHERE id = 1");
                self.read(|conn| read.fetch_optional(conn, policy_from))
                    .map(Some)
            },
        )
        .map(Option::flatten)
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
        let previous = policy.version.saturating_sub(1);
        let save = stmt(
            "INSERT INTO policy (id, version, document) VALUES (1, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET version = excluded.version, document = excluded.document",
        )
        .bind(version)
        .bind(document);
        // Encoded here, but a failure to encode is reported only once the version check has
        // passed, where the audit event is written.
        let insert_audit = insert_audit_event(audit);
        // Read and write under one write lock: of two administrators saving on top of the same
        // version, exactly one finds it still current.
        self.write("saving the policy", move |conn| {
            let tx = conn
                .savepoint()
                .map_err(|e| backend("starting a write", e))?;
            let stored = stmt("SELECT version FROM policy WHERE id = 1")
                .fetch_optional(&tx, |row| get::<i64>(row, 0))?;
            let stored = stored.unwrap_or(0);
            if stored.checked_add(1) != Some(version) {
                // Dropping the savepoint rolls it back; nothing was written.
                return Err(StoreError::Conflict(format!(
                    "version {stored} of the authentication methods policy (this change was made to \
                     version {previous}); reload the policy and try again"
                )));
            }
            save.execute(&tx)
                .map_err(|e| backend("saving the policy", e))?;
            insert_audit?
                .execute(&tx)
                .map_err(|e| conflict_or_backend(AUDIT_EVENT_CONFLICT, e))?;
            tx.commit().map_err(|e| backend("saving the policy", e))
        })
        .await
    }

    async fn sign_in_records(&self, query: &LogQuery) -> StoreResult<Vec<SignInRecord>> {
        let query = query.clone().normalised();
        let mut sql = SqlBuilder::new("SELECT record FROM sign_in_log WHERE 1 = 1");
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
        let records = self
            .read_all(sql.build(), |row| get::<String>(row, 0))
            .await?;
        records
            .iter()
            .map(|record| serde_json::from_str(record).map_err(|_| corrupt("sign-in record")))
            .collect()
    }

    async fn append_sign_in_record(&self, record: &SignInRecord) -> StoreResult<()> {
        self.execute(insert_sign_in_record(record)?)
            .await
            .map_err(|e| conflict_or_backend(SIGN_IN_RECORD_CONFLICT, e))?;
        Ok(())
    }

    async fn append_audit(&self, event: &AuditEvent) -> StoreResult<()> {
        self.execute(insert_audit_event(event)?)
            .await
            .map_err(|e| conflict_or_backend(AUDIT_EVENT_CONFLICT, e))?;
        Ok(())
    }

    async fn audit_events(&self, query: &LogQuery) -> StoreResult<Vec<AuditEvent>> {
        let query = query.clone().normalised();
        let mut sql = SqlBuilder::new("SELECT event FROM audit_log WHERE 1 = 1");
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
        let events = self
            .read_all(sql.build(), |row| get::<String>(row, 0))
            .await?;
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
        let before = before.0;
        self.write("purging old log records", move |conn| {
            let fail = |e| backend("purging old log records", e);
            let tx = conn
                .savepoint()
                .map_err(|e| backend("starting a write", e))?;
            let mut removed = 0;
            for statement in PURGES {
                let done = stmt(statement).bind(before).execute(&tx).map_err(fail)?;
                removed += done.rows_affected();
            }
            tx.commit().map_err(fail)?;
            Ok(removed)
        })
        .await
    }

    async fn record_risk(&self, detection: &RiskDetection) -> StoreResult<()> {
        let body = to_json("risk detection", serde_json::to_string(detection))?;
        let insert = stmt(
            "INSERT INTO risk_detections (id, user_id, detected_at, body) VALUES (?, ?, ?, ?)",
        )
        .bind(detection.id.as_str())
        .bind(detection.user_id.as_str())
        .bind(detection.detected_date_time.0)
        .bind(body);
        let raise = stmt(
            "INSERT INTO user_risk (user_id, state, detail, last_updated) VALUES (?, 'atRisk', ?, ?) \
             ON CONFLICT (user_id) DO UPDATE SET state = 'atRisk', detail = excluded.detail, \
             last_updated = excluded.last_updated",
        )
        .bind(detection.user_id.as_str())
        .bind(detection.risk_event_type.as_str())
        .bind(detection.detected_date_time.0);
        self.write("raising a user's risk", move |conn| {
            let tx = conn
                .savepoint()
                .map_err(|e| backend("starting a write", e))?;
            insert
                .execute(&tx)
                .map_err(|e| conflict_or_backend("a risk detection with this id", e))?;
            raise
                .execute(&tx)
                .map_err(|e| backend("raising a user's risk", e))?;
            tx.commit().map_err(|e| backend("raising a user's risk", e))
        })
        .await
    }

    async fn user_risk(&self, user: &UserId) -> StoreResult<Option<UserRisk>> {
        self.read_steady(
            |rows| &rows.risks,
            user.as_str(),
            || {
                let read = stmt("SELECT * FROM user_risk WHERE user_id = ?").bind(user.as_str());
                self.read(|conn| read.fetch_optional(conn, user_risk_from))
                    .map(Some)
            },
        )
        .map(Option::flatten)
    }

    async fn risky_users(&self) -> StoreResult<Vec<UserRisk>> {
        self.read_all(
            stmt("SELECT * FROM user_risk ORDER BY state = 'atRisk' DESC, last_updated DESC, user_id"),
            user_risk_from,
        )
        .await
    }

    async fn risk_detections(&self, user: &UserId) -> StoreResult<Vec<RiskDetection>> {
        let bodies = self
            .read_all(
                stmt("SELECT body FROM risk_detections WHERE user_id = ? ORDER BY detected_at DESC, id")
                    .bind(user.as_str()),
                |row| get::<String>(row, 0),
            )
            .await?;
        bodies
            .iter()
            .map(|b| serde_json::from_str(b).map_err(|_| corrupt("risk detection")))
            .collect()
    }

    async fn dismiss_risk(&self, user: &UserId, at: Timestamp) -> StoreResult<bool> {
        let query = stmt(
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
        let familiar = Familiar {
            places: Vec::new(),
            country: Some(country.to_string()),
            at,
            forget_before: at,
        };
        self.remember_familiar(user, &familiar).await
    }

    async fn remember_refusal(&self, user: &UserId, at: Timestamp) -> StoreResult<()> {
        let query = stmt(
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
        let countries =
            stmt("SELECT country FROM sign_in_countries WHERE user_id = ? ORDER BY country")
                .bind(user.as_str());
        let last_refusal = stmt("SELECT last_refused_at FROM sign_in_refusals WHERE user_id = ?")
            .bind(user.as_str());
        let (countries, last_refusal) = self.read(|conn| {
            Ok((
                countries.fetch_all(conn, |row| get::<String>(row, 0))?,
                last_refusal.fetch_optional(conn, |row| get::<i64>(row, 0))?,
            ))
        })?;
        Ok(SignInHistory {
            countries,
            last_refusal: last_refusal.map(Timestamp),
        })
    }
}
