-- The registration campaign (docs/policy.md#the-registration-campaign): per user, how many
-- times the nudge was snoozed and until when; per signed-in session, the interrupt it must pass
-- and where the browser was going (an authorization request or a local path, as JSON).
CREATE TABLE registration_campaign_snoozes (
    user_id         TEXT    NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    snooze_count    INTEGER NOT NULL,
    last_snoozed_at INTEGER NOT NULL,
    snoozed_until   INTEGER NOT NULL
);

CREATE TABLE registration_campaign_interrupts (
    session_id   TEXT    NOT NULL PRIMARY KEY,
    user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    continuation TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);

CREATE INDEX registration_campaign_interrupts_by_user ON registration_campaign_interrupts (user_id);
CREATE INDEX registration_campaign_interrupts_by_expiry ON registration_campaign_interrupts (expires_at);
