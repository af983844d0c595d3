//! The Tether relay: pairs a waiting host with a viewer by nameplate, passes their PAKE messages, and then
//! forwards their end-to-end encrypted QUIC packets without being able to read them.
//!
//! One UDP port serves everything ([`socket`]): QUIC control connections (relay's own TLS certificate)
//! and tagged end-to-end packets ([`tether_shared::packet`]), told apart by the first byte.
//!
//! - [`rendezvous`]: nameplates (pure state) and the per-connection tasks of hosts and viewers.
//! - [`forward`]: the routing table of live sessions and the forwarding of tagged packets.
//! - [`limits`]: per-address rate limits, and [`limits::client_key`] (IPv4 address or IPv6 /64) that
//!   every per-address limit keys on; [`conns`]: caps on live connections; [`budget`]: the relay-wide
//!   failed-claim budget.
//! - [`resume`]: records of paired sessions, the only ones that may rejoin.
//! - [`log_text`]: text from the network escaped for the log.
//! - [`bandwidth`]: the per-session bandwidth cap (token buckets).
//! - [`store`], [`accounts`], [`audit`]: the SQLite file of technician accounts and the audit log.
//! - [`revocation`]: live sessions by account, so revoking an account ends them.
//! - [`metrics`], [`admin`]: Prometheus `/metrics` and `/healthz` on an admin listener (off by default).
//! - [`certs`]: the relay's persisted self-signed certificate, or one from PEM files.
//! - [`config`], [`config_file`]: typed configuration and the TOML file that fills it.
//! - [`server`]: [`Server::spawn`] wires it together and returns a handle that stops it on drop.

pub mod accounts;
pub mod admin;
pub mod audit;
pub mod bandwidth;
pub mod budget;
pub mod certs;
pub mod config;
pub mod config_file;
pub mod conns;
pub mod forward;
pub mod hub;
pub mod limits;
pub mod log_text;
pub mod metrics;
pub mod rendezvous;
pub mod resume;
pub mod revocation;
pub mod server;
pub mod socket;
pub mod store;

pub use config::{RelayConfig, TlsSource};
pub use forward::Tap;
pub use hub::RelayStats;
pub use server::{RelayHandle, Server};
