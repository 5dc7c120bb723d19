//! What the contexts share, each piece passed explicitly to the services that use it: the
//! audit trail, the server's purpose keys, password hashing, the throttles and what sign-ins
//! are judged by. None of these is a use case of its own.

mod anomaly;
mod audit;
mod hashing;
mod server_keys;
mod throttling;

pub(crate) use anomaly::Anomalies;
pub(crate) use audit::AuditTrail;
pub(crate) use hashing::Hashers;
pub use server_keys::ServerKeys;
pub(crate) use throttling::Throttles;
