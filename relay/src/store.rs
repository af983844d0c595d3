//! The relay's embedded database: one SQLite file in the data directory holding technician accounts
//! ([`crate::accounts`]) and the audit log ([`crate::audit`]).
//! Also the resume records of paired sessions ([`crate::resume`]). The running relay and the admin's
//! `tether-relay user …` / `audit …` commands open the same file; WAL mode lets them work side by side.
//!
//! The data directory is made readable by its owner only (0700) and the database file 0600 (SQLite gives
//! its `-wal` and `-shm` files the database's mode), whatever the umask: it holds the account hashes and
//! the audit log, and next to it the relay's private key ([`crate::certs`]).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::Connection;

pub const DB_FILE: &str = "relay.sqlite3";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Open { path: String, source: rusqlite::Error },
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("data directory {path}: {source}")]
    Dir { path: String, source: std::io::Error },
    #[error("{0}")]
    Account(String),
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS accounts (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    token_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL,
    registered_at INTEGER NOT NULL,
    claimed_at INTEGER,
    ended_at INTEGER NOT NULL,
    technician TEXT,
    host_addr TEXT NOT NULL,
    viewer_addr TEXT,
    bytes_host_to_viewer INTEGER NOT NULL,
    bytes_viewer_to_host INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    part_of TEXT,
    record_len INTEGER,
    record_head TEXT
);
";

/// The resume records of paired sessions ([`crate::resume`]).
const RESUME_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS resume (
    commitment BLOB PRIMARY KEY,
    session_id TEXT NOT NULL,
    host_addr TEXT NOT NULL,
    viewer_addr TEXT NOT NULL,
    technician TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    part_of TEXT
);
";

/// Columns added since the tables were first made: `part_of` with invites (the session an invited
/// colleague joined), `record_len` and `record_head` with session records. An older database gets each
/// missing one, once, on open.
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    ("audit", "part_of", "TEXT"),
    ("resume", "part_of", "TEXT"),
    ("audit", "record_len", "INTEGER"),
    ("audit", "record_head", "TEXT"),
];

fn add_missing_columns(conn: &Connection) -> rusqlite::Result<()> {
    for (table, column, kind) in ADDED_COLUMNS {
        let has: bool = conn
            .prepare(&format!("SELECT 1 FROM pragma_table_info('{table}') WHERE name = '{column}'"))?
            .exists([])?;
        if !has {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind};"))?;
        }
    }
    Ok(())
}

/// The open database. Calls are short; the lock is never held across an `.await`.
#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl Store {
    /// Open (and create if needed) the database in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        create_private_dir(data_dir)
            .map_err(|source| StoreError::Dir { path: data_dir.display().to_string(), source })?;
        let path = data_dir.join(DB_FILE);
        create_private_file(&path)
            .map_err(|source| StoreError::Dir { path: path.display().to_string(), source })?;
        let open_err = |source| StoreError::Open { path: path.display().to_string(), source };
        let conn = Connection::open(&path).map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(open_err)?;
        conn.execute_batch(SCHEMA).map_err(open_err)?;
        conn.execute_batch(RESUME_SCHEMA).map_err(open_err)?;
        add_missing_columns(&conn).map_err(open_err)?;
        Ok(Self { conn: Mutex::new(conn), path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        // Every statement leaves the connection consistent, so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Create `dir` and its missing parents readable by their owner only (0700). An existing directory keeps
/// its mode: the admin (or systemd's `StateDirectory`) chose it.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Make sure `path` exists and is readable and writable by its owner only (0600), before SQLite opens it.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        opts.mode(0o600);
        let file = opts.open(path)?;
        // A database made by an earlier version took the umask's mode: tighten it.
        if file.metadata()?.permissions().mode() & 0o077 != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        return Ok(());
    }
    #[allow(unreachable_code)]
    opts.open(path).map(drop)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
