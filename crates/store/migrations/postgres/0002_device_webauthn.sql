-- Phone sign-in proved by WebAuthn (the web authenticator app): which app a device is, and the
-- device's WebAuthn credential (public only: webauthn-rs's serialised Passkey) and its counter.
ALTER TABLE devices ADD COLUMN app TEXT NOT NULL DEFAULT 'terminal';
ALTER TABLE devices ADD COLUMN webauthn_credential_id TEXT;
ALTER TABLE devices ADD COLUMN webauthn_passkey TEXT;
ALTER TABLE devices ADD COLUMN webauthn_counter BIGINT;
