//! The Tether relay: pairs a waiting host with a viewer by nameplate, passes their PAKE messages, and then
//! forwards their end-to-end encrypted QUIC packets without being able to read them.
//!
//! One UDP port serves everything ([`socket`]): QUIC control connections (relay's own TLS certificate)
//! and tagged end-to-end packets ([`tether_shared::packet`]), told apart by the first byte.
//!
//! - [`hub`]: the relay-wide state every connection task shares, behind methods; [`RelayStats`].
//! - [`rendezvous`]: nameplates (pure state), the pairing verdict (pure) and the per-connection tasks of
//!   hosts and viewers.
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
//!
//! ## Dependency order
//!
//! No module imports one that imports it back. Each line uses only modules on the lines above it
//! (`grep -rn "use crate::\|use super::" relay/src` checks it):
//!
//! ```text
//! log_text, bandwidth, metrics, store, revocation, admin      (nothing of the crate)
//! forward → bandwidth, metrics      accounts, audit, resume → store
//! config → forward                  socket → forward
//! limits → config      config_file → config      certs → config, store
//! conns → limits       budget → config, limits
//! hub → audit, budget, config, conns, forward, limits, metrics, resume, revocation, store
//! rendezvous:  state, io (nothing of the crate)   peer → audit   pairing → peer, forward
//!              shared (Rendezvous) → hub, peer, state
//!              rejoin → shared, peer, pairing, io, ...   host, viewer → rejoin, shared, peer, pairing, io, ...
//!              mod (serve) → host, viewer, io
//! server → hub, rendezvous, admin, socket, certs, config, store, ...
//! ```
//!
//! The admin listener knows nothing of the relay: the server hands it functions ([`admin::Probes`]).

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
