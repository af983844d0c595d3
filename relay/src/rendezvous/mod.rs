//! Rendezvous: hosts wait under nameplates, viewers claim them, and the two pair through the relay.
//!
//! Each control connection is served by one task ([`serve`]): [`host::run`] or [`viewer::run`] after the
//! hello. The two tasks of a pairing talk over mailboxes (`PeerEvent`s); the host's task decides the
//! outcome and owns the session's routes, so when either task ends the routes go with it.
//!
//! ```text
//! viewer task                         host task
//! claim(nameplate) → host mailbox
//! Joined{viewer mailbox, addr} ─────► allocate tags
//!            ◄──────────────────────── Tag(viewer tag)
//! Pake / Confirm / Result ──────────► forwarded to the host client (and back the same way)
//!            ◄──────────────────────── Ready (routes installed) | Failed(reason)
//! ```

pub mod host;
mod io;
pub mod rejoin;
pub mod state;
pub mod viewer;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tether_shared::relay_proto::{RelayErrorKind, RelayToClient, Role};
use tether_shared::PROTOCOL_VERSION;
use tokio::sync::mpsc;

use crate::config::RelayConfig;
use crate::forward::Router;
use crate::limits::Limits;
use io::ClientIo;
pub use state::Nameplates;

/// What one side of a pairing tells the other's task.
#[derive(Debug)]
pub enum PeerEvent {
    Joined {
        viewer: Mailbox,
        addr: SocketAddr,
    },
    Tag(u64),
    Pake(Vec<u8>),
    Confirm(Vec<u8>),
    Result(bool),
    Ready,
    Failed(RelayErrorKind),
    /// To the first of two rejoining ends: the routes are back, under `tag`; `partner` reaches the other.
    Rejoined {
        tag: u64,
        partner: Mailbox,
    },
}

pub type Mailbox = mpsc::Sender<PeerEvent>;

/// Room in a mailbox: a pairing exchanges a handful of messages.
const MAILBOX: usize = 16;

/// State shared by all connection tasks.
#[derive(Debug)]
pub struct Hub {
    pub cfg: RelayConfig,
    pub nameplates: Mutex<Nameplates<Mailbox>>,
    pub router: Router,
    pub limits: Limits,
    pub connections: AtomicUsize,
    pub pairings: AtomicUsize,
    /// Ends of paired sessions waiting for their peer to rejoin, by resume id.
    pub rejoins: Mutex<std::collections::HashMap<[u8; 32], rejoin::Waiting>>,
}

impl Hub {
    pub fn new(cfg: RelayConfig, router: Router) -> Self {
        Self {
            nameplates: Mutex::new(Nameplates::new(cfg.code_ttl, cfg.max_waiting_hosts)),
            limits: Limits::new(&cfg),
            router,
            cfg,
            connections: AtomicUsize::new(0),
            pairings: AtomicUsize::new(0),
            rejoins: Mutex::default(),
        }
    }

    fn nameplates(&self) -> std::sync::MutexGuard<'_, Nameplates<Mailbox>> {
        // A poisoned lock means a task panicked while holding it; the state is still consistent (every
        // method leaves it so), so carry on rather than take the relay down.
        self.nameplates.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Counts a live connection for as long as it exists.
struct Counted<'a>(&'a AtomicUsize);

impl<'a> Counted<'a> {
    fn new(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serve one control connection from hello to close. Never panics on client input: every protocol
/// violation ends this connection with an error message, and nothing else.
pub async fn serve(conn: quinn::Connection, hub: Arc<Hub>) {
    let _live = Counted::new(&hub.connections);
    let addr = conn.remote_address();
    let hello = tokio::time::timeout(hub.cfg.handshake_timeout, ClientIo::accept(conn.clone())).await;
    let (mut io, role) = match hello {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => {
            tracing::debug!(%addr, "hello failed: {e}");
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
            tracing::info!(%addr, ?role, "connection closed: {kind}");
            io.fail(kind).await;
        }
    }
}
