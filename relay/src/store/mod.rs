//! The relay's database: technician accounts ([`crate::accounts`]), the audit log ([`crate::audit`]) and
//! the resume records of paired sessions ([`crate::resume`]), behind one trait ([`Db`]) with two
//! backends:
//!
//! - [`sqlite`], the default: one file in the data directory, nothing to install. The running relay and
//!   the admin's `tether-relay user …` / `audit …` commands open the same file side by side (WAL).
//! - [`postgres`], when the configuration names a `database_url`: several relays of one organization
//!   share accounts, revocations (pushed to every relay at once with `LISTEN/NOTIFY`) and one audit log,
//!   each row naming its relay. Resume records carry their relay too: each relay only touches its own.
//!
//! Both backends apply numbered migrations on open ([`sqlite::MIGRATIONS`], [`postgres::MIGRATIONS`]).
//! The trait is synchronous, as the relay's calls are short and run on blocking threads (or in the
//! admin's commands); the PostgreSQL backend does its I/O on a thread of its own.
//!
//! The account logic (tokens, argon2) and the record types live with their callers; a backend only
//! stores rows.

pub mod postgres;
pub mod sqlite;
#[cfg(test)]
mod tests;

use std::path::Path;

use crate::accounts::Account;
use crate::audit::AuditRecord;
use crate::resume::ResumeRecord;

pub use sqlite::DB_FILE;

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
    /// The PostgreSQL server could not be reached or answered with an error.
    #[error("database (PostgreSQL): {0}")]
    Postgres(String),
    /// The PostgreSQL server is out of reach now; the relay keeps trying.
    #[error("the database is unreachable: {0}")]
    Unreachable(String),
}

/// Row storage of one backend. Every method is one short statement or transaction.
pub trait Db: Send + Sync + std::fmt::Debug {
    /// Add an account; `Ok(None)` when the name is taken.
    fn insert_account(&self, name: &str, token_hash: &str, now: i64) -> Result<Option<i64>, StoreError>;
    /// Replace an active account's token hash; its id, or `None` if there is no such active account.
    fn replace_token_hash(&self, name: &str, token_hash: &str) -> Result<Option<i64>, StoreError>;
    /// Every account, oldest first.
    fn accounts(&self) -> Result<Vec<Account>, StoreError>;
    /// Revoke an active account (and, on PostgreSQL, tell every relay); false if there is none.
    fn revoke_account(&self, name: &str, now: i64) -> Result<bool, StoreError>;
    /// The name and token hash of active account `id`.
    fn active_token_hash(&self, id: i64) -> Result<Option<(String, String)>, StoreError>;
    /// Which of `names` are revoked.
    fn revoked_among(&self, names: &[String]) -> Result<Vec<String>, StoreError>;

    fn record_audit(&self, r: &AuditRecord) -> Result<(), StoreError>;
    /// Every audit row (of every relay sharing the database), oldest first.
    fn audit_rows(&self) -> Result<Vec<AuditRecord>, StoreError>;

    fn save_resume(&self, r: &ResumeRecord) -> Result<(), StoreError>;
    fn find_resume(&self, commitment: &[u8; 32], now: i64) -> Result<Option<ResumeRecord>, StoreError>;
    fn set_resume_expiry(&self, commitment: &[u8; 32], expires_at: Option<i64>) -> Result<(), StoreError>;
    fn resume_after_restart(&self, expires_at: i64) -> Result<usize, StoreError>;
    fn prune_resume(&self, now: i64) -> Result<usize, StoreError>;

    /// The directory of waiting nameplates, if relays share this database (PostgreSQL); `None` for a
    /// database of one relay.
    fn directory(&self) -> Option<&dyn Directory> {
        None
    }

    /// Whether the database answers now (for `/healthz`).
    fn reachable(&self) -> Result<(), StoreError>;
    /// What it is, for logs and errors (a file path, or PostgreSQL's host and database; never a password).
    fn describe(&self) -> String;
}

/// A nameplate as the directory lists it: the relay holding it, where clients reach that relay, and the
/// fingerprint of its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub relay: String,
    pub address: String,
    pub fingerprint: [u8; 32],
}

/// The waiting nameplates of every relay sharing a database, so that no two relays hand out the same one
/// and a viewer who asks any relay for a code finds the relay that holds it
/// ([`crate::rendezvous::directory`]). Times are milliseconds since the Unix epoch.
pub trait Directory: Send + Sync + std::fmt::Debug {
    /// List `nameplate` as this relay's until `until`. False if another relay's listing of it is still in
    /// force (the caller picks another nameplate).
    fn list_nameplate(
        &self,
        nameplate: &str,
        address: &str,
        fingerprint: &[u8; 32],
        until: i64,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Who holds `nameplate` now, if anyone.
    fn find_nameplate(&self, nameplate: &str, now: i64) -> Result<Option<Listing>, StoreError>;
    /// Drop this relay's listing of `nameplate` (its host left before anyone claimed the code).
    fn unlist_nameplate(&self, nameplate: &str) -> Result<(), StoreError>;
    /// Drop every listing of this relay (at start: none of its codes waits after a restart) and every
    /// lapsed one.
    fn clear_nameplates(&self, now: i64) -> Result<usize, StoreError>;
    /// Drop every lapsed listing, of any relay.
    fn prune_nameplates(&self, now: i64) -> Result<usize, StoreError>;
}

/// Account names revoked on another relay, as the database announced them.
pub type Revocations = tokio::sync::mpsc::UnboundedReceiver<String>;

/// The open database.
#[derive(Debug)]
pub struct Store {
    db: Box<dyn Db>,
}

impl Store {
    /// Open (and create if needed) the SQLite database in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        Ok(Self { db: Box::new(sqlite::Sqlite::open(data_dir)?) })
    }

    /// Connect to PostgreSQL at `url` as relay `relay` (migrating the schema if needed). Revocations made
    /// anywhere arrive on the returned channel, as long as the store lives.
    pub fn connect_postgres(url: &str, relay: &str) -> Result<(Self, Revocations), StoreError> {
        let (db, revocations) = postgres::Postgres::connect(url, relay)?;
        Ok((Self { db: Box::new(db) }, revocations))
    }

    /// The database `cfg` names: PostgreSQL with `database_url`, else SQLite in the data directory. With
    /// PostgreSQL, the revocations other relays announce come on the channel.
    pub fn for_config(cfg: &crate::RelayConfig) -> Result<(Self, Option<Revocations>), StoreError> {
        match &cfg.database_url {
            Some(url) => Self::connect_postgres(url, &cfg.name).map(|(s, r)| (s, Some(r))),
            None => Self::open(&cfg.data_dir).map(|s| (s, None)),
        }
    }

    /// The backend's rows.
    pub fn db(&self) -> &dyn Db {
        &*self.db
    }

    /// See [`Db::describe`].
    pub fn describe(&self) -> String {
        self.db.describe()
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

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
