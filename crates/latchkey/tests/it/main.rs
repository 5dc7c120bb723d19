//! Latchkey's one integration-test binary: every test starts the real server on an ephemeral
//! port with a temporary data directory and speaks HTTP to it.

mod abuse;
mod admin;
mod browser;
mod console;
mod governance;
mod hardening;
mod oidc_flow;
mod phone;
mod phone_threats;
mod pin_guessing;
mod support;
mod threats;
mod unusual_sign_ins;
