-- Passkeys and security keys (issue 15).

-- A registered WebAuthn credential. `credential` is webauthn-rs's serialised Passkey (the
-- public key, its algorithm and flags); `counter` and `backup_state` are kept beside it so a
-- sign-in can update them with a conditional write. A credential id is unique across users.
CREATE TABLE passkeys (
    id                 TEXT    NOT NULL PRIMARY KEY,
    user_id            TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id      BLOB    NOT NULL UNIQUE,
    name               TEXT    NOT NULL,
    kind               TEXT    NOT NULL,
    aaguid             TEXT,
    authenticator_name TEXT,
    created_at         INTEGER NOT NULL,
    last_used_at       INTEGER,
    counter            INTEGER NOT NULL,
    backup_eligible    INTEGER NOT NULL,
    backup_state       INTEGER NOT NULL,
    credential         TEXT    NOT NULL
) STRICT;

CREATE INDEX passkeys_by_user ON passkeys (user_id, created_at);

-- A WebAuthn ceremony in progress: webauthn-rs's state (it holds the challenge), taken once.
CREATE TABLE passkey_ceremonies (
    id         TEXT    NOT NULL PRIMARY KEY,
    purpose    TEXT    NOT NULL,
    state      TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX passkey_ceremonies_by_expiry ON passkey_ceremonies (expires_at);
