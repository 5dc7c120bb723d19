-- The authenticator app: activations, devices, the nonces of their signed requests, and the
-- approval requests that carry number matching.

-- One-time activations from the security-info page. Only the code's SHA-256 is kept.
CREATE TABLE activations (
    id            TEXT    NOT NULL PRIMARY KEY,
    code_hash     TEXT    NOT NULL UNIQUE,
    user_id       TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    -- Set once, when a device redeems the code.
    device_id     TEXT,
    test_approval TEXT
) STRICT;

CREATE TABLE devices (
    id               TEXT    NOT NULL PRIMARY KEY,
    user_id          TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name             TEXT    NOT NULL,
    -- Public keys only (base64url SEC1 points); private keys never leave the device.
    device_key       TEXT    NOT NULL,
    passwordless_key TEXT,
    created_at       INTEGER NOT NULL,
    confirmed_at     INTEGER,
    phone_sign_in_at INTEGER
) STRICT;

CREATE INDEX devices_by_user ON devices (user_id, created_at);

-- The primary key is the replay check: a nonce can be inserted once per device.
CREATE TABLE device_nonces (
    device_id  TEXT    NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    nonce      TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (device_id, nonce)
) STRICT, WITHOUT ROWID;

CREATE INDEX device_nonces_by_expiry ON device_nonces (expires_at);

-- Approval requests: the domain's value as JSON, with its state and expiry copied out for
-- the conditional settle and for purging. `state` and the JSON's state are written together.
CREATE TABLE approvals (
    id         TEXT    NOT NULL PRIMARY KEY,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    state      TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    body       TEXT    NOT NULL
) STRICT;

CREATE INDEX approvals_pending_by_user ON approvals (user_id, created_at) WHERE state = 'pending';
CREATE INDEX approvals_by_expiry ON approvals (expires_at);
