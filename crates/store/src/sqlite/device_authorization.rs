//! SQLite: device authorizations (RFC 8628).

use async_trait::async_trait;
use latchkey_domain::clock::Timestamp;
use latchkey_domain::device_authorization::{DeviceAuthorization, DeviceAuthorizationState};
use latchkey_domain::ids::{ClientId, GrantId};
use latchkey_domain::secret::TokenHash;
use latchkey_domain::store::{DeviceAuthorizationStore, StoreResult};
use rusqlite::Row;

use super::db::stmt;
use super::rows::{get, optional_timestamp, string_list, timestamp};
use super::{SqliteStore, backend, conflict_or_backend, corrupt, to_json};

fn device_authorization_from(row: &Row<'_>) -> StoreResult<DeviceAuthorization> {
    let grant_id = get::<Option<String>>(row, "grant_id")?.map(GrantId::from_string);
    let state = DeviceAuthorizationState::from_stored(&get::<String>(row, "status")?, grant_id)
        .ok_or_else(|| corrupt("device authorization status"))?;
    Ok(DeviceAuthorization {
        device_code_hash: TokenHash::from_stored(get::<String>(row, "device_code_hash")?),
        user_code_hash: TokenHash::from_stored(get::<String>(row, "user_code_hash")?),
        client_id: ClientId::from_string(get::<String>(row, "client_id")?),
        scopes: string_list(row, "scopes")?,
        created_at: timestamp(row, "created_at")?,
        expires_at: timestamp(row, "expires_at")?,
        interval_seconds: get(row, "interval_seconds")?,
        last_polled_at: optional_timestamp(row, "last_polled_at")?,
        state,
    })
}

#[async_trait]
impl DeviceAuthorizationStore for SqliteStore {
    async fn put_device_authorization(&self, a: &DeviceAuthorization) -> StoreResult<()> {
        let query = stmt(
            "INSERT INTO device_authorizations (device_code_hash, user_code_hash, client_id, scopes, \
             created_at, expires_at, interval_seconds, last_polled_at, status, grant_id) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(a.device_code_hash.as_str())
        .bind(a.user_code_hash.as_str())
        .bind(a.client_id.as_str())
        .bind(to_json("scopes", serde_json::to_string(&a.scopes))?)
        .bind(a.created_at.0)
        .bind(a.expires_at.0)
        .bind(a.interval_seconds)
        .bind(a.last_polled_at.map(|t| t.0))
        .bind(a.state.status())
        .bind(a.state.grant_id().map(|g| g.as_str().to_string()));
        self.execute(query)
            .await
            .map_err(|e| conflict_or_backend("a device authorization with this code", e))?;
        Ok(())
    }

    async fn device_authorization(
        &self,
        device_code: &TokenHash,
    ) -> StoreResult<Option<DeviceAuthorization>> {
        self.read_by_key(
            "SELECT * FROM device_authorizations WHERE device_code_hash = ?",
            device_code.as_str(),
            device_authorization_from,
        )
        .await
    }

    async fn device_authorization_by_user_code(
        &self,
        user_code: &TokenHash,
    ) -> StoreResult<Option<DeviceAuthorization>> {
        self.read_by_key(
            "SELECT * FROM device_authorizations WHERE user_code_hash = ?",
            user_code.as_str(),
            device_authorization_from,
        )
        .await
    }

    async fn decide_device_authorization(
        &self,
        user_code: &TokenHash,
        grant: Option<&GrantId>,
    ) -> StoreResult<bool> {
        let status = if grant.is_some() {
            "approved"
        } else {
            "denied"
        };
        let query = stmt(
            "UPDATE device_authorizations SET status = ?, grant_id = ? \
             WHERE user_code_hash = ? AND status = 'pending'",
        )
        .bind(status)
        .bind(grant.map(|g| g.as_str().to_string()))
        .bind(user_code.as_str().to_string());
        let done = self
            .execute(query)
            .await
            .map_err(|e| backend("deciding a device authorization", e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn record_device_poll(
        &self,
        device_code: &TokenHash,
        at: Timestamp,
        interval_seconds: i64,
    ) -> StoreResult<()> {
        let query = stmt(
            "UPDATE device_authorizations SET last_polled_at = ?, interval_seconds = ? \
             WHERE device_code_hash = ?",
        )
        .bind(at.0)
        .bind(interval_seconds)
        .bind(device_code.as_str().to_string());
        self.execute(query)
            .await
            .map_err(|e| backend("recording a device poll", e))?;
        Ok(())
    }

    async fn redeem_device_authorization(&self, device_code: &TokenHash) -> StoreResult<bool> {
        let query = stmt(
            "UPDATE device_authorizations SET status = 'redeemed' \
             WHERE device_code_hash = ? AND status = 'approved'",
        )
        .bind(device_code.as_str().to_string());
        let done = self
            .execute(query)
            .await
            .map_err(|e| backend("redeeming a device authorization", e))?;
        Ok(done.rows_affected() == 1)
    }
}
