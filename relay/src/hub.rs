//! The hub: relay-wide state every connection task shares (configuration, routing table, rate limits,
//! connection caps, failed-claim budget, account store, metrics, live accounts, draining), behind methods.
//!
//! It knows nothing of rendezvous: the nameplates and waiting rejoins live in `rendezvous::Rendezvous`,
//! which builds on it. Counters change through guards
//! ([`Hub::connection`], [`Hub::pairing`]) so a task that ends, however it ends, is no longer counted.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::audit::{AuditRecord, Outcome};
use crate::budget::{FailedClaims, Tripped};
use crate::config::RelayConfig;
use crate::conns::ConnLimits;
use crate::forward::Router;
use crate::limits::Limits;
use crate::metrics::{Gauges, Metrics};
use crate::resume::ResumeLive;
use crate::revocation::LiveAccounts;
use crate::store::{now_ms, Store};

/// A snapshot of the relay's state, for tests and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RelayStats {
    pub connections: usize,
    pub waiting_hosts: usize,
    pub pairings: usize,
    pub sessions: usize,
}

/// State shared by all connection tasks.
#[derive(Debug)]
pub struct Hub {
    cfg: RelayConfig,
    router: Router,
    limits: Limits,
    connections: AtomicUsize,
    pairings: AtomicUsize,
    /// Live sessions under each resume record (see [`crate::resume`]).
    resume_live: Arc<ResumeLive>,
    /// Wrong codes per viewer address key and relay-wide.
    failed_claims: Mutex<FailedClaims>,
    /// Turns for checking technician tokens (argon2): bounds its memory and CPU.
    token_checks: Semaphore,
    /// Live control connections per address key and in all.
    conns: Arc<ConnLimits>,
    store: Arc<Store>,
    metrics: Metrics,
    live: Arc<LiveAccounts>,
    /// Shutting down: no new codes, no new claims; live sessions go on until the drain deadline.
    draining: AtomicBool,
    /// Audit rows the database could not take (it was unreachable), oldest first, written when it is back.
    pending_audit: Arc<Mutex<std::collections::VecDeque<AuditRecord>>>,
}

/// At most this many audit rows wait for an unreachable database (a few MB); beyond, the oldest is
/// dropped and said so in the log.
const MAX_PENDING_AUDIT: usize = 100_000;

impl Hub {
    pub fn new(cfg: RelayConfig, router: Router, store: Arc<Store>) -> Self {
        Self {
            limits: Limits::new(&cfg),
            router,
            connections: AtomicUsize::new(0),
            pairings: AtomicUsize::new(0),
            resume_live: ResumeLive::new(store.clone(), cfg.resume_window),
            failed_claims: Mutex::new(FailedClaims::new(&cfg)),
            token_checks: Semaphore::new(cfg.max_token_checks.max(1)),
            conns: ConnLimits::new(cfg.max_connections_per_address, cfg.max_connections),
            store,
            metrics: Metrics::default(),
            live: Arc::default(),
            draining: AtomicBool::new(false),
            pending_audit: Arc::default(),
            cfg,
        }
    }

    pub fn cfg(&self) -> &RelayConfig {
        &self.cfg
    }

    /// The routing table of live sessions.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Per-address rate limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Caps on live control connections.
    pub fn conns(&self) -> &Arc<ConnLimits> {
        &self.conns
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The account store (SQLite): call it off the async threads.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Live sessions by technician account (revocation).
    pub fn live(&self) -> &Arc<LiveAccounts> {
        &self.live
    }

    /// Live sessions by resume record.
    pub fn resume_live(&self) -> &Arc<ResumeLive> {
        &self.resume_live
    }

    /// Counts a live control connection until the guard drops.
    pub fn connection(&self) -> Counted<'_> {
        Counted::new(&self.connections)
    }

    /// Counts a pairing in progress until the guard drops.
    pub fn pairing(&self) -> Counted<'_> {
        Counted::new(&self.pairings)
    }

    /// Live sessions (two routes each).
    pub fn sessions(&self) -> usize {
        self.router.len() / 2
    }

    /// Whether `max_sessions` are live: no more may start.
    pub fn at_session_cap(&self) -> bool {
        self.sessions() >= self.cfg.max_sessions
    }

    /// A turn to check a technician token, waiting at most `token_check_wait`; `None`: too many at once.
    pub async fn token_turn(&self) -> Option<SemaphorePermit<'_>> {
        match tokio::time::timeout(self.cfg.token_check_wait, self.token_checks.acquire()).await {
            Ok(Ok(turn)) => Some(turn),
            _ => None,
        }
    }

    pub fn failed_claims(&self) -> MutexGuard<'_, FailedClaims> {
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
                ..AuditRecord::default()
            });
        }
    }

    /// From now on: no new connections, codes, claims or rejoins.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// The relay's state as a snapshot; `waiting_hosts` comes from the rendezvous.
    pub fn stats(&self, waiting_hosts: usize) -> RelayStats {
        RelayStats {
            connections: self.connections.load(Ordering::Relaxed),
            waiting_hosts,
            pairings: self.pairings.load(Ordering::Relaxed),
            sessions: self.sessions(),
        }
    }

    /// `/metrics` in the Prometheus text format.
    pub fn render_metrics(&self, waiting_hosts: usize) -> String {
        let stats = self.stats(waiting_hosts);
        let workers = self.router.all_totals();
        let sum = |count: fn(&crate::forward::Totals) -> &std::sync::atomic::AtomicU64| {
            workers.iter().map(|t| count(t).load(Ordering::Relaxed)).sum::<u64>()
        };
        let dwell = crate::metrics::Histogram::default();
        workers.iter().for_each(|t| dwell.add(&t.dwell));
        self.metrics.render(
            &Gauges {
                connections: stats.connections,
                waiting_hosts: stats.waiting_hosts,
                pairings: stats.pairings,
                sessions: stats.sessions,
                bytes_host_to_viewer: sum(|t| &t.host_to_viewer),
                bytes_viewer_to_host: sum(|t| &t.viewer_to_host),
                packets_over_cap: sum(|t| &t.over_cap),
                draining: self.is_draining(),
                worker_bytes: workers
                    .iter()
                    .map(|t| {
                        t.host_to_viewer.load(Ordering::Relaxed) + t.viewer_to_host.load(Ordering::Relaxed)
                    })
                    .collect(),
            },
            &dwell,
        )
    }

    /// Write an audit row off the async threads. A failure is logged (metadata only), never fatal.
    pub fn audit(&self, mut record: AuditRecord) {
        record.relay = Some(self.cfg.name.clone());
        let (store, pending) = (self.store.clone(), self.pending_audit.clone());
        tokio::task::spawn_blocking(move || write_audit(&store, &pending, Some(record)));
    }

    /// Write the audit rows kept while the database was unreachable (on a blocking thread).
    pub fn flush_audit(&self) {
        if self.pending_audit.lock().map(|p| p.is_empty()).unwrap_or(true) {
            return;
        }
        let (store, pending) = (self.store.clone(), self.pending_audit.clone());
        tokio::task::spawn_blocking(move || write_audit(&store, &pending, None));
    }
}

/// Write the rows kept for later, then `record`; whatever the database cannot take because it is
/// unreachable is kept (in order) for the next attempt, anything else it refuses is logged and dropped.
fn write_audit(
    store: &Store,
    pending: &Mutex<std::collections::VecDeque<AuditRecord>>,
    record: Option<AuditRecord>,
) {
    let mut pending = pending.lock().unwrap_or_else(|p| p.into_inner());
    pending.extend(record);
    while let Some(row) = pending.front() {
        match store.record(row) {
            Ok(()) => {
                pending.pop_front();
            }
            Err(e @ crate::store::StoreError::Unreachable(_)) => {
                tracing::warn!(waiting = pending.len(), "audit rows kept until the database is back: {e}");
                while pending.len() > MAX_PENDING_AUDIT {
                    if let Some(lost) = pending.pop_front() {
                        tracing::error!(session = %lost.session_id, "audit row dropped: too many waiting");
                    }
                }
                return;
            }
            Err(e) => {
                tracing::error!(session = %row.session_id, "could not write the audit row: {e}");
                pending.pop_front();
            }
        }
    }
}

/// Counts something live (a connection, a pairing) for as long as it exists.
#[derive(Debug)]
pub struct Counted<'a>(&'a AtomicUsize);

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_count_while_they_live() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Arc::new(Store::open(dir.path()).expect("store"));
        let hub = Hub::new(
            RelayConfig::new(([127, 0, 0, 1], 0).into(), dir.path().into()),
            Router::new(None),
            store,
        );
        let connection = hub.connection();
        let pairing = hub.pairing();
        assert_eq!(hub.stats(3), RelayStats { connections: 1, waiting_hosts: 3, pairings: 1, sessions: 0 });
        drop(connection);
        drop(pairing);
        assert_eq!(hub.stats(0), RelayStats::default());
        assert!(!hub.is_draining());
        hub.start_draining();
        assert!(hub.is_draining());
    }
}
