//! Latchkey's storage edge.
//!
//! The domain defines what it needs from storage as ports, one per aggregate, composed into
//! [`latchkey_domain::store::Store`]; this crate holds the implementations of those ports and
//! the rules they must all obey:
//!
//! * [`sqlite`]: the default store, one SQLite file in the data directory, one file per port.
//!   All SQL dialect lives here so the domain never sees a query.
//! * [`postgres`]: the same ports on a PostgreSQL database, chosen by a `postgres://` database
//!   URL, for several instances sharing one database (docs/postgres.md).
//! * [`conformance`]: behavioural checks every store must pass, written against `&dyn Store`
//!   only and turned into one named test each by [`store_conformance_tests!`], so both stores
//!   are held to exactly the same contract (most importantly: single-use secrets are spent
//!   atomically).

pub mod conformance;
pub mod postgres;
pub mod sqlite;

pub use postgres::{PostgresSettings, PostgresStore};
pub use sqlite::SqliteStore;
