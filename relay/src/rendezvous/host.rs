//! The relay's side of a host connection: register → wait → pair → session, and again.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Instant;

use rand::Rng;
use tether_shared::code::Nameplate;
use tether_shared::relay_proto::{ClientToRelay, RelayErrorKind, RelayToClient, Role, MAX_PAIRING_PAYLOAD};
use tokio::sync::mpsc;

use super::io::ClientIo;
use super::{Hub, Mailbox, PeerEvent, MAILBOX};
use crate::forward::{Endpoint, RouteGuard};

/// How waiting under a nameplate ended.
enum Waited {
    Joined(Mailbox, SocketAddr),
    Expired,
    HostLeft,
}

/// How a pairing ended, from the host task's point of view.
enum Paired {
    Both { viewer: Mailbox, host_tag: u64, viewer_tag: u64 },
    Failed(Mailbox, RelayErrorKind),
    ViewerLeft,
    HostLeft,
}

pub async fn run(io: &mut ClientIo, hub: &Hub, addr: SocketAddr) -> Result<(), RelayErrorKind> {
    loop {
        // Idle: wait for Register. Stale pairing messages from a pairing that just failed are ignored.
        match io.recv().await? {
            None => return Ok(()),
            Some(ClientToRelay::Register) => {}
            Some(ClientToRelay::Rejoin { resume_id }) => {
                return super::rejoin::run(io, hub, addr, Role::Host, resume_id).await
            }
            Some(msg) if is_pairing(&msg) => continue,
            Some(other) => return Err(RelayErrorKind::Protocol(format!("unexpected {other:?} from a host"))),
        }
        if !hub.limits.allow_register(addr.ip()) {
            io.notify(RelayErrorKind::RateLimited).await?;
            continue;
        }
        let (tx, mut rx) = mpsc::channel(MAILBOX);
        let registered = hub.nameplates().register(Instant::now(), tx, &mut rand::rng());
        let (nameplate, expires) = match registered {
            Ok(ok) => ok,
            Err(kind) => {
                io.notify(kind).await?;
                continue;
            }
        };
        let expires_in_ms = expires.saturating_duration_since(Instant::now()).as_millis() as u64;
        tracing::info!(%addr, %nameplate, "host waiting");
        io.send(&RelayToClient::Registered { nameplate: nameplate.clone(), expires_in_ms }).await?;

        let (viewer, viewer_addr) = match wait(io, hub, &nameplate, expires, &mut rx).await? {
            Waited::Joined(viewer, viewer_addr) => (viewer, viewer_addr),
            Waited::Expired => continue,
            Waited::HostLeft => return Ok(()),
        };
        hub.pairings.fetch_add(1, Ordering::Relaxed);
        let outcome = pair(io, hub, viewer, &mut rx).await;
        hub.pairings.fetch_sub(1, Ordering::Relaxed);
        match outcome? {
            Paired::Both { viewer, .. } if hub.router.len() / 2 >= hub.cfg.max_sessions => {
                let _ = viewer.send(PeerEvent::Failed(RelayErrorKind::Busy)).await;
                io.send(&RelayToClient::PairingFailed).await?;
            }
            Paired::Both { viewer, host_tag, viewer_tag } => {
                let guard = hub.router.activate(
                    Endpoint { tag: host_tag, addr },
                    Endpoint { tag: viewer_tag, addr: viewer_addr },
                );
                tracing::info!(%addr, %viewer_addr, %nameplate, "session started");
                let _ = viewer.send(PeerEvent::Ready).await;
                io.send(&RelayToClient::SessionReady).await?;
                let host_stays = session(io, &mut rx, guard).await?;
                tracing::info!(%addr, %nameplate, "session ended");
                if !host_stays {
                    return Ok(());
                }
            }
            Paired::Failed(viewer, kind) => {
                tracing::info!(%addr, %nameplate, "pairing failed: {kind}");
                let _ = viewer.send(PeerEvent::Failed(kind)).await;
                io.send(&RelayToClient::PairingFailed).await?;
            }
            Paired::ViewerLeft => io.send(&RelayToClient::PeerGone).await?,
            Paired::HostLeft => return Ok(()),
        }
    }
}

fn is_pairing(msg: &ClientToRelay) -> bool {
    matches!(
        msg,
        ClientToRelay::Pake { .. } | ClientToRelay::Confirm { .. } | ClientToRelay::PairingResult { .. }
    )
}

/// Waiting under a nameplate until a viewer joins, the code expires or the host leaves.
async fn wait(
    io: &mut ClientIo,
    hub: &Hub,
    nameplate: &Nameplate,
    expires: Instant,
    rx: &mut mpsc::Receiver<PeerEvent>,
) -> Result<Waited, RelayErrorKind> {
    let result = loop {
        tokio::select! {
            msg = io.recv() => match msg {
                Ok(None) => break Ok(Waited::HostLeft),
                Ok(Some(msg)) if is_pairing(&msg) => continue,
                Ok(Some(other)) => break Err(RelayErrorKind::Protocol(format!("unexpected {other:?} while waiting"))),
                Err(e) => break Err(e),
            },
            event = rx.recv() => match event {
                Some(PeerEvent::Joined { viewer, addr }) => return Ok(Waited::Joined(viewer, addr)),
                Some(_) => continue,
                None => {
                    // Claimed by a viewer that vanished before joining: this code is spent.
                    io.send(&RelayToClient::CodeExpired).await?;
                    return Ok(Waited::Expired);
                }
            },
            _ = tokio::time::sleep_until(expires.into()) => {
                if hub.nameplates().expire(Instant::now(), nameplate) {
                    io.send(&RelayToClient::CodeExpired).await?;
                    return Ok(Waited::Expired);
                }
            }
        }
    };
    hub.nameplates().cancel(nameplate);
    result
}

/// Two fresh, distinct, nonzero tags not in use.
pub(super) fn fresh_tags(hub: &Hub) -> (u64, u64) {
    let mut rng = rand::rng();
    let mut fresh = |other: u64| loop {
        let tag: u64 = rng.random();
        if tag != 0 && tag != other && !hub.router.contains(tag) {
            return tag;
        }
    };
    let host = fresh(0);
    (host, fresh(host))
}

/// Pass the PAKE and confirmation messages both ways until both sides have given their verdict.
async fn pair(
    io: &mut ClientIo,
    hub: &Hub,
    viewer: Mailbox,
    rx: &mut mpsc::Receiver<PeerEvent>,
) -> Result<Paired, RelayErrorKind> {
    let (host_tag, viewer_tag) = fresh_tags(hub);
    if viewer.send(PeerEvent::Tag(viewer_tag)).await.is_err() {
        return Ok(Paired::ViewerLeft);
    }
    io.send(&RelayToClient::PeerJoined { tag: host_tag }).await?;
    let deadline = tokio::time::Instant::now() + hub.cfg.pairing_timeout;
    let (mut host_ok, mut viewer_ok) = (None, None);
    loop {
        match (host_ok, viewer_ok) {
            (Some(false), _) | (_, Some(false)) => {
                return Ok(Paired::Failed(viewer, RelayErrorKind::WrongCode))
            }
            (Some(true), Some(true)) => return Ok(Paired::Both { viewer, host_tag, viewer_tag }),
            _ => {}
        }
        tokio::select! {
            msg = io.recv() => {
                let event = match msg? {
                    None => return Ok(Paired::HostLeft),
                    Some(ClientToRelay::Pake { mut msg }) => {
                        check_payload(&msg)?;
                        if let Some(tap) = hub.router.tap() {
                            tap.pake(Role::Host, &mut msg);
                        }
                        PeerEvent::Pake(msg)
                    }
                    Some(ClientToRelay::Confirm { msg }) => { check_payload(&msg)?; PeerEvent::Confirm(msg) }
                    Some(ClientToRelay::PairingResult { ok }) => { host_ok = Some(ok); PeerEvent::Result(ok) }
                    Some(other) => return Err(RelayErrorKind::Protocol(format!("unexpected {other:?} while pairing"))),
                };
                if viewer.send(event).await.is_err() {
                    return Ok(Paired::ViewerLeft);
                }
            }
            event = rx.recv() => match event {
                None => return Ok(Paired::ViewerLeft),
                Some(PeerEvent::Pake(msg)) => io.send(&RelayToClient::PeerPake { msg }).await?,
                Some(PeerEvent::Confirm(msg)) => io.send(&RelayToClient::PeerConfirm { msg }).await?,
                Some(PeerEvent::Result(ok)) => viewer_ok = Some(ok),
                Some(_) => {}
            },
            _ = tokio::time::sleep_until(deadline) => return Ok(Paired::Failed(viewer, RelayErrorKind::Timeout)),
        }
    }
}

pub(super) fn check_payload(msg: &[u8]) -> Result<(), RelayErrorKind> {
    if msg.len() > MAX_PAIRING_PAYLOAD {
        return Err(RelayErrorKind::Protocol(format!("pairing message of {} bytes", msg.len())));
    }
    Ok(())
}

/// A live session: the routes exist until the host leaves (`Ok(false)`) or the viewer does (`Ok(true)`:
/// the host is told and may register again).
async fn session(
    io: &mut ClientIo,
    rx: &mut mpsc::Receiver<PeerEvent>,
    guard: RouteGuard,
) -> Result<bool, RelayErrorKind> {
    loop {
        tokio::select! {
            msg = io.recv() => match msg? {
                None => return Ok(false),
                Some(msg) if is_pairing(&msg) => continue,
                Some(other) => return Err(RelayErrorKind::Protocol(format!("unexpected {other:?} in a session"))),
            },
            event = rx.recv() => if event.is_none() {
                drop(guard);
                io.send(&RelayToClient::PeerGone).await?;
                return Ok(true);
            },
        }
    }
}
