//! A live session on the viewer side. Network work runs in background tasks; callers (the CLI, the window,
//! tests) read the latest complete frame from a `watch` channel and send input through a handle.
//!
//! Streams, one task per family ([`streams`]): **control** (we open it: hello, welcome, then our frame acks
//! and requests out; cursor, permissions and the host's notices in), **video** (the host opens it: frame
//! updates → [`crate::decode::Decoder`]), **input** (we open it: events in order).
//!
//! How the session ends is decided in one place ([`end`]): every task reports there, and
//! [`ViewerSession::closed`] says the [`EndReason`] its arbiter decided.
//!
//! What the host says comes out two ways: state as `watch` channels (frames, cursor, grants, monitors,
//! system info: a late reader gets the latest), events as a broadcast of [`HostNotice`]s (chat, clipboard,
//! declined requests, notices: a GUI polls them every frame).

use std::sync::Arc;

use quinn::{Connection, SendStream};
use tether_shared::code::Code;
use tether_shared::end::{EndEvent, EndReason, Side as EndSide};
use tether_shared::link::{LinkReport, ScreenQuality};
use tether_shared::net::pairing::{connect_viewer, RelayEvent, Session, CLOSE_NORMAL, CLOSE_PROTOCOL};
use tether_shared::net::{ClientError, RelaySpec, Timeouts};
use tether_shared::session_proto::{
    priority, CursorShape, Hello, HelloReply, History, InviteNews, MonitorInfo, Notes, Permissions,
    RefusalReason, Request, Roster, SystemInfo, ViewerControl, MAX_CHAT_TEXT, MAX_CLIPBOARD_TEXT,
};
use tether_shared::wire::{self, WireError, MAX_CONTROL_MSG};
use tether_shared::{input::InputEvent, PROTOCOL_VERSION};
use tokio::sync::{broadcast, mpsc, watch, Mutex};

use crate::decode::FrameInfo;
use crate::files::FileClient;
use crate::record::Recorder;
use end::EndTask;
use ledger::Ledger;
use streams::{control_reader, control_task, video_task, HostState};
use tether_shared::frame::Frame;
use tether_shared::record::{EventKind, SessionEvent, Side};

mod end;
mod ledger;
pub mod snapshots;
mod streams;

#[derive(Clone)]
pub struct ViewerConfig {
    pub relay: RelaySpec,
    pub timeouts: Timeouts,
    /// The technician's name as typed (the host shows it as unverified).
    pub technician: String,
    pub want: Permissions,
    /// The technician's account token, for relays that verify technicians (sent only to the relay it
    /// names; never in `Debug`).
    pub token: Option<String>,
}

impl std::fmt::Debug for ViewerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewerConfig")
            .field("relay", &self.relay)
            .field("timeouts", &self.timeouts)
            .field("technician", &self.technician)
            .field("want", &self.want)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ViewerError {
    #[error(transparent)]
    Connect(#[from] ClientError),
    #[error("the host refused the session: {0}")]
    Refused(RefusalReason),
    #[error("the host broke the protocol: {0}")]
    Protocol(String),
    #[error("the session ended: {0}")]
    Ended(EndReason),
    #[error("{what} is too long ({len} bytes; at most {max})")]
    TooLong { what: &'static str, len: usize, max: usize },
    #[error("no system information yet: ask the host for it first")]
    NoInventory,
}

/// Something the host said that is an event rather than a state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostNotice {
    Chat(String),
    /// A line another technician in the session wrote (escaped), and their name (escaped).
    ColleagueChat {
        from: String,
        text: String,
    },
    /// The chat and the host user's session log before we joined (texts escaped), when the user agreed.
    History(History),
    /// The host's clipboard text (while watched).
    Clipboard(String),
    /// The host user declined a request for these permissions.
    Declined(Permissions),
    Notice(String),
}

/// The host's monitors and which one is shared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Monitors {
    pub list: Vec<MonitorInfo>,
    pub current: u32,
}

/// Transport numbers for the session stats panel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkStats {
    pub rtt: std::time::Duration,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    /// The host's view of the line and what its screen sender does about it, once reported.
    pub host: Option<LinkReport>,
}

/// The latest complete frame.
#[derive(Debug, Clone)]
pub struct Shown {
    pub info: FrameInfo,
    pub frame: Arc<Frame>,
}

/// A connected session. Dropping it closes the session.
#[derive(Debug)]
pub struct ViewerSession {
    conn: Connection,
    granted: Permissions,
    frames: watch::Receiver<Option<Shown>>,
    input: Mutex<SendStream>,
    /// The session's end, once its arbiter has decided ([`end_task`]).
    ended: watch::Receiver<Option<EndReason>>,
    /// Signals for the arbiter.
    end_events: mpsc::UnboundedSender<EndEvent>,
    cursor: watch::Receiver<CursorState>,
    grants: watch::Receiver<Permissions>,
    monitors: watch::Receiver<Monitors>,
    system: watch::Receiver<Option<SystemInfo>>,
    /// The host's latest report on the line ([`HostControl::Link`]).
    line: watch::Receiver<Option<LinkReport>>,
    notices: std::sync::Mutex<Option<broadcast::Receiver<HostNotice>>>,
    notices_tx: broadcast::Sender<HostNotice>,
    requests: mpsc::Sender<ViewerControl>,
    files: FileClient,
    endpoint: quinn::Endpoint,
    reconnecting: watch::Receiver<bool>,
    record: Recorder,
    /// Cancelled when we leave: the relay dropping our link after that is no loss.
    leaving: tokio_util::sync::CancellationToken,
    /// The latest news of our invite ([`Self::invite`]).
    invite: watch::Receiver<Option<InviteNews>>,
    /// Who is in the session, as the host last said (empty until it does).
    participants: watch::Receiver<Roster>,
    /// The session record both ends hold.
    ledger: Ledger,
}

/// The host's cursor as last reported: shape (if any yet) and position in host screen pixels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CursorState {
    pub shape: Option<Arc<CursorShape>>,
    pub position: Option<(i32, i32)>,
    pub visible: bool,
}

impl ViewerSession {
    /// Pair with the host by `code` and open the session.
    pub async fn connect(cfg: &ViewerConfig, code: &Code) -> Result<Self, ViewerError> {
        let session = connect_viewer(&cfg.relay, code, cfg.timeouts, cfg.token.as_deref()).await?;
        Self::start(session, cfg).await
    }

    async fn start(session: Session, cfg: &ViewerConfig) -> Result<Self, ViewerError> {
        let conn = session.conn.clone();
        let resume_id = session.resume_id;
        let endpoint = session.link.endpoint().clone();
        let (ended_tx, ended) = watch::channel(None);
        let (end_events, end_rx) = mpsc::unbounded_channel();
        let on_gone = end_events.clone();
        let (reconnecting_tx, reconnecting) = watch::channel(false);
        let leaving = tokio_util::sync::CancellationToken::new();
        let watch = Session::spawn_relay_watch(
            session.link,
            session.conn,
            session.resume_id,
            leaving.clone(),
            None,
            move |event| match event {
                RelayEvent::PeerGone(kind) => {
                    let _ = on_gone.send(EndEvent::RelayGone(kind));
                }
                RelayEvent::Lost => {
                    reconnecting_tx.send_replace(true);
                }
                RelayEvent::Rejoined => {
                    reconnecting_tx.send_replace(false);
                }
            },
        );
        let (mut ctl_send, mut ctl_recv) = conn.open_bi().await.map_err(|e| closed(&e))?;
        let _ = ctl_send.set_priority(priority::CONTROL); // fails only on a closed stream
        let hello = Hello { version: PROTOCOL_VERSION, technician: cfg.technician.clone(), want: cfg.want };
        wire::write_msg(&mut ctl_send, &hello, MAX_CONTROL_MSG).await.map_err(|e| stream_ended(&conn, e))?;
        let granted =
            match wire::read_msg(&mut ctl_recv, MAX_CONTROL_MSG).await.map_err(|e| stream_ended(&conn, e))? {
                Some(HelloReply::Welcome { granted, .. }) => granted,
                Some(HelloReply::Refused { reason }) => return Err(ViewerError::Refused(reason)),
                None => return Err(protocol(&conn, "the control stream ended before Welcome".into())),
            };
        let input = conn.open_uni().await.map_err(|e| closed(&e))?;
        let _ = input.set_priority(priority::INPUT);
        let record = Recorder::connected(&conn, ended.clone(), &cfg.technician, cfg.want, granted);
        let (frames_tx, frames) = watch::channel(None);
        let (requests, requests_rx) = mpsc::channel(64);
        tokio::spawn(control_task(conn.clone(), ctl_send, requests_rx));
        let ends =
            EndTask { conn: conn.clone(), events: end_rx, ended: ended_tx, control: requests.clone(), watch };
        tokio::spawn(ends.run());
        let (cursor_tx, cursor) = watch::channel(CursorState::default());
        let (grants_tx, grants) = watch::channel(granted);
        let (monitors_tx, monitors) = watch::channel(Monitors::default());
        let (system_tx, system) = watch::channel(None);
        let (line_tx, line) = watch::channel(None);
        let (invite_tx, invite) = watch::channel(None);
        let (participants_tx, participants) = watch::channel(Roster::default());
        let ledger = Ledger::new(&resume_id, requests.clone());
        let (notices_tx, notices) = broadcast::channel(256);
        let state = HostState {
            cursor: cursor_tx,
            grants: grants_tx,
            monitors: monitors_tx,
            system: system_tx,
            line: line_tx,
            invite: invite_tx,
            participants: participants_tx,
            ledger: ledger.clone(),
            notices: notices_tx.clone(),
            end_events: end_events.clone(),
            record: record.clone(),
        };
        tokio::spawn(control_reader(ctl_recv, state));
        tokio::spawn(video_task(conn.clone(), frames_tx, requests.clone(), end_events.clone()));
        let files = FileClient::new(conn.clone(), record.clone());
        Ok(Self {
            conn,
            granted,
            frames,
            input: Mutex::new(input),
            ended,
            end_events,
            cursor,
            grants,
            monitors,
            system,
            line,
            notices: std::sync::Mutex::new(Some(notices)),
            notices_tx,
            requests,
            files,
            endpoint,
            reconnecting,
            record,
            leaving,
            invite,
            participants,
            ledger,
        })
    }

    /// `true` while the relay is out of reach and the session waits for it (up to the end-to-end idle
    /// timeout); the screen, input and transfers carry on when it is back.
    pub fn reconnecting(&self) -> watch::Receiver<bool> {
        self.reconnecting.clone()
    }

    /// The host's chat lines, clipboard and notices from the start of the session on (the first call gets
    /// everything since connecting; later calls get what comes after the call).
    pub fn notices(&self) -> broadcast::Receiver<HostNotice> {
        let first = self.notices.lock().ok().and_then(|mut n| n.take());
        first.unwrap_or_else(|| self.notices_tx.subscribe())
    }

    /// The host's monitors, once the host has said.
    pub fn monitors(&self) -> watch::Receiver<Monitors> {
        self.monitors.clone()
    }

    /// The host's system information, after [`Self::request_system_info`].
    pub fn system_info(&self) -> watch::Receiver<Option<SystemInfo>> {
        self.system.clone()
    }

    /// Round-trip time and bytes moved on the end-to-end connection.
    pub fn link_stats(&self) -> LinkStats {
        let stats = self.conn.stats();
        LinkStats {
            rtt: self.conn.rtt(),
            bytes_received: stats.udp_rx.bytes,
            bytes_sent: stats.udp_tx.bytes,
            host: *self.line.borrow(),
        }
    }

    /// The host's reports on the line (about one a second): round trip, bandwidth, queueing delay and
    /// what its screen sender does about them.
    pub fn host_line(&self) -> watch::Receiver<Option<LinkReport>> {
        self.line.clone()
    }

    /// The session record so far ([`crate::record`]), updated as events come.
    pub fn record(&self) -> watch::Receiver<Vec<SessionEvent>> {
        self.record.subscribe()
    }

    /// Say something to the host user.
    pub async fn chat(&self, text: &str) -> Result<(), ViewerError> {
        check_len("a chat message", text, MAX_CHAT_TEXT)?;
        self.request(Request::Chat { text: text.to_owned() }).await?;
        self.record.record(EventKind::Chat { from: Side::Technician, text: text.to_owned() });
        Ok(())
    }

    /// Put this text on the host's clipboard (the host ignores it without `control`).
    pub async fn send_clipboard(&self, text: &str) -> Result<(), ViewerError> {
        check_len("the clipboard text", text, MAX_CLIPBOARD_TEXT)?;
        self.request(Request::Clipboard { text: text.to_owned() }).await?;
        self.record.record(EventKind::Clipboard { by: Side::Technician, bytes: text.len() as u64 });
        Ok(())
    }

    /// Receive the host's clipboard text as [`HostNotice::Clipboard`] whenever it changes, or stop.
    pub async fn watch_clipboard(&self, on: bool) -> Result<(), ViewerError> {
        self.request(Request::WatchClipboard(on)).await
    }

    /// Ask for other permissions (e.g. control, or back to view only). Giving up takes effect at once;
    /// asking for more waits for the host user: watch [`Self::grants`] and [`HostNotice::Declined`].
    pub async fn request_permissions(&self, want: Permissions) -> Result<(), ViewerError> {
        self.record.requested(want);
        self.request(Request::RequestPermissions(want)).await
    }

    /// Change the quality of photographic regions from the next update on (`Auto`: follow the line).
    pub async fn set_quality(&self, quality: impl Into<ScreenQuality>) -> Result<(), ViewerError> {
        let quality = quality.into();
        self.request(Request::SetQuality(quality)).await
    }

    /// Share the host's monitor `index` (see [`Self::monitors`]).
    pub async fn select_monitor(&self, index: u32) -> Result<(), ViewerError> {
        self.request(Request::SelectMonitor { index }).await
    }

    /// Keep the inventory shown now ([`Self::system_info`]) in the session record; the host records it
    /// (while we may see the screen) and both ends' reports carry it.
    pub async fn include_inventory(&self) -> Result<(), ViewerError> {
        let digest = self.system.borrow().as_ref().map(tether_shared::inventory::digest);
        match digest {
            Some(digest) => self.request(Request::IncludeInventory { digest }).await,
            None => Err(ViewerError::NoInventory),
        }
    }

    /// Ask the host for its system information; it arrives in [`Self::system_info`].
    pub async fn request_system_info(&self) -> Result<(), ViewerError> {
        self.request(Request::SystemInfoRequest).await
    }

    /// Ask the host for an invite code for a colleague; the code, and what becomes of it, arrive in
    /// [`Self::invite_news`].
    pub async fn invite(&self) -> Result<(), ViewerError> {
        self.request(Request::Invite).await
    }

    /// Withdraw the open invite: its code stops working.
    pub async fn withdraw_invite(&self) -> Result<(), ViewerError> {
        self.request(Request::WithdrawInvite).await
    }

    /// The latest news of our invite (`None` until the host answers one).
    pub fn invite_news(&self) -> watch::Receiver<Option<InviteNews>> {
        self.invite.clone()
    }

    /// The session record as this viewer holds it: every entry the host made so far, each checked to
    /// extend the one before (the same record the host holds, [`tether_shared::record::chain`]).
    pub fn session_record(&self) -> Vec<tether_shared::record::chain::Entry> {
        self.ledger.entries()
    }

    /// The session record as a file to save: [`Self::session_record`] and the inventories it names.
    pub fn record_file(&self) -> tether_shared::record::file::RecordFile {
        self.ledger.file()
    }

    /// What the session record is bound to: the session's public commitment (the relay's audit names it).
    pub fn record_session(&self) -> [u8; 32] {
        self.ledger.commitment()
    }

    /// Save the technician's notes into the session record (both ends' copies; the user's log shows them).
    pub async fn save_notes(&self, notes: Notes) -> Result<(), ViewerError> {
        for (what, text) in notes.fields() {
            if text.len() > MAX_CHAT_TEXT {
                return Err(ViewerError::TooLong { what, len: text.len(), max: MAX_CHAT_TEXT });
            }
        }
        self.request(Request::SaveNotes(notes)).await
    }

    /// Who is in the session and who has control, as the host last said (names escaped).
    pub fn participants(&self) -> watch::Receiver<Roster> {
        self.participants.clone()
    }

    /// Ask for control of mouse and keyboard: taken at once when nobody has it; otherwise the technician
    /// in control and the user see that we ask.
    pub async fn request_control(&self) -> Result<(), ViewerError> {
        self.request(Request::RequestControl).await
    }

    /// Hand control to participant `to` (we must have it; every key we hold is let go).
    pub async fn hand_over_control(&self, to: u64) -> Result<(), ViewerError> {
        self.request(Request::HandOverControl { to }).await
    }

    async fn request(&self, request: Request) -> Result<(), ViewerError> {
        self.requests.send(ViewerControl::Request(request)).await.map_err(|_| self.end_reason())
    }

    /// What the host granted at the start.
    pub fn granted(&self) -> Permissions {
        self.granted
    }

    /// What the host grants now (the host user may change it during the session).
    pub fn grants(&self) -> watch::Receiver<Permissions> {
        self.grants.clone()
    }

    /// File operations: browse, fetch, upload.
    pub fn files(&self) -> FileClient {
        self.files.clone()
    }

    /// The host's cursor, updated as it moves or changes shape.
    pub fn cursor(&self) -> watch::Receiver<CursorState> {
        self.cursor.clone()
    }

    /// The latest complete frame, updated as frames arrive.
    pub fn frames(&self) -> watch::Receiver<Option<Shown>> {
        self.frames.clone()
    }

    /// Wait for a complete frame newer than `after` (by sequence number).
    pub async fn next_frame(&self, after: Option<u64>) -> Result<Shown, ViewerError> {
        let mut frames = self.frames.clone();
        let mut ended = self.ended.clone();
        loop {
            if let Some(shown) = frames.borrow_and_update().as_ref() {
                if after.is_none_or(|seq| shown.info.seq > seq) {
                    return Ok(shown.clone());
                }
            }
            tokio::select! {
                // The video task is done: the session is ending; wait for why.
                changed = frames.changed() => if changed.is_err() { return Err(self.closed().await) },
                _ = ended.changed() => return Err(self.end_reason()),
            }
        }
    }

    /// Send one input event; events arrive in order.
    pub async fn send_input(&self, event: InputEvent) -> Result<(), ViewerError> {
        let mut input = self.input.lock().await;
        wire::write_msg(&mut *input, &event, MAX_CONTROL_MSG).await.map_err(|e| stream_ended(&self.conn, e))
    }

    /// Why the session ended (or is ending): the arbiter's decision, or, while it is still deciding, what
    /// the connection's close says.
    pub fn end_reason(&self) -> ViewerError {
        let decided = self.ended.borrow().clone();
        let closed = || self.conn.close_reason().map(|e| EndReason::from_close(EndSide::Viewer, &e));
        ViewerError::Ended(decided.or_else(closed).unwrap_or(EndReason::LocalClose))
    }

    /// Why the session ended, once it has.
    pub fn ended(&self) -> Option<EndReason> {
        self.ended.borrow().clone()
    }

    /// Whether the session has ended (or is ending).
    pub fn is_closed(&self) -> bool {
        self.ended.borrow().is_some() || self.conn.close_reason().is_some()
    }

    /// Wait until the session has ended, and say why.
    pub async fn closed(&self) -> ViewerError {
        let mut ended = self.ended.clone();
        let _ = ended.wait_for(Option::is_some).await;
        self.end_reason()
    }

    /// End the session politely: input is flushed first, so nothing sent is lost.
    pub async fn close(self) {
        self.leave().await;
    }

    /// [`Self::close`] for a session shared with other tasks (the window's).
    ///
    /// We finish the input stream, then say `Bye` on control; the host injects everything sent before
    /// the input's end, then closes the connection. We wait for that (a transport acknowledgement would
    /// only say the bytes arrived, not that they were injected), then close in any case.
    pub async fn leave(&self) {
        self.leaving.cancel();
        {
            let mut input = self.input.lock().await;
            let _ = input.finish();
        }
        let _ = self.end_events.send(EndEvent::Local(EndReason::ViewerLeft));
        // The host closes within milliseconds; the limit is for a host that hangs (a gone one is noticed
        // by the relay watch sooner), generous so a busy host still gets to inject all of it. It decides
        // nothing about the end: that is already decided (we left); it only bounds the wait for the host.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), self.conn.closed()).await;
        self.conn.close(CLOSE_NORMAL.into(), b"viewer left");
        // Let the goodbye leave before the caller may exit the process.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), self.endpoint.wait_idle()).await;
    }
}

impl Drop for ViewerSession {
    fn drop(&mut self) {
        self.conn.close(CLOSE_NORMAL.into(), b"viewer left");
    }
}

fn check_len(what: &'static str, text: &str, max: usize) -> Result<(), ViewerError> {
    if text.len() > max {
        return Err(ViewerError::TooLong { what, len: text.len(), max });
    }
    Ok(())
}

/// A control stream that failed during the handshake: the connection's reason if it closed; a message
/// that does not decode or is over its cap is the host breaking the protocol, not the session ending.
fn stream_ended(conn: &Connection, e: WireError) -> ViewerError {
    match (conn.close_reason(), e) {
        (Some(reason), _) => closed(&reason),
        (None, e @ (WireError::Malformed(_) | WireError::TooLarge { .. })) => protocol(conn, e.to_string()),
        (None, e) => ViewerError::Ended(EndReason::ConnectionLost(e.to_string())),
    }
}

/// The session could not open because the connection closed.
fn closed(reason: &quinn::ConnectionError) -> ViewerError {
    ViewerError::Ended(EndReason::from_close(EndSide::Viewer, reason))
}

fn protocol(conn: &Connection, why: String) -> ViewerError {
    conn.close(CLOSE_PROTOCOL.into(), b"protocol error");
    ViewerError::Protocol(why)
}
