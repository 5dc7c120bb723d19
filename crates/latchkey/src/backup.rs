//! `latchkey backup FILE`: a consistent copy of the SQLite database, taken while the server
//! runs (see `latchkey_store::sqlite::backup_into`). PostgreSQL has its own tools; this only
//! says which.

use std::path::Path;

use anyhow::bail;

use crate::config::{Config, Database};

/// Copies the configured SQLite database to `destination` (a new file) and returns its size
/// in bytes.
pub async fn backup(config: &Config, destination: &Path) -> anyhow::Result<u64> {
    match config.database()? {
        Database::Sqlite => latchkey_store::sqlite::backup_into(&config.data_dir, destination)
            .await
            .map_err(anyhow::Error::msg),
        Database::Postgres(_) => bail!(
            "the database is PostgreSQL (database_url): back it up with PostgreSQL's own tools, \
             for example `pg_dump --format=custom --file=latchkey.dump \"$DATABASE_URL\"`, and \
             restore with `pg_restore` (README, \"Backups\")"
        ),
    }
}
