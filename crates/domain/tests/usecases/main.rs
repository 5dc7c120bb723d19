//! The use cases tested directly, without HTTP: the domain over the real SQLite store in a
//! temporary directory, with a clock the tests move. One binary; each module is one context.

mod admin_tokens;
mod certificates;
mod directory;
mod fixture;
mod passkeys;
mod phone_sign_in;
mod phone_webauthn;
mod policy;
mod strengths;
mod tap_sign_in;
mod tokens;
