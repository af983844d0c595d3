//! The relay's typed configuration, with safe defaults. [`crate::config_file`] fills it from TOML.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::forward::Tap;

/// Where the relay's TLS certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    /// A self-signed certificate made on first start and kept in the data directory; clients pin its
    /// fingerprint.
    SelfSigned,
    /// PEM certificate chain and private key files (e.g. from a CA); clients check the name.
    Files { cert: PathBuf, key: PathBuf },
}

#[derive(Clone)]
pub struct RelayConfig {
    /// UDP address to listen on.
    pub listen: SocketAddr,
    /// Where the certificate, the accounts and the audit log are kept.
    pub data_dir: PathBuf,
    pub tls: TlsSource,
    /// The organization running this relay, told to hosts with a verified technician's account name.
    pub organization: String,
    /// Only viewers with a valid technician token may claim codes.
    pub require_technician_auth: bool,
    /// How long a code waits for a viewer.
    pub code_ttl: Duration,
    /// Time a new connection has to complete its handshake and say hello.
    pub handshake_timeout: Duration,
    /// Time from a claim to both sides confirming.
    pub pairing_timeout: Duration,
    /// Idle timeout of control connections: a client that vanishes is dropped after this.
    pub idle_timeout: Duration,
    pub max_waiting_hosts: usize,
    pub max_sessions: usize,
    /// Claims per minute per client IP address, and the burst allowed.
    pub claims_per_minute: u32,
    pub claim_burst: u32,
    /// Registrations per minute per client IP address, and the burst allowed.
    pub registers_per_minute: u32,
    pub register_burst: u32,
    /// Rejoins per minute per client address key (see [`crate::limits::client_key`]), and the burst allowed.
    pub rejoins_per_minute: u32,
    pub rejoin_burst: u32,
    /// How long after a paired session was last seen live (its end noticed, or the relay started) its two
    /// ends may still rejoin it. Covers the relay's own idle timeout plus a client's retries.
    pub resume_window: Duration,
    /// Most technician tokens checked (argon2, ~tens of MiB each) at once; further claims wait up to
    /// `token_check_wait` for a turn, then are refused as `Busy`.
    pub max_token_checks: usize,
    pub token_check_wait: Duration,
    /// Most live control connections (handshakes included) from one address key, and in all.
    pub max_connections_per_address: usize,
    pub max_connections: usize,
    /// Failed-claim budget (claims whose PAKE failed: a wrong code): at most this many per viewer address
    /// key per window; over it, claims from that key are refused (`TooManyWrongCodes`) until the window
    /// ends.
    pub failed_claims_per_address: u32,
    pub failed_claims_address_window: Duration,
    /// The same across all addresses: over it, every claim is refused until the window ends.
    pub failed_claims_global: u32,
    pub failed_claims_global_window: Duration,
    /// Bytes per second each direction of one session may forward (0: no cap). Packets over the cap are
    /// dropped; QUIC's congestion control at the ends adapts.
    pub session_bytes_per_sec: u64,
    /// Most connection attempts quinn holds before answering them (bounds memory under a flood), per
    /// forwarding worker: each worker's socket has its own endpoint.
    pub max_incoming: usize,
    /// Above this many handshakes in progress, unvalidated clients must first prove their address (QUIC
    /// retry).
    pub retry_above: usize,
    /// Receive window of a control connection, in bytes (control messages are small).
    pub control_window: u32,
    /// How often revocations are re-read from the account store.
    pub revocation_poll: Duration,
    /// On SIGTERM, how long live sessions may go on before they are closed.
    pub drain_deadline: Duration,
    /// Where to serve `/metrics` and `/healthz` (TCP); `None`: nowhere.
    pub admin_listen: Option<SocketAddr>,
    /// This relay's name: in the audit rows it writes and in its resume records (several relays may share
    /// one database). Default: the machine's host name.
    pub name: String,
    /// PostgreSQL instead of the embedded SQLite (`postgres://user:password@host/db` or
    /// `host=/run/postgresql dbname=tether`): accounts, revocations and the audit log shared by every
    /// relay pointed at it. Never logged (it may hold a password).
    pub database_url: Option<String>,
    /// Where clients reach this relay (`HOST:PORT`), for the other relays of the organization to send
    /// viewers here when a code waits on this relay (with a shared database). `None`: the listening
    /// address, if it names one (not 0.0.0.0 or ::); otherwise codes made here are claimed only here.
    pub public_address: Option<String>,
    /// Forwarding workers: sockets sharing the port with `SO_REUSEPORT`, one forwarding loop each; 0
    /// means one per available core ([`RelayConfig::worker_count`]).
    pub workers: usize,
    /// A hook on the forwarding path, for tests and diagnostics only (never set from a config file). It
    /// gives the relay no power it does not already have: the design assumes the relay is hostile.
    pub tap: Option<Arc<dyn Tap>>,
}

impl std::fmt::Debug for RelayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayConfig")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("tls", &self.tls)
            .field("require_technician_auth", &self.require_technician_auth)
            .field("code_ttl", &self.code_ttl)
            .field("idle_timeout", &self.idle_timeout)
            .field("admin_listen", &self.admin_listen)
            .field("tap", &self.tap.is_some())
            .finish_non_exhaustive()
    }
}

impl RelayConfig {
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Self {
        Self {
            listen,
            data_dir,
            tls: TlsSource::SelfSigned,
            organization: String::new(),
            require_technician_auth: false,
            code_ttl: Duration::from_secs(600),
            handshake_timeout: Duration::from_secs(10),
            pairing_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(30),
            max_waiting_hosts: 10_000,
            max_sessions: 10_000,
            claims_per_minute: 20,
            claim_burst: 10,
            registers_per_minute: 60,
            register_burst: 20,
            rejoins_per_minute: 20,
            rejoin_burst: 10,
            resume_window: Duration::from_secs(120),
            // argon2 (default parameters) takes ~19 MiB and a core for tens of ms: 4 at once bounds the
            // memory to ~80 MiB whatever the number of claims, and still checks ~100 tokens a second.
            max_token_checks: 4,
            token_check_wait: Duration::from_secs(3),
            // A host or a viewer holds one control connection; 64 leaves room for an office behind one
            // NAT address. The global cap sits above `max_sessions` * 2 + `max_waiting_hosts`.
            max_connections_per_address: 64,
            max_connections: 40_000,
            // A technician who mistypes a code a few times stays far below 10 in 10 minutes (an office
            // behind one address too); an attacker gets 10 guesses per address per 10 minutes.
            failed_claims_per_address: 10,
            failed_claims_address_window: Duration::from_secs(600),
            // Relay-wide: ~100 times the wrong codes a busy relay sees from typos, and a hard ceiling of
            // 144,000 guesses a day against 10^7 secrets, whatever the number of addresses.
            failed_claims_global: 100,
            failed_claims_global_window: Duration::from_secs(60),
            // Off by default: with a 100 Mbit/s cap, a full-screen lossless update of a large monitor
            // (several MB at once) was dropped in bulk and the host's session sometimes ended (the X11
            // resize test, 1 run in 3). Until the host paces its frames, the cap is opt-in.
            session_bytes_per_sec: 0,
            max_incoming: 1024,
            retry_above: 64,
            control_window: 64 * 1024,
            revocation_poll: Duration::from_secs(1),
            drain_deadline: Duration::from_secs(30),
            admin_listen: None,
            workers: 0,
            name: host_name(),
            database_url: None,
            public_address: None,
            tap: None,
        }
    }

    /// Whether the relay keeps its data in PostgreSQL (else SQLite in the data directory).
    pub fn uses_postgres(&self) -> bool {
        self.database_url.is_some()
    }

    /// How many forwarding workers to start: `workers`, or one per core this process may use.
    pub fn worker_count(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            n => n,
        }
    }
}

/// The machine's host name, or `relay` if it cannot be read.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "relay".to_owned())
}
