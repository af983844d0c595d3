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
    /// Bytes per second each direction of one session may forward (0: no cap). Packets over the cap are
    /// dropped; QUIC's congestion control at the ends adapts.
    pub session_bytes_per_sec: u64,
    /// Most connection attempts quinn holds before answering them (bounds memory under a flood).
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
            tap: None,
        }
    }
}
