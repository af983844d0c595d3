//! The Tether relay: pairs a waiting host with a viewer by nameplate, passes their PAKE messages, and then
//! forwards their end-to-end encrypted QUIC packets without being able to read them.
//!
//! One UDP port serves everything ([`socket`]): QUIC control connections (relay's own TLS certificate)
//! and tagged end-to-end packets ([`tether_shared::packet`]), told apart by the first byte.
//!
//! - [`rendezvous`]: nameplates (pure state) and the per-connection tasks of hosts and viewers.
//! - [`forward`]: the routing table of live sessions and the forwarding of tagged packets.
//! - [`limits`]: per-address rate limits.
//! - [`certs`]: the relay's persisted self-signed certificate.
//! - [`server`]: [`Server::spawn`] wires it together and returns a handle that stops it on drop.

pub mod certs;
pub mod config;
pub mod forward;
pub mod limits;
pub mod rendezvous;
pub mod server;
pub mod socket;

pub use config::RelayConfig;
pub use forward::Tap;
pub use server::{RelayHandle, RelayStats, Server};
