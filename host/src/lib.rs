//! The Tether host: registers with the relay, shows a one-time code, pairs with a technician's viewer and
//! shares its screen over the end-to-end connection.
//!
//! The data path reads left to right: [`capture`] → [`encode`] → [`session`] (video out, input in) →
//! [`inject`]. [`run_host`] is the whole host, used by the CLI and the tests alike.

pub mod capture;
pub mod encode;
pub mod files;
pub mod inject;
pub mod session;

use std::sync::Arc;
use std::time::Duration;

use tether_shared::code::Code;
use tether_shared::codec::Quality;
use tether_shared::net::pairing::{HostOutcome, HostRendezvous, Restart, Session};
use tether_shared::net::{ClientError, RelaySpec, Timeouts};
use tether_shared::relay_proto::VerifiedTechnician;
use tether_shared::session_proto::Permissions;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use capture::cursor::{self, CursorEvent};
use capture::monitors;
use capture::{CaptureError, CaptureHandle, Source};
use files::{FileEvent, FilesConfig};
use inject::record::RecordingSink;
use inject::x11::EnigoSink;
use inject::{InjectError, InputSink};
use session::{SessionConfig, SessionError, SessionReport};

/// Where a session's screen comes from and where its input goes.
pub struct Sources {
    pub capture: CaptureHandle,
    /// Cursor shape and position, when the source has a cursor of its own.
    pub cursor: Option<mpsc::Receiver<CursorEvent>>,
    /// Poked when the screen changed, so capture need not wait for the next frame tick.
    pub changed: Option<Arc<Notify>>,
    pub sink: Box<dyn InputSink>,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources").field("cursor", &self.cursor.is_some()).finish_non_exhaustive()
    }
}

impl Sources {
    /// The real thing for `source`: X11 capture, cursor and enigo injection on `$DISPLAY`; or the test
    /// pattern with a sink that prints what it receives.
    pub fn open(source: Source) -> Result<Self, HostError> {
        let capture = CaptureHandle::spawn(move || capture::open(source))?;
        match source {
            Source::TestPattern { .. } => {
                Ok(Self { capture, cursor: None, changed: None, sink: Box::new(RecordingSink::echoing()) })
            }
            Source::X11 { monitor } => {
                let monitor = monitors::list(None)?
                    .into_iter()
                    .nth(monitor)
                    .ok_or(CaptureError::Failed(format!("no monitor {monitor}")))?;
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
                Ok(Self { capture, cursor, changed, sink })
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct HostConfig {
    pub relay: RelaySpec,
    pub timeouts: Timeouts,
    pub session: SessionConfig,
}

impl HostConfig {
    pub fn new(relay: RelaySpec, allowed: Permissions) -> Self {
        Self {
            relay,
            timeouts: Timeouts::default(),
            session: SessionConfig {
                allowed,
                max_fps: 30,
                quality: Quality::default(),
                files: FilesConfig::default(),
                hello_timeout: Duration::from_secs(10),
            },
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
    /// A technician connected: their name (as typed, unverified), the account the relay verified (`None`:
    /// the name is all there is, show it as unverified), what they asked for, what was granted.
    Connected {
        technician: String,
        verified: Option<VerifiedTechnician>,
        asked: Permissions,
        granted: Permissions,
    },
    /// Files moved (or failed to): for the user's session log.
    File(FileEvent),
}

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("stopped before a technician connected")]
    Stopped,
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error(transparent)]
    Inject(#[from] InjectError),
}

/// Run the host: codes until a viewer pairs, then one session until it ends.
pub async fn run_host(
    cfg: HostConfig,
    sources: Sources,
    events: mpsc::UnboundedSender<HostEvent>,
    stop: CancellationToken,
) -> Result<SessionReport, HostError> {
    let session = tokio::select! {
        s = pair(&cfg, &events) => s?,
        _ = stop.cancelled() => return Err(HostError::Stopped),
    };
    let mut cfg = cfg;
    let (file_log, mut file_events) = mpsc::unbounded_channel();
    cfg.session.files.log = Some(file_log);
    let forward = events.clone();
    tokio::spawn(async move {
        while let Some(event) = file_events.recv().await {
            let _ = forward.send(HostEvent::File(event));
        }
    });
    let endpoint = session.link.endpoint().clone();
    let verified = session.technician.clone();
    let peer_gone = CancellationToken::new();
    let on_gone = peer_gone.clone();
    let watch =
        Session::spawn_relay_watch(session.link, session.conn.clone(), session.resume_id, move |_| {
            on_gone.cancel()
        });
    let report =
        session::run(session.conn, &cfg.session, sources, stop, peer_gone, |technician, asked, granted| {
            let technician = technician.to_owned();
            let _ = events.send(HostEvent::Connected { technician, verified, asked, granted });
        })
        .await;
    watch.abort();
    // Let the goodbye (CONNECTION_CLOSE) leave before the caller may exit the process.
    let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
    Ok(report?)
}

async fn pair(cfg: &HostConfig, events: &mpsc::UnboundedSender<HostEvent>) -> Result<Session, ClientError> {
    let mut rendezvous = HostRendezvous::connect(&cfg.relay, cfg.timeouts).await?;
    loop {
        let (code, expires_in) = rendezvous.register().await?;
        let _ = events.send(HostEvent::Code { code: code.clone(), expires_in });
        match rendezvous.wait_for_viewer(&code).await? {
            HostOutcome::Paired(session) => return Ok(session),
            HostOutcome::Restart(again, why) => {
                tracing::info!(?why, "making a new code");
                let _ = events.send(HostEvent::CodeReplaced(why));
                rendezvous = again;
            }
        }
    }
}
