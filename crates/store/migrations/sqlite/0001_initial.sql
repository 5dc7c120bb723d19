-- Latchkey's SQLite schema.
--
-- Conventions:
-- * Timestamps are INTEGER seconds since the Unix epoch (UTC).
-- * Booleans are INTEGER 0/1.
-- * Value objects the domain owns the shape of (redirect URI lists, client kinds, scopes,
--   in-progress sign-ins) are JSON text: the store never queries inside them.
-- * Secrets are never stored: only their SHA-256 (`hash`, `token_hash`) or argon2id hash.
--   Signing keys and server secrets are the exception, because the server must use them.
-- * Tables are STRICT so a wrongly typed value fails loudly instead of being coerced.

CREATE TABLE users (
    id            TEXT    NOT NULL PRIMARY KEY,
    -- Already lower-cased by the domain, so a plain UNIQUE makes UPNs case-insensitive.
    upn           TEXT    NOT NULL UNIQUE,
    display_name  TEXT    NOT NULL,
    email         TEXT,
    enabled       INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    -- argon2id PHC string; NULL when the user has no password.
    password_hash TEXT
) STRICT;

CREATE TABLE groups (
    id           TEXT    NOT NULL PRIMARY KEY,
    -- NOCASE folds ASCII only; that is enough to stop "Admins" next to "admins".
    display_name TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    description  TEXT    NOT NULL,
    created_at   INTEGER NOT NULL
) STRICT;

CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX group_members_by_user ON group_members (user_id);

CREATE TABLE applications (
    client_id                 TEXT    NOT NULL PRIMARY KEY,
    display_name              TEXT    NOT NULL,
    redirect_uris             TEXT    NOT NULL, -- JSON array of strings
    post_logout_redirect_uris TEXT    NOT NULL, -- JSON array of strings
    kind                      TEXT    NOT NULL, -- JSON ClientKind (holds the secret's hash)
    id_token_alg              TEXT    NOT NULL,
    home_url                  TEXT,
    created_at                INTEGER NOT NULL
) STRICT;

-- Temporary Access Passes: the primary key enforces one pass per user.
CREATE TABLE passes (
    user_id          TEXT    NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    hash             TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    starts_at        INTEGER NOT NULL,
    lifetime_minutes INTEGER NOT NULL,
    usable_once      INTEGER NOT NULL,
    used_at          INTEGER
) STRICT;

CREATE TABLE sessions (
    id         TEXT    NOT NULL PRIMARY KEY,
    token_hash TEXT    NOT NULL UNIQUE,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    method     TEXT    NOT NULL,
    auth_time  INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked    INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

-- Sign-ins in progress: the whole state machine value as JSON, plus its expiry for purging.
CREATE TABLE sign_ins (
    id         TEXT    NOT NULL PRIMARY KEY,
    body       TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX sign_ins_by_expiry ON sign_ins (expires_at);

-- A grant outlives neither its user nor its application: deleting an application ends every
-- grant (and so every token) it held. `session_id` is deliberately not a foreign key: expired
-- sessions are purged, while the grants (and refresh tokens) they started may live on.
CREATE TABLE grants (
    id         TEXT    NOT NULL PRIMARY KEY,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT    NOT NULL REFERENCES applications (client_id) ON DELETE CASCADE,
    session_id TEXT    NOT NULL,
    scopes     TEXT    NOT NULL, -- JSON array of strings
    nonce      TEXT,
    auth_time  INTEGER NOT NULL,
    method     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    revoked    INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX grants_by_user ON grants (user_id);
CREATE INDEX grants_by_session ON grants (session_id);
CREATE INDEX grants_by_client ON grants (client_id);

-- Authorization codes. `spent` is flipped once; a second redemption is a replay.
CREATE TABLE codes (
    hash           TEXT    NOT NULL PRIMARY KEY,
    grant_id       TEXT    NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    client_id      TEXT    NOT NULL,
    redirect_uri   TEXT    NOT NULL,
    code_challenge TEXT,
    expires_at     INTEGER NOT NULL,
    spent          INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX codes_by_grant ON codes (grant_id);
CREATE INDEX codes_by_expiry ON codes (expires_at);

CREATE TABLE access_tokens (
    hash       TEXT    NOT NULL PRIMARY KEY,
    grant_id   TEXT    NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX access_tokens_by_grant ON access_tokens (grant_id);
CREATE INDEX access_tokens_by_expiry ON access_tokens (expires_at);

-- Refresh tokens rotate: each is spent once, and a second redemption reveals theft.
CREATE TABLE refresh_tokens (
    hash       TEXT    NOT NULL PRIMARY KEY,
    grant_id   TEXT    NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL,
    spent      INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX refresh_tokens_by_grant ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_at);

CREATE TABLE signing_keys (
    kid           TEXT    NOT NULL PRIMARY KEY,
    alg           TEXT    NOT NULL,
    private_pkcs8 BLOB    NOT NULL,
    created_at    INTEGER NOT NULL,
    retired_at    INTEGER
) STRICT;

CREATE TABLE admin_tokens (
    hash       TEXT    NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE server_secrets (
    name  TEXT NOT NULL PRIMARY KEY,
    value BLOB NOT NULL
) STRICT;
