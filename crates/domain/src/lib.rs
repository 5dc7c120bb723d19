//! Latchkey's domain: the rules of the identity provider, free of HTTP and SQL.
//!
//! Everything here talks to the outside world only through the ports in [`store`] and
//! [`clock`], so it can be read and tested on its own. Handlers and store implementations are
//! thin edges around it and make no decisions of their own.

pub mod aaguid;
pub mod admin_token;
pub mod anomaly;
pub mod application;
pub mod authenticator;
pub mod campaign;
pub mod clock;
pub mod credential;
pub mod device_authorization;
pub mod error;
pub mod ids;
pub mod keys;
pub mod location;
pub mod log;
pub mod names;
pub mod notify;
pub mod oidc;
pub mod passkey;
pub mod policy;
pub mod push;
pub mod random;
pub mod risk;
pub mod secret;
pub mod service;
pub mod session;
pub mod signin;
pub mod store;
pub mod strength;
pub mod throttle;
pub mod user;

pub use error::{DomainError, StoreError};
pub use service::{Latchkey, Settings};
