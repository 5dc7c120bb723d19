-- Web Push (docs/web-push.md): the server's VAPID key and one push subscription per device.
-- The same shape as SQLite's 0013_web_push.sql.

CREATE TABLE vapid_keys (
    id          BIGINT NOT NULL PRIMARY KEY CHECK (id = 1),
    private_key BYTEA  NOT NULL,
    public_key  TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE push_subscriptions (
    device_id  TEXT   NOT NULL PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    endpoint   TEXT   NOT NULL,
    p256dh     TEXT   NOT NULL,
    auth       TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);
