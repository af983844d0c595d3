//! The relay's side of a host connection: register → wait → pair → session, and again. Each registered
//! code ends in one audit row (`Draft` collects it).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rand::Rng;
use tether_shared::code::Nameplate;
use tether_shared::relay_proto::{ClientToRelay, RelayErrorKind, RelayToClient, Role, VerifiedTechnician};
use tokio::sync::mpsc;

use super::io::ClientIo;
use super::pairing::{self, is_pairing, Decided, PairingVerdict};
use super::peer::{Mailbox, PeerEvent, MAILBOX};
use super::shared::Rendezvous;
use crate::audit::{AuditRecord, Outcome};
use crate::forward::{Endpoint, RouteGuard};
use crate::resume::ResumeRecord;
use crate::store::now_ms;

/// How waiting under a nameplate ended.
enum Waited {
    Joined(Mailbox, SocketAddr, Option<VerifiedTechnician>),
    Expired,
    HostLeft,
}

/// How a pairing ended, from the host task's point of view.
enum Paired {
    /// `commitment`: both ends committed to this resume id (the session may rejoin).
    Both {
        viewer: Mailbox,
        host_tag: u64,
        viewer_tag: u64,
        commitment: Option<[u8; 32]>,
    },
    /// `after_guess`: see [`Paired::ViewerLeft`].
    Failed {
        viewer: Mailbox,
        kind: RelayErrorKind,
        after_guess: bool,
    },
    /// `after_guess`: the host's key confirmation had reached the viewer, which tells it whether its guess at
    /// the secret was right: leaving (or stalling) then spent a guess as surely as a wrong-code verdict.
    ViewerLeft {
        after_guess: bool,
    },
    HostLeft,
}

/// After one code: register again, or the host is gone.
enum Next {
    Again,
    Leave,
}

/// The audit row of one registered code, filled in as it goes.
struct Draft {
    session_id: String,
    registered_at: i64,
    claimed_at: Option<i64>,
    technician: Option<String>,
    host_addr: SocketAddr,
    viewer_addr: Option<SocketAddr>,
    traffic: Option<(Arc<AtomicU64>, Arc<AtomicU64>)>,
    /// For an invite: the session it joins (its audit session id).
    part_of: Option<String>,
    /// The host's session record as last heard of: entries and head.
    record: Option<(u64, [u8; 32])>,
}

impl Draft {
    fn new(host_addr: SocketAddr) -> Self {
        Self {
            session_id: format!("{:016x}", rand::rng().random::<u64>()),
            registered_at: now_ms(),
            claimed_at: None,
            technician: None,
            host_addr,
            viewer_addr: None,
            traffic: None,
            part_of: None,
            record: None,
        }
    }

    fn finish(self, outcome: Outcome) -> AuditRecord {
        let (h2v, v2h) = self
            .traffic
            .map(|(a, b)| (a.load(Ordering::Relaxed), b.load(Ordering::Relaxed)))
            .unwrap_or_default();
        AuditRecord {
            session_id: self.session_id,
            registered_at: self.registered_at,
            claimed_at: self.claimed_at,
            ended_at: now_ms(),
            technician: self.technician,
            host_addr: self.host_addr.to_string(),
            viewer_addr: self.viewer_addr.map(|a| a.to_string()),
            bytes_host_to_viewer: h2v,
            bytes_viewer_to_host: v2h,
            outcome: outcome.as_str().to_owned(),
            part_of: self.part_of,
            record_len: self.record.map(|(len, _)| len),
            record_head: self.record.map(|(_, head)| tether_shared::record::chain::hex32::to_hex(&head)),
            relay: None, // the hub names itself when it writes the row
        }
    }
}

/// The audit session id of the live session whose resume commitment is `session`, for an invite's row.
/// `None` (and the invite goes on, unlinked) when the relay holds no such session.
async fn joined_session(hub: &Rendezvous, session: [u8; 32]) -> Option<String> {
    let store = hub.store().clone();
    match tokio::task::spawn_blocking(move || store.find_resume(&session, now_ms())).await {
        // An invite from an invited colleague names the first session: every row of one session's people
        // points at the same id.
        Ok(Ok(found)) => found.map(|record| record.part_of.unwrap_or(record.session_id)),
        Ok(Err(e)) => {
            tracing::warn!("could not look up the session an invite joins: {e}");
            None
        }
        Err(_) => None,
    }
}

pub async fn run(io: &mut ClientIo, hub: &Rendezvous, addr: SocketAddr) -> Result<(), RelayErrorKind> {
    loop {
        // Idle: wait for Register. Stale pairing messages from a pairing that just failed are ignored.
        let joins = match io.recv().await? {
            None => return Ok(()),
            Some(ClientToRelay::Register) => None,
            Some(ClientToRelay::RegisterInvite { session }) => Some(session),
            Some(ClientToRelay::Rejoin { resume_id }) => {
                return super::rejoin::run(io, hub, addr, Role::Host, resume_id).await
            }
            Some(msg) if is_pairing(&msg) => continue,
            // A head sent as the last session ended, after its row was written: nothing to keep it in.
            Some(ClientToRelay::RecordHead { .. }) => continue,
            Some(other) => return Err(RelayErrorKind::Protocol(format!("unexpected {other:?} from a host"))),
        };
        let refused = if hub.is_draining() {
            Some(RelayErrorKind::ShuttingDown)
        } else if !hub.limits().allow_register(addr.ip()) {
            Some(RelayErrorKind::RateLimited)
        } else {
            None
        };
        if let Some(kind) = refused {
            hub.metrics().register_refused(&kind);
            io.notify(kind).await?;
            continue;
        }
        let (tx, mut rx) = mpsc::channel(MAILBOX);
        let registered = super::directory::register(hub, tx).await;
        let (nameplate, expires) = match registered {
            Ok(ok) => ok,
            Err(kind) => {
                hub.metrics().register_refused(&kind);
                io.notify(kind).await?;
                continue;
            }
        };
        hub.metrics().registrations.fetch_add(1, Ordering::Relaxed);
        let mut draft = Draft::new(addr);
        if let Some(session) = joins {
            draft.part_of = joined_session(hub, session).await;
        }
        let expires_in_ms = expires.saturating_duration_since(Instant::now()).as_millis() as u64;
        tracing::info!(%addr, %nameplate, session = %draft.session_id, "host waiting");
        let step =
            match io.send(&RelayToClient::Registered { nameplate: nameplate.clone(), expires_in_ms }).await {
                Ok(()) => one_code(io, hub, addr, &nameplate, expires, &mut rx, &mut draft).await,
                Err(e) => Err(e),
            };
        let outcome = match &step {
            Ok((_, outcome)) => *outcome,
            Err(_) => Outcome::Aborted,
        };
        tracing::info!(%addr, %nameplate, session = %draft.session_id, outcome = outcome.as_str(), "code done");
        hub.audit(draft.finish(outcome));
        match step?.0 {
            Next::Again => continue,
            Next::Leave => return Ok(()),
        }
    }
}

/// One registered code, from waiting to the end of its session (if any).
async fn one_code(
    io: &mut ClientIo,
    hub: &Rendezvous,
    addr: SocketAddr,
    nameplate: &Nameplate,
    expires: Instant,
    rx: &mut mpsc::Receiver<PeerEvent>,
    draft: &mut Draft,
) -> Result<(Next, Outcome), RelayErrorKind> {
    let (viewer, viewer_addr, technician) = match wait(io, hub, nameplate, expires, rx).await? {
        Waited::Joined(viewer, viewer_addr, technician) => (viewer, viewer_addr, technician),
        Waited::Expired => return Ok((Next::Again, Outcome::Expired)),
        Waited::HostLeft => return Ok((Next::Leave, Outcome::HostLeftWaiting)),
    };
    draft.claimed_at = Some(now_ms());
    draft.viewer_addr = Some(viewer_addr);
    draft.technician = technician.as_ref().map(|t| t.account.clone());
    let pairing = hub.pairing();
    let outcome = pair(io, hub, viewer, technician, rx).await;
    drop(pairing);
    match outcome? {
        Paired::Both { viewer, .. } if hub.at_session_cap() => {
            let _ = viewer.send(PeerEvent::Failed(RelayErrorKind::Busy)).await;
            io.send(&RelayToClient::PairingFailed).await?;
            Ok((Next::Again, Outcome::Busy))
        }
        Paired::Both { viewer, host_tag, viewer_tag, commitment } => {
            let _resumable = match commitment {
                Some(commitment) => {
                    let record = ResumeRecord {
                        commitment,
                        session_id: draft.session_id.clone(),
                        host_addr: addr.to_string(),
                        viewer_addr: viewer_addr.to_string(),
                        technician: draft.technician.clone(),
                        created_at: now_ms(),
                        part_of: draft.part_of.clone(),
                    };
                    // Stored before the session starts, so a relay killed right after still knows it.
                    let store = hub.store().clone();
                    match tokio::task::spawn_blocking(move || store.save_resume(&record)).await {
                        Ok(Ok(())) => Some(hub.resume_live().enter(commitment)),
                        Ok(Err(e)) => {
                            tracing::error!("could not store the resume record: {e}");
                            None
                        }
                        Err(e) => {
                            tracing::error!("could not store the resume record: {e}");
                            None
                        }
                    }
                }
                None => None,
            };
            let guard = hub
                .router()
                .activate(Endpoint { tag: host_tag, addr }, Endpoint { tag: viewer_tag, addr: viewer_addr });
            draft.traffic =
                Some((guard.traffic.host_to_viewer.clone(), guard.traffic.viewer_to_host.clone()));
            hub.metrics().sessions_started.fetch_add(1, Ordering::Relaxed);
            tracing::info!(%addr, %viewer_addr, %nameplate, "session started");
            let _ = viewer.send(PeerEvent::Ready).await;
            io.send(&RelayToClient::SessionReady).await?;
            let (host_stays, outcome) = session(io, rx, guard, &mut draft.record).await?;
            tracing::info!(%addr, %nameplate, "session ended");
            Ok((if host_stays { Next::Again } else { Next::Leave }, outcome))
        }
        Paired::Failed { viewer, kind, after_guess } => {
            tracing::info!(%addr, %nameplate, "pairing failed: {kind}");
            if kind == RelayErrorKind::WrongCode || after_guess {
                hub.wrong_code(viewer_addr, addr);
            }
            let outcome = match kind {
                RelayErrorKind::Timeout => Outcome::PairingTimeout,
                _ => Outcome::WrongCode,
            };
            let _ = viewer.send(PeerEvent::Failed(kind)).await;
            io.send(&RelayToClient::PairingFailed).await?;
            Ok((Next::Again, outcome))
        }
        Paired::ViewerLeft { after_guess } => {
            if after_guess {
                hub.wrong_code(viewer_addr, addr);
            }
            io.send(&RelayToClient::PeerGone).await?;
            Ok((Next::Again, Outcome::PeerLeftPairing))
        }
        Paired::HostLeft => Ok((Next::Leave, Outcome::PeerLeftPairing)),
    }
}

/// Waiting under a nameplate until a viewer joins, the code expires or the host leaves.
async fn wait(
    io: &mut ClientIo,
    hub: &Rendezvous,
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
                Some(PeerEvent::Joined { viewer, addr, technician }) => {
                    return Ok(Waited::Joined(viewer, addr, technician))
                }
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
    super::directory::unlist(hub, nameplate);
    result
}

/// Pass the PAKE and confirmation messages both ways until both sides have given their verdict.
async fn pair(
    io: &mut ClientIo,
    hub: &Rendezvous,
    viewer: Mailbox,
    technician: Option<VerifiedTechnician>,
    rx: &mut mpsc::Receiver<PeerEvent>,
) -> Result<Paired, RelayErrorKind> {
    let (host_tag, viewer_tag) = hub.router().fresh_tags();
    if viewer.send(PeerEvent::Tag(viewer_tag)).await.is_err() {
        return Ok(Paired::ViewerLeft { after_guess: false });
    }
    io.send(&RelayToClient::PeerJoined { tag: host_tag, technician }).await?;
    let deadline = tokio::time::Instant::now() + hub.cfg().pairing_timeout;
    let mut verdict = PairingVerdict::new();
    loop {
        match verdict.decided() {
            Some(Decided::WrongCode) => {
                let after_guess = verdict.after_guess();
                return Ok(Paired::Failed { viewer, kind: RelayErrorKind::WrongCode, after_guess });
            }
            Some(Decided::Paired { commitment }) => {
                return Ok(Paired::Both { viewer, host_tag, viewer_tag, commitment })
            }
            None => {}
        }
        tokio::select! {
            msg = io.recv() => {
                let Some(msg) = msg? else { return Ok(Paired::HostLeft) };
                let event = match pairing::from_client(msg, Role::Host, hub.router())? {
                    PeerEvent::Commit(commitment) => { verdict.handle_host_commit(commitment); continue }
                    PeerEvent::Result(ok) => { verdict.handle_host_result(ok); PeerEvent::Result(ok) }
                    event => event,
                };
                let confirms = matches!(event, PeerEvent::Confirm(_));
                if viewer.send(event).await.is_err() {
                    return Ok(Paired::ViewerLeft { after_guess: verdict.after_guess() });
                }
                // The host's key confirmation is on its way to the viewer: from now on it can tell whether
                // its guess was right.
                if confirms {
                    verdict.handle_host_confirm_forwarded();
                }
            }
            event = rx.recv() => match event {
                None => return Ok(Paired::ViewerLeft { after_guess: verdict.after_guess() }),
                Some(PeerEvent::Result(ok)) => verdict.handle_viewer_result(ok),
                Some(PeerEvent::Commit(commitment)) => verdict.handle_viewer_commit(commitment),
                Some(event) => if let Some(msg) = pairing::to_client(event) { io.send(&msg).await? },
            },
            _ = tokio::time::sleep_until(deadline) => {
                let after_guess = verdict.after_guess();
                return Ok(Paired::Failed { viewer, kind: RelayErrorKind::Timeout, after_guess })
            }
        }
    }
}

/// A live session: the routes exist until the host leaves (`false`) or the viewer's side ends (`true`: the
/// host is told and may register again). Also returns how it ended.
async fn session(
    io: &mut ClientIo,
    rx: &mut mpsc::Receiver<PeerEvent>,
    guard: RouteGuard,
    record: &mut Option<(u64, [u8; 32])>,
) -> Result<(bool, Outcome), RelayErrorKind> {
    let mut viewer_end = Outcome::Completed;
    loop {
        tokio::select! {
            msg = io.recv() => match msg? {
                None => {
                    let outcome = if io.vanished() { Outcome::HostVanished } else { Outcome::Completed };
                    return Ok((false, outcome));
                }
                Some(msg) if is_pairing(&msg) => continue,
                Some(ClientToRelay::RecordHead { len, head }) => *record = Some((len, head)),
                Some(other) => return Err(RelayErrorKind::Protocol(format!("unexpected {other:?} in a session"))),
            },
            event = rx.recv() => match event {
                Some(PeerEvent::Ended(outcome)) => viewer_end = outcome,
                Some(_) => {}
                None => {
                    drop(guard);
                    // Best effort: the host may already be gone too (both ends leaving at once); the
                    // session's outcome is how the viewer's side ended either way.
                    let _ = match viewer_end {
                        Outcome::Revoked => io.notify(RelayErrorKind::Revoked).await,
                        _ => io.send(&RelayToClient::PeerGone).await,
                    };
                    return Ok((true, viewer_end));
                }
            },
        }
    }
}
