//! SQLite: fixed-window throttles and smart lockout's familiar places.

use async_trait::async_trait;
use latchkey_domain::clock::Timestamp;
use latchkey_domain::ids::UserId;
use latchkey_domain::store::{Familiar, StoreResult, ThrottleStore};

use super::SqliteStore;
use super::db::{Stmt, get, stmt};
use super::{backend, conflict_or_backend};

/// Takes one slot of `key`'s window containing `now` if fewer than `limit` are taken there
/// (one row affected when taken). One statement: a new window starts at 1, the current one
/// grows while below the limit; the write lock makes the check and the increment one step.
pub(super) fn take_slot(key: &str, now: Timestamp, window_seconds: i64, limit: u32) -> Stmt {
    let window_start = now.0 - now.0.rem_euclid(window_seconds.max(1));
    stmt(
        "INSERT INTO throttle (key, window_start, count) VALUES (?, ?, 1) \
         ON CONFLICT (key) DO UPDATE SET \
           count = CASE WHEN throttle.window_start = excluded.window_start THEN throttle.count + 1 ELSE 1 END, \
           window_start = excluded.window_start \
         WHERE throttle.window_start <> excluded.window_start OR throttle.count < ?",
    )
    .bind(key)
    .bind(window_start)
    .bind(limit)
}

/// Each upserts a (user, key) pair seen at a time (user, key, first seen, last seen), keeping
/// the first and the latest time.
const REMEMBER_PLACE: &str = "INSERT INTO familiar_places (user_id, place, first_seen, last_seen) \
     VALUES (?, ?, ?, ?) \
     ON CONFLICT (user_id, place) DO UPDATE SET \
       first_seen = min(first_seen, excluded.first_seen), \
       last_seen = max(last_seen, excluded.last_seen)";
const REMEMBER_COUNTRY: &str = "INSERT INTO sign_in_countries (user_id, country, first_seen, last_seen) \
     VALUES (?, ?, ?, ?) \
     ON CONFLICT (user_id, country) DO UPDATE SET \
       first_seen = min(first_seen, excluded.first_seen), \
       last_seen = max(last_seen, excluded.last_seen)";

/// The statements that remember what a successful sign-in made `familiar` for `user`, in the
/// order they run, each with what it is doing: old places forgotten, then the new places and
/// the country remembered. None when there is nothing to remember.
pub(super) fn remember_familiar(user: &UserId, familiar: &Familiar) -> Vec<(Stmt, &'static str)> {
    let seen = |sql: &'static str, key: &str| {
        stmt(sql)
            .bind(user.as_str())
            .bind(key)
            .bind(familiar.at.0)
            .bind(familiar.at.0)
    };
    let mut statements = Vec::with_capacity(familiar.places.len() + 2);
    if !familiar.places.is_empty() {
        statements.push((
            stmt("DELETE FROM familiar_places WHERE user_id = ? AND last_seen < ?")
                .bind(user.as_str())
                .bind(familiar.forget_before.0),
            "forgetting old familiar places",
        ));
    }
    for place in &familiar.places {
        statements.push((seen(REMEMBER_PLACE, place), "remembering a familiar place"));
    }
    if let Some(country) = &familiar.country {
        statements.push((
            seen(REMEMBER_COUNTRY, country),
            "remembering a sign-in country",
        ));
    }
    statements
}

impl SqliteStore {
    /// Remembers `familiar` for `user` in one write of its own (what `complete_sign_in` does
    /// inside its transaction).
    pub(super) async fn remember_familiar(
        &self,
        user: &UserId,
        familiar: &Familiar,
    ) -> StoreResult<()> {
        let statements = remember_familiar(user, familiar);
        self.write("remembering a familiar place", move |conn| {
            let tx = conn
                .savepoint()
                .map_err(|e| backend("remembering a familiar place", e))?;
            for (statement, doing) in statements {
                statement
                    .execute(&tx)
                    .map_err(|e| conflict_or_backend(doing, e))?;
            }
            tx.commit()
                .map_err(|e| backend("remembering a familiar place", e))
        })
        .await
    }
}

#[async_trait]
impl ThrottleStore for SqliteStore {
    async fn take_throttle_slot(
        &self,
        key: &str,
        now: Timestamp,
        window_seconds: i64,
        limit: u32,
    ) -> StoreResult<bool> {
        let query = take_slot(key, now, window_seconds, limit);
        let done = self
            .execute(query)
            .await
            .map_err(|e| backend("counting for a throttle", e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn release_throttle_slot(
        &self,
        key: &str,
        now: Timestamp,
        window_seconds: i64,
    ) -> StoreResult<()> {
        let window_start = now.0 - now.0.rem_euclid(window_seconds.max(1));
        let query = stmt(
            "UPDATE throttle SET count = count - 1 WHERE key = ? AND window_start = ? AND count > 0",
        )
        .bind(key)
        .bind(window_start);
        self.execute(query)
            .await
            .map_err(|e| backend("releasing a throttle count", e))?;
        Ok(())
    }

    async fn throttle_count(
        &self,
        key: &str,
        now: Timestamp,
        window_seconds: i64,
    ) -> StoreResult<u32> {
        let window_start = now.0 - now.0.rem_euclid(window_seconds.max(1));
        let count: Option<i64> = self
            .read_one(
                stmt("SELECT count FROM throttle WHERE key = ? AND window_start = ?")
                    .bind(key)
                    .bind(window_start),
                |row| get::<i64>(row, 0),
            )
            .await?;
        Ok(count.unwrap_or(0).try_into().unwrap_or(u32::MAX))
    }

    async fn remember_familiar_place(
        &self,
        user: &UserId,
        place: &str,
        at: Timestamp,
        forget_before: Timestamp,
    ) -> StoreResult<()> {
        let familiar = Familiar {
            places: vec![place.to_string()],
            country: None,
            at,
            forget_before,
        };
        self.remember_familiar(user, &familiar).await
    }

    async fn familiar_place_seen(
        &self,
        user: &UserId,
        place: &str,
    ) -> StoreResult<Option<Timestamp>> {
        let seen: Option<i64> = self
            .read_one(
                stmt("SELECT last_seen FROM familiar_places WHERE user_id = ? AND place = ?")
                    .bind(user.as_str())
                    .bind(place),
                |row| get::<i64>(row, 0),
            )
            .await?;
        Ok(seen.map(Timestamp))
    }
}
