//! The shared backend: PostgreSQL, for several relays of one organization.
//!
//! Accounts and the audit log are one for every relay pointed at the database; an audit row names the
//! relay that wrote it; resume records carry their relay's name and each relay touches only its own.
//! Revoking an account notifies every relay at once (`NOTIFY tether_revoked, '<name>'` in the revoking
//! transaction); each relay listens on a connection of its own ([`listen`]) and ends that technician's
//! sessions as soon as it hears, besides its periodic check.
//!
//! The driver is `postgres`, the blocking client of `tokio-postgres` (same maintainers): the relay's
//! store is called from blocking threads and from the admin's commands, and one dedicated thread owns the
//! connection and runs each call, so no call ever starts a runtime inside the relay's own. A lost
//! connection is dropped and the next call connects again ([`StoreError::Unreachable`] meanwhile), so
//! the relay recovers by itself when the server is back.
//!
//! Migrations are numbered ([`MIGRATIONS`]) and recorded in `tether_migrations`; a relay applies the
//! missing ones at start under an advisory lock, so relays starting together migrate once.

use std::sync::mpsc;
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, Config, NoTls};

use super::{Db, Revocations, StoreError};
use crate::accounts::Account;
use crate::audit::AuditRecord;
use crate::resume::ResumeRecord;

/// The channel every relay listens on; the payload is the revoked account's name.
const REVOKED: &str = "tether_revoked";
/// Taken while migrating (any constant shared by all relays: "TETH").
const MIGRATION_LOCK: i64 = 0x5445_5448;
/// How long to wait for the server when connecting.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The schema, one migration per entry; version N is entry N-1.
pub const MIGRATIONS: &[&str] = &[
    "
CREATE TABLE accounts (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    token_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE TABLE audit (
    id BIGSERIAL PRIMARY KEY,
    session_id TEXT NOT NULL,
    registered_at BIGINT NOT NULL,
    claimed_at BIGINT,
    ended_at BIGINT NOT NULL,
    technician TEXT,
    host_addr TEXT NOT NULL,
    viewer_addr TEXT,
    bytes_host_to_viewer BIGINT NOT NULL,
    bytes_viewer_to_host BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    part_of TEXT,
    record_len BIGINT,
    record_head TEXT,
    relay TEXT
);
CREATE TABLE resume (
    relay TEXT NOT NULL,
    commitment BYTEA NOT NULL,
    session_id TEXT NOT NULL,
    host_addr TEXT NOT NULL,
    viewer_addr TEXT NOT NULL,
    technician TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    part_of TEXT,
    PRIMARY KEY (relay, commitment)
);
",
    "
-- 2: the waiting nameplates of every relay (one directory, so codes are unique across relays and a claim
-- on any relay finds the host's).
CREATE TABLE nameplates (
    nameplate TEXT PRIMARY KEY,
    relay TEXT NOT NULL,
    address TEXT NOT NULL,
    fingerprint BYTEA NOT NULL,
    until BIGINT NOT NULL
);
",
];

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// The PostgreSQL backend of one relay.
#[derive(Debug)]
pub struct Postgres {
    relay: String,
    target: String,
    jobs: mpsc::Sender<Job>,
}

/// After a failed connection attempt, calls fail at once for this long rather than each waiting on
/// another attempt (a queue of claims would otherwise wait in turn on a server that is gone).
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The connection, owned by the backend's thread; `None` after it was lost, until the next call.
struct Connection {
    config: Config,
    client: Option<Client>,
    /// The last failed attempt and why.
    failed: Option<(std::time::Instant, String)>,
}

impl Connection {
    fn run<T>(&mut self, f: impl FnOnce(&mut Client) -> Result<T, postgres::Error>) -> Result<T, StoreError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            if let Some((at, why)) = &self.failed {
                if at.elapsed() < RETRY_AFTER {
                    return Err(StoreError::Unreachable(why.clone()));
                }
            }
            match self.config.connect(NoTls) {
                Ok(client) => {
                    self.client = Some(client);
                    self.failed = None;
                }
                Err(e) => {
                    self.failed = Some((std::time::Instant::now(), e.to_string()));
                    return Err(StoreError::Unreachable(e.to_string()));
                }
            }
        }
        let Some(client) = self.client.as_mut() else { unreachable!("connected above") };
        match f(client) {
            Ok(v) => Ok(v),
            Err(e) if e.is_closed() || client.is_closed() || e.as_db_error().is_none() => {
                self.client = None;
                Err(StoreError::Unreachable(e.to_string()))
            }
            Err(e) => Err(StoreError::Postgres(e.to_string())),
        }
    }
}

/// Parse a connection string (URL or `key=value` form) with our timeouts, and say what it names without
/// its password.
fn config(url: &str) -> Result<(Config, String), StoreError> {
    let mut config: Config = url.parse().map_err(|e| {
        StoreError::Postgres(format!("database_url is not a PostgreSQL connection string: {e}"))
    })?;
    config.connect_timeout(CONNECT_TIMEOUT).application_name("tether-relay");
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            postgres::config::Host::Tcp(name) => name.clone(),
            postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let target = format!(
        "PostgreSQL {} database {}",
        hosts.join(","),
        config.get_dbname().unwrap_or(config.get_user().unwrap_or("(default)"))
    );
    Ok((config, target))
}

impl Postgres {
    /// Connect as relay `relay`, migrate, and start listening for revocations.
    pub fn connect(url: &str, relay: &str) -> Result<(Self, Revocations), StoreError> {
        let (config, target) = config(url)?;
        let (jobs, queue) = mpsc::channel::<Job>();
        let mut conn = Connection { config: config.clone(), client: None, failed: None };
        std::thread::Builder::new()
            .name("postgres".into())
            .spawn(move || {
                for job in queue {
                    // A row the code did not expect (a column of another type, say) must not take the
                    // relay's database away: the caller gets an error, the next call a fresh connection.
                    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut conn)));
                    if ran.is_err() {
                        conn.client = None;
                    }
                }
            })
            .map_err(|e| StoreError::Postgres(format!("starting the database thread: {e}")))?;
        let db = Self { relay: relay.to_owned(), target, jobs };
        db.call(migrate)?;
        let (tx, revocations) = tokio::sync::mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("postgres-listen".into())
            .spawn(move || listen(config, tx))
            .map_err(|e| StoreError::Postgres(format!("starting the listening thread: {e}")))?;
        Ok((db, revocations))
    }

    /// Run `f` on the connection's thread and wait for its answer.
    fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, postgres::Error> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |conn| {
            let _ = tx.send(conn.run(f));
        });
        self.jobs.send(job).map_err(|_| StoreError::Postgres("the database thread has stopped".into()))?;
        rx.recv().map_err(|_| StoreError::Postgres("the database answered something unexpected".into()))?
    }
}

fn migrate(client: &mut Client) -> Result<(), postgres::Error> {
    let mut tx = client.transaction()?;
    // "relation … already exists, skipping" is expected on every start after the first.
    tx.batch_execute("SET LOCAL client_min_messages = warning")?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS tether_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )?;
    let done: i32 = tx.query_one("SELECT COALESCE(MAX(version), 0) FROM tether_migrations", &[])?.get(0);
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        let version = i as i32 + 1;
        if version > done {
            tx.batch_execute(sql)?;
            tx.execute(
                "INSERT INTO tether_migrations (version, applied_at) VALUES ($1, $2)",
                &[&version, &super::now_ms()],
            )?;
        }
    }
    tx.commit()
}

/// Listen for revocations until `tx`'s receiver is gone, reconnecting after a loss.
fn listen(config: Config, tx: tokio::sync::mpsc::UnboundedSender<String>) {
    let mut client: Option<Client> = None;
    while !tx.is_closed() {
        let Some(c) = client.as_mut().filter(|c| !c.is_closed()) else {
            client = config
                .connect(NoTls)
                .ok()
                .and_then(|mut c| c.batch_execute(&format!("LISTEN {REVOKED}")).ok().map(|()| c));
            if client.is_none() {
                std::thread::sleep(Duration::from_secs(1));
            }
            continue;
        };
        let mut heard = Vec::new();
        let mut lost = false;
        {
            let mut notifications = c.notifications();
            let mut it = notifications.timeout_iter(Duration::from_secs(1));
            loop {
                match it.next() {
                    Ok(Some(n)) if n.channel() == REVOKED => heard.push(n.payload().to_owned()),
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) => {
                        lost = true;
                        break;
                    }
                }
            }
        }
        if lost {
            client = None;
        }
        for name in heard {
            let _ = tx.send(name);
        }
    }
}

fn u(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Db for Postgres {
    fn insert_account(&self, name: &str, token_hash: &str, now: i64) -> Result<Option<i64>, StoreError> {
        let (name, hash) = (name.to_owned(), token_hash.to_owned());
        self.call(move |c| {
            let row = c.query_opt(
                "INSERT INTO accounts (name, token_hash, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO NOTHING RETURNING id",
                &[&name, &hash, &now],
            )?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn replace_token_hash(&self, name: &str, token_hash: &str) -> Result<Option<i64>, StoreError> {
        let (name, hash) = (name.to_owned(), token_hash.to_owned());
        self.call(move |c| {
            let row = c.query_opt(
                "UPDATE accounts SET token_hash = $1 WHERE name = $2 AND revoked_at IS NULL RETURNING id",
                &[&hash, &name],
            )?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.call(|c| {
            let rows = c.query("SELECT name, created_at, revoked_at FROM accounts ORDER BY id", &[])?;
            Ok(rows
                .iter()
                .map(|r| Account { name: r.get(0), created_at: r.get(1), revoked_at: r.get(2) })
                .collect())
        })
    }

    fn revoke_account(&self, name: &str, now: i64) -> Result<bool, StoreError> {
        let name = name.to_owned();
        self.call(move |c| {
            let mut tx = c.transaction()?;
            let n = tx.execute(
                "UPDATE accounts SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL",
                &[&now, &name],
            )?;
            if n > 0 {
                tx.execute("SELECT pg_notify($1, $2)", &[&REVOKED, &name])?;
            }
            tx.commit()?;
            Ok(n > 0)
        })
    }

    fn active_token_hash(&self, id: i64) -> Result<Option<(String, String)>, StoreError> {
        self.call(move |c| {
            let row = c.query_opt(
                "SELECT name, token_hash FROM accounts WHERE id = $1 AND revoked_at IS NULL",
                &[&id],
            )?;
            Ok(row.map(|r| (r.get(0), r.get(1))))
        })
    }

    fn revoked_among(&self, names: &[String]) -> Result<Vec<String>, StoreError> {
        let names = names.to_vec();
        self.call(move |c| {
            let rows = c.query(
                "SELECT name FROM accounts WHERE name = ANY($1) AND revoked_at IS NOT NULL ORDER BY id",
                &[&names],
            )?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    fn record_audit(&self, r: &AuditRecord) -> Result<(), StoreError> {
        let r = r.clone();
        self.call(move |c| {
            c.execute(
                "INSERT INTO audit (session_id, registered_at, claimed_at, ended_at, technician, host_addr, \
                 viewer_addr, bytes_host_to_viewer, bytes_viewer_to_host, outcome, part_of, record_len, \
                 record_head, relay) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                &[
                    &r.session_id,
                    &r.registered_at,
                    &r.claimed_at,
                    &r.ended_at,
                    &r.technician,
                    &r.host_addr,
                    &r.viewer_addr,
                    &u(r.bytes_host_to_viewer),
                    &u(r.bytes_viewer_to_host),
                    &r.outcome,
                    &r.part_of,
                    &r.record_len.map(u),
                    &r.record_head,
                    &r.relay,
                ],
            )
            .map(drop)
        })
    }

    fn audit_rows(&self) -> Result<Vec<AuditRecord>, StoreError> {
        self.call(|c| {
            let rows = c.query(
                "SELECT session_id, registered_at, claimed_at, ended_at, technician, host_addr, viewer_addr, \
                 bytes_host_to_viewer, bytes_viewer_to_host, outcome, part_of, record_len, record_head, relay \
                 FROM audit ORDER BY id",
                &[],
            )?;
            Ok(rows
                .iter()
                .map(|r| AuditRecord {
                    session_id: r.get(0),
                    registered_at: r.get(1),
                    claimed_at: r.get(2),
                    ended_at: r.get(3),
                    technician: r.get(4),
                    host_addr: r.get(5),
                    viewer_addr: r.get(6),
                    bytes_host_to_viewer: r.get::<_, i64>(7).max(0) as u64,
                    bytes_viewer_to_host: r.get::<_, i64>(8).max(0) as u64,
                    outcome: r.get(9),
                    part_of: r.get(10),
                    record_len: r.get::<_, Option<i64>>(11).map(|n| n.max(0) as u64),
                    record_head: r.get(12),
                    relay: r.get(13),
                })
                .collect())
        })
    }

    fn save_resume(&self, r: &ResumeRecord) -> Result<(), StoreError> {
        let (r, relay) = (r.clone(), self.relay.clone());
        self.call(move |c| {
            c.execute(
                "INSERT INTO resume (relay, commitment, session_id, host_addr, viewer_addr, technician, \
                 created_at, expires_at, part_of) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8) \
                 ON CONFLICT (relay, commitment) DO UPDATE SET session_id = $3, host_addr = $4, \
                 viewer_addr = $5, technician = $6, created_at = $7, expires_at = NULL, part_of = $8",
                &[
                    &relay,
                    &&r.commitment[..],
                    &r.session_id,
                    &r.host_addr,
                    &r.viewer_addr,
                    &r.technician,
                    &r.created_at,
                    &r.part_of,
                ],
            )
            .map(drop)
        })
    }

    fn find_resume(&self, commitment: &[u8; 32], now: i64) -> Result<Option<ResumeRecord>, StoreError> {
        let (commitment, relay) = (*commitment, self.relay.clone());
        self.call(move |c| {
            let row = c.query_opt(
                "SELECT session_id, host_addr, viewer_addr, technician, created_at, part_of FROM resume \
                 WHERE relay = $1 AND commitment = $2 AND (expires_at IS NULL OR expires_at > $3)",
                &[&relay, &&commitment[..], &now],
            )?;
            Ok(row.map(|r| ResumeRecord {
                commitment,
                session_id: r.get(0),
                host_addr: r.get(1),
                viewer_addr: r.get(2),
                technician: r.get(3),
                created_at: r.get(4),
                part_of: r.get(5),
            }))
        })
    }

    fn set_resume_expiry(&self, commitment: &[u8; 32], expires_at: Option<i64>) -> Result<(), StoreError> {
        let (commitment, relay) = (*commitment, self.relay.clone());
        self.call(move |c| {
            c.execute(
                "UPDATE resume SET expires_at = $1 WHERE relay = $2 AND commitment = $3",
                &[&expires_at, &relay, &&commitment[..]],
            )
            .map(drop)
        })
    }

    fn resume_after_restart(&self, expires_at: i64) -> Result<usize, StoreError> {
        let relay = self.relay.clone();
        self.call(move |c| {
            c.execute(
                "UPDATE resume SET expires_at = $1 WHERE relay = $2 AND expires_at IS NULL",
                &[&expires_at, &relay],
            )
            .map(|n| n as usize)
        })
    }

    fn prune_resume(&self, now: i64) -> Result<usize, StoreError> {
        let relay = self.relay.clone();
        self.call(move |c| {
            c.execute(
                "DELETE FROM resume WHERE relay = $1 AND expires_at IS NOT NULL AND expires_at <= $2",
                &[&relay, &now],
            )
            .map(|n| n as usize)
        })
    }

    fn directory(&self) -> Option<&dyn super::Directory> {
        Some(self)
    }

    fn reachable(&self) -> Result<(), StoreError> {
        self.call(|c| c.simple_query("SELECT 1").map(drop))
    }

    fn describe(&self) -> String {
        self.target.clone()
    }
}

impl super::Directory for Postgres {
    fn list_nameplate(
        &self,
        nameplate: &str,
        address: &str,
        fingerprint: &[u8; 32],
        until: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let (nameplate, address, fingerprint, relay) =
            (nameplate.to_owned(), address.to_owned(), *fingerprint, self.relay.clone());
        self.call(move |c| {
            // Taken over only from a lapsed listing (or one of this relay's own, left by a crash).
            let row = c.query_opt(
                "INSERT INTO nameplates (nameplate, relay, address, fingerprint, until) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (nameplate) DO UPDATE SET relay = $2, address = $3, fingerprint = $4, until = $5 \
                 WHERE nameplates.until <= $6 OR nameplates.relay = $2 RETURNING 1",
                &[&nameplate, &relay, &address, &&fingerprint[..], &until, &now],
            )?;
            Ok(row.is_some())
        })
    }

    fn find_nameplate(&self, nameplate: &str, now: i64) -> Result<Option<super::Listing>, StoreError> {
        let nameplate = nameplate.to_owned();
        self.call(move |c| {
            let row = c.query_opt(
                "SELECT relay, address, fingerprint FROM nameplates WHERE nameplate = $1 AND until > $2",
                &[&nameplate, &now],
            )?;
            Ok(row.and_then(|r| {
                let fingerprint: Vec<u8> = r.get(2);
                Some(super::Listing {
                    relay: r.get(0),
                    address: r.get(1),
                    fingerprint: fingerprint.try_into().ok()?,
                })
            }))
        })
    }

    fn unlist_nameplate(&self, nameplate: &str) -> Result<(), StoreError> {
        let (nameplate, relay) = (nameplate.to_owned(), self.relay.clone());
        self.call(move |c| {
            c.execute("DELETE FROM nameplates WHERE nameplate = $1 AND relay = $2", &[&nameplate, &relay])
                .map(drop)
        })
    }

    fn clear_nameplates(&self, now: i64) -> Result<usize, StoreError> {
        let relay = self.relay.clone();
        self.call(move |c| {
            c.execute("DELETE FROM nameplates WHERE relay = $1 OR until <= $2", &[&relay, &now])
                .map(|n| n as usize)
        })
    }

    fn prune_nameplates(&self, now: i64) -> Result<usize, StoreError> {
        self.call(move |c| c.execute("DELETE FROM nameplates WHERE until <= $1", &[&now]).map(|n| n as usize))
    }
}
