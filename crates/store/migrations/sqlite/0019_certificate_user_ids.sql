-- Certificate user ids (Entra's certificateUserIds): values such as `X509:<PN>bob@contoso.com`
-- that certificate username bindings look users up by. A value belongs to one user only (the
-- primary key), so one certificate can never silently bind two accounts.
CREATE TABLE user_certificate_ids (
    value    TEXT    NOT NULL PRIMARY KEY,
    user_id  TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    position INTEGER NOT NULL
) STRICT;

CREATE INDEX user_certificate_ids_by_user ON user_certificate_ids (user_id);
