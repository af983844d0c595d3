//! Rendezvous: hosts wait under nameplates, viewers claim them, and the two pair through the relay.
//!
//! Each control connection is served by one task ([`serve`]): [`host::run`] or [`viewer::run`] after the
//! hello. The two tasks of a pairing talk over mailboxes (`PeerEvent`s); the host's task decides the
//! outcome and owns the session's routes, so when either task ends the routes go with it.
//!
//! ```text
//! viewer task                         host task
//! claim(nameplate) → host mailbox
//! Joined{viewer mailbox, addr,       allocate tags
//!        verified technician} ──────► (PeerJoined to the host names the technician)
//!            ◄──────────────────────── Tag(viewer tag)
//! Pake / Confirm / Result ──────────► forwarded to the host client (and back the same way)
//! Commit(resume commitment) ────────► kept: a resume record if both ends committed the same
//!            ◄──────────────────────── Ready (routes installed) | Failed(reason)
//! Ended(outcome) ───────────────────► (why the viewer's side ended: for the audit log)
//! ```
//!
//! Both tasks relay pairing messages the same way and the host task decides the outcome with a pure
//! [`pairing::PairingVerdict`] ([`pairing`]).
//!
//! The host task writes one audit row per registered code when it is done with it, counts wrong codes
//! against the failed-claim budget ([`crate::budget`]) and stores the resume record of a paired session
//! ([`crate::resume`]); [`rejoin`] admits only sessions with a record.

pub mod host;
mod io;
pub mod pairing;
pub mod rejoin;
pub mod state;
pub mod viewer;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tether_shared::relay_proto::{RelayErrorKind, RelayToClient, Role, VerifiedTechnician};
use tether_shared::PROTOCOL_VERSION;
use tokio::sync::mpsc;

use crate::audit::Outcome;
use crate::hub::{Hub, RelayStats};
use crate::log_text::Escaped;
use io::ClientIo;
pub use io::CLOSE_BUSY;
pub use state::Nameplates;

/// What one side of a pairing tells the other's task.
#[derive(Debug)]
pub enum PeerEvent {
    Joined {
        viewer: Mailbox,
        addr: SocketAddr,
        technician: Option<VerifiedTechnician>,
    },
    Tag(u64),
    Pake(Vec<u8>),
    Confirm(Vec<u8>),
    Result(bool),
    /// The viewer's commitment to the session's resume id.
    Commit([u8; 32]),
    Ready,
    Failed(RelayErrorKind),
    /// To the first of two rejoining ends: the routes are back, under `tag`; `partner` reaches the other.
    Rejoined {
        tag: u64,
        partner: Mailbox,
    },
    /// The viewer's side of a live session ended, and how.
    Ended(Outcome),
}

pub type Mailbox = mpsc::Sender<PeerEvent>;

/// Room in a mailbox: a pairing exchanges a handful of messages.
const MAILBOX: usize = 16;

/// The rendezvous's own tables (nameplates, waiting rejoins) on top of the relay-wide [`Hub`]. Tasks
/// reach the hub's methods through it (`Deref`): it is the hub as rendezvous sees it.
#[derive(Debug)]
pub struct Rendezvous {
    hub: Arc<Hub>,
    nameplates: Mutex<Nameplates<Mailbox>>,
    /// Ends of paired sessions waiting for their peer to rejoin, by resume commitment.
    rejoins: Mutex<HashMap<[u8; 32], rejoin::Waiting>>,
}

impl std::ops::Deref for Rendezvous {
    type Target = Hub;

    fn deref(&self) -> &Hub {
        &self.hub
    }
}

impl Rendezvous {
    pub fn new(hub: Arc<Hub>) -> Self {
        let nameplates = Nameplates::new(hub.cfg().code_ttl, hub.cfg().max_waiting_hosts);
        Self { hub, nameplates: Mutex::new(nameplates), rejoins: Mutex::default() }
    }

    /// The relay's state as a snapshot.
    pub fn stats(&self) -> RelayStats {
        self.hub.stats(self.nameplates().waiting())
    }

    /// `/metrics` in the Prometheus text format.
    pub fn render_metrics(&self) -> String {
        self.hub.render_metrics(self.nameplates().waiting())
    }

    fn nameplates(&self) -> MutexGuard<'_, Nameplates<Mailbox>> {
        // A poisoned lock means a task panicked while holding it; the state is still consistent (every
        // method leaves it so), so carry on rather than take the relay down.
        self.nameplates.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn rejoins(&self) -> MutexGuard<'_, HashMap<[u8; 32], rejoin::Waiting>> {
        self.rejoins.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Serve one control connection from hello to close. Never panics on client input: every protocol
/// violation ends this connection with an error message, and nothing else.
/// `hello_by` is the deadline for the client's `Hello`, counted from its first packet (so the QUIC
/// handshake and the hello share one `handshake_timeout`).
pub async fn serve(conn: quinn::Connection, hub: Arc<Rendezvous>, hello_by: tokio::time::Instant) {
    let _live = hub.connection();
    let addr = conn.remote_address();
    let hello = tokio::time::timeout_at(hello_by, ClientIo::accept(conn.clone())).await;
    let (mut io, role) = match hello {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => {
            tracing::debug!(%addr, "hello failed: {}", Escaped(&e));
            return;
        }
        Err(_) => {
            tracing::debug!(%addr, "no hello before the handshake deadline");
            conn.close(io::CLOSE_TIMEOUT.into(), b"handshake timeout");
            return;
        }
    };
    if io.send(&RelayToClient::Welcome { version: PROTOCOL_VERSION }).await.is_err() {
        return;
    }
    let result = match role {
        Role::Host => host::run(&mut io, &hub, addr).await,
        Role::Viewer => viewer::run(&mut io, &hub, addr).await,
    };
    match result {
        Ok(()) => tracing::debug!(%addr, ?role, "connection ended"),
        Err(kind) => {
            tracing::info!(%addr, ?role, "connection closed: {}", Escaped(&kind));
            io.fail(kind).await;
        }
    }
}
