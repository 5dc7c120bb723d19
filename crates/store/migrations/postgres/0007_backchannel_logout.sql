-- OpenID Connect Back-Channel Logout (issue 18): where an application receives logout tokens.
ALTER TABLE applications ADD COLUMN backchannel_logout_uri TEXT;
