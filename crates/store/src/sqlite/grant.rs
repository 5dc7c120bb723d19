//! SQLite: grants, codes, access and refresh tokens, signing keys and server secrets.

use async_trait::async_trait;
use latchkey_domain::clock::Timestamp;
use latchkey_domain::ids::{GrantId, KeyId, SessionId, UserId};
use latchkey_domain::keys::SigningKey;
use latchkey_domain::oidc::{
    AccessToken, AuthorizationCode, Grant, IssuedTokens, Redeemed, RefreshToken,
};
use latchkey_domain::secret::TokenHash;
use latchkey_domain::store::{GrantStore, StoreResult};

use super::SqliteStore;
use super::db::{Stmt, stmt};
use super::rows::{
    code_from, get, grant_from, method_text, refresh_token_from, signing_key_from, timestamp,
};
use super::{backend, conflict_or_backend, corrupt, to_json};

pub(super) const CODE_CONFLICT: &str = "an authorization code";
pub(super) const GRANT_CONFLICT: &str = "a grant with this id";
const ACCESS_TOKEN_CONFLICT: &str = "an access token";
const REFRESH_TOKEN_CONFLICT: &str = "a refresh token";

/// The insert of a grant (`create_grant`, and a sign-in's completion with its code).
pub(super) fn insert_grant(grant: &Grant) -> StoreResult<Stmt> {
    Ok(stmt(
        "INSERT INTO grants (id, user_id, client_id, session_id, scopes, nonce, auth_time, method, created_at, \
         revoked) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(grant.id.as_str())
    .bind(grant.user_id.as_str())
    .bind(grant.client_id.as_str())
    .bind(grant.session_id.as_str())
    .bind(to_json("scopes", serde_json::to_string(&grant.scopes))?)
    .bind(grant.nonce.as_deref())
    .bind(grant.auth_time.0)
    .bind(method_text(grant.method)?)
    .bind(grant.created_at.0)
    .bind(grant.revoked))
}

pub(super) fn insert_code(code: &AuthorizationCode) -> Stmt {
    stmt(
        "INSERT INTO codes (hash, grant_id, client_id, redirect_uri, code_challenge, expires_at) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(code.hash.as_str())
    .bind(code.grant_id.as_str())
    .bind(code.client_id.as_str())
    .bind(code.redirect_uri.as_str())
    .bind(code.code_challenge.as_deref())
    .bind(code.expires_at.0)
}

fn insert_access_token(token: &AccessToken) -> StoreResult<Stmt> {
    Ok(
        stmt("INSERT INTO access_tokens (hash, grant_id, expires_at, scopes) VALUES (?, ?, ?, ?)")
            .bind(token.hash.as_str())
            .bind(token.grant_id.as_str())
            .bind(token.expires_at.0)
            .bind(
                token
                    .scopes
                    .as_ref()
                    .map(|s| to_json("scopes", serde_json::to_string(s)))
                    .transpose()?,
            ),
    )
}

fn insert_refresh_token(token: &RefreshToken) -> Stmt {
    stmt("INSERT INTO refresh_tokens (hash, grant_id, expires_at) VALUES (?, ?, ?)")
        .bind(token.hash.as_str())
        .bind(token.grant_id.as_str())
        .bind(token.expires_at.0)
}

/// The inserts that store what a redemption issues, each with what its conflict would be.
fn issue_statements(issue: &IssuedTokens) -> StoreResult<Vec<(Stmt, &'static str)>> {
    let mut statements = vec![(insert_access_token(&issue.access)?, ACCESS_TOKEN_CONFLICT)];
    if let Some(refresh) = &issue.refresh {
        statements.push((insert_refresh_token(refresh), REFRESH_TOKEN_CONFLICT));
    }
    Ok(statements)
}

#[async_trait]
impl GrantStore for SqliteStore {
    async fn create_grant(
        &self,
        grant: &Grant,
        code: Option<&AuthorizationCode>,
    ) -> StoreResult<()> {
        let insert_grant = insert_grant(grant)?;
        let insert_code = code.map(insert_code);
        self.write("storing a grant", move |conn| {
            let tx = conn
                .savepoint()
                .map_err(|e| backend("storing a grant", e))?;
            insert_grant
                .execute(&tx)
                .map_err(|e| conflict_or_backend(GRANT_CONFLICT, e))?;
            if let Some(insert_code) = insert_code {
                insert_code
                    .execute(&tx)
                    .map_err(|e| conflict_or_backend(CODE_CONFLICT, e))?;
            }
            tx.commit().map_err(|e| backend("storing a grant", e))
        })
        .await
    }

    async fn grant(&self, id: &GrantId) -> StoreResult<Option<Grant>> {
        self.read_by_key("SELECT * FROM grants WHERE id = ?", id.as_str(), grant_from)
            .await
    }

    async fn revoke_grant(&self, id: &GrantId) -> StoreResult<()> {
        self.write_by_key(
            "UPDATE grants SET revoked = 1 WHERE id = ?",
            id.as_str(),
            "revoking a grant",
        )
        .await
    }

    async fn revoke_session_grants(&self, session: &SessionId) -> StoreResult<()> {
        self.write_by_key(
            "UPDATE grants SET revoked = 1 WHERE session_id = ?",
            session.as_str(),
            "revoking a session's grants",
        )
        .await
    }

    async fn move_session_grants(&self, from: &SessionId, to: &SessionId) -> StoreResult<()> {
        let query = stmt("UPDATE grants SET session_id = ? WHERE session_id = ?")
            .bind(to.as_str().to_string())
            .bind(from.as_str().to_string());
        self.execute(query)
            .await
            .map_err(|e| backend("moving a session's grants", e))?;
        Ok(())
    }

    async fn live_session_grants(&self, session: &SessionId) -> StoreResult<Vec<Grant>> {
        self.read_all(
            stmt("SELECT * FROM grants WHERE session_id = ? AND NOT revoked ORDER BY id")
                .bind(session.as_str()),
            grant_from,
        )
        .await
    }

    async fn live_user_grants(&self, user: &UserId) -> StoreResult<Vec<Grant>> {
        self.read_all(
            stmt("SELECT * FROM grants WHERE user_id = ? AND NOT revoked ORDER BY id")
                .bind(user.as_str()),
            grant_from,
        )
        .await
    }

    async fn put_code(&self, code: &AuthorizationCode) -> StoreResult<()> {
        self.execute(insert_code(code))
            .await
            .map_err(|e| conflict_or_backend(CODE_CONFLICT, e))?;
        Ok(())
    }

    async fn redeem_code(
        &self,
        hash: &TokenHash,
        issue: &IssuedTokens,
    ) -> StoreResult<Redeemed<AuthorizationCode>> {
        self.spend(
            "UPDATE codes SET spent = 1 WHERE hash = ? AND spent = 0 RETURNING *",
            "SELECT * FROM codes WHERE hash = ?",
            hash,
            code_from,
            issue_statements(issue)?,
        )
        .await
    }

    async fn put_access_token(&self, token: &AccessToken) -> StoreResult<()> {
        self.execute(insert_access_token(token)?)
            .await
            .map_err(|e| conflict_or_backend(ACCESS_TOKEN_CONFLICT, e))?;
        Ok(())
    }

    async fn access_token(&self, hash: &TokenHash) -> StoreResult<Option<AccessToken>> {
        // Expired rows are returned too: the domain decides, and can say why a token failed.
        self.read_one(
            stmt("SELECT * FROM access_tokens WHERE hash = ?").bind(hash.as_str()),
            |row| {
                Ok(AccessToken {
                    hash: TokenHash::from_stored(get::<String>(row, "hash")?),
                    grant_id: GrantId::from_string(get::<String>(row, "grant_id")?),
                    expires_at: timestamp(row, "expires_at")?,
                    scopes: get::<Option<String>>(row, "scopes")?
                        .map(|s| serde_json::from_str(&s).map_err(|_| corrupt("scopes")))
                        .transpose()?,
                })
            },
        )
        .await
    }

    async fn delete_access_token(&self, hash: &TokenHash) -> StoreResult<()> {
        self.write_by_key(
            "DELETE FROM access_tokens WHERE hash = ?",
            hash.as_str(),
            "revoking an access token",
        )
        .await
    }

    async fn put_refresh_token(&self, token: &RefreshToken) -> StoreResult<()> {
        self.execute(insert_refresh_token(token))
            .await
            .map_err(|e| conflict_or_backend(REFRESH_TOKEN_CONFLICT, e))?;
        Ok(())
    }

    async fn redeem_refresh_token(
        &self,
        hash: &TokenHash,
        issue: &IssuedTokens,
    ) -> StoreResult<Redeemed<RefreshToken>> {
        self.spend(
            "UPDATE refresh_tokens SET spent = 1 WHERE hash = ? AND spent = 0 RETURNING *",
            "SELECT * FROM refresh_tokens WHERE hash = ?",
            hash,
            refresh_token_from,
            issue_statements(issue)?,
        )
        .await
    }

    async fn code(&self, hash: &TokenHash) -> StoreResult<Option<AuthorizationCode>> {
        self.read_by_key(
            "SELECT * FROM codes WHERE hash = ?",
            hash.as_str(),
            code_from,
        )
        .await
    }

    async fn refresh_token(&self, hash: &TokenHash) -> StoreResult<Option<RefreshToken>> {
        self.read_by_key(
            "SELECT * FROM refresh_tokens WHERE hash = ?",
            hash.as_str(),
            refresh_token_from,
        )
        .await
    }

    async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>> {
        self.read_all(
            stmt("SELECT * FROM signing_keys ORDER BY created_at, kid"),
            signing_key_from,
        )
        .await
    }

    async fn put_signing_key(&self, key: &SigningKey) -> StoreResult<()> {
        let query = stmt(
            "INSERT INTO signing_keys (kid, alg, private_pkcs8, created_at, retired_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(key.kid.as_str())
        .bind(key.alg.as_str())
        .bind(key.private_pkcs8.as_slice())
        .bind(key.created_at.0)
        .bind(key.retired_at.map(|t| t.0));
        self.execute(query)
            .await
            .map_err(|e| conflict_or_backend(&format!("a signing key with kid {}", key.kid), e))?;
        Ok(())
    }

    async fn retire_signing_keys_except(&self, keep: &[KeyId], at: Timestamp) -> StoreResult<()> {
        // The kept kids travel as one JSON array bound as a parameter, so the statement stays
        // fixed text whatever the list's length.
        let keep: Vec<&str> = keep.iter().map(KeyId::as_str).collect();
        let query = stmt(
            "UPDATE signing_keys SET retired_at = ? \
             WHERE retired_at IS NULL AND kid NOT IN (SELECT value FROM json_each(?))",
        )
        .bind(at.0)
        .bind(to_json("key ids", serde_json::to_string(&keep))?);
        self.execute(query)
            .await
            .map_err(|e| backend("retiring signing keys", e))?;
        Ok(())
    }

    async fn rotate_signing_keys(
        &self,
        current: &[KeyId],
        fresh: &[SigningKey],
        retire_at: Timestamp,
    ) -> StoreResult<bool> {
        // One write transaction (on the one writer, so it holds the write lock throughout): a
        // second rotation waits, then finds the unretired keys changed and writes nothing.
        let mut expected: Vec<String> = current.iter().map(|k| k.as_str().to_owned()).collect();
        expected.sort();
        let retire = stmt("UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NULL")
            .bind(retire_at.0);
        let inserts: Vec<_> = fresh
            .iter()
            .map(|key| {
                (
                    stmt(
                        "INSERT INTO signing_keys (kid, alg, private_pkcs8, created_at, retired_at) VALUES (?, ?, ?, ?, ?)",
                    )
                    .bind(key.kid.as_str())
                    .bind(key.alg.as_str())
                    .bind(key.private_pkcs8.as_slice())
                    .bind(key.created_at.0)
                    .bind(key.retired_at.map(|t| t.0)),
                    format!("a signing key with kid {}", key.kid),
                )
            })
            .collect();
        self.write("rotating signing keys", move |conn| {
            let tx = conn
                .savepoint()
                .map_err(|e| backend("rotating signing keys", e))?;
            let mut unretired: Vec<String> =
                stmt("SELECT kid FROM signing_keys WHERE retired_at IS NULL")
                    .fetch_all(&tx, |row| get::<String>(row, 0))?;
            unretired.sort();
            if unretired != expected {
                return Ok(false);
            }
            retire
                .execute(&tx)
                .map_err(|e| backend("retiring signing keys", e))?;
            for (insert, conflict) in inserts {
                insert
                    .execute(&tx)
                    .map_err(|e| conflict_or_backend(&conflict, e))?;
            }
            tx.commit()
                .map_err(|e| backend("rotating signing keys", e))?;
            Ok(true)
        })
        .await
    }

    async fn server_secret(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>> {
        // Insert-if-absent then read back, in one write transaction: two servers starting at
        // once agree on the first value, and a restart never replaces it.
        let insert = stmt(
            "INSERT INTO server_secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(candidate);
        let select = stmt("SELECT value FROM server_secrets WHERE name = ?").bind(name);
        self.write("storing a server secret", move |conn| {
            let tx = conn
                .savepoint()
                .map_err(|e| backend("storing a server secret", e))?;
            insert
                .execute(&tx)
                .map_err(|e| backend("storing a server secret", e))?;
            let value: Vec<u8> = select
                .fetch_optional(&tx, |row| get::<Vec<u8>>(row, 0))?
                .ok_or_else(|| {
                    backend(
                        "reading a server secret",
                        rusqlite::Error::QueryReturnedNoRows,
                    )
                })?;
            tx.commit()
                .map_err(|e| backend("storing a server secret", e))?;
            Ok(value)
        })
        .await
    }

    async fn remember_once(&self, mark: &str, expires_at: Timestamp) -> StoreResult<bool> {
        let query = stmt(
            "INSERT INTO remembered_marks (mark, expires_at) VALUES (?, ?) ON CONFLICT (mark) DO NOTHING",
        )
        .bind(mark)
        .bind(expires_at.0);
        let done = self
            .execute(query)
            .await
            .map_err(|e| backend("remembering a mark", e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn is_remembered(&self, mark: &str, now: Timestamp) -> StoreResult<bool> {
        let found = self
            .read_one(
                stmt("SELECT 1 FROM remembered_marks WHERE mark = ? AND expires_at > ?")
                    .bind(mark)
                    .bind(now.0),
                |row| get::<i64>(row, 0),
            )
            .await?;
        Ok(found.is_some())
    }
}
