//! SQLite: the authenticator app: activations, devices, nonces, approvals and phone sign-in PINs.

use super::SqliteStore;
use super::db::{Stmt, get, stmt};
use super::hot::Written;
use super::rows::{activation_from, approval_from, device_from};
use super::statements::{
    SIGN_IN_RECORD_CONFLICT, bind_approval, insert_approval, insert_device, insert_sign_in_record,
    upsert_sign_in,
};
use super::throttle::take_slot;
use super::{backend, conflict_or_backend, to_json};
use async_trait::async_trait;
use latchkey_domain::authenticator::{
    Activation, Approval, ApprovalState, Device, PinCheck, PinLock,
};
use latchkey_domain::clock::Timestamp;
use latchkey_domain::error::StoreError;
use latchkey_domain::ids::{ActivationId, ApprovalId, DeviceId, UserId};
use latchkey_domain::log::SignInRecord;
use latchkey_domain::secret::TokenHash;
use latchkey_domain::signin::PendingSignIn;
use latchkey_domain::store::{ApprovalPut, DeviceStore, NonceUse, StoreResult, ThrottleTake};
use latchkey_protocol::PublicKey;

#[async_trait]
impl DeviceStore for SqliteStore {
    async fn put_activation(&self, activation: &Activation) -> StoreResult<()> {
        let query = stmt(
            "INSERT INTO activations (id, code_hash, user_id, created_at, expires_at, device_id, test_approval) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(activation.id.as_str())
        .bind(activation.code_hash.as_str())
        .bind(activation.user_id.as_str())
        .bind(activation.created_at.0)
        .bind(activation.expires_at.0)
        .bind(activation.device_id.as_ref().map(DeviceId::as_str))
        .bind(activation.test_approval.as_ref().map(ApprovalId::as_str));
        self.execute(query)
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
        // One statement: the count of the user's open activations and the insert cannot be
        // split by another writer.
        let query = stmt(
            "INSERT INTO activations (id, code_hash, user_id, created_at, expires_at, device_id, test_approval) \
             SELECT ?, ?, ?, ?, ?, NULL, NULL \
             WHERE (SELECT count(*) FROM activations \
                    WHERE user_id = ? AND device_id IS NULL AND expires_at > ?) < ?",
        )
        .bind(activation.id.as_str())
        .bind(activation.code_hash.as_str())
        .bind(activation.user_id.as_str())
        .bind(activation.created_at.0)
        .bind(activation.expires_at.0)
        .bind(activation.user_id.as_str())
        .bind(now.0)
        .bind(max_outstanding);
        let done = self
            .execute(query)
            .await
            .map_err(|e| conflict_or_backend("an activation", e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn activation(&self, id: &ActivationId) -> StoreResult<Option<Activation>> {
        self.read_by_key(
            "SELECT * FROM activations WHERE id = ?",
            id.as_str(),
            activation_from,
        )
        .await
    }

    async fn activation_by_code(&self, code_hash: &TokenHash) -> StoreResult<Option<Activation>> {
        self.read_by_key(
            "SELECT * FROM activations WHERE code_hash = ?",
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
        // The conditional UPDATE is the single-use check and the device limit: only an unused,
        // unexpired code of a user below the limit matches, and the write lock (held from
        // BEGIN IMMEDIATE) makes the count and the insert below one step for every racer.
        let redeem = stmt(
            "UPDATE activations SET device_id = ?, test_approval = ? \
             WHERE code_hash = ? AND device_id IS NULL AND expires_at > ? AND user_id = ? \
               AND (SELECT count(*) FROM devices WHERE user_id = activations.user_id) < ?",
        )
        .bind(device.id.as_str())
        .bind(test.id.as_str())
        .bind(code_hash.as_str())
        .bind(now.0)
        .bind(device.user_id.as_str())
        .bind(max_devices);
        let insert_device = insert_device(device);
        let insert_test = insert_approval(test)?;
        let find = stmt("SELECT * FROM activations WHERE code_hash = ?").bind(code_hash.as_str());
        self.write("redeeming an activation", move |conn| {
            let fail = |e| backend("redeeming an activation", e);
            let tx = conn.savepoint().map_err(fail)?;
            if redeem.execute(&tx).map_err(fail)?.rows_affected() != 1 {
                return Ok(None);
            }
            insert_device
                .execute(&tx)
                .map_err(|e| conflict_or_backend("a device with this id", e))?;
            insert_test
                .execute(&tx)
                .map_err(|e| conflict_or_backend("an approval with this id", e))?;
            let activation = find.fetch_optional(&tx, activation_from)?;
            tx.commit().map_err(fail)?;
            Ok(activation)
        })
        .await
    }

    async fn device(&self, id: &DeviceId) -> StoreResult<Option<Device>> {
        self.read_steady(
            |rows| &rows.devices,
            id.as_str(),
            || {
                let read = stmt("SELECT * FROM devices WHERE id = ?").bind(id.as_str());
                self.read(|conn| read.fetch_optional(conn, device_from))
            },
        )
    }

    async fn devices_of_user(&self, user: &UserId) -> StoreResult<Vec<Device>> {
        // Only lists with a device in them are kept: a name without devices (or a guessed
        // one) leaves no entry.
        let devices = self.read_steady(
            |rows| &rows.device_lists,
            user.as_str(),
            || {
                let read = stmt("SELECT * FROM devices WHERE user_id = ? ORDER BY created_at, id")
                    .bind(user.as_str());
                let devices = self.read(|conn| read.fetch_all(conn, device_from))?;
                Ok((!devices.is_empty()).then_some(devices))
            },
        )?;
        Ok(devices.unwrap_or_default())
    }

    async fn update_device(&self, device: &Device) -> StoreResult<()> {
        let query = stmt(
            "UPDATE devices SET name = ?, passwordless_key = ?, confirmed_at = ?, phone_sign_in_at = ?, \
             webauthn_credential_id = ?, webauthn_passkey = ?, webauthn_counter = ? WHERE id = ?",
        )
        .bind(device.name.as_str())
        .bind(device.passwordless_key.as_ref().map(PublicKey::as_str))
        .bind(device.confirmed_at.map(|t| t.0))
        .bind(device.phone_sign_in_at.map(|t| t.0))
        .bind(device.webauthn.as_ref().map(|w| w.credential_id.clone()))
        .bind(device.webauthn.as_ref().map(|w| w.passkey.clone()))
        .bind(device.webauthn.as_ref().map(|w| i64::from(w.counter)))
        .bind(device.id.as_str());
        let done = self
            .execute(query)
            .await
            .map_err(|e| backend("updating a device", e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn delete_device(&self, id: &DeviceId) -> StoreResult<()> {
        self.write_by_key(
            "DELETE FROM devices WHERE id = ?",
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
        let record = stmt(
            "INSERT INTO device_nonces (device_id, nonce, expires_at) VALUES (?, ?, ?) \
             ON CONFLICT (device_id, nonce) DO NOTHING",
        )
        .bind(device.as_str())
        .bind(nonce)
        .bind(expires_at.0);
        let take = throttle.map(|t| take_slot(&t.key, now, t.window_seconds, t.limit));
        // No savepoint: should taking the slot fail, the nonce stays recorded, which is all a
        // failed request may leave (its retry is signed with a new nonce).
        let doing = "recording a nonce";
        self.write(doing, move |conn| {
            let recorded = record.execute(conn).map_err(|e| backend(doing, e))?;
            if recorded.rows_affected() != 1 {
                return Ok(NonceUse::Replayed);
            }
            let Some(take) = take else {
                return Ok(NonceUse::Fresh);
            };
            let taken = take
                .execute(conn)
                .map_err(|e| backend("counting for a throttle", e))?;
            Ok(if taken.rows_affected() == 1 {
                NonceUse::Fresh
            } else {
                NonceUse::Throttled
            })
        })
        .await
    }

    async fn put_approval(&self, approval: &Approval) -> StoreResult<()> {
        let query = insert_approval(approval)?;
        self.approvals
            .write_through(approval.id.as_str(), approval, self.execute(query))
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
        let upsert = sign_in.map(upsert_sign_in).transpose()?;
        let takes: Vec<Stmt> = throttles
            .iter()
            .map(|t| take_slot(&t.key, now, t.window_seconds, t.limit))
            .collect();
        // One statement, so the check and the insert happen under one write lock.
        let insert = bind_approval(
            "INSERT INTO approvals (id, user_id, state, created_at, expires_at, body) \
             SELECT ?, ?, ?, ?, ?, ? WHERE NOT EXISTS ( \
               SELECT 1 FROM approvals WHERE user_id = ? AND state = 'pending' AND expires_at > ? \
               AND json_extract(body, '$.view.kind') NOT IN ('registration_test', 'phone_sign_in_consent'))",
            approval,
        )?
        .bind(approval.user_id.as_str())
        .bind(now.0);
        let ticket = self.approvals.begin_write(approval.id.as_str());
        let sign_in_ticket = sign_in.map(|s| self.sign_ins.begin_write(s.id.as_str()));
        let doing = "storing an approval";
        let done = self
            .write(doing, move |conn| {
                let tx = conn.savepoint().map_err(|e| backend(doing, e))?;
                for take in &takes {
                    let taken = take
                        .execute(&tx)
                        .map_err(|e| backend("counting for a throttle", e))?;
                    if taken.rows_affected() != 1 {
                        // The slots taken before this one stay taken.
                        tx.commit().map_err(|e| backend(doing, e))?;
                        return Ok(ApprovalPut::Throttled);
                    }
                }
                let inserted = insert
                    .execute(&tx)
                    .map_err(|e| conflict_or_backend("an approval with this id", e))?;
                if inserted.rows_affected() != 1 {
                    // The slots stay taken; nothing else is written.
                    tx.commit().map_err(|e| backend(doing, e))?;
                    return Ok(ApprovalPut::AlreadyWaiting);
                }
                if let Some(upsert) = upsert {
                    upsert
                        .execute(&tx)
                        .map_err(|e| backend("saving a sign-in", e))?;
                }
                tx.commit().map_err(|e| backend(doing, e))?;
                Ok(ApprovalPut::Stored)
            })
            .await;
        if let (Some(ticket), Some(sign_in)) = (sign_in_ticket, sign_in) {
            self.sign_ins.finish_write(
                ticket,
                match &done {
                    Ok(ApprovalPut::Stored) => Written::Value(sign_in.clone()),
                    // Not written: the row is as it was, read from the database next time.
                    _ => Written::Unknown,
                },
            );
        }
        self.approvals.finish_write(
            ticket,
            match &done {
                Ok(ApprovalPut::Stored) => Written::Value(approval.clone()),
                // Nothing was inserted.
                Ok(_) => Written::Deleted,
                Err(_) => Written::Unknown,
            },
        );
        done
    }

    async fn approval(&self, id: &ApprovalId) -> StoreResult<Option<Approval>> {
        let read = self.read_by_key(
            "SELECT body FROM approvals WHERE id = ?",
            id.as_str(),
            approval_from,
        );
        self.approvals.read_through(id.as_str(), read).await
    }

    async fn pending_approvals(&self, user: &UserId) -> StoreResult<Vec<Approval>> {
        self.read_all(stmt(
            "SELECT body FROM approvals WHERE user_id = ? AND state = 'pending' ORDER BY created_at, id",
        )
        .bind(user.as_str()), approval_from).await
    }

    async fn overdue_approvals(&self, now: Timestamp, limit: u32) -> StoreResult<Vec<Approval>> {
        self.read_all(stmt(
            "SELECT body FROM approvals WHERE state = 'pending' AND expires_at <= ? ORDER BY expires_at LIMIT ?",
        )
        .bind(now.0)
        .bind(limit), approval_from).await
    }

    async fn settle_approval(
        &self,
        id: &ApprovalId,
        state: ApprovalState,
        answered_by: Option<&DeviceId>,
        at: Timestamp,
        record: Option<&SignInRecord>,
    ) -> StoreResult<bool> {
        let (ticket, before) = self.approvals.begin_update(id.as_str());
        let done = self
            .settle_approval_now(id, state, answered_by, at, record)
            .await;
        self.approvals.finish_write(
            ticket,
            match &done {
                Ok(Settled::Now(approval)) => Written::Value((**approval).clone()),
                Ok(Settled::NowFrom) => match before {
                    // The statement changes exactly these fields of the row it found pending.
                    Some(mut approval) if approval.state == ApprovalState::Pending => {
                        approval.state = state;
                        approval.answered_by = answered_by.cloned();
                        approval.settled_at = Some(at);
                        Written::Value(approval)
                    }
                    _ => Written::Unknown,
                },
                Ok(Settled::Already) | Err(_) => Written::Unknown,
            },
        );
        done.map(|settled| !matches!(settled, Settled::Already))
    }

    async fn record_device_webauthn_use(
        &self,
        device: &DeviceId,
        credential_id: &str,
        expected_counter: u32,
        counter: u32,
        passkey: &str,
    ) -> StoreResult<bool> {
        let query = stmt(
            "UPDATE devices SET webauthn_passkey = ?, webauthn_counter = ? \
             WHERE id = ? AND webauthn_credential_id = ? AND webauthn_counter = ?",
        )
        .bind(passkey.to_string())
        .bind(i64::from(counter))
        .bind(device.as_str().to_string())
        .bind(credential_id.to_string())
        .bind(i64::from(expected_counter));
        let done = self
            .execute(query)
            .await
            .map_err(|e| backend("recording a device's WebAuthn use", e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_phone_sign_in(
        &self,
        device: &Device,
        verifier_mac: Option<&str>,
    ) -> StoreResult<()> {
        let update = stmt(
            "UPDATE devices SET passwordless_key = ?, phone_sign_in_at = ?, webauthn_credential_id = ?, \
             webauthn_passkey = ?, webauthn_counter = ? WHERE id = ?",
        )
        .bind(device.passwordless_key.as_ref().map(PublicKey::as_str))
        .bind(device.phone_sign_in_at.map(|t| t.0))
        .bind(device.webauthn.as_ref().map(|w| w.credential_id.clone()))
        .bind(device.webauthn.as_ref().map(|w| w.passkey.clone()))
        .bind(device.webauthn.as_ref().map(|w| i64::from(w.counter)))
        .bind(device.id.as_str());
        let pin = match verifier_mac {
            Some(mac) => stmt(
                "INSERT INTO device_pin_locks (device_id, verifier_mac, wrong_pins, locked_at, reenable_allowed_at) \
                 VALUES (?, ?, 0, NULL, NULL) ON CONFLICT (device_id) DO UPDATE SET \
                 verifier_mac = excluded.verifier_mac, wrong_pins = 0, locked_at = NULL, reenable_allowed_at = NULL",
            )
            .bind(device.id.as_str())
            .bind(mac),
            None => stmt("DELETE FROM device_pin_locks WHERE device_id = ?").bind(device.id.as_str()),
        };
        self.write("setting phone sign-in", move |conn| {
            let fail = |e| backend("setting phone sign-in", e);
            let tx = conn.savepoint().map_err(fail)?;
            if update.execute(&tx).map_err(fail)?.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            pin.execute(&tx).map_err(fail)?;
            tx.commit().map_err(fail)
        })
        .await
    }

    async fn pin_lock(&self, device: &DeviceId) -> StoreResult<Option<PinLock>> {
        self.read_by_key(
            "SELECT * FROM device_pin_locks WHERE device_id = ?",
            device.as_str(),
            |row| {
                Ok(PinLock {
                    device_id: DeviceId::from_string(get::<String>(row, "device_id")?),
                    verifier_mac: get(row, "verifier_mac")?,
                    wrong_pins: get::<i64>(row, "wrong_pins")?.clamp(0, u32::MAX.into()) as u32,
                    locked_at: get::<Option<i64>>(row, "locked_at")?.map(Timestamp),
                    reenable_allowed_at: get::<Option<i64>>(row, "reenable_allowed_at")?
                        .map(Timestamp),
                })
            },
        )
        .await
    }

    async fn record_pin_check(
        &self,
        device: &DeviceId,
        right: bool,
        limit: u32,
        now: Timestamp,
    ) -> StoreResult<PinCheck> {
        let device = device.as_str().to_owned();
        self.write("recording a PIN check", move |conn| {
            let fail = |e| backend("recording a PIN check", e);
            let tx = conn.savepoint().map_err(fail)?;
            if right {
                let done = stmt(
                    "UPDATE device_pin_locks SET wrong_pins = 0 \
                     WHERE device_id = ? AND locked_at IS NULL AND verifier_mac IS NOT NULL",
                )
                .bind(device.as_str())
                .execute(&tx)
                .map_err(fail)?;
                tx.commit().map_err(fail)?;
                return Ok(if done.rows_affected() == 1 {
                    PinCheck::Right
                } else {
                    PinCheck::Locked
                });
            }
            let counted = stmt(
                "UPDATE device_pin_locks SET wrong_pins = wrong_pins + 1 \
                 WHERE device_id = ? AND locked_at IS NULL AND verifier_mac IS NOT NULL RETURNING wrong_pins",
            )
            .bind(device.as_str())
            .fetch_optional(&tx, |row| get::<i64>(row, 0))?;
            let Some(counted) = counted else {
                return Ok(PinCheck::Locked);
            };
            if counted < i64::from(limit) {
                tx.commit().map_err(fail)?;
                return Ok(PinCheck::Wrong {
                    remaining: (i64::from(limit) - counted) as u32,
                });
            }
            stmt(
                "UPDATE device_pin_locks SET locked_at = ?, verifier_mac = NULL, reenable_allowed_at = NULL \
                 WHERE device_id = ?",
            )
            .bind(now.0)
            .bind(device.as_str())
            .execute(&tx)
            .map_err(fail)?;
            stmt("UPDATE devices SET passwordless_key = NULL, phone_sign_in_at = NULL WHERE id = ?")
                .bind(device.as_str())
                .execute(&tx)
                .map_err(fail)?;
            tx.commit().map_err(fail)?;
            Ok(PinCheck::LockedNow)
        })
        .await
    }

    async fn allow_phone_sign_in_again(
        &self,
        device: &DeviceId,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let done = self
            .execute(
                stmt(
                    "UPDATE device_pin_locks SET reenable_allowed_at = ? \
                     WHERE device_id = ? AND locked_at IS NOT NULL",
                )
                .bind(now.0)
                .bind(device.as_str()),
            )
            .await
            .map_err(|e| backend("allowing phone sign-in again", e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn allow_enabling_phone_sign_in(
        &self,
        device: &DeviceId,
        now: Timestamp,
    ) -> StoreResult<()> {
        self.execute(
            stmt(
                "INSERT INTO device_pin_locks (device_id, verifier_mac, wrong_pins, locked_at, reenable_allowed_at) \
                 VALUES (?, NULL, 0, NULL, ?) ON CONFLICT (device_id) DO UPDATE SET \
                 reenable_allowed_at = excluded.reenable_allowed_at",
            )
            .bind(device.as_str())
            .bind(now.0),
        )
        .await
        .map_err(|e| backend("allowing phone sign-in to be turned on", e))?;
        Ok(())
    }
}

/// How a settle went: for the cache of rows in flight.
enum Settled {
    /// Settled now; the whole row as it now is.
    Now(Box<Approval>),
    /// Settled now by changing the row's state fields where they stood.
    NowFrom,
    /// Not pending any more (or gone): nothing changed.
    Already,
}

impl SqliteStore {
    async fn settle_approval_now(
        &self,
        id: &ApprovalId,
        state: ApprovalState,
        answered_by: Option<&DeviceId>,
        at: Timestamp,
        record: Option<&SignInRecord>,
    ) -> StoreResult<Settled> {
        let Some(record) = record else {
            // Nothing else to write (an approval, usually): one statement changes the three
            // fields in the stored body as serde writes them, and only while still pending.
            let done = self
                .execute(
                    stmt(
                        "UPDATE approvals SET state = ?, body = json_set(body, '$.state', ?, \
                         '$.answered_by', ?, '$.settled_at', ?) WHERE id = ? AND state = 'pending'",
                    )
                    .bind(state.as_str())
                    .bind(state.as_str())
                    .bind(answered_by.map(|d| d.as_str()))
                    .bind(at.0)
                    .bind(id.as_str()),
                )
                .await
                .map_err(|e| backend("settling an approval", e))?;
            return Ok(if done.rows_affected() == 1 {
                Settled::NowFrom
            } else {
                Settled::Already
            });
        };
        let find =
            stmt("SELECT body FROM approvals WHERE id = ? AND state = 'pending'").bind(id.as_str());
        let id = id.as_str().to_owned();
        let answered_by = answered_by.cloned();
        let insert_record = insert_sign_in_record(record)?;
        self.write("settling an approval", move |conn| {
            let fail = |e| backend("settling an approval", e);
            let tx = conn.savepoint().map_err(fail)?;
            let Some(mut approval) = find.fetch_optional(&tx, approval_from)? else {
                return Ok(Settled::Already);
            };
            approval.state = state;
            approval.answered_by = answered_by;
            approval.settled_at = Some(at);
            let body = to_json("approval", serde_json::to_string(&approval))?;
            stmt("UPDATE approvals SET state = ?, body = ? WHERE id = ? AND state = 'pending'")
                .bind(state.as_str())
                .bind(body)
                .bind(id)
                .execute(&tx)
                .map_err(fail)?;
            insert_record
                .execute(&tx)
                .map_err(|e| conflict_or_backend(SIGN_IN_RECORD_CONFLICT, e))?;
            tx.commit().map_err(fail)?;
            Ok(Settled::Now(Box::new(approval)))
        })
        .await
    }
}
