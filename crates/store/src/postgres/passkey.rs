//! PostgreSQL: passkeys and WebAuthn ceremony states.

use async_trait::async_trait;
use latchkey_domain::clock::Timestamp;
use latchkey_domain::ids::{CeremonyId, PasskeyId, UserId};
use latchkey_domain::passkey::{PasskeyCeremony, PasskeyKind, RegisteredPasskey};
use latchkey_domain::store::{PasskeyStore, PasskeyUse, StoreResult};
use sqlx::postgres::PgRow;

use super::session::unsigned;
use super::{
    PostgresStore, backend, conflict_or_backend, corrupt, get, optional_timestamp, read_error,
    timestamp, to_json,
};

fn kind_name(kind: PasskeyKind) -> &'static str {
    match kind {
        PasskeyKind::SecurityKey => "security_key",
        PasskeyKind::Passkey => "passkey",
        PasskeyKind::SyncedPasskey => "synced_passkey",
    }
}

fn passkey_from(row: &PgRow) -> StoreResult<RegisteredPasskey> {
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
        counter: unsigned(row, "counter", "a passkey's counter")?,
        backup_eligible: get(row, "backup_eligible")?,
        backup_state: get(row, "backup_state")?,
        credential,
    })
}

fn ceremony_from(row: &PgRow) -> StoreResult<PasskeyCeremony> {
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
impl PasskeyStore for PostgresStore {
    async fn add_passkey(&self, passkey: &RegisteredPasskey) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO passkeys (id, user_id, credential_id, name, kind, aaguid, \
             authenticator_name, created_at, last_used_at, counter, backup_eligible, \
             backup_state, credential) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(passkey.id.as_str())
        .bind(passkey.user_id.as_str())
        .bind(passkey.credential_id.as_slice())
        .bind(&passkey.name)
        .bind(kind_name(passkey.kind))
        .bind(&passkey.aaguid)
        .bind(&passkey.authenticator_name)
        .bind(passkey.created_at.0)
        .bind(passkey.last_used_at.map(|t| t.0))
        .bind(i64::from(passkey.counter))
        .bind(passkey.backup_eligible)
        .bind(passkey.backup_state)
        .bind(to_json("passkey", serde_json::to_string(&passkey.credential))?)
        .execute(&self.pool)
        .await
        .map_err(|e| conflict_or_backend("a passkey with this credential id", e))?;
        Ok(())
    }

    async fn passkey(&self, id: &PasskeyId) -> StoreResult<Option<RegisteredPasskey>> {
        self.read_by_key(
            "SELECT * FROM passkeys WHERE id = $1",
            id.as_str(),
            passkey_from,
        )
        .await
    }

    async fn passkeys_of_user(&self, user: &UserId) -> StoreResult<Vec<RegisteredPasskey>> {
        self.read_all(
            sqlx::query("SELECT * FROM passkeys WHERE user_id = $1 ORDER BY created_at, id")
                .bind(user.as_str()),
            passkey_from,
        )
        .await
    }

    async fn passkey_by_credential_id(
        &self,
        credential_id: &[u8],
    ) -> StoreResult<Option<RegisteredPasskey>> {
        sqlx::query("SELECT * FROM passkeys WHERE credential_id = $1")
            .bind(credential_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(read_error)?
            .as_ref()
            .map(passkey_from)
            .transpose()
    }

    async fn rename_passkey(&self, user: &UserId, id: &PasskeyId, name: &str) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE passkeys SET name = $1 WHERE id = $2 AND user_id = $3")
            .bind(name)
            .bind(id.as_str())
            .bind(user.as_str())
            .execute(&self.pool)
            .await
            .map_err(|e| backend("renaming a passkey", e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn remove_passkey(&self, user: &UserId, id: &PasskeyId) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM passkeys WHERE id = $1 AND user_id = $2")
            .bind(id.as_str())
            .bind(user.as_str())
            .execute(&self.pool)
            .await
            .map_err(|e| backend("removing a passkey", e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn record_passkey_use(&self, id: &PasskeyId, used: &PasskeyUse) -> StoreResult<bool> {
        // One conditional UPDATE: of two sign-ins that read the same counter, the second waits
        // on the first one's row lock, re-checks the counter on the committed row (READ
        // COMMITTED) and matches nothing.
        let done = sqlx::query(
            "UPDATE passkeys SET counter = $1, backup_state = $2, credential = $3, last_used_at = $4 \
             WHERE id = $5 AND counter = $6",
        )
        .bind(i64::from(used.counter))
        .bind(used.backup_state)
        .bind(to_json("passkey", serde_json::to_string(&used.credential))?)
        .bind(used.at.0)
        .bind(id.as_str())
        .bind(i64::from(used.expected_counter))
        .execute(&self.pool)
        .await
        .map_err(|e| backend("recording a passkey's use", e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn put_ceremony(&self, ceremony: &PasskeyCeremony) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO passkey_ceremonies (id, purpose, state, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(ceremony.id.as_str())
        .bind(to_json(
            "ceremony's purpose",
            serde_json::to_string(&ceremony.purpose),
        )?)
        .bind(&ceremony.state)
        .bind(ceremony.created_at.0)
        .bind(ceremony.expires_at.0)
        .execute(&self.pool)
        .await
        .map_err(|e| conflict_or_backend("a ceremony with this id", e))?;
        Ok(())
    }

    async fn take_ceremony(
        &self,
        id: &CeremonyId,
        now: Timestamp,
    ) -> StoreResult<Option<PasskeyCeremony>> {
        // DELETE … RETURNING: a concurrent take waits on the row lock and then finds the row
        // gone, so the state goes to exactly one caller. An expired one is removed all the same.
        let row = sqlx::query("DELETE FROM passkey_ceremonies WHERE id = $1 RETURNING *")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| backend("taking a ceremony", e))?;
        match row.as_ref().map(ceremony_from).transpose()? {
            Some(ceremony) if !ceremony.is_expired(now) => Ok(Some(ceremony)),
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod across_instances {
    use latchkey_domain::ids::SignInId;
    use latchkey_domain::passkey::CeremonyPurpose;
    use latchkey_domain::secret::random_hex;

    use super::super::session::TwoInstances;
    use super::*;

    /// Threat: one WebAuthn assertion (or attestation) answered to two server instances at
    /// once, so that the one challenge is accepted twice.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ceremony_answered_at_two_instances_is_taken_once() {
        let both = TwoInstances::open().await;
        let now = Timestamp(1_800_000_000);
        for _ in 0..20 {
            let ceremony = PasskeyCeremony {
                id: CeremonyId::random(),
                purpose: CeremonyPurpose::Discoverable {
                    sign_in: SignInId::random(),
                },
                state: format!("{{\"state\": \"{}\"}}", random_hex(8)),
                created_at: now,
                expires_at: now.plus_seconds(300),
            };
            both.a.put_ceremony(&ceremony).await.unwrap();
            let (at_a, at_b) = tokio::join!(
                both.a.take_ceremony(&ceremony.id, now),
                both.b.take_ceremony(&ceremony.id, now)
            );
            let taken: Vec<_> = [at_a.unwrap(), at_b.unwrap()]
                .into_iter()
                .flatten()
                .collect();
            assert_eq!(
                taken,
                vec![ceremony.clone()],
                "exactly one instance gets the state"
            );
            assert_eq!(both.b.take_ceremony(&ceremony.id, now).await.unwrap(), None);
        }
        both.close().await;
    }
}
