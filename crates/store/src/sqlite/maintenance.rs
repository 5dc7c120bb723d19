//! SQLite: expiry across every table, and the readiness ping.

use async_trait::async_trait;
use latchkey_domain::clock::Timestamp;
use latchkey_domain::store::{MaintenanceStore, StoreResult};

use super::SqliteStore;
use super::db::stmt;
use super::{DbError, backend, read_error};

#[async_trait]
impl MaintenanceStore for SqliteStore {
    async fn purge_expired(&self, now: Timestamp) -> StoreResult<u64> {
        const PURGES: [&str; 13] = [
            "DELETE FROM codes WHERE expires_at <= ?",
            "DELETE FROM device_authorizations WHERE expires_at <= ?",
            "DELETE FROM activations WHERE expires_at <= ? AND device_id IS NULL",
            "DELETE FROM device_nonces WHERE expires_at <= ?",
            // Settled or not, a day after expiry an approval is only history (the log has it).
            "DELETE FROM approvals WHERE expires_at <= ? - 86400",
            // Windows are at most a day long.
            "DELETE FROM throttle WHERE window_start <= ? - 86400",
            "DELETE FROM access_tokens WHERE expires_at <= ?",
            "DELETE FROM refresh_tokens WHERE expires_at <= ?",
            "DELETE FROM sign_ins WHERE expires_at <= ?",
            "DELETE FROM sessions WHERE expires_at <= ?",
            "DELETE FROM passkey_ceremonies WHERE expires_at <= ?",
            "DELETE FROM registration_campaign_interrupts WHERE expires_at <= ?",
            "DELETE FROM remembered_marks WHERE expires_at <= ?",
        ];
        let removed = self
            .write("purging expired rows", move |conn| {
                let fail = |e| backend("purging expired rows", e);
                let tx = conn.savepoint().map_err(fail)?;
                let mut removed = 0;
                for statement in PURGES {
                    removed += stmt(statement)
                        .bind(now.0)
                        .execute(&tx)
                        .map_err(fail)?
                        .rows_affected();
                }
                tx.commit().map_err(fail)?;
                Ok(removed)
            })
            .await?;
        // The same rows out of memory (as the statements above chose them).
        self.sign_ins.forget_where(|s| s.expires_at.0 <= now.0);
        self.approvals
            .forget_where(|a| a.view.expires_at.saturating_add(86_400) <= now.0);
        Ok(removed)
    }

    /// A read answers, and the writer thread is still there to take writes (it is asked
    /// nothing: a busy writer is not an unready one).
    async fn ping(&self) -> StoreResult<()> {
        self.read(|conn| {
            conn.query_row("SELECT 1", [], |_| Ok(()))
                .map_err(read_error)
        })?;
        if self.db.writer_stopped() {
            return Err(backend("writing", DbError::Closed));
        }
        Ok(())
    }
}
