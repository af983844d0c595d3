//! The relay's side of a viewer connection: claim (with the technician's token, checked here) → pair →
//! session. A session of a verified account is registered with [`crate::revocation`] so revoking the
//! account ends it. Claims are refused while the viewer's address (or the relay) is over its failed-claim
//! budget, and token checks take turns (`max_token_checks` at once).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tether_shared::relay_proto::{
    ClientToRelay, RelayErrorKind, RelayToClient, Role, VerifiedTechnician, MAX_TOKEN_LEN,
};
use tether_shared::token::Token;
use tokio::sync::mpsc;

use super::io::ClientIo;
use super::pairing::{self, is_pairing};
use super::peer::{Mailbox, PeerEvent, MAILBOX};
use super::shared::Rendezvous;
use crate::audit::Outcome;
use crate::revocation::LiveGuard;

pub async fn run(io: &mut ClientIo, hub: &Rendezvous, addr: SocketAddr) -> Result<(), RelayErrorKind> {
    loop {
        let (nameplate, token) = match io.recv().await? {
            None => return Ok(()),
            Some(ClientToRelay::Claim { nameplate, token }) => (nameplate, token),
            Some(ClientToRelay::Rejoin { resume_id }) => {
                return super::rejoin::run(io, hub, addr, Role::Viewer, resume_id).await
            }
            Some(other) => {
                return Err(RelayErrorKind::Protocol(format!("unexpected {other:?} from a viewer")))
            }
        };
        if hub.is_draining() {
            refuse(io, hub, addr, RelayErrorKind::ShuttingDown).await?;
            continue;
        }
        // The rate limit comes first: it also bounds the argon2 work a client can cause.
        if !hub.limits().allow_claim(addr.ip()) {
            refuse(io, hub, addr, RelayErrorKind::RateLimited).await?;
            continue;
        }
        let over_budget = hub.failed_claims().check(Instant::now(), addr.ip());
        if over_budget.is_err() {
            refuse(io, hub, addr, RelayErrorKind::TooManyWrongCodes).await?;
            continue;
        }
        let technician = match authenticate(hub, token).await {
            Ok(technician) => technician,
            Err(kind) => {
                refuse(io, hub, addr, kind).await?;
                continue;
            }
        };
        let claimed = hub.nameplates().claim(Instant::now(), &nameplate);
        let host = match claimed {
            Ok(host) => host,
            Err(kind) => {
                let kind = match kind {
                    // Perhaps another relay of the organization holds it: send the viewer there.
                    RelayErrorKind::UnknownCode => match super::directory::locate(hub, &nameplate).await {
                        Ok(Some(relay)) => {
                            tracing::info!(%addr, %nameplate, to = %relay.address, "claim redirected");
                            hub.metrics().claims_redirected.fetch_add(1, Ordering::Relaxed);
                            io.send(&RelayToClient::Redirect { relay }).await?;
                            continue;
                        }
                        Ok(None) => kind,
                        Err(unavailable) => unavailable,
                    },
                    kind => kind,
                };
                tracing::info!(%addr, %nameplate, "claim refused: {kind}");
                refuse(io, hub, addr, kind).await?;
                continue;
            }
        };
        let account = technician.as_ref().map(|t| t.account.clone());
        let (tx, mut rx) = mpsc::channel(MAILBOX);
        if host.send(PeerEvent::Joined { viewer: tx, addr, technician }).await.is_err() {
            io.notify(RelayErrorKind::UnknownCode).await?;
            continue;
        }
        hub.metrics().claims.fetch_add(1, Ordering::Relaxed);
        tracing::info!(%addr, %nameplate, account = account.as_deref().unwrap_or("-"), "code claimed");
        match pair(io, hub, &host, &mut rx).await? {
            Some(true) => {
                let live = account.map(|a| hub.live().enter(&a));
                return session(io, hub, &mut rx, host, live).await;
            }
            Some(false) => continue,
            None => return Ok(()),
        }
    }
}

async fn refuse(
    io: &mut ClientIo,
    hub: &Rendezvous,
    addr: SocketAddr,
    kind: RelayErrorKind,
) -> Result<(), RelayErrorKind> {
    match kind {
        RelayErrorKind::RateLimited => tracing::info!(%addr, "claim rate-limited"),
        RelayErrorKind::TooManyWrongCodes => {
            tracing::info!(%addr, "claim refused: failed-claim budget spent")
        }
        _ => {}
    }
    hub.metrics().claim_refused(&kind);
    io.notify(kind).await
}

/// Check the technician's token (if any) against the account store. Never logs the token.
async fn authenticate(
    hub: &Rendezvous,
    token: Option<Token>,
) -> Result<Option<VerifiedTechnician>, RelayErrorKind> {
    let Some(token) = token else {
        return if hub.cfg().require_technician_auth { Err(RelayErrorKind::AuthRequired) } else { Ok(None) };
    };
    if token.expose().len() > MAX_TOKEN_LEN {
        return Err(RelayErrorKind::BadToken);
    }
    // One argon2 check takes ~19 MiB and a core for tens of ms: wait (briefly) for a turn.
    let Some(_turn) = hub.token_turn().await else {
        tracing::info!("claim refused: too many token checks at once");
        return Err(RelayErrorKind::Busy);
    };
    let store = hub.store().clone();
    let checking = hub.metrics().token_check();
    let verified = tokio::task::spawn_blocking(move || store.verify_token(token.expose())).await;
    drop(checking);
    match verified {
        Ok(Ok(Some(account))) => Ok(Some(VerifiedTechnician::new(account, hub.cfg().organization.clone()))),
        Ok(Ok(None)) => Err(RelayErrorKind::BadToken),
        Ok(Err(e)) => {
            tracing::error!("account store: {e}");
            hub.metrics().database_error();
            Err(RelayErrorKind::AccountsUnavailable)
        }
        Err(e) => {
            tracing::error!("token check failed: {e}");
            Err(RelayErrorKind::Busy)
        }
    }
}

/// Pass pairing messages until the host task says `Ready` (`Some(true)`) or `Failed` (`Some(false)`, the
/// viewer was told why), or the viewer leaves (`None`).
async fn pair(
    io: &mut ClientIo,
    hub: &Rendezvous,
    host: &Mailbox,
    rx: &mut mpsc::Receiver<PeerEvent>,
) -> Result<Option<bool>, RelayErrorKind> {
    loop {
        tokio::select! {
            msg = io.recv() => {
                let Some(msg) = msg? else { return Ok(None) };
                let event = pairing::from_client(msg, Role::Viewer, hub.router())?;
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
                Some(PeerEvent::Tag(tag)) => io.send(&RelayToClient::PeerJoined { tag, technician: None }).await?,
                Some(PeerEvent::Ready) => {
                    io.send(&RelayToClient::SessionReady).await?;
                    return Ok(Some(true));
                }
                Some(PeerEvent::Failed(kind)) => {
                    io.notify(kind).await?;
                    return Ok(Some(false));
                }
                Some(event) => if let Some(msg) = pairing::to_client(event) { io.send(&msg).await? },
            },
        }
    }
}

/// A live session: until the viewer leaves, the host does (the viewer is told), or the technician's
/// account is revoked (both are told). The host task hears how the viewer's side ended.
async fn session(
    io: &mut ClientIo,
    hub: &Rendezvous,
    rx: &mut mpsc::Receiver<PeerEvent>,
    host: Mailbox,
    live: Option<LiveGuard>,
) -> Result<(), RelayErrorKind> {
    let revoked = live.as_ref().map(|l| l.revoked.clone()).unwrap_or_default();
    loop {
        tokio::select! {
            msg = io.recv() => match msg? {
                None => {
                    let outcome = if io.vanished() { Outcome::ViewerVanished } else { Outcome::Completed };
                    let _ = host.try_send(PeerEvent::Ended(outcome));
                    return Ok(());
                }
                Some(msg) if is_pairing(&msg) => continue,
                Some(other) => return Err(RelayErrorKind::Protocol(format!("unexpected {other:?} in a session"))),
            },
            event = rx.recv() => if event.is_none() {
                io.send(&RelayToClient::PeerGone).await?;
                drop(host);
                return Ok(());
            },
            _ = revoked.cancelled() => {
                tracing::info!(addr = %io.addr(), "technician's account revoked: ending the session");
                hub.metrics().revoked_sessions.fetch_add(1, Ordering::Relaxed);
                let _ = host.try_send(PeerEvent::Ended(Outcome::Revoked));
                return Err(RelayErrorKind::Revoked);
            }
        }
    }
}
