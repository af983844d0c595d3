//! The real feed of the window: each [`Share::start`] runs [`crate::run_host`] on the tokio runtime, with
//! the window asking for consent (access and uploads), and wakes the window whenever something arrives.
//!
//! eframe owns the main thread; the runtime's worker threads do the network. When the window closes the
//! app cancels the attempt, and [`run_window`] gives the session a moment to say goodbye to the viewer
//! before the process exits.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use eframe::egui;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::app::{Attempt, HostApp, Share};
use super::clock::Clock;
use crate::access::AccessPolicy;
use crate::capture::Source;
use crate::files::UploadPolicy;
use crate::transfers::Transfers;
use crate::{run_host, HostConfig, Sources};
use tether_shared::session_proto::Permissions;

/// Starts [`run_host`] attempts for the window.
pub struct Launcher {
    runtime: tokio::runtime::Handle,
    cfg: HostConfig,
    source: Source,
    ctx: egui::Context,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Launcher {
    /// `cfg` is the template for every attempt; its access and upload policies are replaced by questions
    /// to the window.
    pub fn new(runtime: tokio::runtime::Handle, cfg: HostConfig, source: Source, ctx: egui::Context) -> Self {
        Self { runtime, cfg, source, ctx, tasks: Arc::default() }
    }
}

impl Share for Launcher {
    fn start(&mut self) -> Attempt {
        let _guard = self.runtime.enter();
        let (events_in, events) = waking_unbounded(&self.ctx, announce);
        let (access_in, access) = waking_bounded(&self.ctx);
        let (uploads_in, uploads) = waking_bounded(&self.ctx);
        let (done_tx, done) = oneshot::channel();
        let mut cfg = self.cfg.clone();
        cfg.access = AccessPolicy::Ask(access_in);
        cfg.uploads = UploadPolicy::Ask(uploads_in);
        let transfers = Transfers::default();
        cfg.transfers = transfers.clone();
        cfg.new_code = Arc::new(Notify::new());
        let new_code = cfg.new_code.clone();
        let stop = CancellationToken::new();
        let source = self.source;
        let ctx = self.ctx.clone();
        let task_stop = stop.clone();
        let task = tokio::spawn(async move {
            let result = match Sources::open(source) {
                Ok(sources) => run_host(cfg, sources, events_in, task_stop).await,
                Err(e) => Err(e),
            };
            if let Err(e) = &result {
                tracing::warn!("sharing ended: {e}");
            }
            let _ = done_tx.send(result);
            ctx.request_repaint();
        });
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.retain(|t| !t.is_finished());
            tasks.push(task);
        }
        Attempt { events, access, uploads, done, new_code, stop, transfers }
    }
}

/// The window prints the same machine-readable stdout lines as headless mode for the moments a script
/// needs (`code`, `connected`, `invite`), so demos and tests can drive a real window.
fn announce(event: &crate::HostEvent) {
    match event {
        crate::HostEvent::Code { code, .. } => println!("code {code}"),
        crate::HostEvent::Invite {
            news: tether_shared::session_proto::InviteNews::Code { code, .. },
            ..
        } => {
            println!("invite {code}")
        }
        crate::HostEvent::Session(
            _,
            tether_shared::record::SessionEvent {
                kind: tether_shared::record::EventKind::Connected { technician, .. },
                ..
            },
        ) => println!("connected {technician}"),
        _ => {}
    }
}

/// An unbounded channel whose messages wake the window; `tap` sees each message first.
fn waking_unbounded<T: Send + 'static>(
    ctx: &egui::Context,
    tap: fn(&T),
) -> (mpsc::UnboundedSender<T>, mpsc::UnboundedReceiver<T>) {
    let (tx, mut inner) = mpsc::unbounded_channel();
    let (out, rx) = mpsc::unbounded_channel();
    let ctx = ctx.clone();
    tokio::spawn(async move {
        while let Some(msg) = inner.recv().await {
            tap(&msg);
            if out.send(msg).is_err() {
                break;
            }
            ctx.request_repaint();
        }
    });
    (tx, rx)
}

/// A small bounded channel (questions) whose messages wake the window.
fn waking_bounded<T: Send + 'static>(ctx: &egui::Context) -> (mpsc::Sender<T>, mpsc::Receiver<T>) {
    let (tx, mut inner) = mpsc::channel(4);
    let (out, rx) = mpsc::channel(4);
    let ctx = ctx.clone();
    tokio::spawn(async move {
        while let Some(msg) = inner.recv().await {
            if out.send(msg).await.is_err() {
                break;
            }
            ctx.request_repaint();
        }
    });
    (tx, rx)
}

/// Why the window did not run.
#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    #[error(
        "There is no display to open the window on (DISPLAY is not set). Start Tether from your desktop's \
         menu, or use --headless to share from a terminal."
    )]
    NoDisplay,
    /// eframe could not create the window or its graphics context (no display, no GL…).
    #[error("the window could not open: {0}")]
    /// (Its text: `eframe::Error` is neither `Send` nor `Sync`, so it cannot travel in an error chain.)
    Open(String),
}

/// What the window shows besides the session: where received files go, the help desk's name, what the
/// first question ticks.
#[derive(Debug, Clone, Default)]
pub struct WindowSettings {
    pub incoming: String,
    pub organization: Option<String>,
    pub ticked: Option<Permissions>,
}

/// Whether there is a display (X11 or Wayland) to open a window on.
pub fn has_display() -> bool {
    std::env::var_os("DISPLAY").is_some_and(|d| !d.is_empty())
        || std::env::var_os("WAYLAND_DISPLAY").is_some_and(|d| !d.is_empty())
}

/// Open the host window and share until the user quits. `incoming` names the folder uploads go to.
pub fn run_window(
    runtime: tokio::runtime::Runtime,
    cfg: HostConfig,
    source: Source,
    look: WindowSettings,
) -> Result<(), WindowError> {
    if !has_display() {
        return Err(WindowError::NoDisplay);
    }
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("Tether — share your screen")
            .with_app_id("tether-host")
            .with_inner_size([760.0, 700.0])
            .with_min_inner_size([560.0, 460.0]),
        ..Default::default()
    };
    let tasks: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
    let handle = runtime.handle().clone();
    let app_tasks = tasks.clone();
    eframe::run_native(
        "tether-host",
        options,
        Box::new(move |cc| {
            let mut launcher = Launcher::new(handle, cfg, source, cc.egui_ctx.clone());
            launcher.tasks = app_tasks;
            let app = HostApp::new_styled(&cc.egui_ctx, Box::new(launcher), Clock::local(), look.incoming)
                .with_help_desk(look.organization, look.ticked);
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| WindowError::Open(e.to_string()))?;
    // The app cancelled its attempt on exit; let the session tell the viewer goodbye.
    let pending: Vec<_> = tasks.lock().map(|mut t| t.drain(..).collect()).unwrap_or_default();
    runtime.block_on(async {
        for task in pending {
            let _ = tokio::time::timeout(Duration::from_secs(3), task).await;
        }
    });
    Ok(())
}
