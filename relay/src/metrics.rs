//! Counters for the admin listener's `/metrics`, rendered in the Prometheus text exposition format by
//! hand (a handful of series does not need a metrics framework). Gauges are read from the relay's state
//! at scrape time; counters live here, and so does [`Histogram`], the lock-free histogram of how long a
//! forwarded datagram stays inside the relay (`tether_relay_forward_dwell_seconds`).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the dwell histogram's buckets, in microseconds (a last `+Inf` bucket follows). Fine
/// below a millisecond, where the relay's target lies (≤ 1 ms p99 added).
pub const DWELL_BUCKETS_US: [u64; 16] =
    [5, 10, 20, 50, 100, 200, 300, 500, 700, 1_000, 1_500, 2_000, 5_000, 10_000, 50_000, 100_000];

/// A fixed-bucket histogram of durations, safe to update from any thread without a lock: one relaxed
/// atomic add per observation and bucket, no allocation.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Per bucket (not cumulative), the last one is `+Inf`.
    counts: [AtomicU64; DWELL_BUCKETS_US.len() + 1],
    sum_nanos: AtomicU64,
}

impl Histogram {
    /// Record `n` observations of `d` (a batch of datagrams that spent the same time inside the relay).
    pub fn observe_n(&self, d: Duration, n: u64) {
        if n == 0 {
            return;
        }
        let micros = d.as_micros().min(u128::from(u64::MAX)) as u64;
        let i = DWELL_BUCKETS_US.iter().position(|&le| micros <= le).unwrap_or(DWELL_BUCKETS_US.len());
        self.counts[i].fetch_add(n, Ordering::Relaxed);
        let nanos = d.as_nanos().min(u128::from(u64::MAX)) as u64;
        self.sum_nanos.fetch_add(nanos.saturating_mul(n), Ordering::Relaxed);
    }

    /// Add every observation of `other` to this one (the relay-wide histogram from the workers').
    pub fn add(&self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter().zip(&other.counts) {
            mine.fetch_add(theirs.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        self.sum_nanos.fetch_add(other.sum_nanos.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Append the Prometheus exposition (`_bucket` cumulative with `le` in seconds, `_sum`, `_count`).
    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(
            out,
            "# HELP {name} {help}
# TYPE {name} histogram"
        );
        let mut cumulative = 0;
        for (i, count) in self.counts.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            match DWELL_BUCKETS_US.get(i) {
                Some(le) => {
                    let _ = writeln!(out, "{name}_bucket{{le=\"{}\"}} {cumulative}", *le as f64 / 1e6);
                }
                None => {
                    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
                }
            }
        }
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {cumulative}");
    }
}

use tether_shared::relay_proto::RelayErrorKind;

/// A label for why a claim or registration was refused (a small fixed set: bounded cardinality).
pub fn reason(kind: &RelayErrorKind) -> &'static str {
    match kind {
        RelayErrorKind::VersionMismatch { .. } => "version_mismatch",
        RelayErrorKind::UnknownCode => "unknown_code",
        RelayErrorKind::Expired => "expired",
        RelayErrorKind::AlreadyUsed => "already_used",
        RelayErrorKind::WrongCode => "wrong_code",
        RelayErrorKind::PeerWrongCode => "peer_wrong_code",
        RelayErrorKind::RateLimited => "rate_limited",
        RelayErrorKind::Busy => "busy",
        RelayErrorKind::Timeout => "timeout",
        RelayErrorKind::Protocol(_) => "protocol",
        RelayErrorKind::AuthRequired => "auth_required",
        RelayErrorKind::BadToken => "bad_token",
        RelayErrorKind::Revoked => "revoked",
        RelayErrorKind::AccountsUnavailable => "accounts_unavailable",
        RelayErrorKind::DirectoryUnavailable => "directory_unavailable",
        RelayErrorKind::ShuttingDown => "shutting_down",
        RelayErrorKind::UnknownSession => "unknown_session",
        RelayErrorKind::TooManyWrongCodes => "failed_budget",
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    claims_refused: Mutex<BTreeMap<&'static str, u64>>,
    registers_refused: Mutex<BTreeMap<&'static str, u64>>,
    pub registrations: AtomicU64,
    pub claims: AtomicU64,
    pub sessions_started: AtomicU64,
    pub retries_sent: AtomicU64,
    pub revoked_sessions: AtomicU64,
    rejoins_refused: Mutex<BTreeMap<&'static str, u64>>,
    connections_refused: Mutex<BTreeMap<&'static str, u64>>,
    pub rejoins: AtomicU64,
    /// Claims whose PAKE failed (wrong codes), and failed-claim budgets spent.
    pub failed_claims: AtomicU64,
    pub failed_claim_budget_trips: AtomicU64,
    /// Technician tokens being checked now, and the most at once since the start.
    pub token_checks: AtomicU64,
    pub token_checks_peak: AtomicU64,
    /// Claims refused because the account database could not be asked.
    pub database_errors: AtomicU64,
    /// Claims answered with a redirect to the relay holding the code (several relays, one database).
    pub claims_redirected: AtomicU64,
    /// Codes not listed in the shared directory, or claims not looked up there, because the database
    /// could not be asked.
    pub directory_errors: AtomicU64,
}

/// A token check in progress (see [`Metrics::token_check`]).
#[derive(Debug)]
pub struct TokenCheck<'a>(&'a Metrics);

impl Drop for TokenCheck<'_> {
    fn drop(&mut self) {
        self.0.token_checks.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Values read from the relay's state when scraped.
#[derive(Debug, Clone, Default)]
pub struct Gauges {
    pub connections: usize,
    pub waiting_hosts: usize,
    pub pairings: usize,
    pub sessions: usize,
    pub bytes_host_to_viewer: u64,
    pub bytes_viewer_to_host: u64,
    pub packets_over_cap: u64,
    pub draining: bool,
    /// Bytes each forwarding worker forwarded (both directions), by worker.
    pub worker_bytes: Vec<u64>,
}

fn bump(map: &Mutex<BTreeMap<&'static str, u64>>, key: &'static str) {
    *map.lock().unwrap_or_else(|p| p.into_inner()).entry(key).or_default() += 1;
}

impl Metrics {
    pub fn claim_refused(&self, kind: &RelayErrorKind) {
        bump(&self.claims_refused, reason(kind));
    }

    pub fn register_refused(&self, kind: &RelayErrorKind) {
        bump(&self.registers_refused, reason(kind));
    }

    pub fn rejoin_refused(&self, kind: &RelayErrorKind) {
        bump(&self.rejoins_refused, reason(kind));
    }

    /// A connection refused at the accept: `why` is "per_address" or "total".
    pub fn connection_refused(&self, why: &'static str) {
        bump(&self.connections_refused, why);
    }

    /// The account database failed a claim's check.
    pub fn database_error(&self) {
        self.database_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// A token check starts: counts it (and the peak) until the returned guard is dropped.
    pub fn token_check(&self) -> TokenCheck<'_> {
        let now = self.token_checks.fetch_add(1, Ordering::Relaxed) + 1;
        self.token_checks_peak.fetch_max(now, Ordering::Relaxed);
        TokenCheck(self)
    }

    /// The Prometheus text exposition of every series; `dwell` is the forwarding path's histogram.
    pub fn render(&self, g: &Gauges, dwell: &Histogram) -> String {
        let mut out = String::new();
        let mut series = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        };
        series("tether_relay_connections", "gauge", "Open control connections.", g.connections as u64);
        series("tether_relay_waiting_hosts", "gauge", "Hosts waiting under a code.", g.waiting_hosts as u64);
        series("tether_relay_pairings", "gauge", "Pairings in progress.", g.pairings as u64);
        series("tether_relay_sessions", "gauge", "Live sessions.", g.sessions as u64);
        series("tether_relay_draining", "gauge", "1 while shutting down.", u64::from(g.draining));
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        series("tether_relay_registrations_total", "counter", "Codes registered.", load(&self.registrations));
        series("tether_relay_claims_total", "counter", "Claims accepted.", load(&self.claims));
        series(
            "tether_relay_sessions_started_total",
            "counter",
            "Sessions started.",
            load(&self.sessions_started),
        );
        series(
            "tether_relay_retries_total",
            "counter",
            "QUIC retries sent under load.",
            load(&self.retries_sent),
        );
        series(
            "tether_relay_revoked_sessions_total",
            "counter",
            "Sessions ended because the technician's account was revoked.",
            load(&self.revoked_sessions),
        );
        series("tether_relay_rejoins_total", "counter", "Sessions rejoined.", load(&self.rejoins));
        series(
            "tether_relay_failed_claims_total",
            "counter",
            "Claims whose code was wrong (the PAKE failed).",
            load(&self.failed_claims),
        );
        series(
            "tether_relay_failed_claim_budget_trips_total",
            "counter",
            "Failed-claim budgets spent (per address or relay-wide).",
            load(&self.failed_claim_budget_trips),
        );
        series(
            "tether_relay_token_checks",
            "gauge",
            "Technician tokens being checked (argon2) now.",
            load(&self.token_checks),
        );
        series(
            "tether_relay_token_checks_peak",
            "gauge",
            "The most technician tokens checked at once since the relay started.",
            load(&self.token_checks_peak),
        );
        series(
            "tether_relay_database_errors_total",
            "counter",
            "Verified claims refused because the account database could not be asked.",
            load(&self.database_errors),
        );
        series(
            "tether_relay_claims_redirected_total",
            "counter",
            "Claims sent on to the relay of the organization that holds the code.",
            load(&self.claims_redirected),
        );
        series(
            "tether_relay_directory_errors_total",
            "counter",
            "Codes not listed in the shared directory, or claims not looked up there: the database could not \
             be asked.",
            load(&self.directory_errors),
        );
        series(
            "tether_relay_packets_over_cap_total",
            "counter",
            "Forwarded packets dropped by the per-session bandwidth cap.",
            g.packets_over_cap,
        );
        let _ = writeln!(
            out,
            "# HELP tether_relay_forwarded_bytes_total Bytes forwarded, by direction.\n\
             # TYPE tether_relay_forwarded_bytes_total counter\n\
             tether_relay_forwarded_bytes_total{{direction=\"host_to_viewer\"}} {}\n\
             tether_relay_forwarded_bytes_total{{direction=\"viewer_to_host\"}} {}",
            g.bytes_host_to_viewer, g.bytes_viewer_to_host
        );
        let _ = writeln!(
            out,
            "# HELP tether_relay_worker_forwarded_bytes_total Bytes forwarded by each forwarding worker \
             (both directions).\n# TYPE tether_relay_worker_forwarded_bytes_total counter"
        );
        for (worker, bytes) in g.worker_bytes.iter().enumerate() {
            let _ = writeln!(out, "tether_relay_worker_forwarded_bytes_total{{worker=\"{worker}\"}} {bytes}");
        }
        for (name, help, map) in [
            ("tether_relay_claims_refused_total", "Claims refused, by reason.", &self.claims_refused),
            (
                "tether_relay_registrations_refused_total",
                "Registrations refused, by reason.",
                &self.registers_refused,
            ),
            ("tether_relay_rejoins_refused_total", "Rejoins refused, by reason.", &self.rejoins_refused),
            (
                "tether_relay_connections_refused_total",
                "Control connections refused at the accept, by cap.",
                &self.connections_refused,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (reason, n) in map.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                let _ = writeln!(out, "{name}{{reason=\"{reason}\"}} {n}");
            }
        }
        dwell.render(
            &mut out,
            "tether_relay_forward_dwell_seconds",
            "Time a forwarded datagram spends in the relay process, from the return of the receive call \
             that brought it to the return of the send call that passed it to the kernel (time queued in \
             the socket before the relay reads it is not included).",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dwell_histogram_renders_cumulative_buckets_in_seconds() {
        let h = Histogram::default();
        h.observe_n(Duration::from_micros(3), 2);
        h.observe_n(Duration::from_micros(800), 1);
        h.observe_n(Duration::from_secs(1), 1);
        let mut out = String::new();
        h.render(&mut out, "d", "help");
        assert!(out.contains("# TYPE d histogram\n"), "{out}");
        assert!(out.contains("\nd_bucket{le=\"0.000005\"} 2\n"), "{out}");
        assert!(out.contains("\nd_bucket{le=\"0.0007\"} 2\n"), "{out}");
        assert!(out.contains("\nd_bucket{le=\"0.001\"} 3\n"), "{out}");
        assert!(out.contains("\nd_bucket{le=\"0.1\"} 3\n"), "{out}");
        assert!(out.contains("\nd_bucket{le=\"+Inf\"} 4\n"), "{out}");
        assert!(out.contains("\nd_count 4\n"), "{out}");
        assert_eq!(h.count(), 4);
    }
}
