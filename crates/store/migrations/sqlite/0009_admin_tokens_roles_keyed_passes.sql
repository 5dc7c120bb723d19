-- Administration and tokens (issue 13, items 5 and 7).

-- Administrator API tokens become named records with an expiry, a last-used time and an
-- explicit revocation. New hashes are HMAC-SHA-256 under a server key; rows made before keep
-- their SHA-256 hash, marked legacy, and are re-hashed with the key the first time they are
-- used, so an existing token keeps working across the upgrade.
ALTER TABLE admin_tokens RENAME TO admin_tokens_before_0009;

CREATE TABLE admin_tokens (
    id            TEXT    NOT NULL PRIMARY KEY,
    hash          TEXT    NOT NULL UNIQUE,
    legacy_sha256 INTEGER NOT NULL DEFAULT 0,
    name          TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    created_by    TEXT    NOT NULL,
    expires_at    INTEGER,
    last_used_at  INTEGER,
    revoked_at    INTEGER,
    revoked_by    TEXT
) STRICT;

INSERT INTO admin_tokens (id, hash, legacy_sha256, name, created_at, created_by)
SELECT lower(hex(randomblob(16))), hash, 1, name, created_at, 'system'
FROM admin_tokens_before_0009;

DROP TABLE admin_tokens_before_0009;

-- The administrator role is bound to a group by id. An existing group called
-- "Latchkey Administrators" (the only name that granted the role before) keeps it.
CREATE TABLE role_bindings (
    role     TEXT NOT NULL PRIMARY KEY,
    group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE
) STRICT;

INSERT INTO role_bindings (role, group_id)
SELECT 'administrators', id FROM groups WHERE display_name = 'Latchkey Administrators';

-- Temporary Access Passes are now stored as HMAC-SHA-256 under a server key. Passes are
-- short-lived, and an old row's SHA-256 cannot be converted, so outstanding passes end here:
-- administrators issue new ones after the upgrade (docs/security.md says so).
DELETE FROM passes;
