-- Web Push (docs/web-push.md): the server's VAPID key and one push subscription per device.

-- One row: the key every instance signs with. Kept like the signing keys and server secrets,
-- because the server must use it.
CREATE TABLE vapid_keys (
    id          INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    private_key BLOB    NOT NULL,
    public_key  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

-- The endpoint is a capability (whoever holds it with the VAPID key can push); p256dh and auth
-- encrypt for the device alone. Removed with the device.
CREATE TABLE push_subscriptions (
    device_id  TEXT    NOT NULL PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    endpoint   TEXT    NOT NULL,
    p256dh     TEXT    NOT NULL,
    auth       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
