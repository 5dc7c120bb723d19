-- The authentication methods policy, the sign-in log and the audit log.
--
-- Conventions as in 0001: timestamps are INTEGER seconds since the Unix epoch (UTC), tables
-- are STRICT, and values whose shape the domain owns are JSON text. The log tables copy out
-- only the columns the log is filtered and ordered by; the JSON column is what is read back.

-- One row (id 1) once the policy has first been saved; before that the domain uses its
-- defaults. `version` is the optimistic-concurrency token: a save must name the next version.
CREATE TABLE policy (
    id       INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    version  INTEGER NOT NULL CHECK (version >= 1),
    document TEXT    NOT NULL -- JSON AuthenticationMethodsPolicy
) STRICT;

-- Every sign-in attempt, successful or not. `user_id` is deliberately not a foreign key: the
-- log must outlive the users it mentions, and also records names that match no user.
CREATE TABLE sign_in_log (
    id                    TEXT    NOT NULL PRIMARY KEY,
    created_at            INTEGER NOT NULL,
    user_id               TEXT,
    -- The UPN, or the name typed when it matches no user: not necessarily lower-cased, so
    -- filtering folds case here.
    user_principal_name   TEXT    NOT NULL COLLATE NOCASE,
    app_id                TEXT,
    app_display_name      TEXT    COLLATE NOCASE,
    error_code            INTEGER NOT NULL, -- 0 for success
    authentication_method TEXT    NOT NULL,
    record                TEXT    NOT NULL  -- JSON SignInRecord
) STRICT;

-- Newest first is the only order the log is read in; `id` breaks ties within a second.
CREATE INDEX sign_in_log_by_time ON sign_in_log (created_at, id);
CREATE INDEX sign_in_log_by_user ON sign_in_log (user_id);
CREATE INDEX sign_in_log_by_upn ON sign_in_log (user_principal_name);

-- Administrative changes: who, what, when. `event` is the whole AuditEvent as JSON (secrets
-- never appear in it; the domain leaves them out).
CREATE TABLE audit_log (
    id         TEXT    NOT NULL PRIMARY KEY,
    created_at INTEGER NOT NULL,
    actor      TEXT    NOT NULL,
    target     TEXT    NOT NULL,
    category   TEXT    NOT NULL,
    event      TEXT    NOT NULL -- JSON AuditEvent
) STRICT;

CREATE INDEX audit_log_by_time ON audit_log (created_at, id);
