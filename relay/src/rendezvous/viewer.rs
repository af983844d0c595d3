//! The relay's side of a viewer connection: claim → pair → session.

use std::net::SocketAddr;
use std::time::Instant;

use tether_shared::relay_proto::{ClientToRelay, RelayErrorKind, RelayToClient, Role};
use tokio::sync::mpsc;

use super::host::check_payload;
use super::io::ClientIo;
use super::{Hub, Mailbox, PeerEvent, MAILBOX};

pub async fn run(io: &mut ClientIo, hub: &Hub, addr: SocketAddr) -> Result<(), RelayErrorKind> {
    loop {
        let nameplate = match io.recv().await? {
            None => return Ok(()),
            Some(ClientToRelay::Claim { nameplate }) => nameplate,
            Some(ClientToRelay::Rejoin { resume_id }) => {
                return super::rejoin::run(io, hub, addr, Role::Viewer, resume_id).await
            }
            Some(other) => {
                return Err(RelayErrorKind::Protocol(format!("unexpected {other:?} from a viewer")))
            }
        };
        if !hub.limits.allow_claim(addr.ip()) {
            tracing::info!(%addr, "claim rate-limited");
            io.notify(RelayErrorKind::RateLimited).await?;
            continue;
        }
        let claimed = hub.nameplates().claim(Instant::now(), &nameplate);
        let host = match claimed {
            Ok(host) => host,
            Err(kind) => {
                tracing::info!(%addr, %nameplate, "claim refused: {kind}");
                io.notify(kind).await?;
                continue;
            }
        };
        let (tx, mut rx) = mpsc::channel(MAILBOX);
        if host.send(PeerEvent::Joined { viewer: tx, addr }).await.is_err() {
            io.notify(RelayErrorKind::UnknownCode).await?;
            continue;
        }
        tracing::info!(%addr, %nameplate, "code claimed");
        match pair(io, hub, &host, &mut rx).await? {
            Some(true) => return session(io, &mut rx, host).await,
            Some(false) => continue,
            None => return Ok(()),
        }
    }
}

/// Pass pairing messages until the host task says `Ready` (`Some(true)`) or `Failed` (`Some(false)`, the
/// viewer was told why), or the viewer leaves (`None`).
async fn pair(
    io: &mut ClientIo,
    hub: &Hub,
    host: &Mailbox,
    rx: &mut mpsc::Receiver<PeerEvent>,
) -> Result<Option<bool>, RelayErrorKind> {
    loop {
        tokio::select! {
            msg = io.recv() => {
                let event = match msg? {
                    None => return Ok(None),
                    Some(ClientToRelay::Pake { mut msg }) => {
                        check_payload(&msg)?;
                        if let Some(tap) = hub.router.tap() {
                            tap.pake(Role::Viewer, &mut msg);
                        }
                        PeerEvent::Pake(msg)
                    }
                    Some(ClientToRelay::Confirm { msg }) => { check_payload(&msg)?; PeerEvent::Confirm(msg) }
                    Some(ClientToRelay::PairingResult { ok }) => PeerEvent::Result(ok),
                    Some(other) => return Err(RelayErrorKind::Protocol(format!("unexpected {other:?} while pairing"))),
                };
                if host.send(event).await.is_err() {
                    io.send(&RelayToClient::PeerGone).await?;
                    return Ok(Some(false));
                }
            }
            event = rx.recv() => match event {
                None => {
                    io.send(&RelayToClient::PeerGone).await?;
                    return Ok(Some(false));
                }
                Some(PeerEvent::Tag(tag)) => io.send(&RelayToClient::PeerJoined { tag }).await?,
                Some(PeerEvent::Pake(msg)) => io.send(&RelayToClient::PeerPake { msg }).await?,
                Some(PeerEvent::Confirm(msg)) => io.send(&RelayToClient::PeerConfirm { msg }).await?,
                Some(PeerEvent::Ready) => {
                    io.send(&RelayToClient::SessionReady).await?;
                    return Ok(Some(true));
                }
                Some(PeerEvent::Failed(kind)) => {
                    io.notify(kind).await?;
                    return Ok(Some(false));
                }
                Some(_) => {}
            },
        }
    }
}

/// A live session: until the viewer leaves, or the host does (the viewer is told).
async fn session(
    io: &mut ClientIo,
    rx: &mut mpsc::Receiver<PeerEvent>,
    host: Mailbox,
) -> Result<(), RelayErrorKind> {
    loop {
        tokio::select! {
            msg = io.recv() => match msg? {
                None => return Ok(()),
                Some(ClientToRelay::Pake { .. } | ClientToRelay::Confirm { .. } | ClientToRelay::PairingResult { .. }) => continue,
                Some(other) => return Err(RelayErrorKind::Protocol(format!("unexpected {other:?} in a session"))),
            },
            event = rx.recv() => if event.is_none() {
                io.send(&RelayToClient::PeerGone).await?;
                drop(host);
                return Ok(());
            },
        }
    }
}
