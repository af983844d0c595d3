//! A live session on the viewer side. Network work runs in background tasks; callers (the CLI, tests, the
//! GUI later) read the latest complete frame from a `watch` channel and send input through a handle.
//!
//! Streams, one task per family: **control** (we open it: hello, welcome, then our frame acks),
//! **video** (the host opens it: frame updates → [`Decoder`]), **input** (we open it: events in order).

use std::sync::Arc;

use quinn::{Connection, SendStream};
use tether_shared::code::Code;
use tether_shared::net::pairing::{connect_viewer, Session, CLOSE_NORMAL, CLOSE_PROTOCOL};
use tether_shared::net::{ClientError, RelaySpec, Timeouts};
use tether_shared::session_proto::{CursorShape, HostToViewer, Permissions, RefusalReason, ViewerToHost};
use tether_shared::wire::{self, WireError, MAX_CONTROL_MSG, MAX_VIDEO_MSG};
use tether_shared::{input::InputEvent, PROTOCOL_VERSION};
use tokio::sync::{mpsc, watch, Mutex};

use crate::decode::{Decoder, FrameInfo};
use crate::files::FileClient;
use tether_shared::frame::Frame;

#[derive(Debug, Clone)]
pub struct ViewerConfig {
    pub relay: RelaySpec,
    pub timeouts: Timeouts,
    /// The technician's name as typed (the host shows it as unverified).
    pub technician: String,
    pub want: Permissions,
    /// The technician's account token, for relays that verify technicians.
    pub token: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ViewerError {
    #[error("{0}")]
    Connect(#[from] ClientError),
    #[error("the host refused the session: {0}")]
    Refused(RefusalReason),
    #[error("the host broke the protocol: {0}")]
    Protocol(String),
    #[error("the session ended: {0}")]
    Ended(String),
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
    ended: watch::Receiver<Option<String>>,
    cursor: watch::Receiver<CursorState>,
    grants: watch::Receiver<Permissions>,
    files: FileClient,
    endpoint: quinn::Endpoint,
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
        let endpoint = session.link.endpoint().clone();
        let (ended_tx, ended) = watch::channel(None);
        let on_gone = ended_tx.clone();
        Session::spawn_relay_watch(session.link, session.conn, session.resume_id, move |why| {
            on_gone.send_replace(Some(why.unwrap_or_else(|| HOST_GONE.to_string())));
        });
        let (mut ctl_send, mut ctl_recv) =
            conn.open_bi().await.map_err(|e| ViewerError::Ended(e.to_string()))?;
        let hello = ViewerToHost::Hello {
            version: PROTOCOL_VERSION,
            technician: cfg.technician.clone(),
            want: cfg.want,
        };
        wire::write_msg(&mut ctl_send, &hello, MAX_CONTROL_MSG).await.map_err(|e| stream_ended(&conn, e))?;
        let granted =
            match wire::read_msg(&mut ctl_recv, MAX_CONTROL_MSG).await.map_err(|e| stream_ended(&conn, e))? {
                Some(HostToViewer::Welcome { granted, .. }) => granted,
                Some(HostToViewer::Refused { reason }) => return Err(ViewerError::Refused(reason)),
                other => return Err(protocol(&conn, format!("expected Welcome, got {other:?}"))),
            };
        let input = conn.open_uni().await.map_err(|e| ViewerError::Ended(e.to_string()))?;
        let (frames_tx, frames) = watch::channel(None);
        let (acks_tx, acks_rx) = mpsc::channel(8);
        tokio::spawn(control_task(conn.clone(), ctl_send, acks_rx));
        let (cursor_tx, cursor) = watch::channel(CursorState::default());
        let (grants_tx, grants) = watch::channel(granted);
        tokio::spawn(control_reader(conn.clone(), ctl_recv, cursor_tx, grants_tx, ended_tx.clone()));
        tokio::spawn(video_task(conn.clone(), frames_tx, acks_tx, ended_tx));
        let files = FileClient::new(conn.clone());
        Ok(Self { conn, granted, frames, input: Mutex::new(input), ended, cursor, grants, files, endpoint })
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
                changed = frames.changed() => if changed.is_err() { return Err(self.end_reason()) },
                _ = ended.changed() => return Err(self.end_reason()),
            }
        }
    }

    /// Send one input event; events arrive in order.
    pub async fn send_input(&self, event: InputEvent) -> Result<(), ViewerError> {
        let mut input = self.input.lock().await;
        wire::write_msg(&mut *input, &ViewerToHost::Input(event), MAX_CONTROL_MSG)
            .await
            .map_err(|e| stream_ended(&self.conn, e))
    }

    /// Why the session ended (or is ending).
    pub fn end_reason(&self) -> ViewerError {
        let recorded = self.ended.borrow().clone();
        match (recorded, self.conn.close_reason()) {
            (Some(why), _) => ViewerError::Ended(why),
            (None, Some(reason)) => ViewerError::Ended(reason.to_string()),
            (None, None) => ViewerError::Ended("the session ended".into()),
        }
    }

    /// Wait until the session has ended, and say why.
    pub async fn closed(&self) -> ViewerError {
        let reason = self.conn.closed().await;
        ViewerError::Ended(self.ended.borrow().clone().unwrap_or_else(|| reason.to_string()))
    }

    /// End the session politely: input is flushed first, so nothing sent is lost.
    pub async fn close(self) {
        {
            let mut input = self.input.lock().await;
            let _ = input.finish();
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), input.stopped()).await;
        }
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

const HOST_GONE: &str = "the host's connection to the relay ended (it vanished or lost its network)";

fn stream_ended(conn: &Connection, e: WireError) -> ViewerError {
    match conn.close_reason() {
        Some(reason) => ViewerError::Ended(reason.to_string()),
        None => ViewerError::Ended(e.to_string()),
    }
}

fn protocol(conn: &Connection, why: String) -> ViewerError {
    conn.close(CLOSE_PROTOCOL.into(), b"protocol error");
    ViewerError::Protocol(why)
}

async fn control_task(conn: Connection, mut send: SendStream, mut acks: mpsc::Receiver<u64>) {
    while let Some(seq) = acks.recv().await {
        if wire::write_msg(&mut send, &ViewerToHost::FrameAck { seq }, MAX_CONTROL_MSG).await.is_err() {
            break;
        }
    }
    let _ = send.finish();
    drop(conn);
}

/// Messages from the host on the control stream after `Welcome`: cursor, permissions, goodbye.
async fn control_reader(
    conn: Connection,
    mut recv: quinn::RecvStream,
    cursor: watch::Sender<CursorState>,
    grants: watch::Sender<Permissions>,
    ended: watch::Sender<Option<String>>,
) {
    loop {
        let msg = match wire::read_msg::<_, HostToViewer>(&mut recv, MAX_CONTROL_MSG).await {
            Ok(Some(msg)) => msg,
            Ok(None) | Err(WireError::Io(_)) => return,
            Err(e) => {
                protocol(&conn, e.to_string());
                return;
            }
        };
        match msg {
            HostToViewer::CursorShape(shape) if shape.is_valid() => {
                cursor.send_modify(|c| c.shape = Some(Arc::new(shape)));
            }
            HostToViewer::CursorPosition { x, y, visible } => cursor.send_modify(|c| {
                c.position = Some((x, y));
                c.visible = visible;
            }),
            HostToViewer::PermissionsChanged(now) => {
                grants.send_replace(now);
            }
            HostToViewer::Bye { reason } => {
                ended.send_replace(Some(format!("the host ended the session: {reason}")));
                return;
            }
            other => {
                let why = protocol(&conn, format!("unexpected {other:?} on control"));
                ended.send_replace(Some(why.to_string()));
                return;
            }
        }
    }
}

async fn video_task(
    conn: Connection,
    frames: watch::Sender<Option<Shown>>,
    acks: mpsc::Sender<u64>,
    ended: watch::Sender<Option<String>>,
) {
    let why: Result<(), String> = async {
        let mut recv = conn.accept_uni().await.map_err(|e| e.to_string())?;
        let mut decoder = Decoder::new();
        loop {
            let msg = match wire::read_msg::<_, HostToViewer>(&mut recv, MAX_VIDEO_MSG).await {
                Ok(Some(msg)) => msg,
                Ok(None) => return Err("the host ended the session".to_string()),
                Err(WireError::Io(e)) => {
                    return Err(conn.close_reason().map_or(e.to_string(), |r| r.to_string()))
                }
                Err(e) => return Err(protocol(&conn, e.to_string()).to_string()),
            };
            let HostToViewer::Frame(update) = msg else {
                return Err(protocol(&conn, format!("unexpected {msg:?} on video")).to_string());
            };
            match decoder.apply(&update) {
                Ok(Some(info)) => {
                    if let Some(frame) = decoder.frame() {
                        frames.send_replace(Some(Shown { info, frame: Arc::new(frame.clone()) }));
                    }
                    if acks.send(info.seq).await.is_err() {
                        return Err("session closed".to_string());
                    }
                }
                Ok(None) => {}
                Err(e) => return Err(protocol(&conn, e.to_string()).to_string()),
            }
        }
    }
    .await;
    if let Err(why) = why {
        // Keep a reason recorded earlier (the relay's notice): it explains more than a broken stream.
        ended.send_if_modified(|old| {
            if old.is_none() {
                *old = Some(why);
            }
            old.is_some()
        });
    }
}
