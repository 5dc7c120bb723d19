//! Latchkey's one integration-test binary: every test starts the real server on an ephemeral
//! port with a temporary data directory and speaks HTTP to it.

mod abuse;
mod admin;
mod admin_hardening;
mod admin_tokens;
mod backup;
mod browser;
mod browser_sessions;
mod console;
mod deceptive_names;
mod device_limits;
mod dos;
mod enumeration_timing;
mod geoip_update;
mod governance;
mod grant_theft;
mod hardening;
mod live_channel_query;
mod map;
mod oidc_flow;
mod passkeys;
mod passkeys_browser;
mod phone;
mod phone_app;
mod phone_threats;
mod phone_webauthn;
mod pin_guessing;
mod postgres;
mod registration_campaign;
mod smart_lockout;
mod strengths;
mod support;
mod threats;
mod unusual_sign_ins;
mod virtual_authenticator;
mod web_push;
