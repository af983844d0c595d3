//! Counters for the admin listener's `/metrics`, rendered in the Prometheus text exposition format by
//! hand (a handful of series does not need a metrics framework). Gauges are read from the relay's state
//! at scrape time; counters live here.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

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
        RelayErrorKind::ShuttingDown => "shutting_down",
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
}

/// Values read from the relay's state when scraped.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gauges {
    pub connections: usize,
    pub waiting_hosts: usize,
    pub pairings: usize,
    pub sessions: usize,
    pub bytes_host_to_viewer: u64,
    pub bytes_viewer_to_host: u64,
    pub packets_over_cap: u64,
    pub draining: bool,
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

    /// The Prometheus text exposition of every series.
    pub fn render(&self, g: &Gauges) -> String {
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
        for (name, help, map) in [
            ("tether_relay_claims_refused_total", "Claims refused, by reason.", &self.claims_refused),
            (
                "tether_relay_registrations_refused_total",
                "Registrations refused, by reason.",
                &self.registers_refused,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (reason, n) in map.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                let _ = writeln!(out, "{name}{{reason=\"{reason}\"}} {n}");
            }
        }
        out
    }
}
