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
//! The tasks run in one `JoinSet` ([`tasks`]); what they report, with the user's stop, the relay's word
//! and the connection's close, goes to one [`EndArbiter`], which decides the end (then our `Bye` is
//! written, or a leaving viewer's input drained, and the connection closed). Every key the participant
//! holds is released whatever the reason (its [`Seat`](crate::controller::Seat)), and when control is
//! revoked.

mod control;
mod handshake;
mod input;
mod tasks;
mod video;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use quinn::Connection;
use tether_shared::end::{EndArbiter, EndEvent, EndReason, Side, Violation};
use tether_shared::link::ScreenQuality;
use tether_shared::net::pairing::CLOSE_PROTOCOL;
use tether_shared::record::chain::Entry;
use tether_shared::record::{EventKind, SessionEvent};
use tether_shared::relay_proto::{RelayErrorKind, VerifiedTechnician};
use tether_shared::session_proto::{HelloReply, HostControl, Permissions, RefusalReason};
use tether_shared::wire::{self, WireError, MAX_CONTROL_MSG};
use tether_shared::PROTOCOL_VERSION;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use tasks::{Task, Tasks};

use crate::access::{AccessPolicy, SessionHandle};
use crate::capture::CaptureError;
use crate::controller::ParticipantId;
use crate::files::{self, FilesConfig, FilesIo};
use crate::ledger::Ledger;
use crate::participants::{self, Entry as RosterEntry};
use crate::requests;
use crate::{Hub, Recorder};

/// How a session runs: plain settings, the same for every participant.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// What the host user allows (the technician gets what they ask for within this).
    pub allowed: Permissions,
    pub max_fps: u32,
    /// Auto (follows the line), or a fixed quality: lossless, or JPEG for photographic tiles.
    pub quality: ScreenQuality,
    /// Shared folders, the incoming folder and upload consent.
    pub files: FilesConfig,
    /// How long the viewer has to say hello.
    pub hello_timeout: Duration,
}

/// What a session talks to besides the viewer: the host's user interface and the host's own signals.
#[derive(Debug)]
pub struct SessionIo {
    /// This participant's id in the hub.
    pub me: ParticipantId,
    /// Who invited them (`None`: the first technician).
    pub invited_by: Option<String>,
    /// Where chat and permission changes are recorded (the window's session log).
    pub record: Option<Recorder>,
    /// Grant without asking (headless), or ask the user (the window).
    pub access: AccessPolicy,
    /// Upload consent, the file log, the list of running transfers.
    pub files: FilesIo,
    /// The host user stopped sharing.
    pub stop: CancellationToken,
    /// The relay's word that the viewer is gone (`None`) or that the relay ended the session.
    pub relay_gone: mpsc::UnboundedReceiver<Option<RelayErrorKind>>,
    /// Where invite requests go, with this session's resume commitment (the relay links an invite's audit
    /// row to it). `None`: this host takes no invites; the technician is told so.
    pub invites: Option<(crate::invites::InviteSender, [u8; 32])>,
    /// This participant's session record and the entries it sends the viewer (`None`: no record, as in
    /// tests of the session alone).
    pub ledger: Option<(Arc<Ledger>, mpsc::UnboundedReceiver<HostControl>)>,
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
    /// The session record as the host made it ([`crate::ledger`]), and how much of it the viewer
    /// confirmed holding with the same head.
    pub record: Vec<Entry>,
    pub record_confirmed: u64,
    /// The session's public commitment, which the record is bound to.
    pub record_session: [u8; 32],
    /// The inventories the technician kept in the record ([`EventKind::Inventory`]), for the report.
    pub inventories: Vec<tether_shared::inventory::SystemInfo>,
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
    out: mpsc::Sender<HostControl>,
    counters: Arc<Counters>,
    /// Cancelled when the host user removes them.
    removed: CancellationToken,
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
    /// Their roster entry.
    fn entry(&self, invited_by: Option<String>, recorder: Option<Recorder>) -> RosterEntry {
        RosterEntry {
            id: self.id,
            technician: self.technician.clone(),
            verified: self.verified.clone(),
            invited_by,
            grants: self.grants.clone(),
            out: self.out.clone(),
            removed: self.removed.clone(),
            recorder,
            wants_control: false,
        }
    }
}

/// Run a session until it ends; `on_start` is told when it starts. `verified` is the account the relay
/// verified for this technician, if any.
pub async fn run(
    conn: Connection,
    cfg: &SessionConfig,
    hub: &Hub,
    mut io: SessionIo,
    verified: Option<VerifiedTechnician>,
    on_start: impl FnOnce(Started),
) -> Result<SessionReport, SessionError> {
    let mut hello = handshake::hello(&conn, cfg).await?;
    let Some(consent) = handshake::consent(&conn, cfg, &mut io, &hello, verified.clone()).await else {
        handshake::refuse(&conn, &mut hello.send, RefusalReason::Declined).await;
        return Err(SessionError::Declined);
    };
    let granted = consent.granted;
    let handshake::Hello { send: mut ctl_send, recv: ctl_recv, technician, want } = hello;
    let (out_tx, out_rx) = mpsc::channel(64);
    let me = Participant {
        id: io.me,
        conn,
        technician,
        verified,
        grants: Arc::new(watch::channel(granted).0),
        out: out_tx,
        counters: Arc::default(),
        removed: CancellationToken::new(),
    };
    let conn = &me.conn;
    let entry = me.entry(io.invited_by.clone(), io.record.clone());
    // The session so far, as it was before this technician joined.
    let so_far = consent.share_history.then(|| hub.history.so_far());
    on_start(Started {
        technician: me.technician.clone(),
        verified: me.verified.clone(),
        asked: want,
        granted,
        session: hub.roster.handle(&entry),
    });
    // Before the welcome is written: the session so far is the first thing the viewer reads after it.
    if let Some(so_far) = so_far {
        let _ = me.out.try_send(HostControl::History(so_far));
    }
    let _presence = hub.roster.join(entry);
    let _seat = hub.controller.seat(me.id);
    let mut screen = hub.display.screen();
    let (first_capture, monitors, current, generation) = {
        let now = screen.borrow_and_update();
        (now.capture.clone(), now.monitors.clone(), now.current, now.generation)
    };
    let first = first_capture.grab().await?;
    let welcome = HelloReply::Welcome {
        version: PROTOCOL_VERSION,
        granted,
        width: first.frame.width(),
        height: first.frame.height(),
    };
    let (acks_tx, acks_rx) = mpsc::channel(8);
    let (requests_tx, requests_rx) = mpsc::channel(16);
    let (quality_tx, quality) = watch::channel(cfg.quality);
    if !monitors.is_empty() {
        let _ = me.out.try_send(HostControl::Monitors { monitors, current });
    }
    let helper = requests::Requests {
        me: me.id,
        technician: me.technician.clone(),
        short_name: participants::short_name(&me.technician, me.verified.as_ref()).to_owned(),
        verified: me.verified.clone(),
        grants: me.grants.clone(),
        out: me.out.clone(),
        access: io.access.clone(),
        allowed: cfg.allowed,
        record: io.record.clone(),
        roster: hub.roster.clone(),
        clipboard: hub.clipboard.clone(),
        display: hub.display.clone(),
        quality: quality_tx,
        invites: io.invites.clone(),
        sent_inventory: None,
    };

    if let Err(e) = wire::write_msg(&mut ctl_send, &welcome, MAX_CONTROL_MSG).await {
        tracing::debug!("the welcome did not leave: {e}");
    }
    let video_send = video::open(conn).await;
    let (farewell_tx, farewell_rx) = oneshot::channel();
    let mut tasks = Tasks::default();
    let feeds = crate::video::VideoFeeds {
        screen: screen.clone(),
        changed: hub.display.damage(),
        quality,
        line: conn.clone(),
        reports: me.out.clone(),
    };
    let (grants, counters) = (me.grants.subscribe(), me.counters.clone());
    let session_cfg = cfg.clone();
    tasks.spawn(Task::Video, async move {
        let send = video_send.map_err(|_| Stop::Done)?;
        crate::video::run(send, feeds, acks_rx, grants, session_cfg, counters).await
    });
    let controller = hub.controller.clone();
    let (grants, counters) = (me.grants.subscribe(), me.counters.clone());
    tasks.spawn(
        Task::Input,
        input::input_loop(conn.clone(), controller, me.id, grants, counters, me.out.clone()),
    );
    let (ledger, records) = io.ledger.take().unzip();
    let end_ledger = ledger.clone();
    tasks.spawn(Task::Control, control::control_loop(ctl_recv, acks_tx, requests_tx, ledger));
    let writer = control::control_writer(ctl_send, out_rx, records, farewell_rx, me.grants.subscribe());
    tasks.spawn(Task::Writer, writer);
    let monitors = control::monitors_loop(me.out.clone(), screen, generation);
    tasks.spawn(Task::Monitors, quietly(monitors));
    tasks.spawn(Task::Cursor, quietly(control::cursor_loop(me.out.clone(), hub.display.cursor())));
    tasks.spawn(Task::Requests, quietly(helper.serve(requests_rx)));
    let roster = participants::tell_viewer(hub.roster.clone(), me.id, me.out.clone(), io.record.clone());
    tasks.spawn(Task::Participants, quietly(roster));
    let (files_cfg, files_io) = (cfg.files.clone(), io.files.clone());
    let files = files::serve(conn.clone(), files_cfg, files_io, me.technician.clone(), me.grants.subscribe());
    tasks.spawn(Task::Files, quietly(files));

    // Every task, the user, the relay and the connection report to one arbiter; the session ends when it
    // has decided and, if we ended it, the viewer has our Bye, or, if the viewer left, its input is in.
    let mut arbiter = EndArbiter::new(Side::Host);
    let mut done = Done::default();
    let mut farewell = Some(farewell_tx);
    let end = loop {
        let now = Instant::now();
        if let Some(end) = arbiter.poll_end(now) {
            if !done.decided {
                done.decided = true;
                // Once the end is decided nothing more is shared or served: only our Bye is written, and
                // the input a leaving viewer sent before its Bye is injected.
                tasks.stop_all_but(Task::Writer, (!arbiter.decided_here()).then_some(Task::Input));
            }
            let violation = matches!(end, EndReason::ProtocolViolation { .. });
            let gone = done.closed || done.peer_vanished;
            // The end goes into the record both ends hold, and the writer sends it after what is queued,
            // then our Bye when we ended it (a violation is said by the close code alone, and a viewer
            // that is gone hears nothing).
            if let Some(farewell) = farewell.take().filter(|_| !violation) {
                if let Some(ledger) = end_ledger.as_ref().filter(|_| !gone) {
                    ledger.append(SessionEvent::new(
                        SystemTime::now(),
                        EventKind::Ended { reason: end.clone() },
                    ));
                }
                let bye = arbiter.decided_here().then(|| end.clone());
                let _ = farewell.send(control::Farewell { bye });
            }
            let waiting_writer = !violation && !tasks.finished(Task::Writer) && !gone;
            let waiting_input = end == EndReason::ViewerLeft
                && !arbiter.decided_here()
                && !tasks.finished(Task::Input)
                && !gone;
            if !waiting_writer && !waiting_input {
                break end;
            }
        }
        let deadline = arbiter.poll_timeout();
        // Biased: a task's report (the viewer's Bye, already read) before the connection's close.
        let event = tokio::select! {
            biased;
            step = tasks.next(), if !tasks.is_empty() => step.and_then(stopped),
            () = io.stop.cancelled(), if !done.stop => { done.stop = true; Some(EndEvent::Local(EndReason::HostStopped)) }
            () = me.removed.cancelled(), if !done.removed => { done.removed = true; Some(EndEvent::Local(EndReason::Removed)) }
            gone = io.relay_gone.recv(), if !done.relay_gone => match gone {
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
    // Closed first, so the viewer learns why from the close; then the participant's tasks stop, and only
    // then are its keys released (its seat, dropped on return).
    tasks.shutdown().await;
    let granted = *me.grants.borrow();
    Ok(SessionReport {
        technician: me.technician,
        granted,
        frames_sent: me.counters.frames.load(Ordering::Relaxed),
        input_injected: me.counters.injected.load(Ordering::Relaxed),
        input_dropped: me.counters.dropped.load(Ordering::Relaxed),
        end,
        record: Vec::new(),
        record_confirmed: 0,
        record_session: [0; 32],
        inventories: Vec::new(),
    })
}

/// A task whose end says nothing about the session's end (its channels closed, or the connection).
async fn quietly(task: impl std::future::Future<Output = ()>) -> Step {
    task.await;
    Ok(())
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

/// What the host, the relay and the connection have reported (their select arms are off after that).
#[derive(Debug, Default)]
struct Done {
    stop: bool,
    /// The host user removed this participant.
    removed: bool,
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
