//! PostgreSQL: grants, codes, access and refresh tokens, signing keys and server secrets.

use async_trait::async_trait;
use latchkey_domain::application::SigningAlg;
use latchkey_domain::clock::Timestamp;
use latchkey_domain::ids::{ClientId, GrantId, KeyId, SessionId, UserId};
use latchkey_domain::keys::SigningKey;
use latchkey_domain::oidc::{
    AccessToken, AuthorizationCode, Grant, IssuedTokens, Redeemed, RefreshToken,
};
use latchkey_domain::secret::TokenHash;
use latchkey_domain::store::{GrantStore, StoreResult};
use sqlx::Postgres;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;

use super::{
    PostgresStore, backend, conflict_or_backend, corrupt, get, method_from, method_text,
    optional_timestamp, read_error, string_list, timestamp, to_json,
};

const CODE_CONFLICT: &str = "an authorization code";

macro_rules! insert_grant_sql {
    () => {
        "INSERT INTO grants (id, user_id, client_id, session_id, scopes, nonce, auth_time, method, \
         created_at, revoked) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    };
}

const INSERT_GRANT: &str = insert_grant_sql!();

fn insert_code(code: &AuthorizationCode) -> Query<'_, Postgres, PgArguments> {
    sqlx::query(
        "INSERT INTO codes (hash, grant_id, client_id, redirect_uri, code_challenge, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(code.hash.as_str())
    .bind(code.grant_id.as_str())
    .bind(code.client_id.as_str())
    .bind(&code.redirect_uri)
    .bind(&code.code_challenge)
    .bind(code.expires_at.0)
}

/// One statement that spends a single-use row and, only when that returned it, stores what
/// the redemption issues (data-modifying CTEs run once, on the `spent` row alone): `$1` is the
/// spent value's hash, `$2`–`$5` the access token (hash, grant, expiry, scopes), `$6` and
/// `$7` the refresh token's hash and expiry, or NULL for none. The statement returns the
/// spent row, as the `spend` it wraps does.
macro_rules! spend_issuing {
    ($spend:literal) => {
        concat!(
            "WITH spent AS (",
            $spend,
            "), access AS (INSERT INTO access_tokens (hash, grant_id, expires_at, scopes) \
             SELECT $2, $3, $4, $5 FROM spent), \
             refresh AS (INSERT INTO refresh_tokens (hash, grant_id, expires_at) \
             SELECT $6, $3, $7 FROM spent WHERE $6::TEXT IS NOT NULL) \
             SELECT * FROM spent"
        )
    };
}

fn grant_from(row: &PgRow) -> StoreResult<Grant> {
    Ok(Grant {
        id: GrantId::from_string(get::<String>(row, "id")?),
        user_id: UserId::from_string(get::<String>(row, "user_id")?),
        client_id: ClientId::from_string(get::<String>(row, "client_id")?),
        session_id: SessionId::from_string(get::<String>(row, "session_id")?),
        scopes: string_list(row, "scopes")?,
        nonce: get(row, "nonce")?,
        auth_time: timestamp(row, "auth_time")?,
        method: method_from(row)?,
        created_at: timestamp(row, "created_at")?,
        revoked: get(row, "revoked")?,
    })
}

fn code_from(row: &PgRow) -> StoreResult<AuthorizationCode> {
    Ok(AuthorizationCode {
        hash: TokenHash::from_stored(get::<String>(row, "hash")?),
        grant_id: GrantId::from_string(get::<String>(row, "grant_id")?),
        client_id: ClientId::from_string(get::<String>(row, "client_id")?),
        redirect_uri: get(row, "redirect_uri")?,
        code_challenge: get(row, "code_challenge")?,
        expires_at: timestamp(row, "expires_at")?,
    })
}

fn refresh_token_from(row: &PgRow) -> StoreResult<RefreshToken> {
    Ok(RefreshToken {
        hash: TokenHash::from_stored(get::<String>(row, "hash")?),
        grant_id: GrantId::from_string(get::<String>(row, "grant_id")?),
        expires_at: timestamp(row, "expires_at")?,
    })
}

fn signing_key_from(row: &PgRow) -> StoreResult<SigningKey> {
    Ok(SigningKey {
        kid: KeyId::from_string(get::<String>(row, "kid")?),
        alg: SigningAlg::parse(&get::<String>(row, "alg")?)
            .map_err(|_| corrupt("signing key algorithm"))?,
        private_pkcs8: get(row, "private_pkcs8")?,
        created_at: timestamp(row, "created_at")?,
        retired_at: optional_timestamp(row, "retired_at")?,
    })
}

pub(super) const GRANT_OR_CODE_CONFLICT: &str = "a grant or its authorization code";

fn bind_grant(
    query: Query<'static, Postgres, PgArguments>,
    grant: &Grant,
) -> StoreResult<Query<'static, Postgres, PgArguments>> {
    Ok(query
        .bind(grant.id.as_str().to_owned())
        .bind(grant.user_id.as_str().to_owned())
        .bind(grant.client_id.as_str().to_owned())
        .bind(grant.session_id.as_str().to_owned())
        .bind(to_json("scopes", serde_json::to_string(&grant.scopes))?)
        .bind(grant.nonce.clone())
        .bind(grant.auth_time.0)
        .bind(method_text(grant.method)?)
        .bind(grant.created_at.0)
        .bind(grant.revoked))
}

/// A grant and its code in one statement, one round trip: the code's row comes from the
/// grant's, so neither is stored without the other (`create_grant`, and a sign-in's
/// completion with its code).
pub(super) fn grant_with_code(
    grant: &Grant,
    code: &AuthorizationCode,
) -> StoreResult<Query<'static, Postgres, PgArguments>> {
    Ok(bind_grant(
        sqlx::query(concat!(
            "WITH stored AS (",
            insert_grant_sql!(),
            " RETURNING id) \
             INSERT INTO codes (hash, grant_id, client_id, redirect_uri, code_challenge, expires_at) \
             SELECT $11, id, $12, $13, $14, $15 FROM stored"
        )),
        grant,
    )?
    .bind(code.hash.as_str().to_owned())
    .bind(code.client_id.as_str().to_owned())
    .bind(code.redirect_uri.clone())
    .bind(code.code_challenge.clone())
    .bind(code.expires_at.0))
}

#[async_trait]
impl GrantStore for PostgresStore {
    async fn create_grant(
        &self,
        grant: &Grant,
        code: Option<&AuthorizationCode>,
    ) -> StoreResult<()> {
        let Some(code) = code else {
            bind_grant(sqlx::query(INSERT_GRANT), grant)?
                .execute(&self.pool)
                .await
                .map_err(|e| conflict_or_backend("a grant with this id", e))?;
            return Ok(());
        };
        grant_with_code(grant, code)?
            .execute(&self.pool)
            .await
            .map_err(|e| conflict_or_backend(GRANT_OR_CODE_CONFLICT, e))?;
        Ok(())
    }

    async fn grant(&self, id: &GrantId) -> StoreResult<Option<Grant>> {
        self.read_by_key(
            "SELECT * FROM grants WHERE id = $1",
            id.as_str(),
            grant_from,
        )
        .await
    }

    async fn revoke_grant(&self, id: &GrantId) -> StoreResult<()> {
        self.write_by_key(
            "UPDATE grants SET revoked = TRUE WHERE id = $1",
            id.as_str(),
            "revoking a grant",
        )
        .await
    }

    async fn revoke_session_grants(&self, session: &SessionId) -> StoreResult<()> {
        self.write_by_key(
            "UPDATE grants SET revoked = TRUE WHERE session_id = $1",
            session.as_str(),
            "revoking a session's grants",
        )
        .await
    }

    async fn move_session_grants(&self, from: &SessionId, to: &SessionId) -> StoreResult<()> {
        // One statement: a grant is under `from` or under `to`, never in between, whichever
        // instance revokes either session meanwhile.
        self.execute(
            sqlx::query("UPDATE grants SET session_id = $1 WHERE session_id = $2")
                .bind(to.as_str())
                .bind(from.as_str()),
        )
        .await
        .map_err(|e| backend("moving a session's grants", e))?;
        Ok(())
    }

    async fn live_session_grants(&self, session: &SessionId) -> StoreResult<Vec<Grant>> {
        self.read_all(
            sqlx::query("SELECT * FROM grants WHERE session_id = $1 AND NOT revoked ORDER BY id")
                .bind(session.as_str()),
            grant_from,
        )
        .await
    }

    async fn live_user_grants(&self, user: &UserId) -> StoreResult<Vec<Grant>> {
        self.read_all(
            sqlx::query("SELECT * FROM grants WHERE user_id = $1 AND NOT revoked ORDER BY id")
                .bind(user.as_str()),
            grant_from,
        )
        .await
    }

    async fn put_code(&self, code: &AuthorizationCode) -> StoreResult<()> {
        insert_code(code)
            .execute(&self.pool)
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
            spend_issuing!(
                "UPDATE codes SET spent = TRUE WHERE hash = $1 AND NOT spent RETURNING *"
            ),
            "SELECT * FROM codes WHERE hash = $1",
            hash,
            code_from,
            issue,
        )
        .await
    }

    async fn put_access_token(&self, token: &AccessToken) -> StoreResult<()> {
        sqlx::query("INSERT INTO access_tokens (hash, grant_id, expires_at, scopes) VALUES ($1, $2, $3, $4)")
            .bind(token.hash.as_str())
            .bind(token.grant_id.as_str())
            .bind(token.expires_at.0)
            .bind(token.scopes.as_ref().map(|s| to_json("scopes", serde_json::to_string(s))).transpose()?)
            .execute(&self.pool)
            .await
            .map_err(|e| conflict_or_backend("an access token", e))?;
        Ok(())
    }

    async fn access_token(&self, hash: &TokenHash) -> StoreResult<Option<AccessToken>> {
        // Expired rows are returned too: the domain decides, and can say why a token failed.
        let row = sqlx::query("SELECT * FROM access_tokens WHERE hash = $1")
            .bind(hash.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(read_error)?;
        row.map(|row| {
            Ok(AccessToken {
                hash: TokenHash::from_stored(get::<String>(&row, "hash")?),
                grant_id: GrantId::from_string(get::<String>(&row, "grant_id")?),
                expires_at: timestamp(&row, "expires_at")?,
                scopes: get::<Option<String>>(&row, "scopes")?
                    .map(|s| serde_json::from_str(&s).map_err(|_| corrupt("scopes")))
                    .transpose()?,
            })
        })
        .transpose()
    }

    async fn delete_access_token(&self, hash: &TokenHash) -> StoreResult<()> {
        self.write_by_key(
            "DELETE FROM access_tokens WHERE hash = $1",
            hash.as_str(),
            "revoking an access token",
        )
        .await
    }

    async fn put_refresh_token(&self, token: &RefreshToken) -> StoreResult<()> {
        sqlx::query("INSERT INTO refresh_tokens (hash, grant_id, expires_at) VALUES ($1, $2, $3)")
            .bind(token.hash.as_str())
            .bind(token.grant_id.as_str())
            .bind(token.expires_at.0)
            .execute(&self.pool)
            .await
            .map_err(|e| conflict_or_backend("a refresh token", e))?;
        Ok(())
    }

    async fn redeem_refresh_token(
        &self,
        hash: &TokenHash,
        issue: &IssuedTokens,
    ) -> StoreResult<Redeemed<RefreshToken>> {
        self.spend(
            spend_issuing!(
                "UPDATE refresh_tokens SET spent = TRUE WHERE hash = $1 AND NOT spent RETURNING *"
            ),
            "SELECT * FROM refresh_tokens WHERE hash = $1",
            hash,
            refresh_token_from,
            issue,
        )
        .await
    }

    async fn code(&self, hash: &TokenHash) -> StoreResult<Option<AuthorizationCode>> {
        self.read_by_key(
            "SELECT * FROM codes WHERE hash = $1",
            hash.as_str(),
            code_from,
        )
        .await
    }

    async fn refresh_token(&self, hash: &TokenHash) -> StoreResult<Option<RefreshToken>> {
        self.read_by_key(
            "SELECT * FROM refresh_tokens WHERE hash = $1",
            hash.as_str(),
            refresh_token_from,
        )
        .await
    }

    async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>> {
        self.read_all(
            sqlx::query("SELECT * FROM signing_keys ORDER BY created_at, kid"),
            signing_key_from,
        )
        .await
    }

    async fn put_signing_key(&self, key: &SigningKey) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_pkcs8, created_at, retired_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(key.kid.as_str())
        .bind(key.alg.as_str())
        .bind(key.private_pkcs8.as_slice())
        .bind(key.created_at.0)
        .bind(key.retired_at.map(|t| t.0))
        .execute(&self.pool)
        .await
        .map_err(|e| conflict_or_backend(&format!("a signing key with kid {}", key.kid), e))?;
        Ok(())
    }

    async fn retire_signing_keys_except(&self, keep: &[KeyId], at: Timestamp) -> StoreResult<()> {
        // The kept kids travel as one array parameter, so the statement stays fixed text
        // whatever the list's length.
        let keep: Vec<String> = keep.iter().map(|kid| kid.as_str().to_owned()).collect();
        sqlx::query(
            "UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL AND kid <> ALL($2)",
        )
        .bind(at.0)
        .bind(keep)
        .execute(&self.pool)
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
        // The table lock (which conflicts with itself, not with readers) makes a second
        // rotation wait for the first to commit; it then reads the winner's keys as the
        // unretired ones and writes nothing.
        let mut tx = self.begin().await?;
        sqlx::query("LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await
            .map_err(|e| backend("locking signing keys", e))?;
        let mut unretired: Vec<String> =
            sqlx::query_scalar("SELECT kid FROM signing_keys WHERE retired_at IS NULL")
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| backend("reading signing keys", e))?;
        unretired.sort();
        let mut expected: Vec<String> = current.iter().map(|k| k.as_str().to_owned()).collect();
        expected.sort();
        if unretired != expected {
            return Ok(false);
        }
        sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL")
            .bind(retire_at.0)
            .execute(&mut *tx)
            .await
            .map_err(|e| backend("retiring signing keys", e))?;
        for key in fresh {
            sqlx::query(
                "INSERT INTO signing_keys (kid, alg, private_pkcs8, created_at, retired_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(key.kid.as_str())
            .bind(key.alg.as_str())
            .bind(key.private_pkcs8.as_slice())
            .bind(key.created_at.0)
            .bind(key.retired_at.map(|t| t.0))
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict_or_backend(&format!("a signing key with kid {}", key.kid), e))?;
        }
        tx.commit()
            .await
            .map_err(|e| backend("rotating signing keys", e))?;
        Ok(true)
    }

    async fn server_secret(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>> {
        // Insert-if-absent, then read back. Of two servers starting at once, one inserts; the
        // other's ON CONFLICT waits for that insert to commit and does nothing, and its read
        // (a new snapshot under READ COMMITTED) then sees the winner's value. A restart never
        // replaces it.
        sqlx::query(
            "INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(candidate)
        .execute(&self.pool)
        .await
        .map_err(|e| backend("storing a server secret", e))?;
        sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| backend("reading a server secret", e))
    }

    async fn remember_once(&self, mark: &str, expires_at: Timestamp) -> StoreResult<bool> {
        // ON CONFLICT makes a concurrent second insert wait for the first and then do nothing,
        // so of two instances seeing the same mark exactly one gets true.
        let done = sqlx::query(
            "INSERT INTO remembered_marks (mark, expires_at) VALUES ($1, $2) ON CONFLICT (mark) DO NOTHING",
        )
        .bind(mark)
        .bind(expires_at.0)
        .execute(&self.pool)
        .await
        .map_err(|e| backend("remembering a mark", e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn is_remembered(&self, mark: &str, now: Timestamp) -> StoreResult<bool> {
        let found: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM remembered_marks WHERE mark = $1 AND expires_at > $2",
        )
        .bind(mark)
        .bind(now.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(read_error)?;
        Ok(found.is_some())
    }
}

#[cfg(test)]
mod across_instances {
    use latchkey_domain::application::{Application, ClientKind};
    use latchkey_domain::ids::{ClientId, GrantId, SessionId, UserId};
    use latchkey_domain::oidc::{AccessToken, AuthorizationCode, Grant, IssuedTokens, Redeemed};
    use latchkey_domain::secret::{TokenHash, random_hex, random_token};
    use latchkey_domain::session::{AuthMethod, Session};
    use latchkey_domain::store::{ApplicationStore, GrantStore, SessionStore, UserStore};
    use latchkey_domain::user::{Upn, User};

    use super::super::session::TwoInstances;
    use super::*;

    const NOW: Timestamp = Timestamp(1_800_000_000);

    /// A user, an application, a session and a grant, stored through instance A.
    async fn stored_grant(store: &PostgresStore) -> Grant {
        let user = User {
            id: UserId::random(),
            upn: Upn::parse(&format!("user-{}@instances.example", random_hex(4))).unwrap(),
            display_name: "Two Instances".into(),
            email: None,
            enabled: true,
            created_at: NOW,
        };
        store.create_user(&user).await.unwrap();
        let app = Application {
            client_id: ClientId::from_string(format!("instances-{}", random_hex(8))),
            display_name: "Two Instances App".into(),
            redirect_uris: vec!["https://app.instances.example/cb".into()],
            post_logout_redirect_uris: vec![],
            kind: ClientKind::Public,
            id_token_alg: SigningAlg::ES256,
            home_url: None,
            required_strength: None,
            created_at: NOW,
            allowed_origins: Vec::new(),
            groups_claim: Default::default(),
            assignment_required: false,
            backchannel_logout_uri: None,
        };
        store.create_application(&app).await.unwrap();
        let session = Session {
            id: SessionId::random(),
            token_hash: TokenHash::of(random_token().expose()),
            user_id: user.id.clone(),
            method: AuthMethod::Password,
            auth_time: NOW,
            created_at: NOW,
            expires_at: NOW.plus_seconds(3600),
            revoked: false,
        };
        store.create_session(&session).await.unwrap();
        let grant = Grant {
            id: GrantId::random(),
            user_id: user.id,
            client_id: app.client_id,
            session_id: session.id,
            scopes: vec!["openid".into()],
            nonce: None,
            auth_time: NOW,
            method: AuthMethod::Password,
            created_at: NOW,
            revoked: false,
        };
        store.create_grant(&grant, None).await.unwrap();
        grant
    }

    /// An access token for `grant`, as a redemption issues it.
    fn issued(grant: &Grant) -> IssuedTokens {
        IssuedTokens {
            access: AccessToken {
                hash: TokenHash::of(random_token().expose()),
                grant_id: grant.id.clone(),
                expires_at: NOW.plus_seconds(600),
                scopes: None,
            },
            refresh: None,
        }
    }

    /// Threat: an authorization code replayed through a second server instance (the same
    /// request sent to both servers behind a load balancer) to obtain two sets of tokens.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn code_replay_through_another_instance_has_one_winner() {
        let both = TwoInstances::open().await;
        let grant = stored_grant(&both.a).await;
        for _ in 0..20 {
            let code = AuthorizationCode {
                hash: TokenHash::of(random_token().expose()),
                grant_id: grant.id.clone(),
                client_id: grant.client_id.clone(),
                redirect_uri: "https://app.instances.example/cb".into(),
                code_challenge: None,
                expires_at: NOW.plus_seconds(60),
            };
            both.a.put_code(&code).await.unwrap();
            let (for_a, for_b) = (issued(&grant), issued(&grant));
            let (at_a, at_b) = tokio::join!(
                both.a.redeem_code(&code.hash, &for_a),
                both.b.redeem_code(&code.hash, &for_b)
            );
            let outcomes = [at_a.unwrap(), at_b.unwrap()];
            for (outcome, tokens) in outcomes.iter().zip([&for_a, &for_b]) {
                let stored = both.a.access_token(&tokens.access.hash).await.unwrap();
                assert_eq!(
                    stored.is_some(),
                    matches!(outcome, Redeemed::Fresh(_)),
                    "only the winner's tokens are stored"
                );
            }
            let fresh = outcomes
                .iter()
                .filter(|outcome| match outcome {
                    Redeemed::Fresh(_) => true,
                    Redeemed::Replayed(spent) => {
                        assert_eq!(spent, &code, "the loser sees the code as a replay");
                        false
                    }
                    Redeemed::Unknown => panic!("the code was stored through instance A"),
                })
                .count();
            assert_eq!(fresh, 1, "exactly one instance redeems the code");
            assert!(matches!(
                both.b
                    .redeem_code(&code.hash, &issued(&grant))
                    .await
                    .unwrap(),
                Redeemed::Replayed(_)
            ));
        }
        both.close().await;
    }
}
