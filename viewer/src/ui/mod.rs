//! The technician's window (eframe/egui): connect by code, then the live session ([`live`]).
//!
//! [`ViewerApp`] is the whole window's state; `show` draws it into any `Ui`, so the same code runs in the
//! real window and in headless UI tests (egui_kittest). Network work runs on a tokio runtime the app
//! owns; results come back through channels polled once per frame, so the UI thread never waits.

pub mod clipboard_sync;
pub mod code_field;
pub mod files_panel;
pub mod keys;
pub mod live;
pub mod notes;
pub mod people;
pub mod screen;
pub mod settings;
pub mod system_panel;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tether_shared::code::Code;
use tether_shared::net::{ClientError, RelaySpec, Timeouts};
use tether_shared::relay_proto::RelayErrorKind;
use tether_shared::session_proto::{Permissions, RefusalReason};
use tether_shared::tls::Fingerprint;
use tokio::sync::oneshot;

use crate::session::{ViewerConfig, ViewerError, ViewerSession};
use code_field::format_code_input;
use live::Live;
use settings::Settings;
use tether_shared::record::file::RecordFile;

/// What the connect form holds. Its `Debug` shows neither the code nor the token.
#[derive(Clone, Default)]
pub struct ConnectForm {
    pub relay: String,
    pub fingerprint: String,
    pub name: String,
    pub code: String,
    /// The technician's account token (never remembered).
    pub token: String,
    /// How the screen is shown at first (the toolbar switches).
    pub scale: Option<screen::Scale>,
}

impl std::fmt::Debug for ConnectForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |s: &String| if s.is_empty() { "" } else { "<redacted>" };
        f.debug_struct("ConnectForm")
            .field("relay", &self.relay)
            .field("fingerprint", &self.fingerprint)
            .field("name", &self.name)
            .field("code", &redacted(&self.code))
            .field("token", &redacted(&self.token))
            .field("scale", &self.scale)
            .finish()
    }
}

enum State {
    Connect { error: Option<(String, String)> },
    Connecting(oneshot::Receiver<Result<ViewerSession, (String, String)>>),
    Live(Box<Live>),
}

pub struct ViewerApp {
    rt: tokio::runtime::Runtime,
    state: State,
    pub form: ConnectForm,
    settings: Settings,
    settings_path: Option<PathBuf>,
    /// Why the last session ended, shown on the connect screen.
    ended: Option<String>,
    /// The last session's record, for *Save report* on the connect screen (filled again once the
    /// session has closed, so it holds the end the host sent), and what saving said.
    last_record: Arc<Mutex<Option<RecordFile>>>,
    report_saved: Option<String>,
    pub timeouts: Timeouts,
}

impl std::fmt::Debug for ViewerApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewerApp").field("form", &self.form).finish_non_exhaustive()
    }
}

/// A headline and a detail a technician can act on.
pub fn describe(e: &ViewerError) -> (String, String) {
    let detail = e.to_string();
    let headline = match e {
        ViewerError::Connect(ClientError::WrongCode) => "Wrong code",
        ViewerError::Connect(ClientError::Relay(RelayErrorKind::Expired)) => "The code has expired",
        ViewerError::Connect(ClientError::Relay(RelayErrorKind::UnknownCode)) => "No such code",
        ViewerError::Connect(ClientError::Relay(RelayErrorKind::AlreadyUsed)) => "The code was already used",
        ViewerError::Connect(ClientError::Relay(RelayErrorKind::WrongCode)) => "Wrong code",
        ViewerError::Connect(ClientError::Relay(RelayErrorKind::VersionMismatch { .. })) => {
            "Version mismatch"
        }
        ViewerError::Connect(ClientError::Relay(_)) => "The relay refused",
        ViewerError::Connect(ClientError::RelayCertificateChanged { .. }) => {
            "The relay's certificate does not match the fingerprint"
        }
        ViewerError::Connect(ClientError::RelayCertificateUntrusted { .. }) => {
            "The relay's certificate is not trusted"
        }
        ViewerError::Connect(ClientError::RelayCertificateInvalid { .. }) => {
            "The relay's certificate is not valid"
        }
        ViewerError::Connect(ClientError::RelayAddress(_)) => "Check the relay address",
        ViewerError::Connect(ClientError::RelayUnreachable { .. } | ClientError::Io(_)) => {
            "Relay unreachable"
        }
        ViewerError::Connect(ClientError::Tls(_)) => "Fingerprint problem",
        ViewerError::Connect(ClientError::Timeout(_)) => "Timed out",
        ViewerError::Refused(RefusalReason::VersionMismatch { .. }) => "Version mismatch",
        ViewerError::Refused(RefusalReason::Declined) => "The user declined",
        _ => "Could not connect",
    };
    // "Wrong code" over "Wrong code: it does not match…" says it twice: the sentence goes on from the
    // headline instead.
    let detail = match detail.split_once(": ") {
        Some((start, rest)) if start.eq_ignore_ascii_case(headline) => capitalized(rest),
        _ => detail,
    };
    (headline.to_string(), detail)
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

impl ViewerApp {
    /// A window with the remembered settings, overridden by `form` fields that are set.
    pub fn new(prefill: ConnectForm) -> std::io::Result<Self> {
        Self::with_settings_file(prefill, Settings::path())
    }

    /// The same, remembering settings in `settings_path` (`None`: remember nothing).
    pub fn with_settings_file(prefill: ConnectForm, settings_path: Option<PathBuf>) -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let settings = Settings::load(settings_path.as_deref());
        let pick = |given: &str, remembered: &str| {
            if given.is_empty() {
                remembered.to_owned()
            } else {
                given.to_owned()
            }
        };
        let form = ConnectForm {
            relay: pick(&prefill.relay, &settings.relay),
            fingerprint: pick(&prefill.fingerprint, &settings.fingerprint),
            name: pick(&prefill.name, &settings.name),
            code: format_code_input(&prefill.code),
            token: prefill.token,
            scale: prefill.scale,
        };
        Ok(Self {
            rt,
            state: State::Connect { error: None },
            form,
            settings,
            settings_path,
            ended: None,
            last_record: Arc::default(),
            report_saved: None,
            timeouts: Timeouts::default(),
        })
    }

    /// Whether a session is live.
    pub fn is_live(&self) -> bool {
        matches!(self.state, State::Live(_))
    }

    /// The live session's view, if any (tests look inside).
    pub fn live(&mut self) -> Option<&mut Live> {
        match &mut self.state {
            State::Live(live) => Some(live),
            _ => None,
        }
    }

    /// The error on the connect screen, if any: headline and detail.
    pub fn error(&self) -> Option<&(String, String)> {
        match &self.state {
            State::Connect { error } => error.as_ref(),
            _ => None,
        }
    }

    /// Start connecting with what the form holds.
    pub fn connect(&mut self, ctx: &egui::Context) {
        let form = self.form.clone();
        let timeouts = self.timeouts;
        let (tx, rx) = oneshot::channel();
        let ctx = ctx.clone();
        self.rt.spawn(async move {
            let result = connect(form, timeouts).await;
            let _ = tx.send(result);
            ctx.request_repaint();
        });
        self.state = State::Connecting(rx);
    }

    /// Draw the window.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        // Move between states first, then draw the one we are in.
        match &mut self.state {
            State::Connecting(rx) => match rx.try_recv() {
                Ok(Ok(session)) => {
                    self.settings.relay = self.form.relay.trim().to_owned();
                    self.settings.fingerprint = self.form.fingerprint.trim().to_owned();
                    self.settings.name = self.form.name.trim().to_owned();
                    self.settings.save(self.settings_path.as_deref());
                    self.ended = None;
                    let mut live =
                        Live::new(session, self.rt.handle().clone(), &ctx, self.settings.downloads.clone());
                    if let Some(scale) = self.form.scale {
                        live.scale = scale;
                    }
                    self.state = State::Live(Box::new(live));
                }
                Ok(Err(error)) => self.state = State::Connect { error: Some(error) },
                Err(oneshot::error::TryRecvError::Empty) => {}
                Err(oneshot::error::TryRecvError::Closed) => {
                    self.state =
                        State::Connect { error: Some(("Could not connect".into(), "internal error".into())) }
                }
            },
            State::Live(live) => {
                if live.leaving || live.session.is_closed() {
                    let why = if live.leaving {
                        "You ended the session.".to_string()
                    } else {
                        match live.session.end_reason() {
                            // The reason alone: the window already says "Session ended".
                            ViewerError::Ended(reason) => reason.to_string(),
                            other => other.to_string(),
                        }
                    };
                    let session = live.session.clone();
                    *lock(&self.last_record) = Some(session.record_file());
                    self.report_saved = None;
                    self.settings.downloads = live.downloads.clone();
                    self.settings.save(self.settings_path.as_deref());
                    let (slot, ctx) = (self.last_record.clone(), ui.ctx().clone());
                    self.rt.spawn(async move {
                        session.leave().await;
                        *lock(&slot) = Some(session.record_file());
                        ctx.request_repaint();
                    });
                    self.ended = Some(why);
                    self.form.code.clear();
                    self.state = State::Connect { error: None };
                }
            }
            State::Connect { .. } => {}
        }
        match &mut self.state {
            State::Live(live) => live.ui(ui),
            _ => {
                egui::CentralPanel::default().show(ui, |ui| self.connect_screen(ui));
            }
        }
    }

    fn connect_screen(&mut self, ui: &mut egui::Ui) {
        let connecting = matches!(self.state, State::Connecting(_));
        ui.vertical_centered(|ui| {
            ui.add_space(40.0);
            ui.heading(egui::RichText::new("Tether").size(32.0).strong());
            ui.label("Connect to a computer that needs help");
            ui.add_space(20.0);
        });
        if let Some(why) = &self.ended {
            ui.vertical_centered(|ui| {
                ui.label(egui::RichText::new(format!("Session ended: {why}")).italics());
                let last = lock(&self.last_record);
                if let Some(record) = last.as_ref().filter(|r| !r.entries.is_empty()) {
                    let hint = "An HTML report for the ticket and the JSON record it comes from, in your downloads folder";
                    if ui.button("Save report").on_hover_text(hint).clicked() {
                        let json = std::path::Path::new(&self.settings.downloads).join(record.default_name());
                        let saved = std::fs::create_dir_all(&self.settings.downloads)
                            .and_then(|()| record.save(&json, "The technician's copy"));
                        self.report_saved = Some(match saved {
                            Ok(html) => format!("Report saved: {}", html.display()),
                            Err(e) => format!("The report was not saved: {e}"),
                        });
                    }
                }
                if let Some(said) = &self.report_saved {
                    ui.label(said);
                }
            });
            ui.add_space(8.0);
        }
        let mut submit = false;
        egui::Frame::group(ui.style()).inner_margin(16.0).show(ui, |ui| {
            egui::Grid::new("connect").num_columns(2).spacing([12.0, 10.0]).show(ui, |ui| {
                let label = ui.label("Code");
                let code = ui
                    .add(
                        egui::TextEdit::singleline(&mut self.form.code)
                            .hint_text("482-913-5071")
                            .font(egui::TextStyle::Monospace)
                            .desired_width(220.0),
                    )
                    .labelled_by(label.id);
                if code.changed() {
                    self.form.code = format_code_input(&self.form.code);
                }
                if code.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
                    submit = true;
                }
                ui.end_row();
                let label = ui.label("Your name");
                ui.add(
                    egui::TextEdit::singleline(&mut self.form.name)
                        .hint_text("shown to the user")
                        .desired_width(220.0),
                )
                .labelled_by(label.id);
                ui.end_row();
                let label = ui.label("Relay");
                ui.add(
                    egui::TextEdit::singleline(&mut self.form.relay)
                        .hint_text("relay.example.org:7700")
                        .desired_width(220.0),
                )
                .labelled_by(label.id);
                ui.end_row();
                let label = ui.label("Relay fingerprint");
                ui.add(
                    egui::TextEdit::singleline(&mut self.form.fingerprint)
                        .hint_text("from the relay's admin (optional with a CA certificate)")
                        .desired_width(220.0),
                )
                .labelled_by(label.id);
                ui.end_row();
                let label = ui.label("Account token");
                ui.add(
                    egui::TextEdit::singleline(&mut self.form.token)
                        .password(true)
                        .hint_text("if your relay requires one")
                        .desired_width(220.0),
                )
                .labelled_by(label.id);
                ui.end_row();
            });
            ui.add_space(8.0);
            ui.horizontal(|ui| {
                let ready =
                    !connecting && Code::parse(&self.form.code).is_ok() && !self.form.relay.trim().is_empty();
                if ui
                    .add_enabled(ready, egui::Button::new(egui::RichText::new("Connect").size(18.0)))
                    .clicked()
                {
                    submit = true;
                }
                if connecting {
                    ui.spinner();
                    ui.label("Connecting… the user is asked to allow you in.");
                }
            });
        });
        if let State::Connect { error: Some((headline, detail)) } = &self.state {
            ui.add_space(10.0);
            ui.colored_label(
                egui::Color32::from_rgb(190, 40, 40),
                egui::RichText::new(headline).strong().size(18.0),
            );
            ui.label(detail);
        }
        if submit && !connecting && Code::parse(&self.form.code).is_ok() {
            self.connect(ui.ctx());
        }
    }
}

/// Resolve, pair, open the session; errors as headline + detail.
async fn connect(form: ConnectForm, timeouts: Timeouts) -> Result<ViewerSession, (String, String)> {
    let code = Code::parse(&form.code).map_err(|e| ("That is not a code".to_string(), e.to_string()))?;
    let fingerprint = match form.fingerprint.trim() {
        "" => None,
        text => Some(
            text.parse::<Fingerprint>()
                .map_err(|e| ("The fingerprint is not valid".to_string(), e.to_string()))?,
        ),
    };
    let relay = RelaySpec::resolve(form.relay.trim(), fingerprint)
        .await
        .map_err(|e| ("Relay unreachable".to_string(), e.to_string()))?;
    let name =
        if form.name.trim().is_empty() { "technician".to_string() } else { form.name.trim().to_owned() };
    let token = Some(form.token.trim().to_owned()).filter(|t| !t.is_empty());
    let cfg = ViewerConfig {
        relay,
        timeouts,
        technician: name,
        want: Permissions { view: true, control: true, files: true },
        token,
    };
    ViewerSession::connect(&cfg, &code).await.map_err(|e| describe(&e))
}

impl eframe::App for ViewerApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }
}

/// Why the window did not run.
#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    #[error(
        "There is no display to open the window on (DISPLAY is not set). Start the viewer from your desktop's \
         menu, or use --headless with --code for the command line."
    )]
    NoDisplay,
    /// The window's network runtime could not start.
    #[error(transparent)]
    Runtime(#[from] std::io::Error),
    /// eframe could not create the window or its graphics context.
    #[error("could not open the window: {0}")]
    /// (Its text: `eframe::Error` is neither `Send` nor `Sync`, so it cannot travel in an error chain.)
    Open(String),
}

/// Open the window and run until it is closed.
pub fn run_window(prefill: ConnectForm, connect_now: bool) -> Result<(), WindowError> {
    if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
        return Err(WindowError::NoDisplay);
    }
    let mut app = ViewerApp::new(prefill)?;
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("Tether Viewer")
            .with_app_id("tether-viewer")
            .with_inner_size([1280.0, 800.0])
            .with_drag_and_drop(true),
        renderer: eframe::Renderer::Glow,
        ..Default::default()
    };
    eframe::run_native(
        "Tether Viewer",
        options,
        Box::new(move |cc| {
            if connect_now {
                app.connect(&cc.egui_ctx);
            }
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| WindowError::Open(e.to_string()))
}

/// The slot's value; a panic elsewhere while it was held leaves it as it was (it is only ever replaced).
fn lock<T>(slot: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
