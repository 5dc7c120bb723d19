//! SQLite: passkeys and WebAuthn ceremony states.

use async_trait::async_trait;
use latchkey_domain::clock::Timestamp;
use latchkey_domain::ids::{CeremonyId, PasskeyId, UserId};
use latchkey_domain::passkey::{PasskeyCeremony, PasskeyKind, RegisteredPasskey};
use latchkey_domain::store::{PasskeyStore, PasskeyUse, StoreResult};
use rusqlite::Row;

use super::db::stmt;
use super::rows::{get, optional_timestamp, timestamp};
use super::{SqliteStore, backend, conflict_or_backend, corrupt};

fn kind_name(kind: PasskeyKind) -> &'static str {
    match kind {
        PasskeyKind::SecurityKey => "security_key",
        PasskeyKind::Passkey => "passkey",
        PasskeyKind::SyncedPasskey => "synced_passkey",
    }
}

fn passkey_from(row: &Row<'_>) -> StoreResult<RegisteredPasskey> {
    let kind = match get::<String>(row, "kind")?.as_str() {
        "security_key" => PasskeyKind::SecurityKey,
        "passkey" => PasskeyKind::Passkey,
        "synced_passkey" => PasskeyKind::SyncedPasskey,
        _ => return Err(corrupt("a passkey's kind")),
    };
    let credential = serde_json::from_str(&get::<String>(row, "credential")?)
        .map_err(|_| corrupt("a passkey's credential"))?;
    Ok(RegisteredPasskey {
        id: PasskeyId::from_string(get::<String>(row, "id")?),
        user_id: UserId::from_string(get::<String>(row, "user_id")?),
        name: get(row, "name")?,
        kind,
        aaguid: get(row, "aaguid")?,
        authenticator_name: get(row, "authenticator_name")?,
        created_at: timestamp(row, "created_at")?,
        last_used_at: optional_timestamp(row, "last_used_at")?,
        credential_id: get(row, "credential_id")?,
        counter: u32::try_from(get::<i64>(row, "counter")?)
            .map_err(|_| corrupt("a passkey's counter"))?,
        backup_eligible: get(row, "backup_eligible")?,
        backup_state: get(row, "backup_state")?,
        credential,
    })
}

fn ceremony_from(row: &Row<'_>) -> StoreResult<PasskeyCeremony> {
    Ok(PasskeyCeremony {
        id: CeremonyId::from_string(get::<String>(row, "id")?),
        purpose: serde_json::from_str(&get::<String>(row, "purpose")?)
            .map_err(|_| corrupt("a ceremony's purpose"))?,
        state: get(row, "state")?,
        created_at: timestamp(row, "created_at")?,
        expires_at: timestamp(row, "expires_at")?,
    })
}

#[async_trait]
impl PasskeyStore for SqliteStore {
    async fn add_passkey(&self, passkey: &RegisteredPasskey) -> StoreResult<()> {
        let credential = serde_json::to_string(&passkey.credential)
            .map_err(|e| StoreErrorText(e.to_string()).into_backend())?;
        let query = stmt(
            "INSERT INTO passkeys (id, user_id, credential_id, name, kind, aaguid, \
             authenticator_name, created_at, last_used_at, counter, backup_eligible, \
             backup_state, credential) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(passkey.id.as_str().to_string())
        .bind(passkey.user_id.as_str().to_string())
        .bind(passkey.credential_id.clone())
        .bind(passkey.name.clone())
        .bind(kind_name(passkey.kind))
        .bind(passkey.aaguid.clone())
        .bind(passkey.authenticator_name.clone())
        .bind(passkey.created_at.0)
        .bind(passkey.last_used_at.map(|t| t.0))
        .bind(i64::from(passkey.counter))
        .bind(passkey.backup_eligible)
        .bind(passkey.backup_state)
        .bind(credential);
        self.execute(query)
            .await
            .map_err(|e| conflict_or_backend("a passkey with this credential id", e))?;
        Ok(())
    }

    async fn passkey(&self, id: &PasskeyId) -> StoreResult<Option<RegisteredPasskey>> {
        self.read_by_key(
            "SELECT * FROM passkeys WHERE id = ?",
            id.as_str(),
            passkey_from,
        )
        .await
    }

    async fn passkeys_of_user(&self, user: &UserId) -> StoreResult<Vec<RegisteredPasskey>> {
        self.read_all(
            stmt("SELECT * FROM passkeys WHERE user_id = ? ORDER BY created_at, id")
                .bind(user.as_str()),
            passkey_from,
        )
        .await
    }

    async fn passkey_by_credential_id(
        &self,
        credential_id: &[u8],
    ) -> StoreResult<Option<RegisteredPasskey>> {
        self.read_one(
            stmt("SELECT * FROM passkeys WHERE credential_id = ?").bind(credential_id),
            passkey_from,
        )
        .await
    }

    async fn rename_passkey(&self, user: &UserId, id: &PasskeyId, name: &str) -> StoreResult<bool> {
        let query = stmt("UPDATE passkeys SET name = ? WHERE id = ? AND user_id = ?")
            .bind(name.to_string())
            .bind(id.as_str().to_string())
            .bind(user.as_str().to_string());
        let done = self
            .execute(query)
            .await
            .map_err(|e| backend("renaming a passkey", e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn remove_passkey(&self, user: &UserId, id: &PasskeyId) -> StoreResult<bool> {
        let query = stmt("DELETE FROM passkeys WHERE id = ? AND user_id = ?")
            .bind(id.as_str().to_string())
            .bind(user.as_str().to_string());
        let done = self
            .execute(query)
            .await
            .map_err(|e| backend("removing a passkey", e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn record_passkey_use(&self, id: &PasskeyId, used: &PasskeyUse) -> StoreResult<bool> {
        let credential = serde_json::to_string(&used.credential)
            .map_err(|e| StoreErrorText(e.to_string()).into_backend())?;
        // One conditional UPDATE: of two sign-ins that read the same counter, one matches.
        let query = stmt(
            "UPDATE passkeys SET counter = ?, backup_state = ?, credential = ?, last_used_at = ? \
             WHERE id = ? AND counter = ?",
        )
        .bind(i64::from(used.counter))
        .bind(used.backup_state)
        .bind(credential)
        .bind(used.at.0)
        .bind(id.as_str().to_string())
        .bind(i64::from(used.expected_counter));
        let done = self
            .execute(query)
            .await
            .map_err(|e| backend("recording a passkey's use", e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn put_ceremony(&self, ceremony: &PasskeyCeremony) -> StoreResult<()> {
        let purpose = serde_json::to_string(&ceremony.purpose)
            .map_err(|e| StoreErrorText(e.to_string()).into_backend())?;
        let query = stmt(
            "INSERT INTO passkey_ceremonies (id, purpose, state, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(ceremony.id.as_str().to_string())
        .bind(purpose)
        .bind(ceremony.state.clone())
        .bind(ceremony.created_at.0)
        .bind(ceremony.expires_at.0);
        self.execute(query)
            .await
            .map_err(|e| conflict_or_backend("a ceremony with this id", e))?;
        Ok(())
    }

    async fn take_ceremony(
        &self,
        id: &CeremonyId,
        now: Timestamp,
    ) -> StoreResult<Option<PasskeyCeremony>> {
        // DELETE … RETURNING on the one writer: the row goes to exactly one caller.
        let take =
            stmt("DELETE FROM passkey_ceremonies WHERE id = ? RETURNING *").bind(id.as_str());
        let taken = self
            .write("taking a ceremony", move |conn| {
                let fail = |e| backend("taking a ceremony", e);
                let tx = conn
                    .savepoint()
                    .map_err(|e| backend("starting a write", e))?;
                // Decoded only once committed: a row that no longer decodes is still taken.
                let taken = take.fetch_optional(&tx, |row| Ok(ceremony_from(row)))?;
                tx.commit().map_err(fail)?;
                Ok(taken)
            })
            .await?;
        match taken.transpose()? {
            Some(ceremony) if !ceremony.is_expired(now) => Ok(Some(ceremony)),
            _ => Ok(None),
        }
    }
}

/// A value that would not serialise (it always does; reported as a backend failure if not).
struct StoreErrorText(String);

impl StoreErrorText {
    fn into_backend(self) -> latchkey_domain::error::StoreError {
        latchkey_domain::error::StoreError::Backend(format!("encoding a passkey: {}", self.0))
    }
}
