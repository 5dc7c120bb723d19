//! SQLite: the registration campaign's snoozes and interrupts.

use async_trait::async_trait;
use latchkey_domain::campaign::{CampaignInterrupt, CampaignStatus};
use latchkey_domain::clock::Timestamp;
use latchkey_domain::ids::{SessionId, UserId};
use latchkey_domain::store::{CampaignStore, StoreResult};
use rusqlite::Row;

use super::db::stmt;
use super::rows::{get, timestamp};
use super::{SqliteStore, backend, conflict_or_backend, corrupt, to_json};

fn interrupt_from(row: &Row<'_>) -> StoreResult<CampaignInterrupt> {
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
impl CampaignStore for SqliteStore {
    async fn campaign_status(&self, user: &UserId) -> StoreResult<CampaignStatus> {
        let status = self
            .read_one(
                stmt(
                    "SELECT snooze_count, snoozed_until FROM registration_campaign_snoozes WHERE user_id = ?",
                )
                .bind(user.as_str()),
                |row| {
                    Ok(CampaignStatus {
                        snoozes: u32::try_from(get::<i64>(row, "snooze_count")?)
                            .map_err(|_| corrupt("a snooze count"))?,
                        snoozed_until: Some(timestamp(row, "snoozed_until")?),
                    })
                },
            )
            .await?;
        Ok(status.unwrap_or_default())
    }

    async fn snooze_campaign(
        &self,
        user: &UserId,
        at: Timestamp,
        until: Timestamp,
        allowed: Option<u32>,
    ) -> StoreResult<Option<u32>> {
        // One statement on the one writer: the limit is checked where the count is written.
        let limit = allowed.map_or(i64::MAX, i64::from);
        let query = stmt(
            "INSERT INTO registration_campaign_snoozes (user_id, snooze_count, last_snoozed_at, snoozed_until) \
             SELECT ?1, 1, ?2, ?3 WHERE ?4 > 0 \
             ON CONFLICT (user_id) DO UPDATE SET \
               snooze_count = snooze_count + 1, last_snoozed_at = excluded.last_snoozed_at, \
               snoozed_until = excluded.snoozed_until \
             WHERE snooze_count < ?4",
        )
        .bind(user.as_str())
        .bind(at.0)
        .bind(until.0)
        .bind(limit);
        let done = self
            .execute(query)
            .await
            .map_err(|e| conflict_or_backend("snoozing the registration campaign", e))?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        Ok(Some(self.campaign_status(user).await?.snoozes))
    }

    async fn put_campaign_interrupt(&self, interrupt: &CampaignInterrupt) -> StoreResult<()> {
        let continuation = to_json(
            "continuation",
            serde_json::to_string(&interrupt.continuation),
        )?;
        let query = stmt(
            "INSERT INTO registration_campaign_interrupts \
               (session_id, user_id, continuation, created_at, expires_at) VALUES (?, ?, ?, ?, ?) \
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
        self.read_one(
            stmt(
                "SELECT * FROM registration_campaign_interrupts WHERE session_id = ? AND expires_at > ?",
            )
            .bind(session.as_str())
            .bind(now.0),
            interrupt_from,
        )
        .await
    }

    async fn take_campaign_interrupt(
        &self,
        session: &SessionId,
        now: Timestamp,
    ) -> StoreResult<Option<CampaignInterrupt>> {
        // DELETE … RETURNING on the one writer: the row goes to exactly one caller.
        let take =
            stmt("DELETE FROM registration_campaign_interrupts WHERE session_id = ? RETURNING *")
                .bind(session.as_str());
        let row = self
            .write("taking a registration campaign interrupt", move |conn| {
                let fail = |e| backend("taking a registration campaign interrupt", e);
                let tx = conn.savepoint().map_err(fail)?;
                // A row that no longer decodes is still taken (the savepoint commits); its
                // error is reported after.
                let row = take.fetch_optional(&tx, |row| Ok(interrupt_from(row)))?;
                tx.commit().map_err(fail)?;
                Ok(row)
            })
            .await?;
        match row.transpose()? {
            Some(interrupt) if interrupt.expires_at > now => Ok(Some(interrupt)),
            _ => Ok(None),
        }
    }
}
