//! Rejoining: the two ends of a paired session find each other again after losing the relay (it
//! restarted, or a network hiccup dropped their control connections).
//!
//! Each end sends `Rejoin{resume_id}`. Only sessions this relay paired can rejoin: the commitment of
//! `resume_id` must match a live resume record ([`crate::resume`]), whose technician account must not be
//! revoked since; rejoins are rate-limited per address key and count against `max_sessions`. The first end
//! to arrive waits under the commitment; the second installs fresh routes between the two addresses and
//! hands the first its new tag. No PAKE is needed: the end-to-end QUIC connection between them is still
//! authenticated end to end; the relay only forwards, as before.
//!
//! A rejoined session of a verified account is registered with [`crate::revocation`] on both ends (a later
//! revocation ends it), keeps its resume record live, and gets its own audit row (the second end writes
//! it, under the session id of the pairing).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tether_shared::relay_proto::{resume_commitment, ClientToRelay, RelayErrorKind, RelayToClient, Role};
use tokio::sync::mpsc;

use super::io::ClientIo;
use super::pairing::is_pairing;
use super::peer::{HeadSlot, Mailbox, PeerEvent, Waiting, MAILBOX};
use super::shared::Rendezvous;
use crate::audit::{AuditRecord, Outcome};
use crate::forward::Endpoint;
use crate::resume::ResumeRecord;
use crate::revocation::LiveGuard;
use crate::store::now_ms;

/// How long the first end waits for the second.
const WAIT: Duration = Duration::from_secs(60);

pub async fn run(
    io: &mut ClientIo,
    hub: &Rendezvous,
    addr: SocketAddr,
    role: Role,
    id: [u8; 32],
) -> Result<(), RelayErrorKind> {
    let record = match admit(hub, addr, &id).await {
        Ok(record) => record,
        Err(kind) => {
            tracing::info!(%addr, ?role, "rejoin refused: {kind}");
            hub.metrics().rejoin_refused(&kind);
            return Err(kind);
        }
    };
    let key = record.commitment;
    let live = record.technician.as_deref().map(|a| hub.live().enter(a));
    let (tx, mut rx) = mpsc::channel(MAILBOX);
    let mut tx = Some(tx);
    let partner = {
        let mut waiting = hub.rejoins();
        match waiting.remove(&key) {
            Some(w) if w.role != role => Some(w),
            _ => {
                // First to arrive (or the same end retrying): wait here.
                if let Some(mailbox) = tx.take() {
                    waiting.insert(key, Waiting { role, addr, mailbox });
                }
                None
            }
        }
    };
    match (partner, tx) {
        (Some(first), Some(tx)) => second(io, hub, addr, role, first, tx, rx, record, live).await,
        _ => {
            let result = first(io, &mut rx, live, role).await;
            let mut waiting = hub.rejoins();
            if waiting.get(&key).is_some_and(|w| w.addr == addr && w.role == role) {
                waiting.remove(&key);
            }
            result
        }
    }
}

/// Check a rejoin before anything is kept for it: the address's rate, the record, the account.
async fn admit(hub: &Rendezvous, addr: SocketAddr, id: &[u8; 32]) -> Result<ResumeRecord, RelayErrorKind> {
    if hub.is_draining() {
        return Err(RelayErrorKind::ShuttingDown);
    }
    if !hub.limits().allow_rejoin(addr.ip()) {
        return Err(RelayErrorKind::RateLimited);
    }
    let commitment = resume_commitment(id);
    let store = hub.store().clone();
    let found = tokio::task::spawn_blocking(move || {
        let record = store.find_resume(&commitment, now_ms())?;
        let revoked = match record.as_ref().and_then(|r| r.technician.clone()) {
            Some(account) => !store.revoked_among(&[account])?.is_empty(),
            None => false,
        };
        Ok::<_, crate::store::StoreError>((record, revoked))
    })
    .await;
    match found {
        Ok(Ok((Some(_), true))) => Err(RelayErrorKind::Revoked),
        Ok(Ok((Some(record), false))) => Ok(record),
        Ok(Ok((None, _))) => Err(RelayErrorKind::UnknownSession),
        Ok(Err(e)) => {
            tracing::error!("reading resume records: {e}");
            Err(RelayErrorKind::Busy)
        }
        Err(e) => {
            tracing::error!("reading resume records: {e}");
            Err(RelayErrorKind::Busy)
        }
    }
}

/// The first end: wait for the second to install the routes.
async fn first(
    io: &mut ClientIo,
    rx: &mut mpsc::Receiver<PeerEvent>,
    live: Option<LiveGuard>,
    role: Role,
) -> Result<(), RelayErrorKind> {
    let (partner, heads) = tokio::select! {
        event = rx.recv() => match event {
            Some(PeerEvent::Rejoined { tag, partner, heads }) => {
                io.send(&RelayToClient::Rejoined { tag }).await?;
                (partner, heads)
            }
            Some(PeerEvent::Failed(kind)) => return Err(kind),
            _ => return Err(RelayErrorKind::Timeout),
        },
        msg = io.recv() => return match msg? {
            None => Ok(()),
            Some(other) => Err(RelayErrorKind::Protocol(format!("unexpected {other:?} while rejoining"))),
        },
        _ = tokio::time::sleep(WAIT) => return Err(RelayErrorKind::Timeout),
    };
    tracing::info!(addr = %io.addr(), "session rejoined");
    // The second end to rejoin writes the row, with the heads a host that came back first keeps here.
    session(io, rx, partner, live, role == Role::Host, &heads).await.map(|_| ())
}

/// The second end: install the routes, tell the first, and write the audit row when the session ends.
#[allow(clippy::too_many_arguments)]
async fn second(
    io: &mut ClientIo,
    hub: &Rendezvous,
    addr: SocketAddr,
    role: Role,
    first: Waiting,
    tx: Mailbox,
    mut rx: mpsc::Receiver<PeerEvent>,
    record: ResumeRecord,
    live: Option<LiveGuard>,
) -> Result<(), RelayErrorKind> {
    if hub.at_session_cap() {
        hub.metrics().rejoin_refused(&RelayErrorKind::Busy);
        let _ = first.mailbox.send(PeerEvent::Failed(RelayErrorKind::Busy)).await;
        return Err(RelayErrorKind::Busy);
    }
    let (mine, theirs) = hub.router().fresh_tags();
    let (me, them) = (Endpoint { tag: mine, addr }, Endpoint { tag: theirs, addr: first.addr });
    let guard = match role {
        Role::Host => hub.router().activate(me, them),
        Role::Viewer => hub.router().activate(them, me),
    };
    let _resumable = hub.resume_live().enter(record.commitment);
    let traffic = (guard.traffic.host_to_viewer.clone(), guard.traffic.viewer_to_host.clone());
    let heads = HeadSlot::default();
    let rejoined = PeerEvent::Rejoined { tag: theirs, partner: tx, heads: heads.clone() };
    if first.mailbox.send(rejoined).await.is_err() {
        io.send(&RelayToClient::PeerGone).await?;
        return Ok(());
    }
    let rejoined_at = now_ms();
    hub.metrics().rejoins.fetch_add(1, Ordering::Relaxed);
    tracing::info!(%addr, session = %record.session_id, "session rejoined");
    let (host_addr, viewer_addr) = match role {
        Role::Host => (addr, first.addr),
        Role::Viewer => (first.addr, addr),
    };
    let result = match io.send(&RelayToClient::Rejoined { tag: mine }).await {
        Ok(()) => session(io, &mut rx, first.mailbox, live, role == Role::Host, &heads).await,
        Err(e) => Err(e),
    };
    let head = *heads.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    drop(guard);
    let outcome = match &result {
        Err(RelayErrorKind::Revoked) => {
            hub.metrics().revoked_sessions.fetch_add(1, Ordering::Relaxed);
            Outcome::RejoinedRevoked
        }
        _ => Outcome::Rejoined,
    };
    hub.audit(AuditRecord {
        session_id: record.session_id,
        registered_at: record.created_at,
        claimed_at: Some(rejoined_at),
        ended_at: now_ms(),
        technician: record.technician,
        host_addr: host_addr.to_string(),
        viewer_addr: Some(viewer_addr.to_string()),
        bytes_host_to_viewer: traffic.0.load(Ordering::Relaxed),
        bytes_viewer_to_host: traffic.1.load(Ordering::Relaxed),
        outcome: outcome.as_str().to_owned(),
        part_of: record.part_of,
        record_len: head.map(|(len, _)| len),
        record_head: head.map(|(_, h)| tether_shared::record::chain::hex32::to_hex(&h)),
        relay: None, // the hub names itself when it writes the row
    });
    result.map(|_| ())
}

/// A rejoined session lasts until either end leaves (the other is told) or the technician's account is
/// revoked (both are told: each end holds its own registration).
async fn session(
    io: &mut ClientIo,
    rx: &mut mpsc::Receiver<PeerEvent>,
    partner: Mailbox,
    live: Option<LiveGuard>,
    host: bool,
    heads: &HeadSlot,
) -> Result<(), RelayErrorKind> {
    let revoked = live.as_ref().map(|l| l.revoked.clone()).unwrap_or_default();
    let ended = loop {
        tokio::select! {
            msg = io.recv() => match msg {
                Ok(None) => break Ok(()),
                Ok(Some(msg)) if is_pairing(&msg) => {}
                // Only the host keeps the record; a viewer has no business sending one.
                Ok(Some(ClientToRelay::RecordHead { len, head })) => {
                    if host {
                        *heads.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some((len, head));
                    }
                }
                Ok(Some(other)) => break Err(RelayErrorKind::Protocol(format!("unexpected {other:?} in a session"))),
                Err(e) => break Err(e),
            },
            event = rx.recv() => if event.is_none() {
                // The partner's end went; if that was a revocation, ours is cancelled too by now (the
                // partner let go of its registration, which waits for the revocation to finish).
                if revoked.is_cancelled() {
                    break Err(RelayErrorKind::Revoked);
                }
                io.send(&RelayToClient::PeerGone).await?;
                break Ok(());
            },
            _ = revoked.cancelled() => break Err(RelayErrorKind::Revoked),
        }
    };
    if matches!(ended, Err(RelayErrorKind::Revoked)) {
        tracing::info!(addr = %io.addr(), "technician's account revoked: ending the rejoined session");
    }
    // Let go of the registration before the partner's mailbox (see above).
    drop(live);
    drop(partner);
    ended
}
