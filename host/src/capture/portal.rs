//! The screen through the desktop portal (`org.freedesktop.portal.ScreenCast` and `.RemoteDesktop` over
//! D-Bus, with ashpd): the way GNOME and KDE on Wayland share the screen, and wlroots desktops too
//! through xdg-desktop-portal-wlr. The desktop asks the user which screen to share in a dialog of its
//! own; the pictures then come from PipeWire ([`super::pipewire`]).
//!
//! With control asked for, one RemoteDesktop session carries both the screen and the input (the user
//! is asked once for both); a portal that offers no RemoteDesktop (xdg-desktop-portal-wlr) shares the
//! screen alone, and the host says that control is not possible there.
//!
//! The portal lives on a thread of its own with its own small runtime: opening is a few D-Bus requests
//! and one answer from a person, and input afterwards goes to it over a channel, in order. Nothing hangs:
//! each request to the portal has [`ANSWER_WITHIN`] and the user's answer [`Options::choose_within`];
//! after that the host reports a clear error instead of waiting (RustDesk's stuck portal requests
//! stall new connections for minutes).
//!
//! When the user allows it (`--remember-screen-choice`), the session is persisted: the portal hands back
//! a restore token, kept in `$XDG_STATE_HOME/tether/portal-restore-token`, and the next session with it
//! starts without the dialog. Tether's own consent card still asks about every technician.

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::Duration;

use ashpd::desktop::remote_desktop::{Axis, DeviceType, KeyState, RemoteDesktop, SelectDevicesOptions};
use ashpd::desktop::screencast::{CursorMode, Screencast, SelectSourcesOptions, SourceType};
use ashpd::desktop::{PersistMode, ResponseError, Session};
use tokio::sync::mpsc;

use super::monitors::Monitor;
use super::pipewire::{self, Stop};
use super::stream::Stream;
use super::CaptureError;

/// How long a request the portal answers by itself may take.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(10);

fn failed(e: impl std::fmt::Display) -> CaptureError {
    CaptureError::Failed(format!("desktop portal: {e}"))
}

/// What to ask the portal for.
#[derive(Debug, Clone)]
pub struct Options {
    /// Ask for the keyboard and pointer too (RemoteDesktop), where the portal offers it.
    pub control: bool,
    /// Keep the user's choice for the next session (persist, with a restore token in `token_file`).
    pub remember: bool,
    /// Where the restore token is kept.
    pub token_file: Option<PathBuf>,
    /// How long the user has to answer the desktop's dialog.
    pub choose_within: Duration,
}

impl Options {
    /// Control if offered; the user's choice remembered or not; `choose_within` to answer the dialog.
    pub fn new(remember: bool, choose_within: Duration) -> Self {
        Self { control: true, remember, token_file: token_file(), choose_within }
    }
}

/// `$XDG_STATE_HOME/tether/portal-restore-token` (or under `~/.local/state`).
pub fn token_file() -> Option<PathBuf> {
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local").join("state")))?;
    Some(state.join("tether").join("portal-restore-token"))
}

/// One input event for the portal, already in its terms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Call {
    /// Move to (x, y) in the shared stream's pixels.
    Motion { x: f64, y: f64 },
    /// A button by its kernel code (`BTN_LEFT`…).
    Button { code: i32, pressed: bool },
    /// Wheel notches (positive: down, right).
    Wheel { vertical: bool, steps: i32 },
    /// A key by its X keysym.
    Keysym { keysym: i32, pressed: bool },
}

/// An open portal session: the screen's pictures, the monitor shared and the input channel.
#[derive(Debug)]
pub struct Portal {
    pub stream: Stream,
    /// The shared stream as a monitor (its size and place on the desktop, as the portal says).
    pub monitor: Monitor,
    /// Input for the desktop; `None` when the portal offers no control (or it was not granted).
    pub input: Option<Input>,
    /// Closes the session when dropped.
    pub session: PortalSession,
}

/// Where input for the portal goes.
#[derive(Debug, Clone)]
pub struct Input {
    calls: mpsc::UnboundedSender<Call>,
}

impl Input {
    /// Queue `call` for the portal (in order; an error is logged there, the session goes on).
    pub fn send(&self, call: Call) -> Result<(), CaptureError> {
        self.calls.send(call).map_err(|_| failed("the portal session has ended"))
    }
}

/// Keeps the portal session and its PipeWire stream open; dropping it ends both.
#[derive(Debug)]
pub struct PortalSession {
    _pipewire: Stop,
    _close: mpsc::UnboundedSender<Call>,
}

/// What negotiating with the portal gave.
struct Opened {
    fd: OwnedFd,
    node: u32,
    position: (i32, i32),
    size: (i32, i32),
    control: bool,
}

/// Open a portal session (asking the user, unless a remembered choice is restored) and start receiving
/// its screen.
pub fn open(options: Options) -> Result<Portal, CaptureError> {
    let (calls_tx, calls) = mpsc::unbounded_channel();
    let (ready_tx, ready) = std::sync::mpsc::channel();
    let budget = ANSWER_WITHIN * 4 + options.choose_within;
    std::thread::Builder::new()
        .name("tether-portal".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(e) => return drop(ready_tx.send(Err(failed(e)))),
            };
            runtime.block_on(serve(options, calls, ready_tx));
        })
        .map_err(failed)?;
    let opened = ready
        .recv_timeout(budget + ANSWER_WITHIN)
        .map_err(|_| failed("the portal thread did not answer"))??;
    let (stream, stop) = pipewire::receive(opened.fd, opened.node, opened.position)?;
    let monitor = Monitor {
        index: 0,
        name: "portal".into(),
        x: opened.position.0,
        y: opened.position.1,
        width: opened.size.0.max(0) as u32,
        height: opened.size.1.max(0) as u32,
        primary: true,
    };
    let input = opened.control.then(|| Input { calls: calls_tx.clone() });
    Ok(Portal { stream, monitor, input, session: PortalSession { _pipewire: stop, _close: calls_tx } })
}

/// The session's two possible kinds: screen and input in one, or the screen alone.
enum Kind {
    Remote(RemoteDesktop, Session<RemoteDesktop>),
    Cast(Session<Screencast>),
}

/// Negotiate, report, then carry input until every sender is gone; close the session.
async fn serve(
    options: Options,
    mut calls: mpsc::UnboundedReceiver<Call>,
    ready: std::sync::mpsc::Sender<Result<Opened, CaptureError>>,
) {
    let (kind, opened, node) = match negotiate(&options).await {
        Ok(done) => done,
        Err(e) => return drop(ready.send(Err(e))),
    };
    let _ = ready.send(Ok(opened));
    while let Some(call) = calls.recv().await {
        let Kind::Remote(remote, session) = &kind else { continue };
        let sent = tokio::time::timeout(ANSWER_WITHIN, perform(remote, session, node, call)).await;
        match sent {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("the desktop portal refused input ({call:?}): {e}"),
            Err(_) => tracing::warn!("the desktop portal did not take input within {ANSWER_WITHIN:?}"),
        }
    }
    let closed = match &kind {
        Kind::Remote(_, session) => session.close().await,
        Kind::Cast(session) => session.close().await,
    };
    if let Err(e) = closed {
        tracing::debug!("closing the portal session: {e}");
    }
}

async fn perform(
    remote: &RemoteDesktop,
    session: &Session<RemoteDesktop>,
    node: u32,
    call: Call,
) -> Result<(), ashpd::Error> {
    let state = |pressed| if pressed { KeyState::Pressed } else { KeyState::Released };
    match call {
        Call::Motion { x, y } => {
            remote.notify_pointer_motion_absolute(session, node, x, y, Default::default()).await
        }
        Call::Button { code, pressed } => {
            remote.notify_pointer_button(session, code, state(pressed), Default::default()).await
        }
        Call::Wheel { vertical, steps } => {
            let axis = if vertical { Axis::Vertical } else { Axis::Horizontal };
            remote.notify_pointer_axis_discrete(session, axis, steps, Default::default()).await
        }
        Call::Keysym { keysym, pressed } => {
            remote.notify_keyboard_keysym(session, keysym, state(pressed), Default::default()).await
        }
    }
}

/// A request the portal answers by itself, bounded by [`ANSWER_WITHIN`].
async fn quick<T>(
    what: &str,
    request: impl std::future::Future<Output = Result<T, ashpd::Error>>,
) -> Result<T, CaptureError> {
    match tokio::time::timeout(ANSWER_WITHIN, request).await {
        Ok(result) => result.map_err(|e| explain(what, e)),
        Err(_) => Err(failed(format!(
            "the desktop did not answer ({what}) within {} s; is xdg-desktop-portal running?",
            ANSWER_WITHIN.as_secs()
        ))),
    }
}

/// What went wrong, in words for the user.
fn explain(what: &str, e: ashpd::Error) -> CaptureError {
    match e {
        ashpd::Error::Response(ResponseError::Cancelled) => {
            CaptureError::Refused("it was declined in the desktop's dialog".into())
        }
        ashpd::Error::Response(ResponseError::Other) => failed(format!(
            "{what}: the desktop refused (its dialog was declined, or the portal failed: its log says which)"
        )),
        ashpd::Error::PortalNotFound(interface) => failed(format!(
            "this desktop offers no {interface}: install xdg-desktop-portal and the backend for the \
             desktop (xdg-desktop-portal-gnome, -kde or -wlr)"
        )),
        // D-Bus's ServiceUnknown: nothing on the bus provides the portal, and nothing can start it.
        other
            if ["ServiceUnknown", "not provided by any .service files"]
                .iter()
                .any(|sign| other.to_string().contains(sign)) =>
        {
            failed(
                "no desktop portal runs in this session: install xdg-desktop-portal and the backend for the \
             desktop (xdg-desktop-portal-gnome, -kde or -wlr), or share with --source x11 or wlroots",
            )
        }
        other => failed(format!("{what}: {other}")),
    }
}

/// A request the desktop may answer only once the user did (its dialog): it has `within`; silence
/// after that is the user's, and said so.
async fn ask<T>(
    what: &str,
    within: Duration,
    request: impl std::future::Future<Output = Result<T, ashpd::Error>>,
) -> Result<T, CaptureError> {
    match tokio::time::timeout(within, request).await {
        Ok(answer) => answer.map_err(|e| explain(what, e)),
        Err(_) => Err(CaptureError::Refused(format!(
            "nobody answered the desktop's dialog ({what}) within {} s. Start again and choose the \
             screen to share in the dialog",
            within.as_secs()
        ))),
    }
}

/// Ask the portal for a session; with the user's answer, what to stream.
async fn negotiate(options: &Options) -> Result<(Kind, Opened, u32), CaptureError> {
    let connection = match tokio::time::timeout(ANSWER_WITHIN, zbus::Connection::session()).await {
        Ok(Ok(connection)) => connection,
        Ok(Err(e)) => return Err(failed(format!("no D-Bus session bus to reach it through ({e})"))),
        Err(_) => {
            return Err(failed("the D-Bus session bus did not answer; the desktop session is not well"))
        }
    };
    let screencast = quick("ScreenCast", Screencast::with_connection(connection.clone())).await?;
    let remote = if options.control {
        match quick("RemoteDesktop", RemoteDesktop::with_connection(connection.clone())).await {
            Ok(remote) => Some(remote),
            Err(e) => {
                tracing::warn!("the screen can be shared but not controlled here: {e}");
                None
            }
        }
    } else {
        None
    };
    let cursor = match quick("cursor modes", screencast.available_cursor_modes()).await {
        Ok(modes) if modes.contains(CursorMode::Embedded) => CursorMode::Embedded,
        _ => CursorMode::Hidden,
    };
    let restore = options.remember.then(|| read_token(options)).flatten();
    // Made afresh for each request (every request carries a new handle token).
    let sources = || {
        SelectSourcesOptions::default()
            .set_cursor_mode(cursor)
            .set_sources(ashpd::enumflags2::BitFlags::from(SourceType::Monitor))
            .set_multiple(false)
    };
    let started = match remote {
        Some(remote) => match remote_session(remote, &screencast, options, sources(), &restore).await {
            // The user's no (or silence) is final; a failing remote-control backend is not: share the
            // screen alone (e.g. a wlroots desktop where GNOME's portal answers for RemoteDesktop).
            Err(refused @ CaptureError::Refused(_)) => return Err(refused),
            Err(e) => {
                tracing::warn!(
                    "remote control through the desktop portal failed ({e}); sharing the screen alone"
                );
                None
            }
            Ok(started) => Some(started),
        },
        None => None,
    };
    let (kind, streams, token, control) = match started {
        Some(started) => started,
        None => cast_session(&screencast, options, sources(), &restore).await?,
    };
    if options.remember {
        if let Some(token) = token {
            write_token(options, &token);
        }
    }
    let stream = streams.first().ok_or_else(|| failed("the desktop shared no screen"))?;
    let fd = match &kind {
        Kind::Remote(_, session) => {
            quick("opening PipeWire", screencast.open_pipe_wire_remote(session, Default::default())).await?
        }
        Kind::Cast(session) => {
            quick("opening PipeWire", screencast.open_pipe_wire_remote(session, Default::default())).await?
        }
    };
    let node = stream.pipe_wire_node_id();
    let opened = Opened {
        fd,
        node,
        position: stream.position().unwrap_or_default(),
        size: stream.size().unwrap_or_default(),
        control,
    };
    Ok((kind, opened, node))
}

/// What a started session gave: its kind, the streams, the restore token and whether input is allowed.
type Started = (Kind, Vec<ashpd::desktop::screencast::Stream>, Option<String>, bool);

fn persist_mode(options: &Options) -> PersistMode {
    if options.remember {
        PersistMode::ExplicitlyRevoked
    } else {
        PersistMode::DoNot
    }
}

/// A RemoteDesktop session with the screen in it: one dialog for both.
async fn remote_session(
    remote: RemoteDesktop,
    screencast: &Screencast,
    options: &Options,
    sources: SelectSourcesOptions,
    restore: &Option<String>,
) -> Result<Started, CaptureError> {
    let session = quick("creating a session", remote.create_session(Default::default())).await?;
    let devices = SelectDevicesOptions::default()
        .set_devices(DeviceType::Keyboard | DeviceType::Pointer)
        .set_persist_mode(persist_mode(options))
        .set_restore_token(restore.as_deref());
    // A backend may show its dialog at any of these (xdg-desktop-portal-wlr: choosing the screen;
    // GNOME: starting): each has the user's time to answer.
    let within = options.choose_within;
    ask("choosing devices", within, async { remote.select_devices(&session, devices).await?.response() })
        .await?;
    // With RemoteDesktop the persistence goes with the devices, not the sources.
    ask("choosing the screen", within, async {
        screencast.select_sources(&session, sources).await?.response()
    })
    .await?;
    let started = ask("screen and control", within, async {
        remote.start(&session, None, Default::default()).await?.response()
    })
    .await?;
    let control =
        started.devices().contains(DeviceType::Pointer) || started.devices().contains(DeviceType::Keyboard);
    let (streams, token) = (started.streams().to_vec(), started.restore_token().map(String::from));
    Ok((Kind::Remote(remote, session), streams, token, control))
}

/// A ScreenCast session: the screen alone.
async fn cast_session(
    screencast: &Screencast,
    options: &Options,
    sources: SelectSourcesOptions,
    restore: &Option<String>,
) -> Result<Started, CaptureError> {
    let session = quick("creating a session", screencast.create_session(Default::default())).await?;
    let sources = sources.set_persist_mode(persist_mode(options)).set_restore_token(restore.as_deref());
    let within = options.choose_within;
    ask("choosing the screen", within, async {
        screencast.select_sources(&session, sources).await?.response()
    })
    .await?;
    let started = ask("screen", within, async {
        screencast.start(&session, None, Default::default()).await?.response()
    })
    .await?;
    let (streams, token) = (started.streams().to_vec(), started.restore_token().map(String::from));
    Ok((Kind::Cast(session), streams, token, false))
}

/// The remembered restore token, if any.
fn read_token(options: &Options) -> Option<String> {
    let path = options.token_file.as_ref()?;
    let token = std::fs::read_to_string(path).ok()?;
    let token = token.trim();
    (!token.is_empty()).then(|| token.to_owned())
}

/// Keep the portal's restore token for the next session (private to the user: it lets Tether share the
/// screen without asking).
fn write_token(options: &Options, token: &str) {
    let Some(path) = options.token_file.as_ref() else { return };
    let written = path.parent().map_or(Ok(()), std::fs::create_dir_all).and_then(|()| {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file =
            std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
        file.write_all(token.as_bytes())
    });
    if let Err(e) = written {
        tracing::warn!("could not remember the screen choice in {}: {e}", path.display());
    }
}
