//! PostgreSQL: fixed-window throttles and smart lockout's familiar places.

use async_trait::async_trait;
use latchkey_domain::clock::Timestamp;
use latchkey_domain::ids::UserId;
use latchkey_domain::store::{Familiar, StoreResult, ThrottleStore};

use sqlx::postgres::PgArguments;
use sqlx::{PgConnection, Postgres};

use super::{PostgresStore, backend, conflict_or_backend, read_error};

/// The start of the fixed window of `window_seconds` that contains `now`.
pub(super) fn window_start(now: Timestamp, window_seconds: i64) -> i64 {
    now.0 - now.0.rem_euclid(window_seconds.max(1))
}

/// What makes an insert of a (key, window start, 1) throttle row take a slot: a new window
/// starts at 1, the current one grows while below the limit (the parameter named).
macro_rules! take_on_conflict {
    ($limit:literal) => {
        concat!(
            "ON CONFLICT (key) DO UPDATE SET \
               count = CASE WHEN throttle.window_start = excluded.window_start THEN throttle.count + 1 ELSE 1 END, \
               window_start = excluded.window_start \
             WHERE throttle.window_start <> excluded.window_start OR throttle.count < ",
            $limit
        )
    };
}
pub(super) use take_on_conflict;

/// Takes one slot of `key`'s window containing `now` if fewer than `limit` are taken there
/// (one row affected when taken). One statement: a new window starts at 1, the current one
/// grows while below the limit. INSERT … ON CONFLICT DO UPDATE locks the key's row and
/// evaluates the WHERE on its latest committed version, so two racers never both take the last
/// slot.
pub(super) fn take_slot(
    key: &str,
    now: Timestamp,
    window_seconds: i64,
    limit: u32,
) -> sqlx::query::Query<'_, Postgres, PgArguments> {
    sqlx::query(concat!(
        "INSERT INTO throttle (key, window_start, count) VALUES ($1, $2, 1) ",
        take_on_conflict!("$3")
    ))
    .bind(key)
    .bind(window_start(now, window_seconds))
    .bind(i64::from(limit))
}

/// Each remembers a (user, key) pair seen at `$3`, keeping the first and the latest time.
const REMEMBER_PLACE: &str = "INSERT INTO familiar_places AS f (user_id, place, first_seen, last_seen) \
     VALUES ($1, $2, $3, $3) \
     ON CONFLICT (user_id, place) DO UPDATE SET \
       first_seen = LEAST(f.first_seen, excluded.first_seen), \
       last_seen = GREATEST(f.last_seen, excluded.last_seen)";
const REMEMBER_COUNTRY: &str = "INSERT INTO sign_in_countries AS f (user_id, country, first_seen, last_seen) \
     VALUES ($1, $2, $3, $3) \
     ON CONFLICT (user_id, country) DO UPDATE SET \
       first_seen = LEAST(f.first_seen, excluded.first_seen), \
       last_seen = GREATEST(f.last_seen, excluded.last_seen)";

/// Remembers what a successful sign-in made `familiar` for `user`, on `conn` (in the caller's
/// transaction when there is more than one statement): old places forgotten, then the new
/// places in order, then the country. Every writer takes the places in that order.
pub(super) async fn remember_familiar(
    conn: &mut PgConnection,
    user: &UserId,
    familiar: &Familiar,
) -> StoreResult<()> {
    if !familiar.places.is_empty() {
        sqlx::query("DELETE FROM familiar_places WHERE user_id = $1 AND last_seen < $2")
            .bind(user.as_str())
            .bind(familiar.forget_before.0)
            .execute(&mut *conn)
            .await
            .map_err(|e| backend("forgetting old familiar places", e))?;
    }
    let places = familiar
        .places
        .iter()
        .map(|place| (REMEMBER_PLACE, place, "remembering a familiar place"));
    let country = familiar
        .country
        .iter()
        .map(|country| (REMEMBER_COUNTRY, country, "remembering a sign-in country"));
    for (sql, key, doing) in places.chain(country) {
        sqlx::query(sql)
            .bind(user.as_str())
            .bind(key)
            .bind(familiar.at.0)
            .execute(&mut *conn)
            .await
            .map_err(|e| conflict_or_backend(doing, e))?;
    }
    Ok(())
}

#[async_trait]
impl ThrottleStore for PostgresStore {
    async fn take_throttle_slot(
        &self,
        key: &str,
        now: Timestamp,
        window_seconds: i64,
        limit: u32,
    ) -> StoreResult<bool> {
        let done = take_slot(key, now, window_seconds, limit)
            .execute(&self.pool)
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
        sqlx::query(
            "UPDATE throttle SET count = count - 1 \
             WHERE key = $1 AND window_start = $2 AND count > 0",
        )
        .bind(key)
        .bind(window_start(now, window_seconds))
        .execute(&self.pool)
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
        let count: Option<i64> =
            sqlx::query_scalar("SELECT count FROM throttle WHERE key = $1 AND window_start = $2")
                .bind(key)
                .bind(window_start(now, window_seconds))
                .fetch_optional(&self.pool)
                .await
                .map_err(read_error)?;
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
        let mut tx = self.begin().await?;
        remember_familiar(&mut tx, user, &familiar).await?;
        tx.commit()
            .await
            .map_err(|e| backend("remembering a familiar place", e))?;
        Ok(())
    }

    async fn familiar_place_seen(
        &self,
        user: &UserId,
        place: &str,
    ) -> StoreResult<Option<Timestamp>> {
        let seen: Option<i64> = sqlx::query_scalar(
            "SELECT last_seen FROM familiar_places WHERE user_id = $1 AND place = $2",
        )
        .bind(user.as_str())
        .bind(place)
        .fetch_optional(&self.pool)
        .await
        .map_err(read_error)?;
        Ok(seen.map(Timestamp))
    }
}

#[cfg(test)]
mod across_instances {
    use latchkey_domain::secret::random_hex;

    use super::super::session::TwoInstances;
    use super::*;

    /// Threat: a password-guessing (or code-guessing) run spread over every server instance so
    /// that each instance's share stays under the limit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn guesses_spread_over_instances_share_one_throttle_limit() {
        let both = TwoInstances::open().await;
        let key = format!("guess:{}", random_hex(8));
        let now = Timestamp(1_800_000_000);
        let (limit, window) = (5, 60);
        let mut attempts = tokio::task::JoinSet::new();
        for i in 0..24 {
            let store = if i % 2 == 0 { &both.a } else { &both.b }.clone();
            let key = key.clone();
            attempts.spawn(async move { store.take_throttle_slot(&key, now, window, limit).await });
        }
        let allowed = attempts
            .join_all()
            .await
            .into_iter()
            .filter(|taken| *taken.as_ref().unwrap())
            .count();
        assert_eq!(allowed, 5, "the limit holds over both instances together");
        assert_eq!(both.a.throttle_count(&key, now, window).await.unwrap(), 5);
        assert_eq!(both.b.throttle_count(&key, now, window).await.unwrap(), 5);
        assert!(
            !both
                .b
                .take_throttle_slot(&key, now, window, limit)
                .await
                .unwrap(),
            "a sixth guess at either instance is refused"
        );
        assert!(
            both.a
                .take_throttle_slot(&key, Timestamp(now.0 + window), window, limit)
                .await
                .unwrap(),
            "the next window starts over"
        );
        both.close().await;
    }
}
