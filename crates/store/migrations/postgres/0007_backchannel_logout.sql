-- OpenID Connect Back-Channel Logout (issue 18): where an application receives logout tokens.
ALTER TABLE applications ADD COLUMN backchannel_logout_uri TEXT;

-- Back-channel logout received by My Apps: the logout tokens' jtis already seen (replay) and
-- the sessions (sids) that ended, each until it expires.
CREATE TABLE remembered_marks (
    mark TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
