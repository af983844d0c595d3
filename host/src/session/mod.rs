//! One technician's session on the host, over the end-to-end connection: one [`Participant`] of the
//! host's hub. The hub's shared parts are the [`Display`](crate::display::Display) (what is shown) and
//! the [`Controller`](crate::controller::Controller) (who drives the input); everything here is this
//! participant's own.
//!
//! - [`handshake`]: control stream and hello → version check → consent ([`crate::access`]), or a refusal.
//! - [`control`]: the viewer's control stream (frame acknowledgements, requests that
//!   [`crate::requests`] answers), the one writer of ours (cursor, permission changes, chat, answers).
//! - [`video`]: our unidirectional stream; [`crate::video`] fills it: capture → damage encode → send,
//!   paced by the link model and max fps.
//! - [`input`]: the viewer's unidirectional stream: events to the controller, only while control is
//!   granted; otherwise dropped and counted, never injected.
//! - files (one bidirectional stream per request, opened by the viewer): [`crate::files`], only while
//!   files are granted.
//!
//! The tasks run in one [`JoinSet`]; the first to end ends the session. Every key the participant
//! holds is released whatever the reason (its [`Seat`](crate::controller::Seat)), and when control is
//! revoked.

mod control;
mod handshake;
mod input;
mod video;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use quinn::Connection;
use tether_shared::codec::Quality;
use tether_shared::net::pairing::{CLOSE_NORMAL, CLOSE_PROTOCOL, CLOSE_STOPPED_BY_USER};
use tether_shared::relay_proto::VerifiedTechnician;
use tether_shared::session_proto::{HostToViewer, Permissions, RefusalReason};
use tether_shared::wire::{self, WireError, MAX_CONTROL_MSG};
use tether_shared::PROTOCOL_VERSION;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::access::{AccessPolicy, SessionHandle};
use crate::capture::CaptureError;
use crate::controller::ParticipantId;
use crate::files::{self, FilesConfig, FilesIo};
use crate::requests;
use crate::{HostEvent, Hub};

/// How a session runs: plain settings, the same for every participant.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// What the host user allows (the technician gets what they ask for within this).
    pub allowed: Permissions,
    pub max_fps: u32,
    /// Lossless, or JPEG for photographic tiles.
    pub quality: Quality,
    /// Shared folders, the incoming folder and upload consent.
    pub files: FilesConfig,
    /// How long the viewer has to say hello.
    pub hello_timeout: Duration,
}

/// What a session talks to besides the viewer: the host's user interface and the host's own signals.
#[derive(Debug, Clone, Default)]
pub struct SessionIo {
    /// Where chat and permission changes are reported (the window's session log).
    pub events: Option<mpsc::UnboundedSender<HostEvent>>,
    /// Grant without asking (headless), or ask the user (the window).
    pub access: AccessPolicy,
    /// Upload consent, the file log, the list of running transfers.
    pub files: FilesIo,
    /// The host user stopped sharing.
    pub stop: CancellationToken,
    /// The relay said the viewer's side of the session is gone.
    pub peer_gone: CancellationToken,
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// The viewer said goodbye or closed the connection.
    ViewerLeft,
    /// The host user stopped sharing.
    Stopped,
    /// The connection was lost (timeout, relay said the peer left, tampering on the path…).
    ConnectionLost(String),
    /// The viewer broke the protocol; the session was closed.
    ProtocolError(String),
}

/// What happened in a session, for the host's log.
#[derive(Debug, Clone)]
pub struct SessionReport {
    pub technician: String,
    pub granted: Permissions,
    pub frames_sent: u64,
    pub input_injected: u64,
    pub input_dropped: u64,
    pub end: SessionEnd,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// No control stream, or no hello on it, within [`SessionConfig::hello_timeout`].
    #[error("the viewer did not open the session in time ({0})")]
    NoHello(&'static str),
    /// The connection failed before the viewer's hello arrived.
    #[error("the connection failed before the session opened: {0}")]
    Connection(#[from] quinn::ConnectionError),
    /// The viewer's first message was not a hello, or could not be read; the connection was closed.
    #[error("the viewer broke the protocol: {0}")]
    Protocol(String),
    #[error("the viewer speaks protocol version {viewer}, this host {host}")]
    VersionMismatch { viewer: u32, host: u32 },
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error("the user declined the session")]
    Declined,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) frames: AtomicU64,
    injected: AtomicU64,
    dropped: AtomicU64,
}

/// One technician in the hub: their end-to-end connection, who they are, what they are granted, and
/// the channel to their control writer. Their tasks hold clones of what they need.
struct Participant {
    id: ParticipantId,
    conn: Connection,
    /// The name they typed (made safe to show), and the account the relay verified, if any.
    technician: String,
    verified: Option<VerifiedTechnician>,
    grants: Arc<watch::Sender<Permissions>>,
    /// To the control writer.
    out: mpsc::Sender<HostToViewer>,
    counters: Arc<Counters>,
}

/// A session that started: who, what they asked for and were granted, and the handle the user's window
/// changes permissions and chats through.
#[derive(Debug)]
pub struct Started {
    pub technician: String,
    pub verified: Option<VerifiedTechnician>,
    pub asked: Permissions,
    pub granted: Permissions,
    pub session: SessionHandle,
}

impl Participant {
    fn started(&self, asked: Permissions) -> Started {
        Started {
            technician: self.technician.clone(),
            verified: self.verified.clone(),
            asked,
            granted: *self.grants.borrow(),
            session: SessionHandle::new(self.grants.clone(), self.out.clone()),
        }
    }
}

/// Run a session until it ends; `on_start` is told when it starts. `verified` is the account the relay
/// verified for this technician, if any.
pub async fn run(
    conn: Connection,
    cfg: &SessionConfig,
    hub: &Hub,
    io: SessionIo,
    verified: Option<VerifiedTechnician>,
    on_start: impl FnOnce(Started),
) -> Result<SessionReport, SessionError> {
    let mut hello = handshake::hello(&conn, cfg).await?;
    let Some(granted) = handshake::consent(&conn, cfg, &io, &hello, verified.clone()).await else {
        handshake::refuse(&conn, &mut hello.send, RefusalReason::Declined).await;
        return Err(SessionError::Declined);
    };
    let handshake::Hello { send: mut ctl_send, recv: ctl_recv, technician, want } = hello;
    let (out_tx, out_rx) = mpsc::channel(64);
    let me = Participant {
        id: hub.join(),
        conn,
        technician,
        verified,
        grants: Arc::new(watch::channel(granted).0),
        out: out_tx,
        counters: Arc::default(),
    };
    let conn = &me.conn;
    on_start(me.started(want));
    let _seat = hub.controller.seat(me.id);
    let mut screen = hub.display.screen();
    let (first_capture, monitors, current, generation) = {
        let now = screen.borrow_and_update();
        (now.capture.clone(), now.monitors.clone(), now.current, now.generation)
    };
    let first = first_capture.grab().await?;
    let welcome = HostToViewer::Welcome {
        version: PROTOCOL_VERSION,
        granted,
        width: first.frame.width(),
        height: first.frame.height(),
    };
    let (acks_tx, acks_rx) = mpsc::channel(8);
    let (requests_tx, requests_rx) = mpsc::channel(16);
    let (quality_tx, quality) = watch::channel(cfg.quality);
    if !monitors.is_empty() {
        let _ = me.out.try_send(HostToViewer::Monitors { monitors, current });
    }
    let helper = requests::Requests {
        technician: me.technician.clone(),
        grants: me.grants.clone(),
        out: me.out.clone(),
        access: io.access.clone(),
        allowed: cfg.allowed,
        events: io.events.clone(),
        clipboard: hub.clipboard.clone(),
        display: hub.display.clone(),
        quality: quality_tx,
    };

    let mut tasks: JoinSet<Step> = JoinSet::new();
    let end = async {
        wire::write_msg(&mut ctl_send, &welcome, MAX_CONTROL_MSG).await.map_err(lost)?;
        let video_send = video::open(conn).await?;
        let monitors = control::monitors_loop(me.out.clone(), screen.clone(), generation);
        let feeds = crate::video::VideoFeeds { screen, changed: hub.display.damage(), quality };
        let counters = &me.counters;
        let grants = me.grants.subscribe();
        tasks.spawn(crate::video::run(video_send, feeds, acks_rx, grants, cfg.clone(), counters.clone()));
        let controller = hub.controller.clone();
        tasks.spawn(input::input_loop(
            conn.clone(),
            controller,
            me.id,
            me.grants.subscribe(),
            counters.clone(),
        ));
        tasks.spawn(control::control_loop(ctl_recv, acks_tx, requests_tx));
        tasks.spawn(control::control_writer(ctl_send, out_rx, me.grants.subscribe()));
        tasks.spawn(quietly(monitors));
        tasks.spawn(quietly(control::cursor_loop(me.out.clone(), hub.display.cursor())));
        tasks.spawn(quietly(helper.serve(requests_rx)));
        let (files_cfg, files_io) = (cfg.files.clone(), io.files.clone());
        let files =
            files::serve(conn.clone(), files_cfg, files_io, me.technician.clone(), me.grants.subscribe());
        tasks.spawn(async move {
            files.await;
            Err(SessionEnd::ConnectionLost("the connection closed".into()))
        });
        match tasks.join_next().await {
            Some(Ok(end)) => end,
            Some(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Some(Err(e)) => Err(SessionEnd::ConnectionLost(e.to_string())),
            None => Ok(()),
        }
    };
    let end = tokio::select! {
        end = end => end,
        _ = io.stop.cancelled() => Err(SessionEnd::Stopped),
        _ = io.peer_gone.cancelled() => {
            // The relay's notice can overtake the viewer's own goodbye on the end-to-end
            // connection: give that a moment, so a viewer that left is not reported as lost.
            let _ = tokio::time::timeout(GOODBYE_GRACE, conn.closed()).await;
            Err(SessionEnd::ConnectionLost(VIEWER_GONE.into()))
        }
        reason = conn.closed() => Err(SessionEnd::ConnectionLost(reason.to_string())),
    }
    .err()
    .unwrap_or(SessionEnd::ViewerLeft);
    // A stream error says less than the connection's own reason (timed out, closed by peer…).
    let end = match (end, conn.close_reason()) {
        // The viewer closed the connection normally: it left, nothing was lost.
        (SessionEnd::ConnectionLost(_), Some(quinn::ConnectionError::ApplicationClosed(close)))
            if close.error_code == CLOSE_NORMAL.into() =>
        {
            SessionEnd::ViewerLeft
        }
        (SessionEnd::ConnectionLost(_), _) if io.peer_gone.is_cancelled() => {
            SessionEnd::ConnectionLost(VIEWER_GONE.into())
        }
        (SessionEnd::ConnectionLost(_), Some(reason)) => SessionEnd::ConnectionLost(reason.to_string()),
        (end, _) => end,
    };

    match &end {
        SessionEnd::ProtocolError(why) => {
            tracing::warn!("closing session: protocol error: {why}");
            conn.close(CLOSE_PROTOCOL.into(), b"protocol error");
        }
        SessionEnd::Stopped => conn.close(CLOSE_STOPPED_BY_USER.into(), b"the user stopped sharing"),
        _ => conn.close(CLOSE_NORMAL.into(), b"session ended"),
    }
    // Closed first, so the viewer learns why from the close and not from a stream that ends; then the
    // participant's tasks stop, and only then are its keys released (its seat, dropped on return).
    tasks.shutdown().await;
    let granted = *me.grants.borrow();
    Ok(SessionReport {
        technician: me.technician,
        granted,
        frames_sent: me.counters.frames.load(Ordering::Relaxed),
        input_injected: me.counters.injected.load(Ordering::Relaxed),
        input_dropped: me.counters.dropped.load(Ordering::Relaxed),
        end,
    })
}

/// A task whose end ends the session as if the viewer left (it ends when the session's channels do).
async fn quietly(task: impl std::future::Future<Output = ()>) -> Step {
    task.await;
    Ok(())
}

pub(crate) fn lost(e: WireError) -> SessionEnd {
    SessionEnd::ConnectionLost(e.to_string())
}

/// Classify a read error: a malformed message is the peer's fault; a stream error is a lost connection.
fn read_error(e: WireError) -> SessionEnd {
    match e {
        WireError::Io(_) => SessionEnd::ConnectionLost(e.to_string()),
        other => SessionEnd::ProtocolError(other.to_string()),
    }
}

pub(crate) type Step = Result<(), SessionEnd>;

/// How long to wait for the viewer's goodbye after the relay said it is gone.
const GOODBYE_GRACE: Duration = Duration::from_millis(300);

const VIEWER_GONE: &str = "the viewer's connection to the relay ended (it vanished or lost its network)";
