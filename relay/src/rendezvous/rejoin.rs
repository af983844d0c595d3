//! Rejoining: the two ends of a paired session find each other again after losing the relay (it
//! restarted, or a network hiccup dropped their control connections).
//!
//! Each end sends `Rejoin{resume_id}`. The first to arrive waits under that id; the second installs fresh
//! routes between the two addresses and hands the first its new tag. No PAKE is needed: the end-to-end
//! QUIC connection between them is still authenticated end to end; the relay only forwards, as before. An
//! outsider who guessed an id (32 random-looking bytes derived from the PAKE key) could at most become a
//! black hole — which the relay itself can always be.

use std::net::SocketAddr;
use std::time::Duration;

use tether_shared::relay_proto::{ClientToRelay, RelayErrorKind, RelayToClient, Role};
use tokio::sync::mpsc;

use super::host::fresh_tags;
use super::io::ClientIo;
use super::{Hub, Mailbox, PeerEvent, MAILBOX};
use crate::forward::{Endpoint, RouteGuard};

/// How long the first end waits for the second.
const WAIT: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct Waiting {
    role: Role,
    addr: SocketAddr,
    mailbox: Mailbox,
}

pub async fn run(
    io: &mut ClientIo,
    hub: &Hub,
    addr: SocketAddr,
    role: Role,
    id: [u8; 32],
) -> Result<(), RelayErrorKind> {
    let (tx, mut rx) = mpsc::channel(MAILBOX);
    let mut tx = Some(tx);
    let partner = {
        let mut waiting = hub.rejoins.lock().unwrap_or_else(|p| p.into_inner());
        match waiting.remove(&id) {
            Some(w) if w.role != role => Some(w),
            _ => {
                // First to arrive (or the same end retrying): wait here.
                if let Some(mailbox) = tx.take() {
                    waiting.insert(id, Waiting { role, addr, mailbox });
                }
                None
            }
        }
    };
    match (partner, tx) {
        (Some(first), Some(tx)) => second(io, hub, addr, role, first, tx, rx).await,
        _ => {
            let result = first(io, &mut rx).await;
            let mut waiting = hub.rejoins.lock().unwrap_or_else(|p| p.into_inner());
            if waiting.get(&id).is_some_and(|w| w.addr == addr && w.role == role) {
                waiting.remove(&id);
            }
            result
        }
    }
}

/// The first end: wait for the second to install the routes.
async fn first(io: &mut ClientIo, rx: &mut mpsc::Receiver<PeerEvent>) -> Result<(), RelayErrorKind> {
    let partner = tokio::select! {
        event = rx.recv() => match event {
            Some(PeerEvent::Rejoined { tag, partner }) => {
                io.send(&RelayToClient::Rejoined { tag }).await?;
                partner
            }
            _ => return Err(RelayErrorKind::Timeout),
        },
        msg = io.recv() => return match msg? {
            None => Ok(()),
            Some(other) => Err(RelayErrorKind::Protocol(format!("unexpected {other:?} while rejoining"))),
        },
        _ = tokio::time::sleep(WAIT) => return Err(RelayErrorKind::Timeout),
    };
    tracing::info!(addr = %io.addr(), "session rejoined");
    session(io, rx, partner, None).await
}

/// The second end: install the routes and tell the first.
async fn second(
    io: &mut ClientIo,
    hub: &Hub,
    addr: SocketAddr,
    role: Role,
    first: Waiting,
    tx: Mailbox,
    mut rx: mpsc::Receiver<PeerEvent>,
) -> Result<(), RelayErrorKind> {
    let (mine, theirs) = fresh_tags(hub);
    let (me, them) = (Endpoint { tag: mine, addr }, Endpoint { tag: theirs, addr: first.addr });
    let guard = match role {
        Role::Host => hub.router.activate(me, them),
        Role::Viewer => hub.router.activate(them, me),
    };
    if first.mailbox.send(PeerEvent::Rejoined { tag: theirs, partner: tx }).await.is_err() {
        io.send(&RelayToClient::PeerGone).await?;
        return Ok(());
    }
    io.send(&RelayToClient::Rejoined { tag: mine }).await?;
    tracing::info!(%addr, "session rejoined");
    session(io, &mut rx, first.mailbox, Some(guard)).await
}

/// A rejoined session lasts until either end leaves; the other is told.
async fn session(
    io: &mut ClientIo,
    rx: &mut mpsc::Receiver<PeerEvent>,
    partner: Mailbox,
    guard: Option<RouteGuard>,
) -> Result<(), RelayErrorKind> {
    let _keep = (partner, guard);
    loop {
        tokio::select! {
            msg = io.recv() => match msg? {
                None => return Ok(()),
                Some(ClientToRelay::Pake { .. } | ClientToRelay::Confirm { .. } | ClientToRelay::PairingResult { .. }) => {}
                Some(other) => return Err(RelayErrorKind::Protocol(format!("unexpected {other:?} in a session"))),
            },
            event = rx.recv() => if event.is_none() {
                io.send(&RelayToClient::PeerGone).await?;
                return Ok(());
            },
        }
    }
}
