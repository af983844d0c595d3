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
//! [`pairing::PairingVerdict`] ([`pairing`]). The mailbox messages are in [`peer`]; the state the tasks
//! share ([`Rendezvous`]: the relay's [`crate::hub::Hub`] plus nameplates and waiting rejoins) in
//! [`shared`]. The children import each other (never this module), so the module graph has no cycle.
//!
//! With several relays sharing a database, codes are listed in the organization's directory and a claim
//! for another relay's code is answered with a redirect ([`directory`]).
//!
//! The host task writes one audit row per registered code when it is done with it, counts wrong codes
//! against the failed-claim budget ([`crate::budget`]) and stores the resume record of a paired session
//! ([`crate::resume`]); [`rejoin`] admits only sessions with a record.

pub mod directory;
pub mod host;
mod io;
pub mod pairing;
pub mod peer;
pub mod rejoin;
pub mod shared;
pub mod state;
pub mod viewer;

use std::sync::Arc;

use tether_shared::relay_proto::{RelayToClient, Role};
use tether_shared::PROTOCOL_VERSION;

use crate::log_text::Escaped;
use io::ClientIo;
pub use io::CLOSE_BUSY;
pub use peer::{Mailbox, PeerEvent};
pub use shared::Rendezvous;
pub use state::Nameplates;

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
            // A client that never acknowledges the error gets the close anyway, after the idle timeout.
            let code = io::close_code(&kind);
            if tokio::time::timeout(hub.cfg().idle_timeout, io.fail(kind)).await.is_err() {
                conn.close(code.into(), b"the error was not acknowledged");
            }
        }
    }
}
