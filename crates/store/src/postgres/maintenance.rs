//! PostgreSQL: expiry across every table, and the readiness ping.

use async_trait::async_trait;
use latchkey_domain::clock::Timestamp;
use latchkey_domain::store::{MaintenanceStore, StoreResult};

use super::{PostgresStore, backend, read_error};

#[async_trait]
impl MaintenanceStore for PostgresStore {
    async fn purge_expired(&self, now: Timestamp) -> StoreResult<u64> {
        const PURGES: [&str; 13] = [
            "DELETE FROM codes WHERE expires_at <= $1",
            "DELETE FROM device_authorizations WHERE expires_at <= $1",
            "DELETE FROM activations WHERE expires_at <= $1 AND device_id IS NULL",
            "DELETE FROM device_nonces WHERE expires_at <= $1",
            // Settled or not, a day after expiry an approval is only history (the log has it).
            "DELETE FROM approvals WHERE expires_at <= $1 - 86400",
            // Windows are at most a day long.
            "DELETE FROM throttle WHERE window_start <= $1 - 86400",
            "DELETE FROM access_tokens WHERE expires_at <= $1",
            "DELETE FROM refresh_tokens WHERE expires_at <= $1",
            "DELETE FROM sign_ins WHERE expires_at <= $1",
            "DELETE FROM sessions WHERE expires_at <= $1",
            "DELETE FROM passkey_ceremonies WHERE expires_at <= $1",
            "DELETE FROM registration_campaign_interrupts WHERE expires_at <= $1",
            "DELETE FROM remembered_marks WHERE expires_at <= $1",
        ];
        // Several instances may purge at once: a row is deleted by whichever gets it first and
        // counted once, and nothing else depends on who did.
        let mut tx = self.begin().await?;
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
            .execute(&self.pool)
            .await
            .map_err(read_error)?;
        Ok(())
    }
}
