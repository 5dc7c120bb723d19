//! A consistent copy of the SQLite database, taken while the server runs (`latchkey backup`).
//!
//! `VACUUM INTO` copies one read transaction's snapshot: every write committed before it
//! began is in the copy, none that committed after is, and in WAL mode the server's writer is
//! never blocked by it. It reads through a read-only connection, so a backup can never change
//! the live database. It must never overwrite a file, nor leave a half-written copy under the
//! name asked for: the copy is written beside it, flushed to disk, then linked into place.

use std::path::{Path, PathBuf};

use sqlx::ConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;

use super::DATABASE_FILE;
use super::db::BUSY_TIMEOUT;

/// Copies the database in `data_dir` to `destination`, a new file, and returns its size in
/// bytes. The copy is an ordinary (rollback-journal) SQLite file: restore it by stopping the
/// server, putting it in a data directory as `latchkey.db` (with no `latchkey.db-wal` or
/// `latchkey.db-shm` beside it), and starting the server.
pub async fn backup_into(data_dir: &Path, destination: &Path) -> Result<u64, String> {
    let source = data_dir.join(DATABASE_FILE);
    if !source.is_file() {
        return Err(format!(
            "there is no database at {} (is data_dir right?)",
            source.display()
        ));
    }
    if destination.symlink_metadata().is_ok() {
        return Err(format!(
            "{} already exists; a backup never overwrites a file: choose a new name",
            destination.display()
        ));
    }
    let partial = partial_name(destination)?;
    // A leftover of an interrupted backup to the same name: never a finished backup.
    let _ = std::fs::remove_file(&partial);
    let partial_text = partial.to_str().ok_or_else(|| {
        format!(
            "the backup's file name {} is not valid UTF-8",
            destination.display()
        )
    })?;

    let copied = async {
        let mut conn = SqliteConnectOptions::new()
            .filename(&source)
            .read_only(true)
            .busy_timeout(BUSY_TIMEOUT)
            .connect()
            .await
            .map_err(|e| format!("opening {}: {e}", source.display()))?;
        let result = sqlx::query("VACUUM INTO ?")
            .bind(partial_text)
            .execute(&mut conn)
            .await
            .map_err(|e| format!("copying {}: {e}", source.display()));
        let _ = sqlx::Connection::close(conn).await;
        result?;
        // VACUUM INTO does not flush the copy; a backup that a power loss can eat is no backup.
        let file = std::fs::File::open(&partial)
            .map_err(|e| format!("reading back {}: {e}", partial.display()))?;
        file.sync_all()
            .map_err(|e| format!("flushing {}: {e}", partial.display()))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        place_without_overwriting(&partial, destination)?;
        Ok::<u64, String>(size)
    }
    .await;
    let _ = std::fs::remove_file(&partial);
    copied
}

/// `.<name>.partial` beside `destination`, in a folder that must exist.
fn partial_name(destination: &Path) -> Result<PathBuf, String> {
    let name = destination
        .file_name()
        .ok_or_else(|| format!("{} names no file", destination.display()))?;
    let folder = match destination.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !folder.is_dir() {
        return Err(format!("the folder {} does not exist", folder.display()));
    }
    let mut partial = std::ffi::OsString::from(".");
    partial.push(name);
    partial.push(".partial");
    Ok(folder.join(partial))
}

/// Gives the finished copy its name: a hard link fails if the name was taken meanwhile,
/// where a rename would replace the file. Then flushes the folder so the name survives a
/// power loss.
fn place_without_overwriting(partial: &Path, destination: &Path) -> Result<(), String> {
    match std::fs::hard_link(partial, destination) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(format!(
                "{} already exists; a backup never overwrites a file: choose a new name",
                destination.display()
            ));
        }
        // File systems without hard links: the name was free a moment ago.
        Err(_) => {
            if destination.symlink_metadata().is_ok() {
                return Err(format!(
                    "{} already exists; a backup never overwrites a file: choose a new name",
                    destination.display()
                ));
            }
            std::fs::rename(partial, destination)
                .map_err(|e| format!("naming the backup {}: {e}", destination.display()))?;
        }
    }
    #[cfg(unix)]
    if let Some(folder) = destination.parent() {
        let folder = if folder.as_os_str().is_empty() {
            Path::new(".")
        } else {
            folder
        };
        if let Ok(dir) = std::fs::File::open(folder) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}
