-- Sign-in history: what an unusual sign-in is told apart by, for the policy switch that holds
-- back its notification (suppressAnomalousNotificationsState). Small on purpose: one row per
-- user and country, one row per user for refusals. Unlike the sign-in log these are not
-- purged by log retention: a country stays familiar.

-- The countries successful sign-ins came from (ISO 3166-1 alpha-2, upper case).
CREATE TABLE sign_in_countries (
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    country    TEXT    NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    PRIMARY KEY (user_id, country)
) STRICT, WITHOUT ROWID;

-- When the user last denied or reported a sign-in request.
CREATE TABLE sign_in_refusals (
    user_id         TEXT    NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    last_refused_at INTEGER NOT NULL
) STRICT;

-- Start from the successful sign-ins the log still holds, so an existing user's usual
-- countries are known from the first day rather than only from their next sign-in.
INSERT INTO sign_in_countries (user_id, country, first_seen, last_seen)
SELECT log.user_id,
       upper(json_extract(log.record, '$.location.countryOrRegion')),
       min(log.created_at),
       max(log.created_at)
FROM sign_in_log AS log
JOIN users ON users.id = log.user_id
WHERE log.error_code = 0
  AND length(json_extract(log.record, '$.location.countryOrRegion')) = 2
GROUP BY 1, 2;
