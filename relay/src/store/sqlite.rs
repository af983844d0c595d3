//! The embedded backend: one SQLite file in the data directory.
//!
//! The data directory is made readable by its owner only (0700) and the database file 0600 (SQLite gives
//! its `-wal` and `-shm` files the database's mode), whatever the umask: it holds the account hashes and
//! the audit log, and next to it the relay's private key ([`crate::certs`]).
//!
//! Migrations are numbered by SQLite's `user_version`. Version 1 is the schema as it stood before
//! versions were kept — tables created if missing, and the columns added since then added if missing —
//! so a database of any earlier relay opens; each later migration runs once, in order.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use super::{create_private_dir, Db, StoreError};
use crate::accounts::Account;
use crate::audit::AuditRecord;
use crate::resume::ResumeRecord;

pub const DB_FILE: &str = "relay.sqlite3";

const SCHEMA_V1: &str = "
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

/// Columns added before versions were kept: `part_of` with invites, `record_len` and `record_head` with
/// session records. Version 1 adds each one a database lacks.
const V1_ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    ("audit", "part_of", "TEXT"),
    ("resume", "part_of", "TEXT"),
    ("audit", "record_len", "INTEGER"),
    ("audit", "record_head", "TEXT"),
];

/// The migrations after version 1, in order: version 2 is the first.
pub const MIGRATIONS: &[&str] = &[
    // 2: the relay that wrote an audit row (several relays may share a PostgreSQL database; kept here
    // too, so an export reads the same everywhere).
    "ALTER TABLE audit ADD COLUMN relay TEXT;",
];

fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version < 1 {
        conn.execute_batch(SCHEMA_V1)?;
        for (table, column, kind) in V1_ADDED_COLUMNS {
            let has: bool = conn
                .prepare(&format!("SELECT 1 FROM pragma_table_info('{table}') WHERE name = '{column}'"))?
                .exists([])?;
            if !has {
                conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind};"))?;
            }
        }
        conn.pragma_update(None, "user_version", 1)?;
    }
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        let to = i as i64 + 2;
        if version < to {
            let tx = conn.unchecked_transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", to)?;
            tx.commit()?;
        }
    }
    Ok(())
}

/// The open SQLite database. Calls are short; the lock is never held across an `.await`.
#[derive(Debug)]
pub struct Sqlite {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl Sqlite {
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
        migrate(&conn).map_err(open_err)?;
        Ok(Self { conn: Mutex::new(conn), path })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // Every statement leaves the connection consistent, so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Db for Sqlite {
    fn insert_account(&self, name: &str, token_hash: &str, now: i64) -> Result<Option<i64>, StoreError> {
        let conn = self.conn();
        let exists: Option<i64> =
            conn.query_row("SELECT id FROM accounts WHERE name = ?1", [name], |r| r.get(0)).optional()?;
        if exists.is_some() {
            return Ok(None);
        }
        conn.execute(
            "INSERT INTO accounts (name, token_hash, created_at) VALUES (?1, ?2, ?3)",
            params![name, token_hash, now],
        )?;
        Ok(Some(conn.last_insert_rowid()))
    }

    fn replace_token_hash(&self, name: &str, token_hash: &str) -> Result<Option<i64>, StoreError> {
        let conn = self.conn();
        let id: Option<i64> = conn
            .query_row("SELECT id FROM accounts WHERE name = ?1 AND revoked_at IS NULL", [name], |r| r.get(0))
            .optional()?;
        if let Some(id) = id {
            conn.execute("UPDATE accounts SET token_hash = ?1 WHERE id = ?2", params![token_hash, id])?;
        }
        Ok(id)
    }

    fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT name, created_at, revoked_at FROM accounts ORDER BY id")?;
        let rows = stmt.query_map([], |r| {
            Ok(Account { name: r.get(0)?, created_at: r.get(1)?, revoked_at: r.get(2)? })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn revoke_account(&self, name: &str, now: i64) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "UPDATE accounts SET revoked_at = ?1 WHERE name = ?2 AND revoked_at IS NULL",
            params![now, name],
        )?;
        Ok(n > 0)
    }

    fn active_token_hash(&self, id: i64) -> Result<Option<(String, String)>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT name, token_hash FROM accounts WHERE id = ?1 AND revoked_at IS NULL",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    fn revoked_among(&self, names: &[String]) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached("SELECT 1 FROM accounts WHERE name = ?1 AND revoked_at IS NOT NULL")?;
        let mut revoked = Vec::new();
        for name in names {
            if stmt.exists([name])? {
                revoked.push(name.clone());
            }
        }
        Ok(revoked)
    }

    fn record_audit(&self, r: &AuditRecord) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO audit (session_id, registered_at, claimed_at, ended_at, technician, host_addr, \
             viewer_addr, bytes_host_to_viewer, bytes_viewer_to_host, outcome, part_of, record_len, \
             record_head, relay) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            params![
                r.session_id,
                r.registered_at,
                r.claimed_at,
                r.ended_at,
                r.technician,
                r.host_addr,
                r.viewer_addr,
                r.bytes_host_to_viewer as i64,
                r.bytes_viewer_to_host as i64,
                r.outcome,
                r.part_of,
                r.record_len.map(|n| n as i64),
                r.record_head,
                r.relay
            ],
        )?;
        Ok(())
    }

    fn audit_rows(&self) -> Result<Vec<AuditRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT session_id, registered_at, claimed_at, ended_at, technician, host_addr, viewer_addr, \
             bytes_host_to_viewer, bytes_viewer_to_host, outcome, part_of, record_len, record_head, relay \
             FROM audit ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(AuditRecord {
                session_id: r.get(0)?,
                registered_at: r.get(1)?,
                claimed_at: r.get(2)?,
                ended_at: r.get(3)?,
                technician: r.get(4)?,
                host_addr: r.get(5)?,
                viewer_addr: r.get(6)?,
                bytes_host_to_viewer: r.get::<_, i64>(7)? as u64,
                bytes_viewer_to_host: r.get::<_, i64>(8)? as u64,
                outcome: r.get(9)?,
                part_of: r.get(10)?,
                record_len: r.get::<_, Option<i64>>(11)?.map(|n| n as u64),
                record_head: r.get(12)?,
                relay: r.get(13)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn save_resume(&self, r: &ResumeRecord) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT OR REPLACE INTO resume (commitment, session_id, host_addr, viewer_addr, technician, \
             created_at, expires_at, part_of) VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, ?7)",
            params![
                &r.commitment[..],
                r.session_id,
                r.host_addr,
                r.viewer_addr,
                r.technician,
                r.created_at,
                r.part_of
            ],
        )?;
        Ok(())
    }

    fn find_resume(&self, commitment: &[u8; 32], now: i64) -> Result<Option<ResumeRecord>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT session_id, host_addr, viewer_addr, technician, created_at, part_of FROM resume \
                 WHERE commitment = ?1 AND (expires_at IS NULL OR expires_at > ?2)",
                params![&commitment[..], now],
                |r| {
                    Ok(ResumeRecord {
                        commitment: *commitment,
                        session_id: r.get(0)?,
                        host_addr: r.get(1)?,
                        viewer_addr: r.get(2)?,
                        technician: r.get(3)?,
                        created_at: r.get(4)?,
                        part_of: r.get(5)?,
                    })
                },
            )
            .optional()?)
    }

    fn set_resume_expiry(&self, commitment: &[u8; 32], expires_at: Option<i64>) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE resume SET expires_at = ?1 WHERE commitment = ?2",
            params![expires_at, &commitment[..]],
        )?;
        Ok(())
    }

    fn resume_after_restart(&self, expires_at: i64) -> Result<usize, StoreError> {
        Ok(self.conn().execute("UPDATE resume SET expires_at = ?1 WHERE expires_at IS NULL", [expires_at])?)
    }

    fn prune_resume(&self, now: i64) -> Result<usize, StoreError> {
        Ok(self
            .conn()
            .execute("DELETE FROM resume WHERE expires_at IS NOT NULL AND expires_at <= ?1", [now])?)
    }

    fn reachable(&self) -> Result<(), StoreError> {
        Ok(self.conn().query_row("SELECT 1", [], |_| Ok(()))?)
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
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
