-- Latchkey's PostgreSQL schema: the SQLite schema as it stands after all of its migrations
-- (crates/store/migrations/sqlite), in PostgreSQL types. A later change to the schema is a new
-- migration here and one in the SQLite directory, so the two stores keep the same shape.
--
-- Conventions (as on SQLite, so the two stores share their reasoning):
-- * Timestamps are BIGINT seconds since the Unix epoch (UTC); every other integer is BIGINT too,
--   so the store binds and decodes i64 throughout.
-- * Booleans are BOOLEAN.
-- * Values whose shape the domain owns (redirect URI lists, client kinds, scopes, sign-ins in
--   progress, log records, approvals, WebAuthn state) are JSON in TEXT columns: the store never
--   looks inside them, so JSONB would buy nothing but a re-encoding.
-- * Secrets are never stored: only their hash. Signing keys and server secrets are the
--   exception, because the server must use them.
-- * Where SQLite folds case with COLLATE NOCASE (ASCII only), PostgreSQL compares lower(...)
--   through an expression index.
-- * The logs are read newest first, ties within a second broken by insertion order: SQLite's
--   rowid, here an identity column `seq`.

CREATE TABLE users (
    id            TEXT    NOT NULL PRIMARY KEY,
    -- Already lower-cased by the domain, so a plain UNIQUE makes UPNs case-insensitive.
    upn           TEXT    NOT NULL UNIQUE,
    display_name  TEXT    NOT NULL,
    email         TEXT,
    enabled       BOOLEAN NOT NULL,
    created_at    BIGINT  NOT NULL,
    -- argon2id PHC string; NULL when the user has no password.
    password_hash TEXT
);

CREATE TABLE groups (
    id           TEXT   NOT NULL PRIMARY KEY,
    display_name TEXT   NOT NULL,
    description  TEXT   NOT NULL,
    created_at   BIGINT NOT NULL
);

-- "Admins" next to "admins" is refused, as SQLite's NOCASE does.
CREATE UNIQUE INDEX groups_by_folded_name ON groups (lower(display_name));

CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);

CREATE INDEX group_members_by_user ON group_members (user_id);

CREATE TABLE role_bindings (
    role     TEXT NOT NULL PRIMARY KEY,
    group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE
);

CREATE TABLE applications (
    client_id                 TEXT   NOT NULL PRIMARY KEY,
    display_name              TEXT   NOT NULL,
    redirect_uris             TEXT   NOT NULL, -- JSON array of strings
    post_logout_redirect_uris TEXT   NOT NULL, -- JSON array of strings
    kind                      TEXT   NOT NULL, -- JSON ClientKind (holds the secret's hash)
    id_token_alg              TEXT   NOT NULL,
    home_url                  TEXT,
    -- The authentication strength the application requires (NULL: any sign-in), by the id
    -- the admin API spells it with.
    required_strength         TEXT
        CHECK (required_strength IN ('mfa', 'passwordlessMfa', 'phishingResistantMfa')),
    created_at                BIGINT NOT NULL
);

-- Temporary Access Passes: the primary key enforces one pass per user.
CREATE TABLE passes (
    user_id          TEXT    NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    hash             TEXT    NOT NULL,
    created_at       BIGINT  NOT NULL,
    starts_at        BIGINT  NOT NULL,
    lifetime_minutes BIGINT  NOT NULL,
    usable_once      BOOLEAN NOT NULL,
    used_at          BIGINT
);

CREATE TABLE sessions (
    id         TEXT    NOT NULL PRIMARY KEY,
    token_hash TEXT    NOT NULL UNIQUE,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    method     TEXT    NOT NULL,
    auth_time  BIGINT  NOT NULL,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL,
    revoked    BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

-- Sign-ins in progress: the whole state machine value as JSON, plus its expiry for purging.
CREATE TABLE sign_ins (
    id         TEXT   NOT NULL PRIMARY KEY,
    body       TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX sign_ins_by_expiry ON sign_ins (expires_at);

-- `session_id` is deliberately not a foreign key: expired sessions are purged, while the
-- grants (and refresh tokens) they started may live on.
CREATE TABLE grants (
    id         TEXT    NOT NULL PRIMARY KEY,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT    NOT NULL REFERENCES applications (client_id) ON DELETE CASCADE,
    session_id TEXT    NOT NULL,
    scopes     TEXT    NOT NULL, -- JSON array of strings
    nonce      TEXT,
    auth_time  BIGINT  NOT NULL,
    method     TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    revoked    BOOLEAN NOT NULL DEFAULT FALSE
);

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
    expires_at     BIGINT  NOT NULL,
    spent          BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE INDEX codes_by_grant ON codes (grant_id);
CREATE INDEX codes_by_expiry ON codes (expires_at);

CREATE TABLE access_tokens (
    hash       TEXT   NOT NULL PRIMARY KEY,
    grant_id   TEXT   NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL
);

CREATE INDEX access_tokens_by_grant ON access_tokens (grant_id);
CREATE INDEX access_tokens_by_expiry ON access_tokens (expires_at);

-- Refresh tokens rotate: each is spent once, and a second redemption reveals theft.
CREATE TABLE refresh_tokens (
    hash       TEXT    NOT NULL PRIMARY KEY,
    grant_id   TEXT    NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    expires_at BIGINT  NOT NULL,
    spent      BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE INDEX refresh_tokens_by_grant ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_at);

CREATE TABLE signing_keys (
    kid           TEXT   NOT NULL PRIMARY KEY,
    alg           TEXT   NOT NULL,
    private_pkcs8 BYTEA  NOT NULL,
    created_at    BIGINT NOT NULL,
    retired_at    BIGINT
);

CREATE TABLE server_secrets (
    name  TEXT  NOT NULL PRIMARY KEY,
    value BYTEA NOT NULL
);

-- Administrator API tokens: HMAC-SHA-256 hashes under a server key (`legacy_sha256` marks a
-- plain SHA-256 carried over from an old SQLite database; a fresh PostgreSQL store has none).
CREATE TABLE admin_tokens (
    id            TEXT    NOT NULL PRIMARY KEY,
    hash          TEXT    NOT NULL UNIQUE,
    legacy_sha256 BOOLEAN NOT NULL DEFAULT FALSE,
    name          TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    created_by    TEXT    NOT NULL,
    expires_at    BIGINT,
    last_used_at  BIGINT,
    revoked_at    BIGINT,
    revoked_by    TEXT
);

-- One row (id 1) once the policy has first been saved. `version` is the optimistic-concurrency
-- token: a save must name the next version.
CREATE TABLE policy (
    id       BIGINT NOT NULL PRIMARY KEY CHECK (id = 1),
    version  BIGINT NOT NULL CHECK (version >= 1),
    document TEXT   NOT NULL -- JSON AuthenticationMethodsPolicy
);

-- Every sign-in attempt. `user_id` is deliberately not a foreign key: the log outlives the
-- users it mentions. `user_principal_name` and `app_display_name` are matched ignoring case.
CREATE TABLE sign_in_log (
    seq                   BIGINT GENERATED ALWAYS AS IDENTITY,
    id                    TEXT   NOT NULL PRIMARY KEY,
    created_at            BIGINT NOT NULL,
    user_id               TEXT,
    user_principal_name   TEXT   NOT NULL,
    app_id                TEXT,
    app_display_name      TEXT,
    error_code            BIGINT NOT NULL, -- 0 for success
    authentication_method TEXT   NOT NULL,
    record                TEXT   NOT NULL  -- JSON SignInRecord
);

CREATE INDEX sign_in_log_by_time ON sign_in_log (created_at, seq);
CREATE INDEX sign_in_log_by_user ON sign_in_log (user_id);
CREATE INDEX sign_in_log_by_upn ON sign_in_log (lower(user_principal_name));

CREATE TABLE audit_log (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY,
    id         TEXT   NOT NULL PRIMARY KEY,
    created_at BIGINT NOT NULL,
    actor      TEXT   NOT NULL,
    target     TEXT   NOT NULL,
    category   TEXT   NOT NULL,
    event      TEXT   NOT NULL -- JSON AuditEvent
);

CREATE INDEX audit_log_by_time ON audit_log (created_at, seq);

-- One-time activations from the security-info page. Only the code's hash is kept.
CREATE TABLE activations (
    id            TEXT   NOT NULL PRIMARY KEY,
    code_hash     TEXT   NOT NULL UNIQUE,
    user_id       TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    -- Set once, when a device redeems the code.
    device_id     TEXT,
    test_approval TEXT
);

CREATE INDEX activations_by_user ON activations (user_id);

CREATE TABLE devices (
    id               TEXT   NOT NULL PRIMARY KEY,
    user_id          TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name             TEXT   NOT NULL,
    -- Public keys only (base64url SEC1 points); private keys never leave the device.
    device_key       TEXT   NOT NULL,
    passwordless_key TEXT,
    created_at       BIGINT NOT NULL,
    confirmed_at     BIGINT,
    phone_sign_in_at BIGINT
);

CREATE INDEX devices_by_user ON devices (user_id, created_at);

-- The primary key is the replay check: a nonce can be inserted once per device.
CREATE TABLE device_nonces (
    device_id  TEXT   NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    nonce      TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (device_id, nonce)
);

CREATE INDEX device_nonces_by_expiry ON device_nonces (expires_at);

-- Approval requests: the domain's value as JSON, with its state and expiry copied out for the
-- conditional settle and for purging. `state` and the JSON's state are written together.
CREATE TABLE approvals (
    id         TEXT   NOT NULL PRIMARY KEY,
    user_id    TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    state      TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    body       TEXT   NOT NULL
);

CREATE INDEX approvals_pending_by_user ON approvals (user_id, created_at) WHERE state = 'pending';
CREATE INDEX approvals_by_expiry ON approvals (expires_at);

-- The device PIN of phone sign-in, checked by the server.
CREATE TABLE device_pin_locks (
    device_id           TEXT   NOT NULL PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    -- HMAC of the device's PIN verifier under a server key; NULL once locked.
    verifier_mac        TEXT,
    wrong_pins          BIGINT NOT NULL DEFAULT 0,
    locked_at           BIGINT,
    reenable_allowed_at BIGINT
);

CREATE TABLE user_risk (
    user_id      TEXT   NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    state        TEXT   NOT NULL, -- atRisk | dismissed
    detail       TEXT   NOT NULL,
    last_updated BIGINT NOT NULL
);

CREATE TABLE risk_detections (
    id          TEXT   NOT NULL PRIMARY KEY,
    user_id     TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    detected_at BIGINT NOT NULL,
    body        TEXT   NOT NULL -- the domain's RiskDetection as JSON
);

CREATE INDEX risk_detections_by_user ON risk_detections (user_id, detected_at);

-- Throttle counters: one fixed window per key (what is counted and for whom).
CREATE TABLE throttle (
    key          TEXT   NOT NULL PRIMARY KEY,
    window_start BIGINT NOT NULL,
    count        BIGINT NOT NULL
);

-- The countries successful sign-ins came from (ISO 3166-1 alpha-2, upper case).
CREATE TABLE sign_in_countries (
    user_id    TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    country    TEXT   NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL,
    PRIMARY KEY (user_id, country)
);

-- When the user last denied or reported a sign-in request.
CREATE TABLE sign_in_refusals (
    user_id         TEXT   NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    last_refused_at BIGINT NOT NULL
);

-- Smart lockout: the places a user signed in from successfully (docs/throttling.md).
CREATE TABLE familiar_places (
    user_id    TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    place      TEXT   NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL,
    PRIMARY KEY (user_id, place)
);

-- A registered WebAuthn credential. `credential` is webauthn-rs's serialised Passkey; `counter`
-- and `backup_state` are kept beside it so a sign-in can update them with a conditional write.
-- A credential id is unique across users.
CREATE TABLE passkeys (
    id                 TEXT    NOT NULL PRIMARY KEY,
    user_id            TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id      BYTEA   NOT NULL UNIQUE,
    name               TEXT    NOT NULL,
    kind               TEXT    NOT NULL,
    aaguid             TEXT,
    authenticator_name TEXT,
    created_at         BIGINT  NOT NULL,
    last_used_at       BIGINT,
    counter            BIGINT  NOT NULL,
    backup_eligible    BOOLEAN NOT NULL,
    backup_state       BOOLEAN NOT NULL,
    credential         TEXT    NOT NULL
);

CREATE INDEX passkeys_by_user ON passkeys (user_id, created_at);

-- A WebAuthn ceremony in progress: webauthn-rs's state (it holds the challenge), taken once.
CREATE TABLE passkey_ceremonies (
    id         TEXT   NOT NULL PRIMARY KEY,
    purpose    TEXT   NOT NULL,
    state      TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX passkey_ceremonies_by_expiry ON passkey_ceremonies (expires_at);
