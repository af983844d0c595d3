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
use std::time::{Duration, Instant};

use quinn::{Connection, RecvStream, SendStream};
use tether_shared::codec::Quality;
use tether_shared::end::{EndArbiter, EndEvent, EndReason, Side, Violation};
use tether_shared::input::InputEvent;
use tether_shared::net::pairing::{CLOSE_NORMAL, CLOSE_PROTOCOL};
use tether_shared::relay_proto::RelayErrorKind;
use tether_shared::session_proto::{
    priority, Hello, HelloReply, HostControl, Permissions, RefusalReason, Request, ViewerControl,
};
use tether_shared::wire::{self, WireError, MAX_CONTROL_MSG};
use tether_shared::PROTOCOL_VERSION;
use tokio::sync::{mpsc, oneshot, watch};
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

/// What happened in a session, for the host's log.
#[derive(Debug, Clone)]
pub struct SessionReport {
    pub technician: String,
    pub granted: Permissions,
    pub frames_sent: u64,
    pub input_injected: u64,
    pub input_dropped: u64,
    /// How it ended, as the session's [`EndArbiter`] decided.
    pub end: EndReason,
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
/// the handle the user's window changes permissions and chats through. `relay_gone` brings the relay's
/// word that the viewer is gone (`None`) or that the relay ended the session.
pub async fn run(
    conn: Connection,
    cfg: &SessionConfig,
    sources: Sources,
    stop: CancellationToken,
    mut relay_gone: mpsc::UnboundedReceiver<Option<RelayErrorKind>>,
    verified: Option<VerifiedTechnician>,
    on_start: impl FnOnce(&str, Permissions, Permissions, SessionHandle),
) -> Result<SessionReport, SessionError> {
    let (mut ctl_send, mut ctl_recv) = tokio::time::timeout(cfg.hello_timeout, conn.accept_bi())
        .await
        .map_err(|_| SessionError::NoHello("no control stream"))??;
    let _ = ctl_send.set_priority(priority::CONTROL);
    let hello = tokio::time::timeout(cfg.hello_timeout, wire::read_msg(&mut ctl_recv, MAX_CONTROL_MSG)).await;
    let (technician, want) = match hello {
        Ok(Ok(Some(Hello { version, technician, want }))) => {
            if version != PROTOCOL_VERSION {
                let reason = RefusalReason::VersionMismatch { host: PROTOCOL_VERSION, viewer: version };
                let _ =
                    wire::write_msg(&mut ctl_send, &HelloReply::Refused { reason }, MAX_CONTROL_MSG).await;
                let _ = ctl_send.finish();
                let _ = tokio::time::timeout(Duration::from_secs(1), ctl_send.stopped()).await;
                conn.close(CLOSE_PROTOCOL.into(), b"version mismatch");
                return Err(SessionError::VersionMismatch { viewer: version, host: PROTOCOL_VERSION });
            }
            (sanitize_name(&technician), want)
        }
        Ok(Ok(None)) => return Err(close_protocol(&conn, "the control stream ended before Hello".into())),
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
            Some(_) = relay_gone.recv() => None,
            _ = conn.closed() => None,
        },
    };
    let Some(granted) = granted else {
        let reason = RefusalReason::Declined;
        let _ = wire::write_msg(&mut ctl_send, &HelloReply::Refused { reason }, MAX_CONTROL_MSG).await;
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
    let welcome = HelloReply::Welcome {
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
            out_tx.try_send(HostControl::Monitors { monitors: monitors.clone(), current: current_monitor });
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

    if let Err(e) = wire::write_msg(&mut ctl_send, &welcome, MAX_CONTROL_MSG).await {
        tracing::debug!("the welcome did not leave: {e}");
    }
    let video_send = conn.open_uni().await;
    let (bye_tx, bye_rx) = oneshot::channel();
    let video = async {
        let send = video_send.map_err(|_| Stop::Done)?;
        let _ = send.set_priority(priority::SCREEN); // fails only on a closed stream
        let feeds = video::VideoFeeds { capture, changed, swaps: capture_swap, quality };
        video::run(send, feeds, acks_rx, grants.subscribe(), cfg, &counters).await
    };
    let input = input_loop(&conn, sink, sink_swap, grants.subscribe(), &counters);
    let control = control_loop(&mut ctl_recv, acks_tx, requests_tx);
    let writer = control_writer(&mut ctl_send, out_rx, bye_rx, grants.subscribe());
    let cursor = cursor_loop(out_tx.clone(), cursor, cursor_swap);
    let requests = helper.serve(requests_rx);
    let files = files::serve(conn.clone(), cfg.files.clone(), technician.clone(), grants.subscribe());
    tokio::pin!(video, input, control, writer, cursor, requests, files);

    // Every task, the user, the relay and the connection report to one arbiter; the session ends when it
    // has decided and, if we ended it, the viewer has our Bye, or, if the viewer left, its input is in.
    let mut arbiter = EndArbiter::new(Side::Host);
    let mut done = Done::default();
    let mut bye = Some(bye_tx);
    let end = loop {
        let now = Instant::now();
        if let Some(end) = arbiter.poll_end(now) {
            done.decided = true;
            // We say why when we ended it; a violation is said by the close code alone.
            let say_bye = arbiter.decided_here() && !matches!(end, EndReason::ProtocolViolation { .. });
            if say_bye {
                if let Some(bye) = bye.take() {
                    let _ = bye.send(end.clone());
                }
            }
            let gone = done.closed || done.peer_vanished;
            let waiting_bye = say_bye && !done.writer && !gone;
            let waiting_input =
                end == EndReason::ViewerLeft && !arbiter.decided_here() && !done.input && !gone;
            if !waiting_bye && !waiting_input {
                break end;
            }
        }
        let deadline = arbiter.poll_timeout();
        // Once the end is decided nothing more is shared or served: only our Bye is written, and the
        // input a leaving viewer sent before its Bye is injected.
        let live = !done.decided;
        let draining = done.decided && !arbiter.decided_here();
        // Biased: a task's report (the viewer's Bye, already read) before the connection's close.
        let event = tokio::select! {
            biased;
            step = &mut video, if live && !done.video => { done.video = true; stopped(step) }
            step = &mut input, if (live || draining) && !done.input => { done.input = true; stopped(step) }
            step = &mut control, if live && !done.control => { done.control = true; stopped(step) }
            step = &mut writer, if !done.writer => { done.writer = true; stopped(step) }
            () = &mut cursor, if live && !done.cursor => { done.cursor = true; None }
            () = &mut requests, if live && !done.requests => { done.requests = true; None }
            () = &mut files, if live && !done.files => { done.files = true; None }
            () = stop.cancelled(), if !done.stop => { done.stop = true; Some(EndEvent::Local(EndReason::HostStopped)) }
            gone = relay_gone.recv(), if !done.relay_gone => match gone {
                Some(kind) => {
                    done.relay_gone = true;
                    done.peer_vanished = kind.is_none();
                    Some(EndEvent::RelayGone(kind))
                }
                None => { done.relay_gone = true; None }
            },
            closed = conn.closed(), if !done.closed => { done.closed = true; Some(EndEvent::Closed(closed)) }
            () = sleep_until(deadline), if deadline.is_some() => None,
        };
        if let Some(event) = event {
            arbiter.handle(Instant::now(), event);
        }
    };
    match &end {
        EndReason::ProtocolViolation { detail, .. } => {
            tracing::warn!("closing session: protocol error: {detail}");
            conn.close(CLOSE_PROTOCOL.into(), &end.close_reason());
        }
        _ => conn.close(end.close_code().into(), &end.close_reason()),
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

/// How a task of the session stopped, when not by its work running out.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The viewer said goodbye, and why.
    Bye(EndReason),
    /// We end the session: the viewer broke the protocol, or the capture failed.
    Local(EndReason),
    /// Its stream or channel ended; the connection's close, or another task, says why.
    Done,
}

pub(crate) type Step = Result<(), Stop>;

/// Which of the session's futures have finished (and must not be polled again).
#[derive(Debug, Default)]
struct Done {
    video: bool,
    input: bool,
    control: bool,
    writer: bool,
    cursor: bool,
    requests: bool,
    files: bool,
    stop: bool,
    relay_gone: bool,
    /// The relay said the viewer's connection to it dropped: nothing more will come from it.
    peer_vanished: bool,
    closed: bool,
    /// The arbiter has decided the end.
    decided: bool,
}

/// What a finished task tells the arbiter.
fn stopped(step: Step) -> Option<EndEvent> {
    match step {
        Ok(()) | Err(Stop::Done) => None,
        Err(Stop::Bye(reason)) => Some(EndEvent::Bye(reason)),
        Err(Stop::Local(reason)) => Some(EndEvent::Local(reason)),
    }
}

/// Sleep until the arbiter's deadline (the select arm is off without one).
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

pub(crate) fn lost(_: WireError) -> Stop {
    Stop::Done
}

pub(crate) fn violation(detail: Violation) -> Stop {
    Stop::Local(EndReason::ProtocolViolation { by: Side::Viewer, detail })
}

/// Classify a read error: a malformed message is the peer's fault; a stream error leaves the verdict to
/// the connection's close.
fn read_error(e: WireError) -> Stop {
    match e {
        WireError::Io(_) => Stop::Done,
        other => violation(Violation::Malformed(other.to_string())),
    }
}

/// Reads the viewer's control stream: acks go to the video loop, requests to [`requests`].
async fn control_loop(
    recv: &mut RecvStream,
    acks: mpsc::Sender<u64>,
    requests: mpsc::Sender<Request>,
) -> Step {
    loop {
        match wire::read_msg::<_, ViewerControl>(recv, MAX_CONTROL_MSG).await.map_err(read_error)? {
            None => return Err(Stop::Done),
            Some(ViewerControl::Bye { reason }) => return Err(Stop::Bye(reason)),
            Some(ViewerControl::FrameAck { seq }) => {
                if acks.send(seq).await.is_err() {
                    return Ok(());
                }
            }
            Some(ViewerControl::Request(request)) => {
                // A viewer that floods requests faster than they are answered waits here (backpressure).
                if requests.send(request).await.is_err() {
                    return Ok(());
                }
            }
        }
    }
}

/// The one writer of our side of the control stream: queued messages, and permission changes as they
/// happen (the window's toggles, answered requests); last, our `Bye`, after which it finishes the stream
/// and returns once the viewer has acknowledged all of it (or the connection is gone).
async fn control_writer(
    send: &mut SendStream,
    mut out: mpsc::Receiver<HostControl>,
    mut bye: oneshot::Receiver<EndReason>,
    mut grants: watch::Receiver<Permissions>,
) -> Step {
    grants.mark_unchanged();
    loop {
        let msg = tokio::select! {
            biased;
            reason = &mut bye => {
                let Ok(reason) = reason else { return Ok(()) };
                wire::write_msg(send, &HostControl::Bye { reason }, MAX_CONTROL_MSG).await.map_err(lost)?;
                let _ = send.finish();
                let _ = send.stopped().await;
                return Ok(());
            }
            changed = grants.changed() => match changed {
                Ok(()) => HostControl::PermissionsChanged(*grants.borrow_and_update()),
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
    out: mpsc::Sender<HostControl>,
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
            Some(CursorEvent::Shape(shape)) => HostControl::CursorShape(shape),
            Some(CursorEvent::Position { x, y, visible }) => HostControl::CursorPosition { x, y, visible },
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
    let mut recv = conn.accept_uni().await.map_err(|_| Stop::Done)?;
    // `read_msg` must never be cancelled mid-message, so the stream is read on its own and the events
    // come through a channel, which can be raced against a permission change safely. The reader takes
    // the next message only once the previous one was handled (a one-slot channel, reserved before
    // reading; both run in this task, and handling does not yield): reading the stream to its end then
    // means every event was injected, so a viewer that waits for that before closing loses nothing.
    let (events_tx, mut events) = mpsc::channel(1);
    let reader = async move {
        loop {
            let Ok(permit) = events_tx.reserve().await else { break };
            let msg = wire::read_msg::<_, InputEvent>(&mut recv, MAX_CONTROL_MSG).await;
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
                // The viewer finished its input: everything it sent is injected. Its Bye says why.
                None => return Err(Stop::Done),
                Some(event) => {
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
            }
        }
    };
    tokio::select! {
        end = handle => end,
        () = reader => Ok(()),
    }
}
