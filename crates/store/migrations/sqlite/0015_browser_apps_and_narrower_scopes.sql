-- Browser applications (docs/oidc.md#browser-applications-cors): origins besides those of the
-- redirect URIs that may call the token endpoints from a browser, as a JSON array.
ALTER TABLE applications ADD COLUMN allowed_origins TEXT NOT NULL DEFAULT '[]';

-- An access token from a refresh that asked for a narrower scope (RFC 6749 §6) grants only
-- that scope, as a JSON array; NULL grants the whole grant's scope.
ALTER TABLE access_tokens ADD COLUMN scopes TEXT;
