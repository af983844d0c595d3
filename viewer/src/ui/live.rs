//! A live session in the window: toolbar, remote screen, side panel (chat, files, system, stats) and a
//! status line. Network calls run on the app's tokio runtime; what they bring back arrives through the
//! session's watch channels and notices, read once per frame.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tether_shared::codec::Quality;
use tether_shared::human;
use tether_shared::input::InputEvent;
use tether_shared::link::ScreenQuality;
use tether_shared::record::EventKind;
use tether_shared::session_proto::Permissions;
use tokio::sync::{broadcast, mpsc};

use super::clipboard_sync::ClipboardSync;
use super::files_panel::FilesPanel;
use super::keys;
use super::notes::NotesPanel;
use super::people::{self, PeopleAction};
use super::screen::{Scale, Screen};
use super::system_panel::{SystemAction, SystemPanel};
use crate::session::{HostNotice, ViewerSession};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Panel {
    Chat,
    Files,
    System,
    Stats,
    People,
    Notes,
}

/// A line in the chat, from either side or from Tether itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatLine {
    Me(String),
    Host(String),
    /// Another technician in the session.
    Colleague {
        from: String,
        text: String,
    },
    Notice(String),
}

/// Frames and bytes over the last second, for the stats.
#[derive(Debug)]
struct Rates {
    since: Instant,
    frames_then: u64,
    bytes_then: u64,
    fps: f64,
    /// Bits per second received.
    bits: f64,
}

pub struct Live {
    pub session: Arc<ViewerSession>,
    rt: tokio::runtime::Handle,
    pub screen: Screen,
    pub scale: Scale,
    pub panel: Option<Panel>,
    pub chat: Vec<ChatLine>,
    pub chat_input: String,
    pub files: FilesPanel,
    notices: broadcast::Receiver<HostNotice>,
    input: mpsc::UnboundedSender<InputEvent>,
    clipboard: Option<ClipboardSync>,
    pub clipboard_on: bool,
    /// The quality the technician chose (`None`: the host's own setting).
    pub quality: Option<ScreenQuality>,
    frames_seen: u64,
    last_seq: Option<u64>,
    rates: Rates,
    pub downloads: String,
    /// Set when the technician pressed "End session".
    pub leaving: bool,
    pub unread_chat: usize,
    /// The user's session log before we joined, when they shared it.
    pub history: Vec<String>,
    /// An invite was asked for and no news of it came yet.
    inviting: bool,
    /// Who was in the session at the last look (id, name), to say who joined and who left; `roster`
    /// tells when to look again (the host's list changes rarely, frames often).
    present: Vec<(u64, String)>,
    roster: tokio::sync::watch::Receiver<tether_shared::session_proto::Roster>,
    pub notes: NotesPanel,
    pub system_view: SystemPanel,
    system: tokio::sync::watch::Receiver<Option<tether_shared::inventory::SystemInfo>>,
    system_digest: Option<[u8; 32]>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").field("screen", &self.screen).finish_non_exhaustive()
    }
}

impl Live {
    pub fn new(
        session: ViewerSession,
        rt: tokio::runtime::Handle,
        ctx: &egui::Context,
        downloads: String,
    ) -> Self {
        let session = Arc::new(session);
        // Repaint when something arrives, so the window is idle when the screen is.
        let (s, c) = (session.clone(), ctx.clone());
        rt.spawn(async move {
            let (mut frames, mut cursor, mut grants) = (s.frames(), s.cursor(), s.grants());
            let (mut monitors, mut system) = (s.monitors(), s.system_info());
            let mut reconnecting = s.reconnecting();
            let (mut participants, mut invite) = (s.participants(), s.invite_news());
            loop {
                tokio::select! {
                    r = frames.changed() => if r.is_err() { break },
                    r = cursor.changed() => if r.is_err() { break },
                    r = grants.changed() => if r.is_err() { break },
                    r = monitors.changed() => if r.is_err() { break },
                    r = system.changed() => if r.is_err() { break },
                    r = reconnecting.changed() => if r.is_err() { break },
                    r = participants.changed() => if r.is_err() { break },
                    r = invite.changed() => if r.is_err() { break },
                    _ = s.closed() => break,
                }
                c.request_repaint();
            }
            // A watch closes when its stream's task ends, which can come before the session has its
            // reason: wake the window once it has one, so the end shows without waiting for a mouse move.
            let _ = s.closed().await;
            c.request_repaint();
        });
        let notices = session.notices();
        let c = ctx.clone();
        let mut repaint_on_notice = session.notices();
        rt.spawn(async move {
            while !matches!(repaint_on_notice.recv().await, Err(broadcast::error::RecvError::Closed)) {
                c.request_repaint();
            }
        });
        // Input goes out in order, from one task.
        let (input, mut events) = mpsc::unbounded_channel::<InputEvent>();
        let s = session.clone();
        rt.spawn(async move {
            while let Some(event) = events.recv().await {
                if s.send_input(event).await.is_err() {
                    break;
                }
            }
        });
        let roster = session.participants();
        let system = session.system_info();
        Self {
            session,
            rt,
            screen: Screen::default(),
            scale: Scale::Fit,
            panel: None,
            chat: Vec::new(),
            chat_input: String::new(),
            files: FilesPanel::default(),
            notices,
            input,
            clipboard: None,
            clipboard_on: false,
            quality: None,
            frames_seen: 0,
            last_seq: None,
            rates: Rates { since: Instant::now(), frames_then: 0, bytes_then: 0, fps: 0.0, bits: 0.0 },
            downloads,
            leaving: false,
            unread_chat: 0,
            history: Vec::new(),
            inviting: false,
            present: Vec::new(),
            roster,
            notes: NotesPanel::default(),
            system_view: SystemPanel::default(),
            system,
            system_digest: None,
        }
    }

    pub fn grants(&self) -> Permissions {
        *self.session.grants().borrow()
    }

    /// Run a request on the runtime; a failure lands in the chat as a notice.
    fn request<F>(&mut self, what: &'static str, f: impl FnOnce(Arc<ViewerSession>) -> F)
    where
        F: std::future::Future<Output = Result<(), crate::session::ViewerError>> + Send + 'static,
    {
        let fut = f(self.session.clone());
        self.rt.spawn(async move {
            if let Err(e) = fut.await {
                tracing::info!("{what}: {e}");
            }
        });
    }

    pub fn send_chat(&mut self) {
        let text = self.chat_input.trim().to_owned();
        if text.is_empty() {
            return;
        }
        if text.len() > tether_shared::session_proto::MAX_CHAT_TEXT {
            self.chat.push(ChatLine::Notice("That message is too long; split it up.".into()));
            return;
        }
        self.chat_input.clear();
        self.chat.push(ChatLine::Me(text.clone()));
        self.request("chat", move |s| async move { s.chat(&text).await });
    }

    fn send_events(&self, events: Vec<InputEvent>) {
        for event in events {
            let _ = self.input.send(event);
        }
    }

    /// Say in the chat who joined and who left since the last look (not ourselves, not the first list).
    fn note_comings_and_goings(&mut self) {
        if !self.roster.has_changed().unwrap_or(false) {
            return;
        }
        let roster = self.roster.borrow_and_update().clone();
        let now: Vec<(u64, String)> = roster.members.iter().map(|m| (m.id, m.name.clone())).collect();
        if now == self.present {
            return;
        }
        if !self.present.is_empty() {
            for member in roster.members.iter().filter(|m| !self.present.iter().any(|(id, _)| *id == m.id)) {
                let by =
                    member.invited_by.as_ref().map(|by| format!(", invited by {by}")).unwrap_or_default();
                self.chat.push(ChatLine::Notice(format!("{} joined the session{by}.", member.name)));
            }
            for (id, name) in &self.present {
                if *id != roster.you && !now.iter().any(|(other, _)| other == id) {
                    self.chat.push(ChatLine::Notice(format!("{name} left the session; you continue.")));
                }
            }
        }
        self.present = now;
    }

    /// Read what arrived since the last frame: notices, frames.
    fn poll(&mut self, ctx: &egui::Context) {
        self.note_comings_and_goings();
        loop {
            match self.notices.try_recv() {
                Ok(HostNotice::Chat(text)) => {
                    self.chat.push(ChatLine::Host(text));
                    if self.panel != Some(Panel::Chat) {
                        self.unread_chat += 1;
                    }
                }
                Ok(HostNotice::Clipboard(text)) => {
                    if let Some(sync) = &self.clipboard {
                        sync.from_host(text);
                    }
                }
                Ok(HostNotice::Declined(asked)) => {
                    self.chat.push(ChatLine::Notice(format!("The user declined your request ({asked}).")))
                }
                Ok(HostNotice::Notice(text)) => self.chat.push(ChatLine::Notice(text)),
                Ok(HostNotice::ColleagueChat { from, text }) => {
                    self.chat.push(ChatLine::Colleague { from, text });
                    if self.panel != Some(Panel::Chat) {
                        self.unread_chat += 1;
                    }
                }
                Ok(HostNotice::History(history)) => {
                    if !history.chat.is_empty() {
                        self.chat.push(ChatLine::Notice("The chat before you joined:".into()));
                        for line in history.chat {
                            self.chat.push(ChatLine::Colleague { from: line.from, text: line.text });
                        }
                        self.chat.push(ChatLine::Notice("You joined here.".into()));
                    }
                    self.history = history.log;
                }
                Err(broadcast::error::TryRecvError::Lagged(n)) => {
                    self.chat.push(ChatLine::Notice(format!("{n} messages were missed")))
                }
                Err(_) => break,
            }
        }
        let shown = self.session.frames().borrow().clone();
        if let Some(shown) = shown {
            if self.last_seq != Some(shown.info.seq) {
                self.last_seq = Some(shown.info.seq);
                self.frames_seen += 1;
            }
            self.screen.update(ctx, &shown);
        }
        let elapsed = self.rates.since.elapsed();
        if elapsed >= Duration::from_secs(1) {
            let bytes = self.session.link_stats().bytes_received;
            let secs = elapsed.as_secs_f64();
            self.rates.fps = (self.frames_seen - self.rates.frames_then) as f64 / secs;
            self.rates.bits = (bytes - self.rates.bytes_then.min(bytes)) as f64 * 8.0 / secs;
            self.rates = Rates {
                since: Instant::now(),
                frames_then: self.frames_seen,
                bytes_then: bytes,
                ..self.rates
            };
        }
        // Keep the stats ticking while the panel shows them.
        if self.panel == Some(Panel::Stats) {
            ctx.request_repaint_after(Duration::from_millis(500));
        }
    }

    /// Draw the whole session view.
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        self.poll(&ctx);
        let dropped: Vec<_> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        });
        if !dropped.is_empty() {
            if self.grants().files {
                let files = self.session.files();
                for path in dropped {
                    self.files.upload(&files, &self.rt, path);
                }
                self.panel = Some(Panel::Files);
            } else {
                self.chat.push(ChatLine::Notice(
                    "Dropped files not sent: the user has not allowed file transfer.".into(),
                ));
            }
        }
        egui::Panel::top("toolbar").show(ui, |ui| self.toolbar(ui));
        if *self.session.reconnecting().borrow() {
            egui::Panel::top("reconnecting").show(ui, |ui| {
                ui.label(
                    egui::RichText::new(
                        "Connection interrupted. Reconnecting… The session and transfers continue when it is back.",
                    )
                    .strong()
                    .color(egui::Color32::from_rgb(230, 140, 20)),
                );
            });
        }
        egui::Panel::bottom("status").show(ui, |ui| self.status(ui));
        if let Some(panel) = self.panel {
            egui::Panel::right("side").default_size(340.0).show(ui, |ui| match panel {
                Panel::Chat => self.chat_panel(ui),
                Panel::Files => {
                    let files = self.session.files();
                    let allowed = self.grants().files;
                    let mut downloads = std::mem::take(&mut self.downloads);
                    egui::ScrollArea::vertical()
                        .show(ui, |ui| self.files.show(ui, &files, &self.rt, &mut downloads, allowed));
                    self.downloads = downloads;
                }
                Panel::System => self.system_panel(ui),
                Panel::Stats => self.stats_panel(ui),
                Panel::People => self.people_panel(ui),
                Panel::Notes => {
                    let save = egui::ScrollArea::vertical().show(ui, |ui| self.notes.show(ui)).inner;
                    if let Some(notes) = save {
                        self.request("notes", move |s| async move { s.save_notes(notes).await });
                    }
                }
            });
        }
        egui::CentralPanel::default().frame(egui::Frame::NONE.fill(egui::Color32::from_gray(30))).show(
            ui,
            |ui| {
                let cursor = self.session.cursor().borrow().clone();
                let control = self.grants().control;
                let events = self.screen.show(ui, self.scale, &cursor, control);
                self.send_events(events);
            },
        );
    }

    fn toolbar(&mut self, ui: &mut egui::Ui) {
        let grants = self.grants();
        ui.horizontal_wrapped(|ui| {
            if grants.control {
                if ui
                    .button("View only")
                    .on_hover_text("Give up control; the user keeps their mouse")
                    .clicked()
                {
                    let want = Permissions { control: false, ..grants };
                    self.request("view only", move |s| async move { s.request_permissions(want).await });
                }
            } else if ui
                .button("Request control")
                .on_hover_text("Ask the user for mouse and keyboard")
                .clicked()
            {
                let want = Permissions { view: true, control: true, ..grants };
                self.chat.push(ChatLine::Notice("Asked the user for control…".into()));
                self.request("request control", move |s| async move { s.request_permissions(want).await });
            }
            if !grants.files && ui.button("Request files").clicked() {
                let want = Permissions { files: true, ..grants };
                self.chat.push(ChatLine::Notice("Asked the user for file transfer…".into()));
                self.request("request files", move |s| async move { s.request_permissions(want).await });
            }
            ui.separator();
            self.monitor_choice(ui);
            self.quality_choice(ui);
            ui.selectable_value(&mut self.scale, Scale::Fit, "Fit")
                .on_hover_text("Scale the screen to the window");
            ui.selectable_value(&mut self.scale, Scale::OneToOne, "1:1")
                .on_hover_text("One host pixel per screen pixel");
            ui.separator();
            ui.add_enabled_ui(grants.control, |ui| {
                if ui.button("Ctrl+Alt+Del").clicked() {
                    self.send_events(keys::ctrl_alt_del());
                }
                if ui.button("Super").clicked() {
                    self.send_events(keys::super_tap());
                }
                let mut on = self.clipboard_on;
                if ui.checkbox(&mut on, "Clipboard sync").changed() {
                    self.set_clipboard_sync(on);
                }
            });
            ui.separator();
            let chat_label =
                if self.unread_chat > 0 { format!("Chat ({})", self.unread_chat) } else { "Chat".into() };
            let people = self.session.participants().borrow().members.len().max(1);
            let people_label = format!("People ({people})");
            for (panel, label) in [
                (Panel::Chat, chat_label.as_str()),
                (Panel::People, people_label.as_str()),
                (Panel::Notes, "Notes"),
                (Panel::Files, "Files"),
                (Panel::System, "System"),
                (Panel::Stats, "Stats"),
            ] {
                let on = self.panel == Some(panel);
                if ui.selectable_label(on, label).clicked() {
                    self.panel = if on { None } else { Some(panel) };
                    if panel == Panel::Chat {
                        self.unread_chat = 0;
                    }
                    if panel == Panel::System && !on {
                        self.request("system info", |s| async move { s.request_system_info().await });
                    }
                }
            }
            ui.separator();
            let end = egui::Button::new(egui::RichText::new("End session").color(egui::Color32::WHITE))
                .fill(egui::Color32::from_rgb(180, 40, 40));
            if ui.add(end).clicked() {
                self.leaving = true;
            }
        });
    }

    fn monitor_choice(&mut self, ui: &mut egui::Ui) {
        let monitors = self.session.monitors().borrow().clone();
        if monitors.list.len() < 2 {
            return;
        }
        let current =
            monitors.list.get(monitors.current as usize).map_or("?".to_string(), |m| m.name.clone());
        let mut chosen = monitors.current;
        egui::ComboBox::from_id_salt("monitor").selected_text(format!("Monitor: {current}")).show_ui(
            ui,
            |ui| {
                for (i, m) in monitors.list.iter().enumerate() {
                    ui.selectable_value(
                        &mut chosen,
                        i as u32,
                        format!("{} ({}×{})", m.name, m.width, m.height),
                    );
                }
            },
        );
        if chosen != monitors.current {
            self.request("monitor", move |s| async move { s.select_monitor(chosen).await });
        }
    }

    fn quality_choice(&mut self, ui: &mut egui::Ui) {
        let name = |q: ScreenQuality| match q {
            ScreenQuality::Auto => "Auto".to_string(),
            ScreenQuality::Fixed(Quality::Lossless) => "Lossless".to_string(),
            ScreenQuality::Fixed(Quality::Balanced { jpeg_quality: 80 }) => "Balanced".to_string(),
            ScreenQuality::Fixed(Quality::Balanced { jpeg_quality: 50 }) => "Low bandwidth".to_string(),
            ScreenQuality::Fixed(Quality::Balanced { jpeg_quality }) => format!("Photos at {jpeg_quality}"),
        };
        let mut chosen = self.quality;
        egui::ComboBox::from_id_salt("quality")
            .selected_text(chosen.map_or("Quality: host's setting".to_string(), name))
            .show_ui(ui, |ui| {
                let fixed = [Quality::Lossless, Quality::default(), Quality::Balanced { jpeg_quality: 50 }];
                for q in std::iter::once(ScreenQuality::Auto).chain(fixed.map(ScreenQuality::Fixed)) {
                    ui.selectable_value(&mut chosen, Some(q), name(q));
                }
            })
            .response
            .on_hover_text(
                "Text is always sharp; this sets how photos and video are sent. \
                 Auto lowers their quality when the host's line cannot carry them.",
            );
        if let Some(q) = chosen.filter(|_| chosen != self.quality) {
            self.quality = chosen;
            self.request("quality", move |s| async move { s.set_quality(q).await });
        }
    }

    fn set_clipboard_sync(&mut self, on: bool) {
        if on {
            match ClipboardSync::start(self.session.clone(), self.rt.clone()) {
                Ok(sync) => {
                    self.clipboard = Some(sync);
                    self.clipboard_on = true;
                }
                Err(e) => self.chat.push(ChatLine::Notice(format!("No clipboard sync: {e}"))),
            }
        } else {
            self.clipboard = None;
            self.clipboard_on = false;
        }
        let on = self.clipboard_on;
        self.request("clipboard", move |s| async move { s.watch_clipboard(on).await });
    }

    fn status(&mut self, ui: &mut egui::Ui) {
        let grants = self.grants();
        ui.horizontal(|ui| {
            let [w, h] = self.screen.size();
            ui.label(format!("Host screen {w}×{h}"));
            ui.separator();
            ui.label(format!("Allowed: {grants}"));
            let roster = self.session.participants().borrow().clone();
            if roster.members.len() > 1 {
                ui.separator();
                match roster.control.and_then(|id| roster.member(id)) {
                    _ if roster.you_control() => ui.label("You have control"),
                    Some(holder) => ui.label(format!("{} has control (People: ask for it)", holder.name)),
                    None => ui.label("Nobody has control"),
                };
            }
            // Someone else drives: our mouse and keys would be dropped, so no typing hint.
            let other_drives = roster.control.is_some() && !roster.you_control();
            ui.separator();
            let rtt = self.session.link_stats().rtt;
            ui.label(format!(
                "{:.0} ms · {:.0} fps · {}",
                rtt.as_secs_f64() * 1000.0,
                self.rates.fps,
                human::bits_per_second(self.rates.bits)
            ));
            if grants.control && !other_drives {
                ui.separator();
                if self.screen.keyboard_captured {
                    ui.colored_label(egui::Color32::from_rgb(200, 120, 0), "Keyboard goes to the host");
                    if ui.button("Release keyboard").clicked() {
                        self.screen.release_keyboard(ui.ctx());
                    }
                } else {
                    ui.label("Click the screen to type on the host");
                }
            }
            let active = self.files.active();
            if active > 0 {
                ui.separator();
                ui.label(if active == 1 {
                    "1 transfer running".to_owned()
                } else {
                    format!("{active} transfers running")
                });
            }
        });
    }

    fn chat_panel(&mut self, ui: &mut egui::Ui) {
        ui.heading("Chat with the user");
        let bottom = 36.0;
        egui::ScrollArea::vertical().max_height(ui.available_height() - bottom).stick_to_bottom(true).show(
            ui,
            |ui| {
                for line in &self.chat {
                    match line {
                        ChatLine::Me(t) => ui.label(egui::RichText::new(format!("You: {t}")).strong()),
                        ChatLine::Host(t) => ui.label(format!("User: {t}")),
                        ChatLine::Colleague { from, text } => ui.label(format!("{from}: {text}")),
                        ChatLine::Notice(t) => ui.label(egui::RichText::new(t).italics().weak()),
                    };
                }
            },
        );
        ui.horizontal(|ui| {
            let edit = ui.add(
                egui::TextEdit::singleline(&mut self.chat_input).hint_text("Message").desired_width(240.0),
            );
            let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            if ui.button("Send").clicked() || enter {
                self.send_chat();
                edit.request_focus();
            }
        });
    }

    fn people_panel(&mut self, ui: &mut egui::Ui) {
        let roster = self.session.participants().borrow().clone();
        let invite = self.session.invite_news().borrow().clone();
        if self.inviting && self.session.invite_news().has_changed().unwrap_or(true) {
            self.inviting = false;
        }
        let action = egui::ScrollArea::vertical()
            .show(ui, |ui| people::show(ui, &roster, invite.as_ref(), self.inviting, &self.history))
            .inner;
        match action {
            Some(PeopleAction::RequestControl) => {
                self.request("request control", |s| async move { s.request_control().await })
            }
            Some(PeopleAction::HandOver(to)) => {
                self.request("hand over", move |s| async move { s.hand_over_control(to).await })
            }
            Some(PeopleAction::Invite) => {
                self.inviting = true;
                // Seen as "no news yet" until the host answers.
                self.session.invite_news().mark_unchanged();
                self.request("invite", |s| async move { s.invite().await })
            }
            Some(PeopleAction::Withdraw) => {
                self.request("withdraw invite", |s| async move { s.withdraw_invite().await })
            }
            None => {}
        }
    }

    fn system_panel(&mut self, ui: &mut egui::Ui) {
        // The inventory can be large: borrowed, never cloned per frame; its digest is worked out once.
        if self.system.has_changed().unwrap_or(false) {
            self.system.mark_unchanged();
            self.system_digest = self.system.borrow().as_ref().map(tether_shared::inventory::digest);
        }
        let kept = self.system_digest.is_some_and(|digest| {
            self.session
                .session_record()
                .iter()
                .any(|e| matches!(&e.event.kind, EventKind::Inventory { digest: d, .. } if *d == digest))
        });
        let system = self.system.clone();
        let action = self.system_view.show(ui, system.borrow().as_ref(), kept);
        match action {
            Some(SystemAction::Refresh) => {
                self.request("system info", |s| async move { s.request_system_info().await })
            }
            Some(SystemAction::Keep) => {
                self.request("keep inventory", |s| async move { s.include_inventory().await })
            }
            None => {}
        }
    }

    fn stats_panel(&mut self, ui: &mut egui::Ui) {
        ui.heading("Session");
        let link = self.session.link_stats();
        let ms = |ms: u32| format!("{ms} ms");
        let measuring = || "measuring…".to_string();
        let host = link.host.unwrap_or_default();
        egui::Grid::new("stats").num_columns(2).striped(true).show(ui, |ui| {
            let rows = [
                ("Round trip", format!("{:.1} ms", link.rtt.as_secs_f64() * 1000.0)),
                (
                    "Path round trip",
                    match link.host.and_then(|h| h.path_rtt_ms) {
                        Some(0) => "< 1 ms".to_string(),
                        Some(n) => ms(n),
                        None => measuring(),
                    },
                ),
                ("Queueing delay", link.host.map_or_else(measuring, |h| ms(h.queue_ms))),
                (
                    "Host's upload",
                    host.bandwidth_bps.map_or_else(measuring, |b| human::bits_per_second(b as f64)),
                ),
                ("Host sends at", link.host.map_or_else(measuring, |h| h.action_text())),
                ("Screen updates", format!("{:.0} per second", self.rates.fps)),
                ("Receiving", human::bits_per_second(self.rates.bits)),
                ("Received in all", human::bytes(link.bytes_received)),
                ("Sent in all", human::bytes(link.bytes_sent)),
                (
                    "Texture uploads",
                    format!("{} partial, {} full", self.screen.partial_uploads, self.screen.full_uploads),
                ),
            ];
            for (k, v) in rows {
                ui.label(k);
                ui.label(v);
                ui.end_row();
            }
        });
    }
}
