//! Rendezvous: hosts wait under nameplates, viewers claim them, and the two pair through the relay.
//!
//! Each control connection is served by one task ([`serve`]): [`host::run`] or [`viewer::run`] after the
//! hello. The two tasks of a pairing talk over mailboxes (`PeerEvent`s); the host's task decides the
//! outcome and owns the session's routes, so when either task ends the routes go with it.
//!
//! ```text
//! viewer task                         host task
//! claim(nameplate) → host mailbox
//! Joined{viewer mailbox, addr,       allocate tags
//!        verified technician} ──────► (PeerJoined to the host names the technician)
//!            ◄──────────────────────── Tag(viewer tag)
//! Pake / Confirm / Result ──────────► forwarded to the host client (and back the same way)
//! Commit(resume commitment) ────────► kept: a resume record if both ends committed the same
//!            ◄──────────────────────── Ready (routes installed) | Failed(reason)
//! Ended(outcome) ───────────────────► (why the viewer's side ended: for the audit log)
//! ```
//!
//! Both tasks relay pairing messages the same way and the host task decides the outcome with a pure
//! [`pairing::PairingVerdict`] ([`pairing`]).
//!
//! The host task writes one audit row per registered code when it is done with it, counts wrong codes
//! against the failed-claim budget ([`crate::budget`]) and stores the resume record of a paired session
//! ([`crate::resume`]); [`rejoin`] admits only sessions with a record.

pub mod host;
mod io;
pub mod pairing;
pub mod rejoin;
pub mod state;
pub mod viewer;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tether_shared::relay_proto::{RelayErrorKind, RelayToClient, Role, VerifiedTechnician};
use tether_shared::PROTOCOL_VERSION;
use tokio::sync::mpsc;

use crate::audit::{AuditRecord, Outcome};
use crate::budget::{FailedClaims, Tripped};
use crate::config::RelayConfig;
use crate::conns::ConnLimits;
use crate::forward::Router;
use crate::limits::Limits;
use crate::log_text::Escaped;
use crate::metrics::Metrics;
use crate::resume::ResumeLive;
use crate::revocation::LiveAccounts;
use crate::store::{now_ms, Store};
use io::ClientIo;
pub use io::CLOSE_BUSY;
pub use state::Nameplates;

/// What one side of a pairing tells the other's task.
#[derive(Debug)]
pub enum PeerEvent {
    Joined {
        viewer: Mailbox,
        addr: SocketAddr,
        technician: Option<VerifiedTechnician>,
    },
    Tag(u64),
    Pake(Vec<u8>),
    Confirm(Vec<u8>),
    Result(bool),
    /// The viewer's commitment to the session's resume id.
    Commit([u8; 32]),
    Ready,
    Failed(RelayErrorKind),
    /// To the first of two rejoining ends: the routes are back, under `tag`; `partner` reaches the other.
    Rejoined {
        tag: u64,
        partner: Mailbox,
    },
    /// The viewer's side of a live session ended, and how.
    Ended(Outcome),
}

pub type Mailbox = mpsc::Sender<PeerEvent>;

/// Room in a mailbox: a pairing exchanges a handful of messages.
const MAILBOX: usize = 16;

/// State shared by all connection tasks.
#[derive(Debug)]
pub struct Hub {
    pub cfg: RelayConfig,
    pub nameplates: Mutex<Nameplates<Mailbox>>,
    pub router: Router,
    pub limits: Limits,
    pub connections: AtomicUsize,
    pub pairings: AtomicUsize,
    /// Ends of paired sessions waiting for their peer to rejoin, by resume commitment.
    pub rejoins: Mutex<std::collections::HashMap<[u8; 32], rejoin::Waiting>>,
    /// Live sessions under each resume record (see [`crate::resume`]).
    pub resume_live: Arc<ResumeLive>,
    /// Wrong codes per viewer address key and relay-wide.
    pub failed_claims: Mutex<FailedClaims>,
    /// Turns for checking technician tokens (argon2): bounds its memory and CPU.
    pub token_checks: tokio::sync::Semaphore,
    /// Live control connections per address key and in all.
    pub conns: Arc<ConnLimits>,
    pub store: Arc<Store>,
    pub metrics: Metrics,
    pub live: Arc<LiveAccounts>,
    /// Shutting down: no new codes, no new claims; live sessions go on until the drain deadline.
    pub draining: AtomicBool,
}

impl Hub {
    pub fn new(cfg: RelayConfig, router: Router, store: Arc<Store>) -> Self {
        Self {
            nameplates: Mutex::new(Nameplates::new(cfg.code_ttl, cfg.max_waiting_hosts)),
            limits: Limits::new(&cfg),
            router,
            connections: AtomicUsize::new(0),
            pairings: AtomicUsize::new(0),
            rejoins: Mutex::default(),
            resume_live: ResumeLive::new(store.clone(), cfg.resume_window),
            failed_claims: Mutex::new(FailedClaims::new(&cfg)),
            token_checks: tokio::sync::Semaphore::new(cfg.max_token_checks.max(1)),
            conns: ConnLimits::new(cfg.max_connections_per_address, cfg.max_connections),
            store,
            metrics: Metrics::default(),
            live: Arc::default(),
            draining: AtomicBool::new(false),
            cfg,
        }
    }

    pub fn failed_claims(&self) -> std::sync::MutexGuard<'_, FailedClaims> {
        self.failed_claims.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A claim from `viewer` failed on a wrong code: count it; a budget it used up is logged, counted and
    /// written to the audit log.
    pub fn wrong_code(&self, viewer: SocketAddr, host: SocketAddr) {
        self.metrics.failed_claims.fetch_add(1, Ordering::Relaxed);
        let tripped = self.failed_claims().fail(Instant::now(), viewer.ip());
        for budget in tripped {
            self.metrics.failed_claim_budget_trips.fetch_add(1, Ordering::Relaxed);
            let (outcome, scope) = match budget {
                Tripped::Address => (Outcome::FailedClaimBudget, "this address"),
                Tripped::Global => (Outcome::FailedClaimBudgetGlobal, "the whole relay"),
            };
            tracing::warn!(%viewer, "failed-claim budget spent: claims from {scope} are refused for a while");
            let now = now_ms();
            self.audit(AuditRecord {
                session_id: format!("{:016x}", rand::random::<u64>()),
                registered_at: now,
                claimed_at: Some(now),
                ended_at: now,
                technician: None,
                host_addr: host.to_string(),
                viewer_addr: Some(viewer.to_string()),
                bytes_host_to_viewer: 0,
                bytes_viewer_to_host: 0,
                outcome: outcome.as_str().to_owned(),
            });
        }
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// The relay's state as a snapshot.
    pub fn stats(&self) -> crate::server::RelayStats {
        crate::server::RelayStats {
            connections: self.connections.load(Ordering::Relaxed),
            waiting_hosts: self.nameplates().waiting(),
            pairings: self.pairings.load(Ordering::Relaxed),
            sessions: self.router.len() / 2,
        }
    }

    /// `/metrics` in the Prometheus text format.
    pub fn render_metrics(&self) -> String {
        let stats = self.stats();
        let totals = &self.router.totals;
        self.metrics.render(
            &crate::metrics::Gauges {
                connections: stats.connections,
                waiting_hosts: stats.waiting_hosts,
                pairings: stats.pairings,
                sessions: stats.sessions,
                bytes_host_to_viewer: totals.host_to_viewer.load(Ordering::Relaxed),
                bytes_viewer_to_host: totals.viewer_to_host.load(Ordering::Relaxed),
                packets_over_cap: totals.over_cap.load(Ordering::Relaxed),
                draining: self.is_draining(),
            },
            &totals.dwell,
        )
    }

    /// Write an audit row off the async threads. A failure is logged (metadata only), never fatal.
    pub fn audit(&self, record: AuditRecord) {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = store.record(&record) {
                tracing::error!(session = %record.session_id, "could not write the audit row: {e}");
            }
        });
    }

    fn nameplates(&self) -> std::sync::MutexGuard<'_, Nameplates<Mailbox>> {
        // A poisoned lock means a task panicked while holding it; the state is still consistent (every
        // method leaves it so), so carry on rather than take the relay down.
        self.nameplates.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Counts a live connection for as long as it exists.
struct Counted<'a>(&'a AtomicUsize);

impl<'a> Counted<'a> {
    fn new(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serve one control connection from hello to close. Never panics on client input: every protocol
/// violation ends this connection with an error message, and nothing else.
/// `hello_by` is the deadline for the client's `Hello`, counted from its first packet (so the QUIC
/// handshake and the hello share one `handshake_timeout`).
pub async fn serve(conn: quinn::Connection, hub: Arc<Hub>, hello_by: tokio::time::Instant) {
    let _live = Counted::new(&hub.connections);
    let addr = conn.remote_address();
    let hello = tokio::time::timeout_at(hello_by, ClientIo::accept(conn.clone())).await;
    let (mut io, role) = match hello {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => {
            tracing::debug!(%addr, "hello failed: {}", Escaped(&e));
            return;
        }
        Err(_) => {
            tracing::debug!(%addr, "no hello before the handshake deadline");
            conn.close(io::CLOSE_TIMEOUT.into(), b"handshake timeout");
            return;
        }
    };
    if io.send(&RelayToClient::Welcome { version: PROTOCOL_VERSION }).await.is_err() {
        return;
    }
    let result = match role {
        Role::Host => host::run(&mut io, &hub, addr).await,
        Role::Viewer => viewer::run(&mut io, &hub, addr).await,
    };
    match result {
        Ok(()) => tracing::debug!(%addr, ?role, "connection ended"),
        Err(kind) => {
            tracing::info!(%addr, ?role, "connection closed: {}", Escaped(&kind));
            io.fail(kind).await;
        }
    }
}
