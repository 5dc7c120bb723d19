//! SQLite: the VAPID key and push subscriptions.

use async_trait::async_trait;
use latchkey_domain::ids::DeviceId;
use latchkey_domain::push::{PushSubscription, VapidKey};
use latchkey_domain::store::{PushStore, StoreResult};
use rusqlite::Row;

use super::db::stmt;
use super::rows::{get, timestamp};
use super::{SqliteStore, backend, conflict_or_backend};

fn subscription_from(row: &Row<'_>) -> StoreResult<PushSubscription> {
    Ok(PushSubscription {
        device_id: DeviceId::from_string(get::<String>(row, "device_id")?),
        endpoint: get(row, "endpoint")?,
        p256dh: get(row, "p256dh")?,
        auth: get(row, "auth")?,
        created_at: timestamp(row, "created_at")?,
    })
}

#[async_trait]
impl PushStore for SqliteStore {
    async fn vapid_key(&self, candidate: &VapidKey) -> StoreResult<VapidKey> {
        // Insert-if-absent then read back, in one savepoint on the writer (whose transaction
        // holds the write lock from its start): of two instances starting at once the first
        // inserts, the second inserts nothing and reads the first's key.
        let insert = stmt(
            "INSERT INTO vapid_keys (id, private_key, public_key, created_at) VALUES (1, ?, ?, ?) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(candidate.private_key.as_slice())
        .bind(&candidate.public_key)
        .bind(candidate.created_at.0);
        let find = stmt("SELECT * FROM vapid_keys WHERE id = 1");
        self.write("storing the VAPID key", move |conn| {
            let fail = |e| backend("storing the VAPID key", e);
            let tx = conn.savepoint().map_err(fail)?;
            insert.execute(&tx).map_err(fail)?;
            let key = find
                .fetch_optional(&tx, |row| {
                    Ok(VapidKey {
                        private_key: get(row, "private_key")?,
                        public_key: get(row, "public_key")?,
                        created_at: timestamp(row, "created_at")?,
                    })
                })?
                .ok_or_else(|| {
                    backend(
                        "reading the VAPID key",
                        rusqlite::Error::QueryReturnedNoRows,
                    )
                })?;
            tx.commit().map_err(fail)?;
            Ok(key)
        })
        .await
    }

    async fn put_push_subscription(&self, subscription: &PushSubscription) -> StoreResult<()> {
        let query = stmt(
            "INSERT INTO push_subscriptions (device_id, endpoint, p256dh, auth, created_at) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (device_id) DO UPDATE SET \
             endpoint = excluded.endpoint, p256dh = excluded.p256dh, auth = excluded.auth, \
             created_at = excluded.created_at",
        )
        .bind(subscription.device_id.as_str().to_string())
        .bind(subscription.endpoint.clone())
        .bind(subscription.p256dh.clone())
        .bind(subscription.auth.clone())
        .bind(subscription.created_at.0);
        self.execute(query)
            .await
            .map_err(|e| conflict_or_backend("a push subscription", e))?;
        Ok(())
    }

    async fn push_subscription(&self, device: &DeviceId) -> StoreResult<Option<PushSubscription>> {
        self.read_steady(
            |rows| &rows.subscriptions,
            device.as_str(),
            || {
                let read = stmt("SELECT * FROM push_subscriptions WHERE device_id = ?")
                    .bind(device.as_str());
                self.read(|conn| read.fetch_optional(conn, subscription_from))
                    .map(Some)
            },
        )
        .map(Option::flatten)
    }

    async fn delete_push_subscription(
        &self,
        device: &DeviceId,
        endpoint: Option<&str>,
    ) -> StoreResult<bool> {
        let query = match endpoint {
            None => stmt("DELETE FROM push_subscriptions WHERE device_id = ?")
                .bind(device.as_str().to_string()),
            Some(endpoint) => {
                stmt("DELETE FROM push_subscriptions WHERE device_id = ? AND endpoint = ?")
                    .bind(device.as_str().to_string())
                    .bind(endpoint.to_string())
            }
        };
        let done = self
            .execute(query)
            .await
            .map_err(|e| backend("removing a push subscription", e))?;
        Ok(done.rows_affected() > 0)
    }
}
