-- User risk: who reported a notification as "No, it's not me", and whether an administrator
-- has dismissed it.

CREATE TABLE user_risk (
    user_id      TEXT    NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    state        TEXT    NOT NULL, -- atRisk | dismissed
    detail       TEXT    NOT NULL,
    last_updated INTEGER NOT NULL
) STRICT;

CREATE TABLE risk_detections (
    id          TEXT    NOT NULL PRIMARY KEY,
    user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    detected_at INTEGER NOT NULL,
    body        TEXT    NOT NULL -- the domain's RiskDetection as JSON
) STRICT;

CREATE INDEX risk_detections_by_user ON risk_detections (user_id, detected_at);

-- Throttle counters: one fixed window per key (what is counted and for whom).
CREATE TABLE throttle (
    key          TEXT    NOT NULL PRIMARY KEY,
    window_start INTEGER NOT NULL,
    count        INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
