//! PostgreSQL: the authentication methods policy, the sign-in and audit logs, risk and sign-in
//! history.

use async_trait::async_trait;
use latchkey_domain::anomaly::SignInHistory;
use latchkey_domain::clock::Timestamp;
use latchkey_domain::error::StoreError;
use latchkey_domain::ids::UserId;
use latchkey_domain::log::{AuditEvent, LogQuery, SignInRecord, StatusFilter};
use latchkey_domain::policy::AuthenticationMethodsPolicy;
use latchkey_domain::risk::{RiskDetection, RiskState, UserRisk};
use latchkey_domain::store::{Familiar, GovernanceStore, StoreResult};
use sqlx::QueryBuilder;
use sqlx::postgres::{PgRow, Postgres};

use super::throttle::remember_familiar;
use super::{
    AUDIT_EVENT_CONFLICT, PostgresStore, SIGN_IN_RECORD_CONFLICT, backend, conflict_or_backend,
    corrupt, get, insert_audit_event, insert_sign_in_record, push_time_range_and_page, read_error,
    timestamp, to_json,
};

fn user_risk_from(row: &PgRow) -> StoreResult<UserRisk> {
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

#[async_trait]
impl GovernanceStore for PostgresStore {
    async fn policy(&self) -> StoreResult<Option<AuthenticationMethodsPolicy>> {
        let row = sqlx::query("SELECT version, document FROM policy WHERE id = 1")
            .fetch_optional(&self.pool)
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
        // One conditional write decides: the first version is an insert that does nothing if a
        // row exists, a later one an update only of the version it was built on. Of two saves
        // racing on one version, the second waits for the first to commit, then finds the row
        // (or its version) changed and writes nothing (READ COMMITTED re-checks the WHERE).
        let mut tx = self.begin().await?;
        let written = if version == 1 {
            sqlx::query(
                "INSERT INTO policy (id, version, document) VALUES (1, 1, $1) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(&document)
            .execute(&mut *tx)
            .await
        } else {
            sqlx::query(
                "UPDATE policy SET version = $1, document = $2 WHERE id = 1 AND version = $3",
            )
            .bind(version)
            .bind(&document)
            .bind(version - 1)
            .execute(&mut *tx)
            .await
        }
        .map_err(|e| backend("saving the policy", e))?;
        if written.rows_affected() != 1 {
            let stored: Option<i64> = sqlx::query_scalar("SELECT version FROM policy WHERE id = 1")
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| backend("reading the policy version", e))?;
            // Dropping the transaction rolls it back; nothing was written.
            return Err(StoreError::Conflict(format!(
                "version {} of the authentication methods policy (this change was made to \
                 version {}); reload the policy and try again",
                stored.unwrap_or(0),
                policy.version.saturating_sub(1)
            )));
        }
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
        let mut sql = QueryBuilder::<Postgres>::new("SELECT record FROM sign_in_log WHERE 1 = 1");
        // The UPN and the application's name are matched ignoring case, as on SQLite.
        if let Some(user) = &query.user {
            sql.push(" AND (user_id = ")
                .push_bind(user.clone())
                .push(" OR lower(user_principal_name) = lower(")
                .push_bind(user.clone())
                .push("))");
        }
        if let Some(app) = &query.app {
            sql.push(" AND (app_id = ")
                .push_bind(app.clone())
                .push(" OR lower(app_display_name) = lower(")
                .push_bind(app.clone())
                .push("))");
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
            .fetch_all(&self.pool)
            .await
            .map_err(read_error)?;
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
        let mut sql = QueryBuilder::<Postgres>::new("SELECT event FROM audit_log WHERE 1 = 1");
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
            .fetch_all(&self.pool)
            .await
            .map_err(read_error)?;
        events
            .iter()
            .map(|event| serde_json::from_str(event).map_err(|_| corrupt("audit event")))
            .collect()
    }

    async fn purge_logs(&self, before: Timestamp) -> StoreResult<u64> {
        const PURGES: [&str; 2] = [
            "DELETE FROM sign_in_log WHERE created_at < $1",
            "DELETE FROM audit_log WHERE created_at < $1",
        ];
        let mut tx = self.begin().await?;
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
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO risk_detections (id, user_id, detected_at, body) VALUES ($1, $2, $3, $4)",
        )
        .bind(detection.id.as_str())
        .bind(detection.user_id.as_str())
        .bind(detection.detected_date_time.0)
        .bind(body)
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_or_backend("a risk detection with this id", e))?;
        sqlx::query(
            "INSERT INTO user_risk (user_id, state, detail, last_updated) VALUES ($1, 'atRisk', $2, $3) \
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
        self.read_by_key(
            "SELECT * FROM user_risk WHERE user_id = $1",
            user.as_str(),
            user_risk_from,
        )
        .await
    }

    async fn risky_users(&self) -> StoreResult<Vec<UserRisk>> {
        self.read_all(
            sqlx::query(
                "SELECT * FROM user_risk \
                 ORDER BY state = 'atRisk' DESC, last_updated DESC, user_id COLLATE \"C\"",
            ),
            user_risk_from,
        )
        .await
    }

    async fn risk_detections(&self, user: &UserId) -> StoreResult<Vec<RiskDetection>> {
        let bodies: Vec<String> = sqlx::query_scalar(
            "SELECT body FROM risk_detections WHERE user_id = $1 \
             ORDER BY detected_at DESC, id COLLATE \"C\"",
        )
        .bind(user.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(read_error)?;
        bodies
            .iter()
            .map(|b| serde_json::from_str(b).map_err(|_| corrupt("risk detection")))
            .collect()
    }

    async fn dismiss_risk(&self, user: &UserId, at: Timestamp) -> StoreResult<bool> {
        // Conditional on still being at risk: of two administrators dismissing at once, the
        // second re-checks after the first commits, changes nothing and hears false.
        let query = sqlx::query(
            "UPDATE user_risk SET state = 'dismissed', detail = 'adminDismissedAllRiskForUser', \
             last_updated = $1 WHERE user_id = $2 AND state = 'atRisk'",
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
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| backend("remembering a sign-in country", e))?;
        remember_familiar(&mut conn, user, &familiar).await
    }

    async fn remember_refusal(&self, user: &UserId, at: Timestamp) -> StoreResult<()> {
        let query = sqlx::query(
            "INSERT INTO sign_in_refusals AS r (user_id, last_refused_at) VALUES ($1, $2) \
             ON CONFLICT (user_id) DO UPDATE SET \
               last_refused_at = GREATEST(r.last_refused_at, excluded.last_refused_at)",
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
            "SELECT country FROM sign_in_countries WHERE user_id = $1 ORDER BY country COLLATE \"C\"",
        )
        .bind(user.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(read_error)?;
        let last_refusal: Option<i64> =
            sqlx::query_scalar("SELECT last_refused_at FROM sign_in_refusals WHERE user_id = $1")
                .bind(user.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(read_error)?;
        Ok(SignInHistory {
            countries,
            last_refusal: last_refusal.map(Timestamp),
        })
    }
}
