//! PostgreSQL: the authenticator app: activations, devices, nonces, approvals and phone
//! sign-in PINs.
//!
//! Three methods check a count or an absence and then insert (`put_activation_within`,
//! `redeem_activation`, `put_approval_if_none_waiting`). At READ COMMITTED two transactions
//! could both pass such a check, so each first locks the user's row (`FOR NO KEY UPDATE`,
//! which does not block inserts that only reference the user); the check that follows runs on
//! a snapshot taken after the lock, so it sees whatever the previous holder committed.

use async_trait::async_trait;
use latchkey_domain::authenticator::{
    Activation, Approval, ApprovalState, Device, DeviceCredential, PinCheck, PinLock,
    app_from_text, app_text,
};
use latchkey_domain::clock::Timestamp;
use latchkey_domain::error::StoreError;
use latchkey_domain::ids::{ActivationId, ApprovalId, DeviceId, UserId};
use latchkey_domain::log::SignInRecord;
use latchkey_domain::secret::TokenHash;
use latchkey_domain::signin::PendingSignIn;
use latchkey_domain::store::{ApprovalPut, DeviceStore, NonceUse, StoreResult, ThrottleTake};
use latchkey_protocol::PublicKey;
use sqlx::PgConnection;
use sqlx::postgres::PgRow;

use super::session::{Bound, upsert_sign_in};
use super::throttle::{take_on_conflict, take_slot, window_start};
use super::{
    PostgresStore, SIGN_IN_RECORD_CONFLICT, backend, conflict_or_backend, corrupt, get,
    insert_sign_in_record, optional_timestamp, read_error, timestamp, to_json,
};

fn activation_from(row: &PgRow) -> StoreResult<Activation> {
    Ok(Activation {
        id: ActivationId::from_string(get::<String>(row, "id")?),
        code_hash: TokenHash::from_stored(get::<String>(row, "code_hash")?),
        user_id: UserId::from_string(get::<String>(row, "user_id")?),
        created_at: timestamp(row, "created_at")?,
        expires_at: timestamp(row, "expires_at")?,
        device_id: get::<Option<String>>(row, "device_id")?.map(DeviceId::from_string),
        test_approval: get::<Option<String>>(row, "test_approval")?.map(ApprovalId::from_string),
    })
}

fn public_key(text: String) -> StoreResult<PublicKey> {
    PublicKey::parse(&text).map_err(|_| corrupt("device key"))
}

fn device_from(row: &PgRow) -> StoreResult<Device> {
    Ok(Device {
        id: DeviceId::from_string(get::<String>(row, "id")?),
        user_id: UserId::from_string(get::<String>(row, "user_id")?),
        name: get(row, "name")?,
        key: public_key(get(row, "device_key")?)?,
        passwordless_key: get::<Option<String>>(row, "passwordless_key")?
            .map(public_key)
            .transpose()?,
        created_at: timestamp(row, "created_at")?,
        confirmed_at: optional_timestamp(row, "confirmed_at")?,
        phone_sign_in_at: optional_timestamp(row, "phone_sign_in_at")?,
        app: app_from_text(&get::<String>(row, "app")?).ok_or_else(|| corrupt("device app"))?,
        webauthn: match (
            get::<Option<String>>(row, "webauthn_credential_id")?,
            get::<Option<String>>(row, "webauthn_passkey")?,
            get::<Option<i64>>(row, "webauthn_counter")?,
        ) {
            (Some(credential_id), Some(passkey), Some(counter)) => Some(DeviceCredential {
                credential_id,
                passkey,
                counter: u32::try_from(counter).map_err(|_| corrupt("device counter"))?,
            }),
            (None, None, None) => None,
            _ => return Err(corrupt("device WebAuthn credential")),
        },
    })
}

/// Approvals are read as their JSON body.
fn approval_from(row: &PgRow) -> StoreResult<Approval> {
    let body: String = get(row, "body")?;
    serde_json::from_str(&body).map_err(|_| corrupt("approval"))
}

fn insert_device(device: &Device) -> Bound {
    sqlx::query(
        "INSERT INTO devices (id, user_id, name, device_key, passwordless_key, created_at, confirmed_at, \
         phone_sign_in_at, app, webauthn_credential_id, webauthn_passkey, webauthn_counter) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(device.id.as_str().to_owned())
    .bind(device.user_id.as_str().to_owned())
    .bind(device.name.clone())
    .bind(device.key.as_str().to_owned())
    .bind(
        device
            .passwordless_key
            .as_ref()
            .map(|key| key.as_str().to_owned()),
    )
    .bind(device.created_at.0)
    .bind(device.confirmed_at.map(|t| t.0))
    .bind(device.phone_sign_in_at.map(|t| t.0))
    .bind(app_text(device.app))
    .bind(device.webauthn.as_ref().map(|w| w.credential_id.clone()))
    .bind(device.webauthn.as_ref().map(|w| w.passkey.clone()))
    .bind(device.webauthn.as_ref().map(|w| i64::from(w.counter)))
}

/// Binds an approval's six columns, in table order, as `$1`…`$6` of `sql`.
fn bind_approval(sql: &'static str, approval: &Approval) -> StoreResult<Bound> {
    let body = to_json("approval", serde_json::to_string(approval))?;
    Ok(sqlx::query(sql)
        .bind(approval.id.as_str().to_owned())
        .bind(approval.user_id.as_str().to_owned())
        .bind(approval.state.as_str())
        .bind(approval.view.created_at)
        .bind(approval.view.expires_at)
        .bind(body))
}

fn insert_approval(approval: &Approval) -> StoreResult<Bound> {
    bind_approval(
        "INSERT INTO approvals (id, user_id, state, created_at, expires_at, body) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        approval,
    )
}

/// Holds the user's row until the transaction ends, so per-user checks-then-inserts run one
/// at a time. A missing user is not an error here: the insert that follows fails on its
/// foreign key, which reports `NotFound` as on SQLite.
pub(super) async fn lock_user(
    conn: &mut PgConnection,
    user: &UserId,
    doing: &str,
) -> StoreResult<()> {
    sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE")
        .bind(user.as_str())
        .fetch_optional(conn)
        .await
        .map_err(|e| backend(doing, e))?;
    Ok(())
}

#[async_trait]
impl DeviceStore for PostgresStore {
    async fn put_activation(&self, activation: &Activation) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO activations (id, code_hash, user_id, created_at, expires_at, device_id, test_approval) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(activation.id.as_str())
        .bind(activation.code_hash.as_str())
        .bind(activation.user_id.as_str())
        .bind(activation.created_at.0)
        .bind(activation.expires_at.0)
        .bind(activation.device_id.as_ref().map(DeviceId::as_str))
        .bind(activation.test_approval.as_ref().map(ApprovalId::as_str))
        .execute(&self.pool)
        .await
        .map_err(|e| conflict_or_backend("an activation", e))?;
        Ok(())
    }

    async fn put_activation_within(
        &self,
        activation: &Activation,
        now: Timestamp,
        max_outstanding: u32,
    ) -> StoreResult<bool> {
        let doing = "storing an activation";
        let mut tx = self.begin().await?;
        lock_user(&mut tx, &activation.user_id, doing).await?;
        let done = sqlx::query(
            "INSERT INTO activations (id, code_hash, user_id, created_at, expires_at, device_id, test_approval) \
             SELECT $1, $2, $3, $4, $5, NULL, NULL \
             WHERE (SELECT count(*) FROM activations \
                    WHERE user_id = $3 AND device_id IS NULL AND expires_at > $6) < $7",
        )
        .bind(activation.id.as_str())
        .bind(activation.code_hash.as_str())
        .bind(activation.user_id.as_str())
        .bind(activation.created_at.0)
        .bind(activation.expires_at.0)
        .bind(now.0)
        .bind(i64::from(max_outstanding))
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_or_backend("an activation", e))?;
        tx.commit().await.map_err(|e| backend(doing, e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn activation(&self, id: &ActivationId) -> StoreResult<Option<Activation>> {
        self.read_by_key(
            "SELECT * FROM activations WHERE id = $1",
            id.as_str(),
            activation_from,
        )
        .await
    }

    async fn activation_by_code(&self, code_hash: &TokenHash) -> StoreResult<Option<Activation>> {
        self.read_by_key(
            "SELECT * FROM activations WHERE code_hash = $1",
            code_hash.as_str(),
            activation_from,
        )
        .await
    }

    async fn redeem_activation(
        &self,
        code_hash: &TokenHash,
        now: Timestamp,
        device: &Device,
        test: &Approval,
        max_devices: u32,
    ) -> StoreResult<Option<Activation>> {
        // The conditional UPDATE … RETURNING is the single-use check: a racer on the same code
        // waits on its row lock, re-checks `device_id IS NULL` on the committed row and matches
        // nothing. The user's row lock makes the device count and the insert one step for
        // racers redeeming different codes of one user.
        let doing = "redeeming an activation";
        let mut tx = self.begin().await?;
        lock_user(&mut tx, &device.user_id, doing).await?;
        let row = sqlx::query(
            "UPDATE activations SET device_id = $1, test_approval = $2 \
             WHERE code_hash = $3 AND device_id IS NULL AND expires_at > $4 AND user_id = $5 \
               AND (SELECT count(*) FROM devices WHERE user_id = $5) < $6 \
             RETURNING *",
        )
        .bind(device.id.as_str())
        .bind(test.id.as_str())
        .bind(code_hash.as_str())
        .bind(now.0)
        .bind(device.user_id.as_str())
        .bind(i64::from(max_devices))
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| backend(doing, e))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let activation = activation_from(&row)?;
        insert_device(device)
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict_or_backend("a device with this id", e))?;
        insert_approval(test)?
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict_or_backend("an approval with this id", e))?;
        tx.commit().await.map_err(|e| backend(doing, e))?;
        Ok(Some(activation))
    }

    async fn device(&self, id: &DeviceId) -> StoreResult<Option<Device>> {
        self.read_by_key(
            "SELECT * FROM devices WHERE id = $1",
            id.as_str(),
            device_from,
        )
        .await
    }

    async fn devices_of_user(&self, user: &UserId) -> StoreResult<Vec<Device>> {
        self.read_all(
            sqlx::query("SELECT * FROM devices WHERE user_id = $1 ORDER BY created_at, id")
                .bind(user.as_str()),
            device_from,
        )
        .await
    }

    async fn update_device(&self, device: &Device) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE devices SET name = $1, passwordless_key = $2, confirmed_at = $3, phone_sign_in_at = $4, \
             webauthn_credential_id = $6, webauthn_passkey = $7, webauthn_counter = $8 WHERE id = $5",
        )
        .bind(device.name.as_str())
        .bind(device.passwordless_key.as_ref().map(PublicKey::as_str))
        .bind(device.confirmed_at.map(|t| t.0))
        .bind(device.phone_sign_in_at.map(|t| t.0))
        .bind(device.id.as_str())
        .bind(device.webauthn.as_ref().map(|w| w.credential_id.clone()))
        .bind(device.webauthn.as_ref().map(|w| w.passkey.clone()))
        .bind(device.webauthn.as_ref().map(|w| i64::from(w.counter)))
        .execute(&self.pool)
        .await
        .map_err(|e| backend("updating a device", e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn delete_device(&self, id: &DeviceId) -> StoreResult<()> {
        self.write_by_key(
            "DELETE FROM devices WHERE id = $1",
            id.as_str(),
            "deleting a device",
        )
        .await
    }

    async fn use_device_nonce(
        &self,
        device: &DeviceId,
        nonce: &str,
        expires_at: Timestamp,
        throttle: Option<&ThrottleTake>,
        now: Timestamp,
    ) -> StoreResult<NonceUse> {
        // ON CONFLICT DO NOTHING: a racer with the same nonce waits for the first insert to
        // commit, then inserts nothing; exactly one caller sees the nonce recorded. The slot
        // is taken in the same statement, only when the nonce was recorded.
        let (key, window, limit) = match throttle {
            Some(t) => (
                Some(t.key.as_str()),
                window_start(now, t.window_seconds),
                i64::from(t.limit),
            ),
            None => (None, 0, 0),
        };
        let row = sqlx::query(concat!(
            "WITH recorded AS (INSERT INTO device_nonces (device_id, nonce, expires_at) \
             VALUES ($1, $2, $3) ON CONFLICT (device_id, nonce) DO NOTHING RETURNING 1), \
             taken AS (INSERT INTO throttle (key, window_start, count) \
             SELECT $4, $5, 1 FROM recorded WHERE $4::TEXT IS NOT NULL ",
            take_on_conflict!("$6"),
            " RETURNING 1) \
             SELECT EXISTS (SELECT 1 FROM recorded) AS recorded, \
             EXISTS (SELECT 1 FROM taken) AS taken"
        ))
        .bind(device.as_str())
        .bind(nonce)
        .bind(expires_at.0)
        .bind(key)
        .bind(window)
        .bind(limit)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| conflict_or_backend("recording a nonce", e))?;
        Ok(
            match (get::<bool>(&row, "recorded")?, get::<bool>(&row, "taken")?) {
                (false, _) => NonceUse::Replayed,
                (true, false) if throttle.is_some() => NonceUse::Throttled,
                (true, _) => NonceUse::Fresh,
            },
        )
    }

    async fn put_approval(&self, approval: &Approval) -> StoreResult<()> {
        insert_approval(approval)?
            .execute(&self.pool)
            .await
            .map_err(|e| conflict_or_backend("an approval with this id", e))?;
        Ok(())
    }

    async fn put_approval_if_none_waiting(
        &self,
        approval: &Approval,
        now: Timestamp,
        throttles: &[ThrottleTake],
        sign_in: Option<&PendingSignIn>,
    ) -> StoreResult<ApprovalPut> {
        let doing = "storing an approval";
        let upsert = sign_in.map(upsert_sign_in).transpose()?;
        let mut tx = self.begin().await?;
        // The user's lock first, then the throttle rows in the caller's order: every
        // transaction that holds a throttle row here already holds its user's lock.
        lock_user(&mut tx, &approval.user_id, doing).await?;
        for take in throttles {
            let taken = take_slot(&take.key, now, take.window_seconds, take.limit)
                .execute(&mut *tx)
                .await
                .map_err(|e| backend("counting for a throttle", e))?;
            if taken.rows_affected() != 1 {
                // The slots taken before this one stay taken.
                tx.commit().await.map_err(|e| backend(doing, e))?;
                return Ok(ApprovalPut::Throttled);
            }
        }
        let done = bind_approval(
            "INSERT INTO approvals (id, user_id, state, created_at, expires_at, body) \
             SELECT $1, $2, $3, $4, $5, $6 WHERE NOT EXISTS ( \
               SELECT 1 FROM approvals WHERE user_id = $2 AND state = 'pending' AND expires_at > $7 \
               AND (body::jsonb -> 'view' ->> 'kind') NOT IN ('registration_test', 'phone_sign_in_consent'))",
            approval,
        )?
        .bind(now.0)
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_or_backend("an approval with this id", e))?;
        let stored = done.rows_affected() == 1;
        if stored && let Some(upsert) = upsert {
            upsert
                .execute(&mut *tx)
                .await
                .map_err(|e| backend("saving a sign-in", e))?;
        }
        tx.commit().await.map_err(|e| backend(doing, e))?;
        Ok(if stored {
            ApprovalPut::Stored
        } else {
            ApprovalPut::AlreadyWaiting
        })
    }

    async fn approval(&self, id: &ApprovalId) -> StoreResult<Option<Approval>> {
        self.read_by_key(
            "SELECT body FROM approvals WHERE id = $1",
            id.as_str(),
            approval_from,
        )
        .await
    }

    async fn pending_approvals(&self, user: &UserId) -> StoreResult<Vec<Approval>> {
        sqlx::query(
            "SELECT body FROM approvals \
             WHERE user_id = $1 AND state = 'pending' ORDER BY created_at, id",
        )
        .bind(user.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(read_error)?
        .iter()
        .map(approval_from)
        .collect()
    }

    async fn overdue_approvals(&self, now: Timestamp, limit: u32) -> StoreResult<Vec<Approval>> {
        sqlx::query(
            "SELECT body FROM approvals \
             WHERE state = 'pending' AND expires_at <= $1 ORDER BY expires_at, id LIMIT $2",
        )
        .bind(now.0)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(read_error)?
        .iter()
        .map(approval_from)
        .collect()
    }

    async fn settle_approval(
        &self,
        id: &ApprovalId,
        state: ApprovalState,
        answered_by: Option<&DeviceId>,
        at: Timestamp,
        record: Option<&SignInRecord>,
    ) -> StoreResult<bool> {
        // First answer wins: the pending row is locked (FOR UPDATE) before it is read, so a
        // second answer waits, then re-reads the committed row, finds it settled and stops.
        let doing = "settling an approval";
        let mut tx = self.begin().await?;
        let row = sqlx::query(
            "SELECT body FROM approvals WHERE id = $1 AND state = 'pending' FOR UPDATE",
        )
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| backend(doing, e))?;
        let Some(row) = row else {
            return Ok(false);
        };
        let mut approval = approval_from(&row)?;
        approval.state = state;
        approval.answered_by = answered_by.cloned();
        approval.settled_at = Some(at);
        let body = to_json("approval", serde_json::to_string(&approval))?;
        sqlx::query("UPDATE approvals SET state = $1, body = $2 WHERE id = $3")
            .bind(state.as_str())
            .bind(body)
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|e| backend(doing, e))?;
        if let Some(record) = record {
            insert_sign_in_record(record)?
                .execute(&mut *tx)
                .await
                .map_err(|e| conflict_or_backend(SIGN_IN_RECORD_CONFLICT, e))?;
        }
        tx.commit().await.map_err(|e| backend(doing, e))?;
        Ok(true)
    }

    async fn record_device_webauthn_use(
        &self,
        device: &DeviceId,
        credential_id: &str,
        expected_counter: u32,
        counter: u32,
        passkey: &str,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE devices SET webauthn_passkey = $1, webauthn_counter = $2 \
             WHERE id = $3 AND webauthn_credential_id = $4 AND webauthn_counter = $5",
        )
        .bind(passkey.to_string())
        .bind(i64::from(counter))
        .bind(device.as_str().to_string())
        .bind(credential_id.to_string())
        .bind(i64::from(expected_counter))
        .execute(&self.pool)
        .await
        .map_err(|e| backend("recording a device's WebAuthn use", e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_phone_sign_in(
        &self,
        device: &Device,
        verifier_mac: Option<&str>,
    ) -> StoreResult<()> {
        let fail = |e| backend("setting phone sign-in", e);
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE devices SET passwordless_key = $1, phone_sign_in_at = $2, webauthn_credential_id = $4, \
             webauthn_passkey = $5, webauthn_counter = $6 WHERE id = $3",
        )
        .bind(device.passwordless_key.as_ref().map(PublicKey::as_str))
        .bind(device.phone_sign_in_at.map(|t| t.0))
        .bind(device.id.as_str())
        .bind(device.webauthn.as_ref().map(|w| w.credential_id.clone()))
        .bind(device.webauthn.as_ref().map(|w| w.passkey.clone()))
        .bind(device.webauthn.as_ref().map(|w| i64::from(w.counter)))
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        match verifier_mac {
            Some(mac) => sqlx::query(
                "INSERT INTO device_pin_locks (device_id, verifier_mac, wrong_pins, locked_at, reenable_allowed_at) \
                 VALUES ($1, $2, 0, NULL, NULL) ON CONFLICT (device_id) DO UPDATE SET \
                 verifier_mac = excluded.verifier_mac, wrong_pins = 0, locked_at = NULL, reenable_allowed_at = NULL",
            )
            .bind(device.id.as_str())
            .bind(mac),
            None => sqlx::query("DELETE FROM device_pin_locks WHERE device_id = $1")
                .bind(device.id.as_str()),
        }
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        tx.commit().await.map_err(fail)
    }

    async fn pin_lock(&self, device: &DeviceId) -> StoreResult<Option<PinLock>> {
        let row = sqlx::query("SELECT * FROM device_pin_locks WHERE device_id = $1")
            .bind(device.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(read_error)?;
        row.map(|row| {
            Ok(PinLock {
                device_id: DeviceId::from_string(get::<String>(&row, "device_id")?),
                verifier_mac: get(&row, "verifier_mac")?,
                wrong_pins: get::<i64>(&row, "wrong_pins")?.clamp(0, u32::MAX.into()) as u32,
                locked_at: optional_timestamp(&row, "locked_at")?,
                reenable_allowed_at: optional_timestamp(&row, "reenable_allowed_at")?,
            })
        })
        .transpose()
    }

    async fn record_pin_check(
        &self,
        device: &DeviceId,
        right: bool,
        limit: u32,
        now: Timestamp,
    ) -> StoreResult<PinCheck> {
        // Each check is one conditional UPDATE on the device's PIN row: concurrent checks
        // queue on its row lock and each counts on the committed value, so no wrong PIN is
        // lost and only the one that reaches the limit locks.
        let fail = |e| backend("recording a PIN check", e);
        if right {
            let done = sqlx::query(
                "UPDATE device_pin_locks SET wrong_pins = 0 \
                 WHERE device_id = $1 AND locked_at IS NULL AND verifier_mac IS NOT NULL",
            )
            .bind(device.as_str())
            .execute(&self.pool)
            .await
            .map_err(fail)?;
            return Ok(if done.rows_affected() == 1 {
                PinCheck::Right
            } else {
                PinCheck::Locked
            });
        }
        let mut tx = self.begin().await?;
        let counted: Option<i64> = sqlx::query_scalar(
            "UPDATE device_pin_locks SET wrong_pins = wrong_pins + 1 \
             WHERE device_id = $1 AND locked_at IS NULL AND verifier_mac IS NOT NULL \
             RETURNING wrong_pins",
        )
        .bind(device.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(fail)?;
        let Some(counted) = counted else {
            return Ok(PinCheck::Locked);
        };
        if counted < i64::from(limit) {
            tx.commit().await.map_err(fail)?;
            return Ok(PinCheck::Wrong {
                remaining: (i64::from(limit) - counted) as u32,
            });
        }
        sqlx::query(
            "UPDATE device_pin_locks SET locked_at = $1, verifier_mac = NULL, reenable_allowed_at = NULL \
             WHERE device_id = $2",
        )
        .bind(now.0)
        .bind(device.as_str())
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        sqlx::query(
            "UPDATE devices SET passwordless_key = NULL, phone_sign_in_at = NULL WHERE id = $1",
        )
        .bind(device.as_str())
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        Ok(PinCheck::LockedNow)
    }

    async fn allow_phone_sign_in_again(
        &self,
        device: &DeviceId,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE device_pin_locks SET reenable_allowed_at = $1 \
             WHERE device_id = $2 AND locked_at IS NOT NULL",
        )
        .bind(now.0)
        .bind(device.as_str())
        .execute(&self.pool)
        .await
        .map_err(|e| backend("allowing phone sign-in again", e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn allow_enabling_phone_sign_in(
        &self,
        device: &DeviceId,
        now: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO device_pin_locks (device_id, verifier_mac, wrong_pins, locked_at, reenable_allowed_at) \
             VALUES ($1, NULL, 0, NULL, $2) ON CONFLICT (device_id) DO UPDATE SET \
             reenable_allowed_at = excluded.reenable_allowed_at",
        )
        .bind(device.as_str())
        .bind(now.0)
        .execute(&self.pool)
        .await
        .map_err(|e| backend("allowing phone sign-in to be turned on", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod across_instances {
    use latchkey_domain::authenticator::ApprovalContext;
    use latchkey_domain::secret::random_hex;
    use latchkey_domain::store::UserStore;
    use latchkey_domain::user::{Upn, User};
    use latchkey_protocol::DeviceKeyPair;
    use latchkey_protocol::wire::ApprovalKind;

    use super::super::session::TwoInstances;
    use super::*;

    const NOW: Timestamp = Timestamp(1_800_000_000);

    /// A user with one device (made by redeeming an activation through A) and its test
    /// approval, still pending.
    async fn device_with_pending_approval(store: &PostgresStore) -> (Device, Approval) {
        let user = User {
            id: UserId::random(),
            upn: Upn::parse(&format!("phone-{}@instances.example", random_hex(4))).unwrap(),
            display_name: "Two Instances".into(),
            email: None,
            enabled: true,
            created_at: NOW,
        };
        store.create_user(&user).await.unwrap();
        let device = Device {
            id: DeviceId::random(),
            user_id: user.id.clone(),
            name: "phone".into(),
            key: DeviceKeyPair::generate().unwrap().public_key(),
            passwordless_key: None,
            created_at: NOW,
            confirmed_at: None,
            phone_sign_in_at: None,
            app: latchkey_protocol::wire::AppKind::Terminal,
            webauthn: None,
        };
        let approval = Approval::new(
            ApprovalKind::PhoneSignIn,
            user.id.clone(),
            None,
            vec![device.id.clone()],
            ApprovalContext {
                user_principal_name: user.upn.as_str().into(),
                ..Default::default()
            },
            NOW,
            90,
        );
        let activation = Activation {
            id: ActivationId::random(),
            code_hash: TokenHash::of(&random_hex(16)),
            user_id: user.id,
            created_at: NOW,
            expires_at: NOW.plus_seconds(600),
            device_id: None,
            test_approval: None,
        };
        store.put_activation(&activation).await.unwrap();
        store
            .redeem_activation(&activation.code_hash, NOW, &device, &approval, 10)
            .await
            .unwrap()
            .expect("redeemed");
        (device, approval)
    }

    /// Threat: a sign-in request approved on a phone whose live channel sits on one instance
    /// while a denial (or a second phone's answer) reaches another: both must not stand.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn answers_racing_through_two_instances_settle_once() {
        let both = TwoInstances::open().await;
        for _ in 0..10 {
            let (device, approval) = device_with_pending_approval(&both.a).await;
            let (at_a, at_b) = tokio::join!(
                both.a.settle_approval(
                    &approval.id,
                    ApprovalState::Approved,
                    Some(&device.id),
                    NOW,
                    None
                ),
                both.b.settle_approval(
                    &approval.id,
                    ApprovalState::Denied,
                    Some(&device.id),
                    NOW,
                    None
                ),
            );
            let (at_a, at_b) = (at_a.unwrap(), at_b.unwrap());
            assert!(at_a ^ at_b, "exactly one answer settles the request");
            let settled = both.b.approval(&approval.id).await.unwrap().unwrap();
            let winner = if at_a {
                ApprovalState::Approved
            } else {
                ApprovalState::Denied
            };
            assert_eq!(settled.state, winner, "the winner's answer stands");
        }
        both.close().await;
    }

    /// Threat: a device's signed request replayed to another instance, where the nonce
    /// recorded by the first would not be seen if each instance kept its own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn device_request_replayed_at_another_instance_is_refused() {
        let both = TwoInstances::open().await;
        let (device, _) = device_with_pending_approval(&both.a).await;
        for _ in 0..20 {
            let nonce = random_hex(16);
            let expires = NOW.plus_seconds(300);
            let (at_a, at_b) = tokio::join!(
                both.a
                    .use_device_nonce(&device.id, &nonce, expires, None, NOW),
                both.b
                    .use_device_nonce(&device.id, &nonce, expires, None, NOW),
            );
            assert!(
                (at_a.unwrap() == NonceUse::Fresh) ^ (at_b.unwrap() == NonceUse::Fresh),
                "exactly one instance accepts the nonce"
            );
            assert_eq!(
                both.b
                    .use_device_nonce(&device.id, &nonce, expires, None, NOW)
                    .await
                    .unwrap(),
                NonceUse::Replayed
            );
        }
        both.close().await;
    }
}
