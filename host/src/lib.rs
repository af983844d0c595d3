//! The Tether host: registers with the relay, shows a one-time code, pairs with a technician's viewer and
//! shares its screen over the end-to-end connection.
//!
//! The data path reads left to right: [`capture`] → [`encode`] → [`session`] (video out, input in) →
//! [`inject`]. [`run_host`] is the whole host, used by the CLI and the tests alike.
//!
//! The host is a hub: one [`Hub`] (the [`display::Display`] everyone sees, the [`controller::Controller`]
//! that lets one participant at a time drive the input, the clipboard) and a [`session`] per technician.

pub mod access;
pub mod capture;
pub mod clipboard;
pub mod codes;
pub mod controller;
pub mod display;
pub mod encode;
pub mod files;
mod history;
mod hub;
pub mod inject;
pub mod inventory;
pub mod invites;
pub mod ledger;
pub mod participants;
mod requests;
pub mod session;
pub mod transfers;
pub mod ui;
mod video;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tether_shared::code::Code;
use tether_shared::end::{self, EndReason};
use tether_shared::link::ScreenQuality;
use tether_shared::net::pairing::{HostOutcome, HostRendezvous, RelayEvent, Restart, Session};
use tether_shared::net::{ClientError, RelaySpec, Timeouts};
use tether_shared::record::{EventKind, SessionEvent};
use tether_shared::relay_proto::{resume_commitment, RelayErrorKind};
use tether_shared::session_proto::{self, MonitorInfo, Permissions};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use access::{AccessPolicy, SessionHandle};
use capture::cursor::{self, CursorEvent};
use capture::monitors;
use capture::{CaptureError, CaptureHandle, Source};
use clipboard::ClipboardHandle;
use codes::{AfterTooMany, CodeGate, CodePolicy, Next};
use controller::ParticipantId;
use files::{FilesConfig, FilesIo, UploadPolicy};
pub use hub::Hub;
use inject::portal::{NoControl, PortalSink};
use inject::record::RecordingSink;
use inject::wlroots::WlrootsSink;
use inject::x11::EnigoSink;
use inject::{InjectError, InputSink};
use participants::Present;
use session::{SessionConfig, SessionError, SessionIo, SessionReport, Started};
use transfers::Transfers;

/// Where a session's screen comes from and where its input goes.
pub struct Sources {
    pub capture: CaptureHandle,
    /// Cursor shape and position, when the source has a cursor of its own.
    pub cursor: Option<mpsc::Receiver<CursorEvent>>,
    /// Poked when the screen changed, so capture need not wait for the next frame tick, and where it did.
    pub changed: Option<(Arc<Notify>, Arc<capture::damage::DamageLog>)>,
    /// Where the captured monitor's top-left pixel is on the display (the damage log's coordinates).
    pub origin: (i32, i32),
    pub sink: Box<dyn InputSink>,
    /// The clipboard, for clipboard sync (none for the test pattern).
    pub clipboard: Option<ClipboardHandle>,
    /// What was opened, so another monitor of the same display can be opened during a session.
    pub source: Option<Source>,
    /// The display's monitors (empty when there is nothing to choose) and the shared one.
    pub monitors: Vec<MonitorInfo>,
    pub current_monitor: u32,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources").field("cursor", &self.cursor.is_some()).finish_non_exhaustive()
    }
}

impl Sources {
    /// Capture and input only: no cursor, no clipboard, no monitors to choose (tests, benchmarks).
    pub fn new(capture: CaptureHandle, sink: Box<dyn InputSink>) -> Self {
        Self {
            capture,
            cursor: None,
            changed: None,
            origin: (0, 0),
            sink,
            clipboard: None,
            source: None,
            monitors: Vec::new(),
            current_monitor: 0,
        }
    }

    /// The real thing for `source`: X11 capture, cursor and enigo injection on `$DISPLAY`; wlroots
    /// capture (woken by screencopy's damage), our virtual pointer on the shared output and enigo's
    /// virtual keyboard on `$WAYLAND_DISPLAY` (no cursor shape yet); or the test pattern with a sink that
    /// prints what it receives.
    pub fn open(source: Source) -> Result<Self, HostError> {
        if let Source::Portal { remember, answer_within } = source {
            return Self::open_portal(remember, answer_within);
        }
        // On wlroots the stream that captures also says what changed: made here, shared with the capturer.
        let stream = match source {
            Source::Wlroots { monitor } => Some(capture::wlroots::stream(monitor)?),
            _ => None,
        };
        let capture = match &stream {
            Some(stream) => {
                let pictures = stream.pictures();
                CaptureHandle::spawn(move || Ok(Box::new(pictures) as Box<dyn capture::Capturer>))?
            }
            None => CaptureHandle::spawn(move || capture::open(source))?,
        };
        match source {
            Source::TestPattern { .. } => Ok(Self::new(capture, Box::new(RecordingSink::echoing()))),
            Source::Wlroots { monitor: index } => {
                let all = source.monitors()?;
                let listed = all.iter().map(MonitorInfo::from).collect();
                let monitor =
                    all.into_iter().nth(index).ok_or(CaptureError::Failed(format!("no monitor {index}")))?;
                let origin = (monitor.x, monitor.y);
                let sink = Box::new(WlrootsSink::new(monitor)?);
                let clipboard =
                    ClipboardHandle::open().map_err(|e| tracing::warn!("no clipboard sync: {e}")).ok();
                let changed = stream.map(|s| (s.notify, s.log));
                Ok(Self {
                    origin,
                    sink,
                    clipboard,
                    changed,
                    source: Some(source),
                    monitors: listed,
                    current_monitor: index as u32,
                    ..Self::new(capture, Box::new(RecordingSink::new()))
                })
            }
            Source::Portal { .. } => unreachable!("opened above"),
            Source::X11 { monitor: index } => {
                let all = monitors::list(None)?;
                let listed = all.iter().map(MonitorInfo::from).collect();
                let monitor =
                    all.into_iter().nth(index).ok_or(CaptureError::Failed(format!("no monitor {index}")))?;
                let monitor_origin = (monitor.x, monitor.y);
                let cursor = match cursor::watch(monitor.clone()) {
                    Ok(feed) => Some(feed),
                    Err(e) => {
                        tracing::warn!("no cursor: {e}");
                        None
                    }
                };
                let changed = capture::damage::watch()
                    .map_err(|e| tracing::warn!("capturing on a timer only: {e}"))
                    .ok();
                let sink = Box::new(EnigoSink::new(None, monitor)?);
                let clipboard =
                    ClipboardHandle::open().map_err(|e| tracing::warn!("no clipboard sync: {e}")).ok();
                Ok(Self {
                    capture,
                    cursor,
                    changed,
                    origin: (monitor_origin.0, monitor_origin.1),
                    sink,
                    clipboard,
                    source: Some(source),
                    monitors: listed,
                    current_monitor: index as u32,
                })
            }
        }
    }

    /// The desktop portal's screen (the desktop asks the user which) and, where it offers it and the
    /// user allows it, its input.
    fn open_portal(remember: bool, answer_within: std::time::Duration) -> Result<Self, HostError> {
        let source = Source::Portal { remember, answer_within };
        let portal = capture::portal::open(capture::portal::Options::new(remember, answer_within))?;
        let monitor = portal.monitor.clone();
        let pictures = portal.stream.pictures();
        let capture = CaptureHandle::spawn(move || Ok(Box::new(pictures) as Box<dyn capture::Capturer>))?;
        let changed = Some((portal.stream.notify.clone(), portal.stream.log.clone()));
        let sink: Box<dyn InputSink> = match portal.input {
            Some(input) => Box::new(PortalSink::new(input, monitor.clone(), portal.session)),
            None => Box::new(NoControl(portal.session)),
        };
        let clipboard = ClipboardHandle::open().map_err(|e| tracing::warn!("no clipboard sync: {e}")).ok();
        Ok(Self {
            origin: (monitor.x, monitor.y),
            sink,
            clipboard,
            changed,
            source: Some(source),
            monitors: vec![MonitorInfo::from(&monitor)],
            current_monitor: 0,
            ..Self::new(capture, Box::new(RecordingSink::new()))
        })
    }
}

#[derive(Debug, Clone)]
pub struct HostConfig {
    /// The organization's relay (its first, when it has several).
    pub relay: RelaySpec,
    /// The organization's other relays: each code goes to whichever of all answers first
    /// ([`tether_shared::net::nearest`]); a session stays on the relay it started on, and so do the
    /// invites into it.
    pub other_relays: Vec<RelaySpec>,
    pub timeouts: Timeouts,
    pub session: SessionConfig,
    /// Notified when the user wants a new code (the current one is dropped at the relay).
    pub new_code: Arc<Notify>,
    /// Wrong codes in a row and back-off (see [`codes`]).
    pub codes: CodePolicy,
    /// Grant without asking (headless), or ask the user (the window).
    pub access: AccessPolicy,
    /// Uploads allowed, refused, or asked about (the window).
    pub uploads: UploadPolicy,
    /// Where running transfers are listed for the user to watch and stop.
    pub transfers: Transfers,
    /// Whether a technician may invite a colleague into the session ([`invites`]). The window and the
    /// headless host take them (the window asks the user about each); off by default for embedders.
    pub invites: bool,
    /// Technicians in one session at most (invites stop there).
    pub max_viewers: usize,
}

impl HostConfig {
    /// Every relay the host may use, the first first.
    pub fn relays(&self) -> Vec<RelaySpec> {
        std::iter::once(self.relay.clone()).chain(self.other_relays.iter().cloned()).collect()
    }

    pub fn new(relay: RelaySpec, allowed: Permissions) -> Self {
        Self {
            relay,
            other_relays: Vec::new(),
            timeouts: Timeouts::default(),
            session: SessionConfig {
                allowed,
                max_fps: 30,
                quality: ScreenQuality::Auto,
                files: FilesConfig::default(),
                hello_timeout: Duration::from_secs(10),
            },
            new_code: Arc::new(Notify::new()),
            codes: CodePolicy::default(),
            access: AccessPolicy::Auto,
            uploads: UploadPolicy::Deny,
            transfers: Transfers::default(),
            invites: false,
            max_viewers: invites::DEFAULT_MAX_VIEWERS,
        }
    }
}

/// What the host tells its user interface.
#[derive(Debug, Clone)]
pub enum HostEvent {
    /// Show this code; it expires after `expires_in`.
    Code { code: Code, expires_in: Duration },
    /// The previous code is gone (expired, or someone tried a wrong code); a new one follows.
    CodeReplaced(Restart),
    /// Someone entered a wrong code this many times in a row: no new code is offered until the user asks
    /// for one (the host's `new_code`). Headless mode ends instead.
    TooManyWrongCodes(u32),
    /// The next code comes in this long: the relay refused a registration (too many, or full) and is asked
    /// again after a back-off.
    CodeDelayed(Duration),
    /// Something for the session record of participant `.0` (who connected, what was asked and allowed,
    /// permission changes, files, chat, monitor switches, clipboard use, the end): what the window's
    /// session log and the headless output show, each line from a [`tether_shared::record::Narrator`]
    /// kept per participant.
    Session(ParticipantId, SessionEvent),
    /// The handle the window changes permissions and chats through, right after the
    /// [`EventKind::Connected`] it belongs to. Changes made through it are recorded as events.
    Live(SessionHandle),
    /// What became of an invite technician `by` asked for (the code, claimed, expired, burned,
    /// withdrawn): the user sees that one was opened before anyone uses it.
    Invite { by: String, news: session_proto::InviteNews },
    /// Everyone in the session now, at each change (a join, a leave, a grant, control moving, a request
    /// for control), from the first technician's start on; empty once the last one left.
    Participants(Vec<Present>),
    /// The relay is out of reach: the session waits for it (up to the end-to-end idle timeout).
    Reconnecting,
    /// Back: the session carries on where it was.
    Reconnected,
}

impl HostEvent {
    /// The record event, if this is one.
    pub fn record(&self) -> Option<&SessionEvent> {
        match self {
            Self::Session(_, event) => Some(event),
            _ => None,
        }
    }
}

/// Where one participant's record events go: the host's events, stamped with who, the session's
/// history (for those who join later), and the participant's session record ([`ledger`]), which their
/// viewer holds too.
#[derive(Debug, Clone)]
pub struct Recorder {
    events: mpsc::UnboundedSender<HostEvent>,
    who: ParticipantId,
    history: Arc<history::History>,
    ledger: Option<Arc<ledger::Ledger>>,
}

impl Recorder {
    pub(crate) fn new(
        events: mpsc::UnboundedSender<HostEvent>,
        who: ParticipantId,
        history: Arc<history::History>,
    ) -> Self {
        Self { events, who, history, ledger: None }
    }

    /// The same, appending to `ledger` too.
    pub(crate) fn with_ledger(self, ledger: Arc<ledger::Ledger>) -> Self {
        Self { ledger: Some(ledger), ..self }
    }

    /// Into the participant's session record only (a chat line the window already showed once, as
    /// another participant's).
    pub fn chain_only(&self, kind: EventKind) {
        if let Some(ledger) = &self.ledger {
            ledger.append(SessionEvent::new(SystemTime::now(), kind));
        }
    }

    /// Keep `info` in the participant's record: the entry names it by digest, the report carries it.
    pub fn keep_inventory(&self, info: &tether_shared::inventory::SystemInfo) {
        if let Some(ledger) = &self.ledger {
            ledger.attach(info.clone());
        }
        let digest = tether_shared::inventory::digest(info);
        self.record(EventKind::Inventory { digest, summary: info.summary() });
    }

    /// Stamp `kind` with the time now and send it as a [`HostEvent::Session`].
    pub fn record(&self, kind: EventKind) {
        self.send(SessionEvent::new(SystemTime::now(), kind));
    }

    pub fn send(&self, event: SessionEvent) {
        self.history.push(self.who, event.clone());
        // The end is recorded once the connection is closed: each end keeps its own word on it, outside
        // the record both hold.
        if let Some(ledger) = self.ledger.as_ref().filter(|_| !matches!(event.kind, EventKind::Ended { .. }))
        {
            ledger.append(event.clone());
        }
        let _ = self.events.send(HostEvent::Session(self.who, event));
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("stopped before a technician connected")]
    Stopped,
    #[error(
        "someone entered a wrong code {0} times in a row; no new code was offered. If that was not your \
         technician, do not share"
    )]
    TooManyWrongCodes(u32),
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error(transparent)]
    Inject(#[from] InjectError),
}

/// Run the host: codes until a viewer pairs, then the session until the user stops or the last
/// technician leaves. A technician may invite colleagues meanwhile ([`invites`], when
/// [`HostConfig::invites`]): each who pairs joins the same [`Hub`] as a session of their own. Returns the
/// report of the session that ended last.
///
/// The code loop ([`pair`]) and a session ([`serve`]) are separate steps over the shared hub.
pub async fn run_host(
    cfg: HostConfig,
    sources: Sources,
    events: mpsc::UnboundedSender<HostEvent>,
    stop: CancellationToken,
) -> Result<SessionReport, HostError> {
    let hub = Arc::new(Hub::new(sources));
    let cfg = Arc::new(cfg);
    let paired = tokio::select! {
        s = pair(&cfg, &events) => s?,
        _ = stop.cancelled() => return Err(HostError::Stopped),
    };
    let roster_feed = {
        let (roster, events) = (hub.roster.clone(), events.clone());
        tokio::spawn(async move {
            let mut watch = roster.watch();
            let mut told = false;
            while watch.changed().await {
                let now = roster.present();
                // Nothing to say until the first technician is in (the list starts empty).
                if told || !now.is_empty() {
                    told = true;
                    let _ = events.send(HostEvent::Participants(now));
                }
            }
        })
    };
    let (invite_tx, mut invite_rx) = mpsc::unbounded_channel();
    let invites_to = cfg.invites.then_some(invite_tx);
    let serve_one = |session: Session, invited_by: Option<String>, issued: SystemTime| {
        let joining = Joining { session, invited_by, issued };
        serve(cfg.clone(), hub.clone(), joining, events.clone(), stop.clone(), invites_to.clone())
    };
    let mut sessions = tokio::task::JoinSet::new();
    let (paired, issued) = paired;
    // Invites go to the relay this session is on: it holds the session the invite joins.
    let session_relay = paired.link.relay().clone();
    sessions.spawn(serve_one(paired, None, issued));
    let mut invites = invites::Invites::new(cfg.max_viewers);
    // The invite being claimed, and who asked for it.
    let mut open_invite: Option<(tokio::task::JoinHandle<invites::InviteOutcome>, String, SystemTime)> = None;
    let mut last = None;
    loop {
        tokio::select! {
            ended = sessions.join_next() => {
                let Some(ended) = ended else { break };
                last = Some(ended.unwrap_or_else(|e| Err(SessionError::Protocol(format!("session task: {e}")))));
                if sessions.is_empty() {
                    break;
                }
                // Whoever asked for the open invite may be the one who left.
                if invites.handle_left() == invites::Decision::Withdraw {
                    if let Some((task, by, _)) = open_invite.take() {
                        task.abort();
                        let _ = events.send(HostEvent::Invite { by, news: session_proto::InviteNews::Withdrawn });
                    }
                }
            }
            Some(command) = invite_rx.recv() => {
                // Only an Open can start an invite: it brings the asker's session commitment.
                let (news, opened, decision) = match command {
                    invites::InviteCommand::Open { news, session, by } => {
                        let decision = invites.handle_open(&news, sessions.len());
                        (news, Some((session, by)), decision)
                    }
                    invites::InviteCommand::Withdraw { news } => {
                        let decision = invites.handle_withdraw(&news);
                        (news, None, decision)
                    }
                };
                let tell = |what| { let _ = news.try_send(session_proto::HostControl::Invite(what)); };
                match (decision, opened) {
                    (invites::Decision::Start, Some((session, by))) => {
                        let (relay, timeouts) = (session_relay.clone(), cfg.timeouts);
                        // The asker hears of their invite; the user's window and log too.
                        let (events, asker) = (events.clone(), by.clone());
                        let tell = move |what: session_proto::InviteNews| {
                            let _ = events.send(HostEvent::Invite { by: asker.clone(), news: what.clone() });
                            let _ = news.try_send(session_proto::HostControl::Invite(what));
                        };
                        let task = tokio::spawn(async move { invites::run(&relay, timeouts, session, tell).await });
                        open_invite = Some((task, by, SystemTime::now()));
                    }
                    (invites::Decision::Refuse(why), _) => tell(session_proto::InviteNews::Unavailable { why }),
                    (invites::Decision::Withdraw, _) => {
                        // Its relay connection goes with the task: the code no longer works.
                        if let Some((task, by, _)) = open_invite.take() {
                            task.abort();
                            let _ = events.send(HostEvent::Invite { by, news: session_proto::InviteNews::Withdrawn });
                        }
                        tell(session_proto::InviteNews::Withdrawn);
                    }
                    (invites::Decision::Start | invites::Decision::Ignore, _) => {}
                }
            }
            outcome = async { (&mut open_invite.as_mut().expect("guarded").0).await }, if open_invite.is_some() => {
                let (by, opened) = match open_invite.take() {
                    Some((_, by, opened)) => (Some(by), opened),
                    None => (None, SystemTime::now()),
                };
                let outcome = outcome.unwrap_or(invites::InviteOutcome::Failed);
                invites.handle_ended(&outcome);
                if let invites::InviteOutcome::Claimed(session) = outcome {
                    sessions.spawn(serve_one(*session, by, opened));
                }
            }
        }
    }
    if let Some((task, _, _)) = open_invite {
        task.abort();
    }
    roster_feed.abort();
    // `last` is set: the loop ends only after a session did (one was spawned before it).
    Ok(last.ok_or(HostError::Stopped)??)
}

/// A paired technician about to join: their end-to-end session, and who invited them (`None`: the
/// first technician).
struct Joining {
    session: Session,
    invited_by: Option<String>,
    /// When their code (or invite code) was made: the record's first entry.
    issued: SystemTime,
}

/// One paired technician's session on `hub`, from the relay watch to the goodbye.
async fn serve(
    cfg: Arc<HostConfig>,
    hub: Arc<Hub>,
    joining: Joining,
    events: mpsc::UnboundedSender<HostEvent>,
    stop: CancellationToken,
    invites: Option<invites::InviteSender>,
) -> Result<SessionReport, SessionError> {
    let Joining { session: paired, invited_by, issued } = joining;
    let me = hub.join();
    let (ledger, outbound) = ledger::Ledger::new(&paired.resume_id);
    let relay = paired.link.relay().server_name.clone();
    ledger.append(SessionEvent::new(issued, EventKind::CodeIssued { relay, invited_by: invited_by.clone() }));
    let recorder = Recorder::new(events.clone(), me, hub.history.clone()).with_ledger(ledger.clone());
    let (file_log, mut file_events) = mpsc::unbounded_channel();
    let forward = recorder.clone();
    tokio::spawn(async move {
        while let Some(event) = file_events.recv().await {
            forward.send(event);
        }
    });
    let endpoint = paired.link.endpoint().clone();
    let verified = paired.technician.clone();
    let (gone_tx, relay_gone) = mpsc::unbounded_channel();
    let relay_events = events.clone();
    // Interruptions go into the record (the window says them through Reconnecting/Reconnected).
    let interruptions = recorder.clone();
    // The host leaves by closing the end-to-end connection first, which the watch sees by itself.
    let leaving = stop.child_token();
    let to_relay = Some(outbound.to_relay);
    let watch = Session::spawn_relay_watch(
        paired.link,
        paired.conn.clone(),
        paired.resume_id,
        leaving,
        to_relay,
        move |e| {
            let told = match e {
                RelayEvent::PeerGone(kind) => {
                    let _ = gone_tx.send(kind);
                    return;
                }
                RelayEvent::Lost => {
                    interruptions.chain_only(EventKind::Interrupted);
                    HostEvent::Reconnecting
                }
                RelayEvent::Rejoined => {
                    interruptions.chain_only(EventKind::Resumed);
                    HostEvent::Reconnected
                }
            };
            let _ = relay_events.send(told);
        },
    );
    let connected = std::sync::atomic::AtomicBool::new(false);
    let on_start = |started: Started| {
        let Started { technician, verified, asked, granted, session } = started;
        let verified = verified.as_ref().map(Into::into);
        recorder.record(EventKind::Connected { technician, verified, asked, granted });
        let _ = events.send(HostEvent::Live(session));
        connected.store(true, std::sync::atomic::Ordering::Relaxed);
    };
    let files =
        FilesIo { uploads: cfg.uploads.clone(), log: Some(file_log), transfers: cfg.transfers.clone() };
    let invites = invites.map(|to| (to, resume_commitment(&paired.resume_id)));
    let io = SessionIo {
        me,
        invited_by,
        record: Some(recorder.clone()),
        access: cfg.access.clone(),
        files,
        stop,
        relay_gone,
        invites,
        ledger: Some((ledger.clone(), outbound.to_viewer)),
    };
    let report = session::run(paired.conn, &cfg.session, &hub, io, verified, on_start).await.map(|report| {
        SessionReport {
            record: ledger.entries(),
            record_confirmed: ledger.confirmed(),
            record_session: ledger.commitment(),
            inventories: ledger.inventories(),
            ..report
        }
    });
    if connected.load(std::sync::atomic::Ordering::Relaxed) {
        let reason = match &report {
            Ok(report) => report.end.clone(),
            Err(e) => EndReason::Failed { side: end::Side::Host, why: e.to_string() },
        };
        recorder.record(EventKind::Ended { reason });
    }
    watch.abort();
    // Let the goodbye (CONNECTION_CLOSE) leave before the caller may exit the process.
    let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
    report
}

/// Pair with the first technician: their session, and when the code they used was made.
async fn pair(
    cfg: &HostConfig,
    events: &mpsc::UnboundedSender<HostEvent>,
) -> Result<(Session, SystemTime), HostError> {
    let mut gate = CodeGate::new(cfg.codes);
    let mut rendezvous = HostRendezvous::connect_nearest(&cfg.relays(), cfg.timeouts).await?;
    loop {
        let (code, expires_in) = match rendezvous.register().await {
            Ok(registered) => registered,
            // The relay refused this registration (rate limit, full): ask again later, do not give up.
            Err(ClientError::Relay(kind @ (RelayErrorKind::RateLimited | RelayErrorKind::Busy))) => {
                let wait = gate.on_refused();
                tracing::info!("the relay refused a new code ({kind}); asking again in {wait:?}");
                let _ = events.send(HostEvent::CodeDelayed(wait));
                tokio::time::sleep(wait).await;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        gate.on_registered();
        let issued = SystemTime::now();
        let _ = events.send(HostEvent::Code { code: code.clone(), expires_in });
        let outcome = tokio::select! {
            outcome = rendezvous.wait_for_viewer(&code) => Some(outcome?),
            () = cfg.new_code.notified() => None,
        };
        let (again, why) = match outcome {
            Some(HostOutcome::Paired(session)) => return Ok((session, issued)),
            Some(HostOutcome::Restart(again, why)) => (again, why),
            // The relay went away while the code waited: any relay of the list makes the next one.
            Some(HostOutcome::RelayLost(e)) => {
                tracing::warn!("lost the relay while waiting for a technician ({e}); connecting again");
                (HostRendezvous::connect_nearest(&cfg.relays(), cfg.timeouts).await?, Restart::RelayLost)
            }
            None => {
                // The old connection (and with it the code) is gone: the relay frees it. A fresh one registers.
                (HostRendezvous::connect_nearest(&cfg.relays(), cfg.timeouts).await?, Restart::Requested)
            }
        };
        tracing::info!(?why, "making a new code");
        let _ = events.send(HostEvent::CodeReplaced(why));
        rendezvous = again;
        match gate.on_restart(why) {
            Next::After(wait) => tokio::time::sleep(wait).await,
            Next::Stop => {
                let times = gate.wrong_in_a_row();
                tracing::warn!("{times} wrong codes in a row: no new code until the user asks");
                let _ = events.send(HostEvent::TooManyWrongCodes(times));
                if cfg.codes.after_too_many == AfterTooMany::Stop {
                    return Err(HostError::TooManyWrongCodes(times));
                }
                // Offer nothing while the user decides: leave the relay, come back when asked.
                drop(rendezvous);
                cfg.new_code.notified().await;
                gate.on_restart(Restart::Requested);
                rendezvous = HostRendezvous::connect_nearest(&cfg.relays(), cfg.timeouts).await?;
            }
        }
    }
}
