//! PostgreSQL: the VAPID key and push subscriptions.

use async_trait::async_trait;
use latchkey_domain::ids::DeviceId;
use latchkey_domain::push::{PushSubscription, VapidKey};
use latchkey_domain::store::{PushStore, StoreResult};
use sqlx::postgres::PgRow;

use super::{PostgresStore, backend, conflict_or_backend, get, timestamp};

fn subscription_from(row: &PgRow) -> StoreResult<PushSubscription> {
    Ok(PushSubscription {
        device_id: DeviceId::from_string(get::<String>(row, "device_id")?),
        endpoint: get(row, "endpoint")?,
        p256dh: get(row, "p256dh")?,
        auth: get(row, "auth")?,
        created_at: timestamp(row, "created_at")?,
    })
}

#[async_trait]
impl PushStore for PostgresStore {
    async fn vapid_key(&self, candidate: &VapidKey) -> StoreResult<VapidKey> {
        // Insert-if-absent, then read back (as `server_secret`): of two instances starting at
        // once, one inserts; the other's ON CONFLICT waits for that insert to commit and does
        // nothing, and its read then sees the winner's key.
        sqlx::query(
            "INSERT INTO vapid_keys (id, private_key, public_key, created_at) \
             VALUES (1, $1, $2, $3) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&candidate.private_key)
        .bind(&candidate.public_key)
        .bind(candidate.created_at.0)
        .execute(&self.pool)
        .await
        .map_err(|e| backend("storing the VAPID key", e))?;
        let row = sqlx::query("SELECT * FROM vapid_keys WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| backend("reading the VAPID key", e))?;
        Ok(VapidKey {
            private_key: get(&row, "private_key")?,
            public_key: get(&row, "public_key")?,
            created_at: timestamp(&row, "created_at")?,
        })
    }

    async fn put_push_subscription(&self, subscription: &PushSubscription) -> StoreResult<()> {
        let query = sqlx::query(
            "INSERT INTO push_subscriptions (device_id, endpoint, p256dh, auth, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (device_id) DO UPDATE SET \
             endpoint = excluded.endpoint, p256dh = excluded.p256dh, auth = excluded.auth, \
             created_at = excluded.created_at",
        )
        .bind(subscription.device_id.as_str())
        .bind(&subscription.endpoint)
        .bind(&subscription.p256dh)
        .bind(&subscription.auth)
        .bind(subscription.created_at.0);
        self.execute(query)
            .await
            .map_err(|e| conflict_or_backend("a push subscription", e))?;
        Ok(())
    }

    async fn push_subscription(&self, device: &DeviceId) -> StoreResult<Option<PushSubscription>> {
        self.read_by_key(
            "SELECT * FROM push_subscriptions WHERE device_id = $1",
            device.as_str(),
            subscription_from,
        )
        .await
    }

    async fn delete_push_subscription(
        &self,
        device: &DeviceId,
        endpoint: Option<&str>,
    ) -> StoreResult<bool> {
        let query = match endpoint {
            None => sqlx::query("DELETE FROM push_subscriptions WHERE device_id = $1")
                .bind(device.as_str()),
            Some(endpoint) => {
                sqlx::query("DELETE FROM push_subscriptions WHERE device_id = $1 AND endpoint = $2")
                    .bind(device.as_str())
                    .bind(endpoint)
            }
        };
        let done = self
            .execute(query)
            .await
            .map_err(|e| backend("removing a push subscription", e))?;
        Ok(done.rows_affected() > 0)
    }
}
