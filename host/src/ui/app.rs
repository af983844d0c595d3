//! The window's state machine: which screen is up (code, question, sharing, ended), fed by the channels
//! of one sharing [`Attempt`] and answering back through them.
//!
//! Nothing here touches the network. [`HostApp::ui`] first drains the channels (host events, access and
//! upload questions, the session's end), then draws; every user action goes straight to the core's own
//! handles — `Notify` for a new code, `CancellationToken` to stop, [`SessionHandle`] for permissions and
//! chat, the questions' reply channels — so a test that feeds the channels sees real effects.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eframe::egui;
use tether_shared::record::describe::worth_a_notice;
use tether_shared::record::{EventKind, Narrator, SessionEvent, Side};
use tether_shared::session_proto::Permissions;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio_util::sync::CancellationToken;

use super::chat::{Chat, Line};
use super::clock::Clock;
use super::code::{self, CodeAction, ShownCode};
use super::consent::{self, AccessAnswer, AccessDialog, UploadDialog};
use super::ended::{self, EndAction, Outcome};
use super::log::SessionLog;
use super::{sharing, style};
use crate::access::AccessRequest;
use crate::controller::ParticipantId;
use crate::files::{ConsentRequest, Decision};
use crate::participants::Present;
use crate::session::SessionReport;
use crate::transfers::Transfers;
use crate::{HostError, HostEvent};
use tether_shared::human;
use tether_shared::record::file::RecordFile;

/// One try at sharing (codes until a technician connects, then one session): what the window hears and
/// the handles it acts through.
#[derive(Debug)]
pub struct Attempt {
    pub events: mpsc::UnboundedReceiver<HostEvent>,
    pub access: mpsc::Receiver<AccessRequest>,
    pub uploads: mpsc::Receiver<ConsentRequest>,
    /// The result of [`crate::run_host`].
    pub done: oneshot::Receiver<Result<SessionReport, HostError>>,
    pub new_code: Arc<Notify>,
    pub stop: CancellationToken,
    /// The attempt's running file transfers.
    pub transfers: Transfers,
}

/// Starts sharing: the first time, and again after "Share again".
pub trait Share {
    fn start(&mut self) -> Attempt;
}

/// Someone in the live session, as the last [`HostEvent::Participants`] listed them.
#[derive(Debug)]
struct Person {
    present: Present,
    /// Everything granted at some point: what the toggles may switch back on.
    ever: Permissions,
}

/// The host window.
pub struct HostApp {
    share: Box<dyn Share>,
    attempt: Attempt,
    /// Where accepted files are saved, as the user reads it.
    incoming: String,
    code: Option<ShownCode>,
    /// A new code was asked for or is coming.
    replacing: bool,
    /// Too many wrong codes in a row (how many): no code is offered until the user asks for one.
    stopped: Option<u32>,
    code_status: String,
    /// A technician connected and the session has not ended.
    connected: bool,
    /// Who is in the session now.
    people: Vec<Person>,
    /// The relay is out of reach and the session waits for it.
    reconnecting: bool,
    access: VecDeque<AccessDialog>,
    uploads: VecDeque<UploadDialog>,
    chat: Chat,
    /// File notices not yet dismissed.
    notices: Vec<String>,
    log: SessionLog,
    /// The session record's lines, in the words the headless host prints too: one narrator per
    /// participant, so each line names the right technician.
    narrators: HashMap<ParticipantId, Narrator>,
    ended: Option<Outcome>,
    /// The session record of the session that ended last, for *Save report*.
    last_record: Option<RecordFile>,
    stopping: bool,
    clipboard: Option<arboard::Clipboard>,
    styled: bool,
    /// The organization whose help desk this is (the settings file's `organization`), shown on the code card.
    organization: Option<String>,
    /// What the first question ticks of what a technician asks (the settings file's `permissions`).
    ticked: Option<Permissions>,
}

impl std::fmt::Debug for HostApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostApp")
            .field("people", &self.people)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl HostApp {
    /// Start sharing at once through `share`. `incoming` names the folder uploads are saved in.
    pub fn new(mut share: Box<dyn Share>, clock: Clock, incoming: impl Into<String>) -> Self {
        let attempt = share.start();
        let incoming = incoming.into();
        Self {
            share,
            attempt,
            narrators: HashMap::new(),
            incoming,
            code: None,
            replacing: false,
            stopped: None,
            code_status: String::new(),
            connected: false,
            people: Vec::new(),
            reconnecting: false,
            access: VecDeque::new(),
            uploads: VecDeque::new(),
            chat: Chat::default(),
            notices: Vec::new(),
            log: SessionLog::new(clock),
            ended: None,
            last_record: None,
            stopping: false,
            clipboard: None,
            styled: false,
            organization: None,
            ticked: None,
        }
    }

    /// Name the organization on the code card, and tick only `ticked` of what a technician asks at first
    /// (both from the settings file; the user still decides).
    pub fn with_help_desk(mut self, organization: Option<String>, ticked: Option<Permissions>) -> Self {
        self.organization = organization;
        self.ticked = ticked;
        self
    }

    /// Like [`Self::new`], with the window's style applied to `ctx` now, before the first frame (fonts
    /// set during a frame can leave text laid out with a fallback font).
    pub fn new_styled(
        ctx: &egui::Context,
        share: Box<dyn Share>,
        clock: Clock,
        incoming: impl Into<String>,
    ) -> Self {
        style::apply(ctx);
        let mut app = Self::new(share, clock, incoming);
        app.styled = true;
        app
    }

    /// The code on screen, if any (e.g. for a test to hand to a viewer).
    pub fn code_text(&self) -> Option<&str> {
        self.code.as_ref().filter(|_| !self.replacing).map(|c| c.text.as_str())
    }

    /// The session log so far.
    pub fn log(&self) -> &SessionLog {
        &self.log
    }

    /// Take in what the host said, then draw the window.
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        if !self.styled {
            style::apply(ui.ctx());
            self.styled = true;
        }
        self.poll();
        // The countdown ticks; events from the runtime also wake us (see `launch`).
        ui.ctx().request_repaint_after(Duration::from_millis(250));

        if self.connected && self.ended.is_none() {
            let with: Vec<_> = self.people.iter().map(|p| sharing::bar_entry(&p.present)).collect();
            if sharing::bar(ui, &with, self.stopping) {
                self.stop();
            }
        }
        egui::CentralPanel::default().show(ui, |ui| {
            egui::ScrollArea::vertical().auto_shrink([false, false]).show(ui, |ui| {
                ui.set_max_width(ui.available_width().min(760.0));
                self.body(ui);
            });
        });
    }

    fn body(&mut self, ui: &mut egui::Ui) {
        if let Some(outcome) = &self.ended {
            match ended::show(ui, outcome, self.last_record.is_some()) {
                EndAction::ShareAgain => self.share_again(),
                EndAction::Quit => ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close),
                EndAction::SaveReport => self.save_report(),
                EndAction::None => {}
            }
            self.log_section(ui, true);
            return;
        }
        if let Some(dialog) = self.uploads.front_mut() {
            if let Some(decision) = dialog.show(ui) {
                self.decide_upload(decision);
            }
            return;
        }
        if let Some(dialog) = self.access.front_mut() {
            if let Some(answer) = dialog.show(ui) {
                self.answer_access(answer);
            }
            return;
        }
        if self.connected {
            self.sharing_view(ui);
            return;
        }
        let action = match self.stopped {
            Some(times) => code::stopped(ui, times),
            None => code::show(
                ui,
                self.code.as_ref(),
                self.replacing,
                &self.code_status,
                self.organization.as_deref(),
            ),
        };
        match action {
            CodeAction::Copy => self.copy_code(),
            CodeAction::NewCode => self.new_code(),
            CodeAction::None => {}
        }
        if !self.log.entries().is_empty() {
            self.log_section(ui, false);
        }
    }

    fn sharing_view(&mut self, ui: &mut egui::Ui) {
        let mut dismissed = None;
        for (i, notice) in self.notices.iter().enumerate() {
            ui.horizontal_wrapped(|ui| {
                ui.label(egui::RichText::new(notice).strong());
                if ui.button("OK").clicked() {
                    dismissed = Some(i);
                }
            });
        }
        if let Some(i) = dismissed {
            self.notices.remove(i);
        }
        if self.reconnecting {
            ui.label(
                egui::RichText::new(
                    "The connection was interrupted. Reconnecting… Nothing is lost; Stop sharing ends the \
                     session.",
                )
                .strong()
                .color(style::CAUTION_ORANGE),
            );
        }
        let several = self.people.len() > 1;
        for person in &mut self.people {
            let present = &person.present;
            let name = present.short_name().to_owned();
            match sharing::person(ui, present, person.ever, several) {
                Some(sharing::PersonAction::Permissions(next)) => {
                    // Recorded by the handle; the log shows it with the next events.
                    present.handle.set_permissions(next);
                    person.ever = union(person.ever, next);
                }
                Some(sharing::PersonAction::GiveControl) => {
                    if let Err(e) = present.handle.give_control() {
                        self.notices.push(format!("Control was not given to {name}: {e}."));
                    } else {
                        self.log.add(format!("You gave control of mouse and keyboard to {name}."));
                    }
                }
                Some(sharing::PersonAction::Remove) => {
                    present.handle.remove();
                    self.log.add(format!("You removed {name} from the session."));
                }
                None => {}
            }
            ui.add_space(6.0);
        }
        let running = self.attempt.transfers.running();
        if !running.is_empty() {
            ui.separator();
            let who = match &self.people[..] {
                [one] => one.present.short_name().to_owned(),
                _ => "A technician".to_owned(),
            };
            if let Some(id) = sharing::transfers(ui, &who, &running) {
                self.attempt.transfers.stop(id);
            }
        }
        ui.separator();
        if let Some(text) = self.chat.show(ui, !self.stopping) {
            self.send_chat(text);
        }
        ui.separator();
        self.log_section(ui, true);
    }

    fn log_section(&mut self, ui: &mut egui::Ui, open: bool) {
        egui::CollapsingHeader::new(egui::RichText::new("Session log").strong())
            .default_open(open)
            .show(ui, |ui| self.log.show(ui, if self.ended.is_some() { f32::INFINITY } else { 220.0 }));
    }

    /// Drain every channel of the current attempt.
    fn poll(&mut self) {
        while let Ok(event) = self.attempt.events.try_recv() {
            self.on_event(event);
        }
        while let Ok(request) = self.attempt.access.try_recv() {
            // Someone invited is a new person; otherwise, once connected, it is a request for more.
            let mid_session = self.connected && request.invited_by.is_none();
            // Logged once answered: the card itself shows the question.
            let mut dialog = AccessDialog::new(request, mid_session);
            if let Some(ticked) = self.ticked.filter(|_| !dialog.mid_session) {
                dialog.choice = dialog.request.asked.intersect(ticked);
            }
            self.access.push_back(dialog);
        }
        while let Ok(request) = self.attempt.uploads.try_recv() {
            // Name the technician as the bar does (the request carries only the typed name).
            let who = self
                .people
                .iter()
                .find(|p| p.present.technician == request.technician)
                .map_or_else(|| request.technician.clone(), |p| p.present.short_name().to_owned());
            let folder = self.incoming.clone();
            self.uploads.push_back(UploadDialog { request, who, folder, arming: Default::default() });
        }
        // A technician who stopped sending (cancelled, or left) is no longer waiting for an answer.
        let log = &mut self.log;
        self.uploads.retain(|dialog| {
            let waiting = !dialog.request.reply.is_closed();
            if !waiting {
                let what = dialog.request.names.join(", ");
                log.add(format!("{} stopped sending {what} before you answered.", dialog.who));
            }
            waiting
        });
        match self.attempt.done.try_recv() {
            Ok(result) => self.finish(&result),
            Err(oneshot::error::TryRecvError::Empty) => {}
            Err(oneshot::error::TryRecvError::Closed) => {
                if self.ended.is_none() {
                    self.finish(&Err(HostError::Stopped));
                }
            }
        }
    }

    fn on_event(&mut self, event: HostEvent) {
        match event {
            HostEvent::Code { code, expires_in } => {
                self.code =
                    Some(ShownCode { text: code.to_string(), expires_at: Instant::now() + expires_in });
                self.replacing = false;
                self.code_status.clear();
            }
            HostEvent::CodeReplaced(why) => {
                self.replacing = true;
                self.log.add(why.explain());
            }
            HostEvent::TooManyWrongCodes(times) => {
                self.stopped = Some(times);
                self.code = None;
                self.log.add(format!(
                    "Someone entered a wrong code {times} times. No new code is offered until you ask for one."
                ));
            }
            HostEvent::CodeDelayed(wait) => {
                self.code_status =
                    format!("The relay is busy. Asking again in {} s…", wait.as_secs_f32().ceil());
            }
            HostEvent::Session(who, event) => self.on_record(who, event),
            // The participants list carries the same handle, and more.
            HostEvent::Live(_) => {}
            HostEvent::Invite { by, news } => {
                if let Some(line) = crate::invites::describe(&by, &news) {
                    self.log.add(line);
                }
            }
            HostEvent::Participants(now) => {
                let mut before: HashMap<_, _> =
                    self.people.drain(..).map(|p| (p.present.id, p.ever)).collect();
                self.people = now
                    .into_iter()
                    .map(|present| {
                        let ever = union(before.remove(&present.id).unwrap_or_default(), present.permissions);
                        Person { present, ever }
                    })
                    .collect();
            }
            HostEvent::Reconnecting => {
                self.log.add("The connection was interrupted. Reconnecting…");
                self.reconnecting = true;
            }
            HostEvent::Reconnected => {
                self.log.add("The connection is back.");
                self.reconnecting = false;
            }
        }
    }

    /// A session record event: its line in the log (unless a dialog or the end screen already said it in
    /// their own words), and what it changes on screen.
    fn on_record(&mut self, who: ParticipantId, event: SessionEvent) {
        let incoming = &self.incoming;
        let narrator = self.narrators.entry(who).or_insert_with(|| Narrator::with_incoming(incoming.clone()));
        let line = narrator.line(&event);
        let typed_name = narrator.typed_name().to_owned();
        match event.kind {
            EventKind::Connected { .. } => {
                self.log.add(line);
                self.connected = true;
                self.code = None;
            }
            // One of several leaves: the others carry on (the end screen says the end of the last one).
            EventKind::Ended { reason } => {
                let others: Vec<_> = self
                    .people
                    .iter()
                    .filter(|p| p.present.id != who)
                    .map(|p| p.present.short_name())
                    .collect();
                if !others.is_empty() && self.ended.is_none() {
                    let name = self.narrators.get(&who).map_or("A technician", |n| n.technician());
                    let verb = if others.len() == 1 { "continues" } else { "continue" };
                    self.log.add(format!("{name} left ({reason}); {} {verb}.", others.join(", ")));
                }
            }
            // Said by the dialogs ("… asks to", "You said no"), or not shown (clipboard), or said by the
            // window itself (the code, the people on the red bar, the reconnecting banner).
            EventKind::Requested { .. }
            | EventKind::RequestDeclined { .. }
            | EventKind::Clipboard { .. }
            | EventKind::CodeIssued { .. }
            | EventKind::ColleagueJoined { .. }
            | EventKind::ColleagueLeft { .. }
            | EventKind::ControlMoved { .. }
            | EventKind::Interrupted
            | EventKind::Resumed => {}
            EventKind::Transfer(transfer) => {
                self.log.add(line.clone());
                if worth_a_notice(&transfer) {
                    self.notices.push(line);
                }
            }
            EventKind::Chat { from: Side::Technician, text } => {
                self.log.add(line);
                self.chat.lines.push(Line { from: typed_name, text, mine: false });
            }
            EventKind::Chat { from: Side::Host, .. }
            | EventKind::MonitorSwitched { .. }
            | EventKind::ColleagueChat { .. }
            | EventKind::Notes(_)
            | EventKind::Inventory { .. } => self.log.add(line),
            EventKind::PermissionsChanged { now, .. } => {
                self.log.add(line);
                if let Some(person) = self.people.iter_mut().find(|p| p.present.id == who) {
                    person.ever = union(person.ever, now);
                }
            }
        }
    }

    fn answer_access(&mut self, answer: AccessAnswer) {
        let Some(dialog) = self.access.pop_front() else { return };
        let name = consent::display_name(&dialog.request.technician, dialog.request.verified.as_ref());
        // One line per event: an allowed request is logged by the session record's own line ("… connected.
        // They asked to: …. You allowed: …." or "… may now: …"), so only what it will not say is logged here.
        let asked = consent::describe(dialog.request.asked);
        match answer {
            AccessAnswer::Allow(choice) => {
                let granted = choice.intersect(dialog.request.asked);
                if granted == Permissions::default() && !dialog.mid_session {
                    self.log.add(format!(
                        "{name} asked to: {asked}. You allowed nothing, so they were turned away."
                    ));
                }
                dialog.request.answer_with(choice, dialog.share_history);
            }
            AccessAnswer::Deny => {
                self.log.add(format!("{name} asked to: {asked}. You said no."));
                dialog.request.deny();
            }
        }
    }

    fn decide_upload(&mut self, decision: Decision) {
        let Some(dialog) = self.uploads.pop_front() else { return };
        let (r, who) = (dialog.request, dialog.who);
        let what = format!("{} ({})", r.names.join(", "), human::bytes(r.bytes));
        self.log.add(match decision {
            Decision::AllowOnce => format!("You let {who} send you {what}."),
            Decision::AllowForSession => {
                format!("You let {who} send you {what}, and more files for the rest of this session.")
            }
            Decision::Deny => format!("You refused the files {who} wanted to send: {what}."),
        });
        let _ = r.reply.send(decision);
    }

    fn send_chat(&mut self, text: String) {
        // Any participant's handle sends to everyone.
        let Some(person) = self.people.first() else {
            self.chat.error = Some("Not sent: nobody is connected".into());
            self.chat.draft = text;
            return;
        };
        match person.present.handle.chat(&text) {
            Ok(()) => {
                // Recorded by the handle; the log shows it with the next events.
                self.chat.error = None;
                self.chat.lines.push(Line { from: "You".into(), text, mine: true });
            }
            Err(e) => {
                self.chat.error = Some(format!("Not sent: {e}"));
                self.chat.draft = text;
            }
        }
    }

    fn copy_code(&mut self) {
        let Some(code) = &self.code else { return };
        if self.clipboard.is_none() {
            self.clipboard = arboard::Clipboard::new().ok();
        }
        let copied = self.clipboard.as_mut().map(|c| c.set_text(code.text.clone()));
        self.code_status = match copied {
            Some(Ok(())) => "Copied. You can paste it into a message to your technician.".into(),
            Some(Err(_)) | None => "Could not copy here. Please read the code aloud instead.".into(),
        };
    }

    fn new_code(&mut self) {
        self.attempt.new_code.notify_one();
        self.replacing = true;
        self.stopped = None;
        self.code_status.clear();
    }

    /// Stop sharing (or stop waiting for a technician).
    fn stop(&mut self) {
        if !self.stopping {
            self.stopping = true;
            self.log.add("You stopped sharing.");
            self.attempt.stop.cancel();
        }
    }

    fn finish(&mut self, result: &Result<SessionReport, HostError>) {
        self.last_record = match result {
            Ok(report) if !report.record.is_empty() => Some(
                RecordFile::new(report.record_session, report.record.clone())
                    .with_inventories(&report.inventories),
            ),
            _ => None,
        };
        let outcome = Outcome::from_result(result);
        self.log.add(format!("Session over: {}", outcome.headline));
        self.ended = Some(outcome);
        self.connected = false;
        self.people.clear();
        self.reconnecting = false;
        self.code = None;
        // Unanswered questions die with the session (their askers are gone).
        self.access.clear();
        self.uploads.clear();
    }

    /// Save the last session's report (HTML, with the JSON record beside it) in the incoming folder.
    fn save_report(&mut self) {
        let Some(record) = &self.last_record else { return };
        let folder = std::path::Path::new(&self.incoming);
        let saved = std::fs::create_dir_all(folder)
            .and_then(|()| record.save(&folder.join(record.default_name()), "The user's copy"));
        self.log.add(match saved {
            Ok(html) => format!("Report saved: {}", html.display()),
            Err(e) => format!("The report was not saved: {e}"),
        });
    }

    fn share_again(&mut self) {
        self.attempt.stop.cancel();
        self.attempt = self.share.start();
        self.ended = None;
        self.stopping = false;
        self.replacing = false;
        self.stopped = None;
        self.chat = Chat::default();
        self.notices.clear();
        self.narrators.clear();
        self.log.add("Sharing again: waiting for a new code.");
    }
}

impl Drop for HostApp {
    /// Closing the window stops sharing.
    fn drop(&mut self) {
        self.attempt.stop.cancel();
    }
}

impl eframe::App for HostApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        HostApp::ui(self, ui);
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        self.attempt.stop.cancel();
    }
}

fn union(a: Permissions, b: Permissions) -> Permissions {
    Permissions { view: a.view || b.view, control: a.control || b.control, files: a.files || b.files }
}
