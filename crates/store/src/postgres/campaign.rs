//! PostgreSQL: the registration campaign's snoozes and interrupts.

use async_trait::async_trait;
use latchkey_domain::campaign::{CampaignInterrupt, CampaignStatus};
use latchkey_domain::clock::Timestamp;
use latchkey_domain::ids::{SessionId, UserId};
use latchkey_domain::store::{CampaignStore, StoreResult};
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::{
    PostgresStore, backend, conflict_or_backend, corrupt, get, read_error, timestamp, to_json,
};

fn interrupt_from(row: &PgRow) -> StoreResult<CampaignInterrupt> {
    Ok(CampaignInterrupt {
        session_id: SessionId::from_string(get::<String>(row, "session_id")?),
        user_id: UserId::from_string(get::<String>(row, "user_id")?),
        continuation: serde_json::from_str(&get::<String>(row, "continuation")?)
            .map_err(|_| corrupt("a registration campaign interrupt"))?,
        created_at: timestamp(row, "created_at")?,
        expires_at: timestamp(row, "expires_at")?,
    })
}

#[async_trait]
impl CampaignStore for PostgresStore {
    async fn campaign_status(&self, user: &UserId) -> StoreResult<CampaignStatus> {
        let row = sqlx::query(
            "SELECT snooze_count, snoozed_until FROM registration_campaign_snoozes WHERE user_id = $1",
        )
        .bind(user.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(read_error)?;
        Ok(match row {
            Some(row) => CampaignStatus {
                snoozes: u32::try_from(row.try_get::<i32, _>("snooze_count").map_err(read_error)?)
                    .map_err(|_| corrupt("a snooze count"))?,
                snoozed_until: Some(timestamp(&row, "snoozed_until")?),
            },
            None => CampaignStatus::default(),
        })
    }

    async fn snooze_campaign(
        &self,
        user: &UserId,
        at: Timestamp,
        until: Timestamp,
        allowed: Option<u32>,
    ) -> StoreResult<Option<u32>> {
        // One statement: the row lock taken by ON CONFLICT makes the check and the increment
        // one step, so concurrent snoozes never pass the limit.
        let limit = allowed.map_or(i64::from(i32::MAX), i64::from);
        let count: Option<i32> = sqlx::query_scalar(
            "INSERT INTO registration_campaign_snoozes AS s (user_id, snooze_count, last_snoozed_at, snoozed_until) \
             SELECT $1, 1, $2, $3 WHERE $4 > 0 \
             ON CONFLICT (user_id) DO UPDATE SET \
               snooze_count = s.snooze_count + 1, last_snoozed_at = excluded.last_snoozed_at, \
               snoozed_until = excluded.snoozed_until \
             WHERE s.snooze_count < $4 \
             RETURNING snooze_count",
        )
        .bind(user.as_str())
        .bind(at.0)
        .bind(until.0)
        .bind(limit)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| conflict_or_backend("snoozing the registration campaign", e))?;
        count
            .map(|c| u32::try_from(c).map_err(|_| corrupt("a snooze count")))
            .transpose()
    }

    async fn put_campaign_interrupt(&self, interrupt: &CampaignInterrupt) -> StoreResult<()> {
        let continuation = to_json(
            "continuation",
            serde_json::to_string(&interrupt.continuation),
        )?;
        let query = sqlx::query(
            "INSERT INTO registration_campaign_interrupts \
               (session_id, user_id, continuation, created_at, expires_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (session_id) DO UPDATE SET user_id = excluded.user_id, \
               continuation = excluded.continuation, created_at = excluded.created_at, \
               expires_at = excluded.expires_at",
        )
        .bind(interrupt.session_id.as_str())
        .bind(interrupt.user_id.as_str())
        .bind(continuation)
        .bind(interrupt.created_at.0)
        .bind(interrupt.expires_at.0);
        self.execute(query)
            .await
            .map_err(|e| conflict_or_backend("a registration campaign interrupt", e))?;
        Ok(())
    }

    async fn campaign_interrupt(
        &self,
        session: &SessionId,
        now: Timestamp,
    ) -> StoreResult<Option<CampaignInterrupt>> {
        let row = sqlx::query(
            "SELECT * FROM registration_campaign_interrupts WHERE session_id = $1 AND expires_at > $2",
        )
        .bind(session.as_str())
        .bind(now.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(read_error)?;
        row.as_ref().map(interrupt_from).transpose()
    }

    async fn take_campaign_interrupt(
        &self,
        session: &SessionId,
        now: Timestamp,
    ) -> StoreResult<Option<CampaignInterrupt>> {
        // DELETE … RETURNING: the row goes to exactly one caller.
        let row = sqlx::query(
            "DELETE FROM registration_campaign_interrupts WHERE session_id = $1 RETURNING *",
        )
        .bind(session.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| backend("taking a registration campaign interrupt", e))?;
        match row.as_ref().map(interrupt_from).transpose()? {
            Some(interrupt) if interrupt.expires_at > now => Ok(Some(interrupt)),
            _ => Ok(None),
        }
    }
}
