-- Smart lockout: the places a user signed in from successfully, so that failures and
-- notifications caused from anywhere else are counted apart from the user's own (see
-- docs/throttling.md). A place is a browser (`browser:` and the SHA-256 of its known-browser
-- id, never the cookie itself) or a client address (`address:` and the address). Rows last
-- seen longer ago than the place stays familiar are removed when the user next signs in.
CREATE TABLE familiar_places (
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    place      TEXT    NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    PRIMARY KEY (user_id, place)
) STRICT, WITHOUT ROWID;
