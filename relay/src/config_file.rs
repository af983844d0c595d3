//! The relay's TOML configuration file: every key optional, unknown keys rejected (a typo must not silently
//! leave a default in place), then applied over [`RelayConfig`]'s defaults. Command-line flags override
//! the file. `deploy/tether-relay.example.toml` documents every key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::config::{RelayConfig, TlsSource};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("could not read the configuration file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    /// The parser's message names the line, the column and the offending key.
    #[error("configuration file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("configuration file {path}: {message}")]
    Invalid { path: String, message: String },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub organization: Option<String>,
    pub require_technician_auth: Option<bool>,
    /// Forwarding workers (0 or absent: one per available core).
    pub workers: Option<usize>,
    /// This relay's name in audit rows (default: the host name).
    pub name: Option<String>,
    /// PostgreSQL shared by several relays (absent: SQLite in the data directory).
    pub database_url: Option<String>,
    /// Where clients reach this relay (HOST:PORT), for the organization's other relays' redirects.
    pub public_address: Option<String>,
    #[serde(default)]
    pub tls: TlsSection,
    #[serde(default)]
    pub limits: LimitsSection,
    #[serde(default)]
    pub admin: AdminSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    pub code_ttl_secs: Option<u64>,
    pub handshake_timeout_secs: Option<u64>,
    pub pairing_timeout_secs: Option<u64>,
    pub idle_timeout_secs: Option<u64>,
    pub max_waiting_hosts: Option<usize>,
    pub max_sessions: Option<usize>,
    pub claims_per_minute: Option<u32>,
    pub claim_burst: Option<u32>,
    pub registers_per_minute: Option<u32>,
    pub register_burst: Option<u32>,
    pub rejoins_per_minute: Option<u32>,
    pub rejoin_burst: Option<u32>,
    pub resume_window_secs: Option<u64>,
    pub max_token_checks: Option<usize>,
    pub token_check_wait_secs: Option<u64>,
    pub max_connections_per_address: Option<usize>,
    pub max_connections: Option<usize>,
    pub failed_claims_per_address: Option<u32>,
    pub failed_claims_address_window_secs: Option<u64>,
    pub failed_claims_global: Option<u32>,
    pub failed_claims_global_window_secs: Option<u64>,
    pub session_bandwidth_kbit: Option<u64>,
    pub max_incoming: Option<usize>,
    pub retry_above: Option<usize>,
    pub control_window_bytes: Option<u32>,
    pub drain_deadline_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSection {
    pub listen: Option<SocketAddr>,
}

/// Read and check a configuration file.
pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
    parse(&text).map_err(|message| ConfigError::Parse { path: path.display().to_string(), message })
}

/// Parse configuration text; the error message names the line and the key.
pub fn parse(text: &str) -> Result<FileConfig, String> {
    toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())
}

impl FileConfig {
    /// Apply the file's settings over `cfg`. `path` is only for error messages.
    pub fn apply(self, cfg: &mut RelayConfig, path: &Path) -> Result<(), ConfigError> {
        let secs = Duration::from_secs;
        if let Some(v) = self.listen {
            cfg.listen = v;
        }
        if let Some(v) = self.data_dir {
            cfg.data_dir = v;
        }
        if let Some(v) = self.organization {
            cfg.organization = v;
        }
        if let Some(v) = self.require_technician_auth {
            cfg.require_technician_auth = v;
        }
        if let Some(v) = self.workers {
            cfg.workers = v;
        }
        if let Some(v) = self.name {
            cfg.name = v;
        }
        if let Some(v) = self.database_url {
            cfg.database_url = Some(v);
        }
        if let Some(v) = self.public_address {
            if !tether_shared::relay_proto::is_relay_address(&v) {
                return Err(ConfigError::Invalid {
                    path: path.display().to_string(),
                    message: format!("public_address {v:?} is not HOST:PORT (e.g. relay-b.example.org:4433)"),
                });
            }
            cfg.public_address = Some(v);
        }
        match (self.tls.cert_file, self.tls.key_file) {
            (Some(cert), Some(key)) => cfg.tls = TlsSource::Files { cert, key },
            (None, None) => {}
            _ => {
                return Err(ConfigError::Invalid {
                    path: path.display().to_string(),
                    message: "[tls] needs both cert_file and key_file, or neither".into(),
                })
            }
        }
        let l = self.limits;
        let set = |slot: &mut Duration, v: Option<u64>| {
            if let Some(v) = v {
                *slot = secs(v);
            }
        };
        set(&mut cfg.code_ttl, l.code_ttl_secs);
        set(&mut cfg.handshake_timeout, l.handshake_timeout_secs);
        set(&mut cfg.pairing_timeout, l.pairing_timeout_secs);
        set(&mut cfg.idle_timeout, l.idle_timeout_secs);
        set(&mut cfg.drain_deadline, l.drain_deadline_secs);
        set(&mut cfg.resume_window, l.resume_window_secs);
        set(&mut cfg.token_check_wait, l.token_check_wait_secs);
        set(&mut cfg.failed_claims_address_window, l.failed_claims_address_window_secs);
        set(&mut cfg.failed_claims_global_window, l.failed_claims_global_window_secs);
        cfg.rejoins_per_minute = l.rejoins_per_minute.unwrap_or(cfg.rejoins_per_minute);
        cfg.rejoin_burst = l.rejoin_burst.unwrap_or(cfg.rejoin_burst);
        cfg.max_token_checks = l.max_token_checks.unwrap_or(cfg.max_token_checks);
        cfg.max_connections_per_address =
            l.max_connections_per_address.unwrap_or(cfg.max_connections_per_address);
        cfg.max_connections = l.max_connections.unwrap_or(cfg.max_connections);
        cfg.failed_claims_per_address = l.failed_claims_per_address.unwrap_or(cfg.failed_claims_per_address);
        cfg.failed_claims_global = l.failed_claims_global.unwrap_or(cfg.failed_claims_global);
        cfg.max_waiting_hosts = l.max_waiting_hosts.unwrap_or(cfg.max_waiting_hosts);
        cfg.max_sessions = l.max_sessions.unwrap_or(cfg.max_sessions);
        cfg.claims_per_minute = l.claims_per_minute.unwrap_or(cfg.claims_per_minute);
        cfg.claim_burst = l.claim_burst.unwrap_or(cfg.claim_burst);
        cfg.registers_per_minute = l.registers_per_minute.unwrap_or(cfg.registers_per_minute);
        cfg.register_burst = l.register_burst.unwrap_or(cfg.register_burst);
        if let Some(kbit) = l.session_bandwidth_kbit {
            cfg.session_bytes_per_sec = kbit.saturating_mul(1000) / 8;
        }
        cfg.max_incoming = l.max_incoming.unwrap_or(cfg.max_incoming);
        cfg.retry_above = l.retry_above.unwrap_or(cfg.retry_above);
        cfg.control_window = l.control_window_bytes.unwrap_or(cfg.control_window);
        if let Some(v) = self.admin.listen {
            cfg.admin_listen = Some(v);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_is_rejected_with_its_line_and_key() {
        let err = parse("listen = \"127.0.0.1:7700\"\n\n[limits]\nmax_sesions = 5\n").expect_err("typo");
        assert!(err.contains("line 4"), "{err}");
        assert!(err.contains("max_sesions"), "{err}");
    }

    #[test]
    fn settings_apply_over_the_defaults() {
        let file = parse(
            "organization = \"Acme\"\n[limits]\nsession_bandwidth_kbit = 8000\nmax_sessions = 3\n\
                   failed_claims_per_address = 5\nfailed_claims_global_window_secs = 30\n",
        )
        .expect("valid");
        let mut cfg = RelayConfig::new("127.0.0.1:0".parse().expect("addr"), "d".into());
        file.apply(&mut cfg, Path::new("x.toml")).expect("applies");
        assert_eq!(cfg.organization, "Acme");
        assert_eq!(cfg.session_bytes_per_sec, 1_000_000);
        assert_eq!(cfg.max_sessions, 3);
        assert_eq!(cfg.failed_claims_per_address, 5);
        assert_eq!(cfg.failed_claims_global_window, Duration::from_secs(30));
        assert_eq!(cfg.claims_per_minute, 20, "untouched default");
    }
}
