-- The device authorization grant (RFC 8628). Only hashes of the codes are kept: the device
-- code's SHA-256, the user code's HMAC under a server key. `status` is pending, approved,
-- denied or redeemed; `grant_id` is set from approval on.
CREATE TABLE device_authorizations (
    device_code_hash TEXT   NOT NULL PRIMARY KEY,
    user_code_hash   TEXT   NOT NULL UNIQUE,
    client_id        TEXT   NOT NULL,
    scopes           TEXT   NOT NULL,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    interval_seconds BIGINT NOT NULL,
    last_polled_at   BIGINT,
    status           TEXT   NOT NULL,
    grant_id         TEXT   REFERENCES grants (id) ON DELETE CASCADE
);

CREATE INDEX device_authorizations_by_expiry ON device_authorizations (expires_at);
