//! One live session on the host, over the end-to-end connection. One task per message family:
//! - **control** (viewer's bidirectional stream): hello → consent ([`crate::access`]) → welcome; then
//!   frame acknowledgements (credit) and the viewer's requests, which [`crate::requests`] answers; our
//!   side of the stream is written by one writer (cursor, permission changes, chat, answers).
//! - **video** (our unidirectional stream): capture → damage encode → send, paced by credit and max fps
//!   ([`crate::video`]).
//! - **input** (viewer's unidirectional stream): events to the [`InputSink`] — only while control is
//!   granted; otherwise dropped and counted, never injected.
//! - **files** (one bidirectional stream per request, opened by the viewer): [`crate::files`], only
//!   while files are granted.
//!
//! Switching monitors swaps the capture, the input sink and the cursor feed at safe points (between
//! messages: a stream is never cut mid-message). The first task to end ends the session; every held key
//! is released whatever the reason, and when control is revoked.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use quinn::{Connection, RecvStream, SendStream};
use tether_shared::codec::Quality;
use tether_shared::net::pairing::{CLOSE_NORMAL, CLOSE_PROTOCOL, CLOSE_STOPPED_BY_USER};
use tether_shared::session_proto::{priority, HostToViewer, Permissions, RefusalReason, ViewerToHost};
use tether_shared::wire::{self, WireError, MAX_CONTROL_MSG};
use tether_shared::PROTOCOL_VERSION;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::access::{self, AccessPolicy, SessionHandle};
use crate::capture::cursor::CursorEvent;
use crate::capture::CaptureError;
use crate::files::{self, FilesConfig};
use crate::inject::InputSink;
use crate::requests::{self, Swaps};
use crate::video;
use crate::{HostEvent, Sources};
use tether_shared::relay_proto::VerifiedTechnician;

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
    /// Grant without asking (headless), or ask the user (the window).
    pub access: AccessPolicy,
    /// Where chat and permission changes are reported (the window's session log).
    pub events: Option<mpsc::UnboundedSender<HostEvent>>,
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

/// Run a session until it ends. `on_start` sees the technician's name, wish and what was granted, and gets
/// the handle the user's window changes permissions and chats through.
pub async fn run(
    conn: Connection,
    cfg: &SessionConfig,
    sources: Sources,
    stop: CancellationToken,
    peer_gone: CancellationToken,
    verified: Option<VerifiedTechnician>,
    on_start: impl FnOnce(&str, Permissions, Permissions, SessionHandle),
) -> Result<SessionReport, SessionError> {
    let (mut ctl_send, mut ctl_recv) = tokio::time::timeout(cfg.hello_timeout, conn.accept_bi())
        .await
        .map_err(|_| SessionError::NoHello("no control stream"))??;
    let _ = ctl_send.set_priority(priority::CONTROL);
    let hello = tokio::time::timeout(cfg.hello_timeout, wire::read_msg(&mut ctl_recv, MAX_CONTROL_MSG)).await;
    let (technician, want) = match hello {
        Ok(Ok(Some(ViewerToHost::Hello { version, technician, want }))) => {
            if version != PROTOCOL_VERSION {
                let reason = RefusalReason::VersionMismatch { host: PROTOCOL_VERSION, viewer: version };
                let _ =
                    wire::write_msg(&mut ctl_send, &HostToViewer::Refused { reason }, MAX_CONTROL_MSG).await;
                let _ = ctl_send.finish();
                let _ = tokio::time::timeout(Duration::from_secs(1), ctl_send.stopped()).await;
                conn.close(CLOSE_PROTOCOL.into(), b"version mismatch");
                return Err(SessionError::VersionMismatch { viewer: version, host: PROTOCOL_VERSION });
            }
            (sanitize_name(&technician), want)
        }
        Ok(Ok(other)) => return Err(close_protocol(&conn, format!("expected Hello, got {other:?}"))),
        Ok(Err(e)) => return Err(close_protocol(&conn, e.to_string())),
        Err(_) => return Err(SessionError::NoHello("no hello")),
    };
    let granted = match &cfg.access {
        AccessPolicy::Auto => Some(want.intersect(cfg.allowed)),
        AccessPolicy::Ask(to) => tokio::select! {
            answer = access::ask(to, &technician, verified, want, Permissions::default()) => {
                answer.map(|p| p.intersect(cfg.allowed)).filter(|p| *p != Permissions::default())
            }
            _ = stop.cancelled() => None,
            _ = peer_gone.cancelled() => None,
            _ = conn.closed() => None,
        },
    };
    let Some(granted) = granted else {
        let reason = RefusalReason::Declined;
        let _ = wire::write_msg(&mut ctl_send, &HostToViewer::Refused { reason }, MAX_CONTROL_MSG).await;
        let _ = ctl_send.finish();
        let _ = tokio::time::timeout(Duration::from_secs(1), ctl_send.stopped()).await;
        conn.close(CLOSE_NORMAL.into(), b"declined");
        return Err(SessionError::Declined);
    };
    let grants = Arc::new(watch::channel(granted).0);
    let (out_tx, out_rx) = mpsc::channel(64);
    on_start(&technician, want, granted, SessionHandle::new(grants.clone(), out_tx.clone()));
    let Sources { capture, cursor, changed, sink, clipboard, source, monitors, current_monitor } = sources;
    let first = capture.grab().await?;
    let welcome = HostToViewer::Welcome {
        version: PROTOCOL_VERSION,
        granted,
        width: first.frame.width(),
        height: first.frame.height(),
    };
    let counters = Arc::new(Counters::default());
    let (acks_tx, acks_rx) = mpsc::channel(8);
    let (requests_tx, requests_rx) = mpsc::channel(16);
    let (swaps, capture_swap, sink_swap, cursor_swap) = Swaps::new();
    let (quality_tx, quality) = watch::channel(cfg.quality);
    if !monitors.is_empty() {
        let _ =
            out_tx.try_send(HostToViewer::Monitors { monitors: monitors.clone(), current: current_monitor });
    }
    let helper = requests::Requests {
        technician: technician.clone(),
        grants: grants.clone(),
        out: out_tx.clone(),
        access: cfg.access.clone(),
        allowed: cfg.allowed,
        events: cfg.events.clone(),
        clipboard,
        source,
        monitors,
        current_monitor,
        quality: quality_tx,
        swaps,
    };

    let end = async {
        wire::write_msg(&mut ctl_send, &welcome, MAX_CONTROL_MSG).await.map_err(lost)?;
        let video_send = conn.open_uni().await.map_err(|e| SessionEnd::ConnectionLost(e.to_string()))?;
        let _ = video_send.set_priority(priority::SCREEN); // fails only on a closed stream
        let feeds = video::VideoFeeds { capture, changed, swaps: capture_swap, quality };
        let video = video::run(video_send, feeds, acks_rx, grants.subscribe(), cfg, &counters);
        let input = input_loop(&conn, sink, sink_swap, grants.subscribe(), &counters);
        let control = control_loop(&mut ctl_recv, acks_tx, requests_tx);
        let writer = control_writer(&mut ctl_send, out_rx, grants.subscribe());
        let cursor = cursor_loop(out_tx.clone(), cursor, cursor_swap);
        let requests = helper.serve(requests_rx);
        let files = files::serve(conn.clone(), cfg.files.clone(), technician.clone(), grants.subscribe());
        tokio::select! {
            end = video => end,
            end = input => end,
            end = control => end,
            end = writer => end,
            () = cursor => Ok(()),
            () = requests => Ok(()),
            () = files => Err(SessionEnd::ConnectionLost("the connection closed".into())),
            _ = stop.cancelled() => Err(SessionEnd::Stopped),
            _ = peer_gone.cancelled() => {
                // The relay's notice can overtake the viewer's own goodbye on the end-to-end
                // connection: give that a moment, so a viewer that left is not reported as lost.
                let _ = tokio::time::timeout(GOODBYE_GRACE, conn.closed()).await;
                Err(SessionEnd::ConnectionLost(VIEWER_GONE.into()))
            }
            reason = conn.closed() => Err(SessionEnd::ConnectionLost(reason.to_string())),
        }
    }
    .await
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
        (SessionEnd::ConnectionLost(_), _) if peer_gone.is_cancelled() => {
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
    let granted = *grants.borrow();
    Ok(SessionReport {
        technician,
        granted,
        frames_sent: counters.frames.load(Ordering::Relaxed),
        input_injected: counters.injected.load(Ordering::Relaxed),
        input_dropped: counters.dropped.load(Ordering::Relaxed),
        end,
    })
}

fn close_protocol(conn: &Connection, why: String) -> SessionError {
    conn.close(CLOSE_PROTOCOL.into(), b"protocol error");
    SessionError::Protocol(why)
}

/// A name for display, bounded length: control, format and text-reordering characters escaped
/// ([`tether_shared::text::visible`]), so the name the user is asked to trust reads as it was typed.
fn sanitize_name(name: &str) -> String {
    let bounded: String = name.chars().take(64).collect();
    if bounded.trim().is_empty() {
        "(no name given)".into()
    } else {
        tether_shared::text::visible(&bounded).into_owned()
    }
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

/// Reads the viewer's control stream: acks go to the video loop, requests to [`requests`].
async fn control_loop(
    recv: &mut RecvStream,
    acks: mpsc::Sender<u64>,
    requests: mpsc::Sender<ViewerToHost>,
) -> Step {
    loop {
        match wire::read_msg::<_, ViewerToHost>(recv, MAX_CONTROL_MSG).await.map_err(read_error)? {
            None | Some(ViewerToHost::Bye) => return Err(SessionEnd::ViewerLeft),
            Some(ViewerToHost::FrameAck { seq }) => {
                if acks.send(seq).await.is_err() {
                    return Ok(());
                }
            }
            Some(msg @ (ViewerToHost::Hello { .. } | ViewerToHost::Input(_))) => {
                return Err(SessionEnd::ProtocolError(format!("unexpected {msg:?} on control")))
            }
            Some(request) => {
                // A viewer that floods requests faster than they are answered waits here (backpressure).
                if requests.send(request).await.is_err() {
                    return Ok(());
                }
            }
        }
    }
}

/// The one writer of our side of the control stream: queued messages, and permission changes as they
/// happen (the window's toggles, answered requests).
async fn control_writer(
    send: &mut SendStream,
    mut out: mpsc::Receiver<HostToViewer>,
    mut grants: watch::Receiver<Permissions>,
) -> Step {
    grants.mark_unchanged();
    loop {
        let msg = tokio::select! {
            changed = grants.changed() => match changed {
                Ok(()) => HostToViewer::PermissionsChanged(*grants.borrow_and_update()),
                Err(_) => return Ok(()),
            },
            msg = out.recv() => match msg {
                Some(msg) => msg,
                None => return Ok(()),
            },
        };
        wire::write_msg(send, &msg, MAX_CONTROL_MSG).await.map_err(lost)?;
    }
}

/// Forward cursor changes to the control writer; a monitor switch brings a new feed. Without a cursor
/// source (test pattern) it waits for one forever.
async fn cursor_loop(
    out: mpsc::Sender<HostToViewer>,
    mut cursor: Option<mpsc::Receiver<CursorEvent>>,
    mut swaps: mpsc::Receiver<Option<mpsc::Receiver<CursorEvent>>>,
) {
    loop {
        let event = match cursor.as_mut() {
            Some(feed) => tokio::select! {
                event = feed.recv() => event,
                swap = swaps.recv() => match swap {
                    Some(new) => { cursor = new; continue }
                    None => return,
                },
            },
            None => match swaps.recv().await {
                Some(new) => {
                    cursor = new;
                    continue;
                }
                None => return,
            },
        };
        let msg = match event {
            Some(CursorEvent::Shape(shape)) => HostToViewer::CursorShape(shape),
            Some(CursorEvent::Position { x, y, visible }) => HostToViewer::CursorPosition { x, y, visible },
            None => {
                cursor = None; // the cursor source stopped: the session goes on without it
                continue;
            }
        };
        if out.send(msg).await.is_err() {
            return;
        }
    }
}

/// Releases every held key and button when dropped — whichever way the session ends.
struct ReleaseOnDrop(Box<dyn InputSink>);

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        self.0.release_all();
    }
}

async fn input_loop(
    conn: &Connection,
    sink: Box<dyn InputSink>,
    mut swaps: mpsc::Receiver<Box<dyn InputSink>>,
    mut grants: watch::Receiver<Permissions>,
    counters: &Counters,
) -> Step {
    let mut sink = ReleaseOnDrop(sink);
    let mut recv = conn.accept_uni().await.map_err(|e| SessionEnd::ConnectionLost(e.to_string()))?;
    // `read_msg` must never be cancelled mid-message, so the stream is read on its own and the events
    // come through a channel, which can be raced against a permission change safely. The reader takes
    // the next message only once the previous one was handled (a one-slot channel, reserved before
    // reading; both run in this task, and handling does not yield): reading the stream to its end then
    // means every event was injected, so a viewer that waits for that before closing loses nothing.
    let (events_tx, mut events) = mpsc::channel(1);
    let reader = async move {
        loop {
            let Ok(permit) = events_tx.reserve().await else { break };
            let msg = wire::read_msg::<_, ViewerToHost>(&mut recv, MAX_CONTROL_MSG).await;
            let more = matches!(msg, Ok(Some(_)));
            permit.send(msg);
            if !more {
                break;
            }
        }
        std::future::pending::<()>().await
    };
    let handle = async {
        loop {
            let msg = tokio::select! {
                // Control revoked: let go of everything the technician holds, at once.
                changed = grants.changed() => {
                    if changed.is_ok() && !grants.borrow_and_update().control {
                        sink.0.release_all();
                    }
                    continue;
                }
                msg = events.recv() => msg.unwrap_or(Ok(None)),
            };
            if let Ok(new) = swaps.try_recv() {
                sink.0.release_all();
                sink.0 = new;
            }
            match msg.map_err(read_error)? {
                None => return Err(SessionEnd::ViewerLeft),
                Some(ViewerToHost::Input(event)) => {
                    if grants.borrow().control {
                        match sink.0.inject(&event) {
                            Ok(()) => counters.injected.fetch_add(1, Ordering::Relaxed),
                            Err(e) => {
                                tracing::warn!("{e}");
                                counters.dropped.fetch_add(1, Ordering::Relaxed)
                            }
                        };
                    } else {
                        counters.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Some(other) => {
                    return Err(SessionEnd::ProtocolError(format!("unexpected {other:?} on input")))
                }
            }
        }
    };
    tokio::select! {
        end = handle => end,
        () = reader => Ok(()),
    }
}
