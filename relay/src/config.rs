//! The relay's typed configuration, with safe defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::forward::Tap;

#[derive(Clone)]
pub struct RelayConfig {
    /// UDP address to listen on.
    pub listen: SocketAddr,
    /// Where the certificate (and later the audit log) is kept.
    pub data_dir: PathBuf,
    /// How long a code waits for a viewer.
    pub code_ttl: Duration,
    /// Time a new connection has to say hello.
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
    /// A hook on the forwarding path, for tests and diagnostics only (never set from a config file). It
    /// gives the relay no power it does not already have: the design assumes the relay is hostile.
    pub tap: Option<Arc<dyn Tap>>,
}

impl std::fmt::Debug for RelayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayConfig")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("code_ttl", &self.code_ttl)
            .field("idle_timeout", &self.idle_timeout)
            .field("tap", &self.tap.is_some())
            .finish_non_exhaustive()
    }
}

impl RelayConfig {
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Self {
        Self {
            listen,
            data_dir,
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
            tap: None,
        }
    }
}
