-- The device PIN of phone sign-in, checked by the server: what a copy of the app's files
-- cannot hold. One row per device with phone sign-in on (or locked for wrong PINs).

CREATE TABLE device_pin_locks (
    device_id           TEXT    NOT NULL PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    -- HMAC of the device's PIN verifier under a server key; NULL once locked.
    verifier_mac        TEXT,
    -- Wrong PINs in a row; a right PIN sets it back to 0.
    wrong_pins          INTEGER NOT NULL DEFAULT 0,
    -- When too many wrong PINs turned phone sign-in off on the device.
    locked_at           INTEGER,
    -- When the person allowed turning it on again from security info.
    reenable_allowed_at INTEGER
) STRICT;
