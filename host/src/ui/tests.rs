//! The window driven by egui_kittest, without a display or a network: the test plays the host's side of
//! the channels. Access questions go through the core's own [`access::ask`], the session handle is the
//! core's [`SessionHandle`] over its real permission watch and outgoing message queue, and the code,
//! stop and upload replies are the core's own `Notify`, `CancellationToken` and oneshot.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use eframe::egui;
use eframe::egui::accesskit::Role;
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use tether_shared::code::Code;
use tether_shared::relay_proto::VerifiedTechnician;
use tether_shared::session_proto::{HostControl, Permissions};
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio_util::sync::CancellationToken;

use super::app::{Attempt, HostApp, Share};
use super::clock::Clock;
use crate::access::{self, AccessRequest, Asker, SessionHandle};
use crate::controller::{Controller, ParticipantId};
use crate::files::{ConsentRequest, Decision};
use crate::inject::record::RecordingSink;
use crate::participants::{Entry, Presence, Roster};
use crate::session::SessionReport;
use crate::transfers::{Direction, Transfers};
use crate::Recorder;
use crate::{HostError, HostEvent};
use tether_shared::end::EndReason;
use tether_shared::record::{
    Direction as RecordDirection, EventKind, FileHash, FileRecord, Outcome, SessionEvent, Side, Transfer,
};

/// The host's ends of one attempt's channels.
struct Ends {
    events: mpsc::UnboundedSender<HostEvent>,
    access: mpsc::Sender<AccessRequest>,
    uploads: mpsc::Sender<ConsentRequest>,
    done: Option<oneshot::Sender<Result<SessionReport, HostError>>>,
    new_code: Arc<Notify>,
    stop: CancellationToken,
    /// The registry the real file handlers would fill.
    transfers: Transfers,
}

#[derive(Clone, Default)]
struct Feed(Arc<Mutex<Vec<Ends>>>);

impl Share for Feed {
    fn start(&mut self) -> Attempt {
        let (events_tx, events) = mpsc::unbounded_channel();
        let (access_tx, access) = mpsc::channel(4);
        let (uploads_tx, uploads) = mpsc::channel(4);
        let (done_tx, done) = oneshot::channel();
        let new_code = Arc::new(Notify::new());
        let stop = CancellationToken::new();
        let transfers = Transfers::default();
        self.0.lock().expect("feed").push(Ends {
            events: events_tx,
            access: access_tx,
            uploads: uploads_tx,
            done: Some(done_tx),
            new_code: new_code.clone(),
            stop: stop.clone(),
            transfers: transfers.clone(),
        });
        Attempt { events, access, uploads, done, new_code, stop, transfers }
    }
}

impl Feed {
    fn attempts(&self) -> usize {
        self.0.lock().expect("feed").len()
    }
    fn with<R>(&self, f: impl FnOnce(&mut Ends) -> R) -> R {
        let mut all = self.0.lock().expect("feed");
        f(all.last_mut().expect("an attempt"))
    }
    fn send(&self, event: HostEvent) {
        self.with(|e| e.events.send(event).expect("window listens"));
    }
}

struct Test {
    feed: Feed,
    harness: Harness<'static, HostApp>,
    rt: tokio::runtime::Runtime,
    /// The core's real roster (and controller, over a recording sink) the participants are listed in.
    roster: Roster,
    sink: RecordingSink,
    here: Vec<(Presence, CancellationToken)>,
}

fn setup() -> Test {
    setup_with(|app| app)
}

fn setup_with(configure: impl FnOnce(HostApp) -> HostApp) -> Test {
    setup_in("/home/user/Downloads/Tether", configure)
}

/// With received files (and saved reports) going to `incoming`.
fn setup_in(incoming: &str, configure: impl FnOnce(HostApp) -> HostApp) -> Test {
    let feed = Feed::default();
    let app = configure(HostApp::new(Box::new(feed.clone()), Clock::fixed(0), incoming));
    let harness = Harness::builder()
        .with_size(egui::vec2(800.0, 900.0))
        .build_ui_state(|ui, app: &mut HostApp| app.ui(ui), app);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("rt");
    let sink = RecordingSink::new();
    let roster = Roster::new(Controller::new(Box::new(sink.clone())));
    Test { feed, harness, rt, roster, sink, here: Vec::new() }
}

impl Test {
    /// Let the window take in what was sent and finish its animations.
    fn settle(&mut self) {
        self.harness.run_steps(3);
        let _ = self.harness.run_ok();
    }

    /// Step until something labelled `label` shows (it may come from another thread).
    fn wait_for(&mut self, label: &str) {
        for _ in 0..300 {
            self.harness.step();
            if self.shows(label) {
                self.settle();
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("{label:?} never showed");
    }

    /// Sam asks to send `names` (`files` files, `bytes` in all); the receiver gets the user's answer.
    fn ask_upload(&mut self, names: &[&str], files: usize, bytes: u64) -> oneshot::Receiver<Decision> {
        let (reply, decision) = oneshot::channel();
        let names = names.iter().map(|n| n.to_string()).collect();
        let request = ConsentRequest { technician: "Sam".into(), names, files, bytes, reply };
        self.feed.with(|e| e.uploads.try_send(request).expect("queue"));
        decision
    }

    fn shows(&self, label: &str) -> bool {
        self.harness.query_all_by_label_contains(label).next().is_some()
    }

    fn click(&mut self, label: &str) {
        self.harness.get_by_label(label).click();
        self.settle();
    }

    /// Sam connected with `granted`; returns the real handle and the viewer's side of its queue.
    fn connect(&mut self, granted: Permissions) -> (SessionHandle, mpsc::Receiver<HostControl>) {
        self.join(1, "Sam", granted, None)
    }

    /// Technician `id` (`name`) joined with `granted`, as the core lists them: a roster entry with a real
    /// handle, the record's Connected event and the participants list.
    fn join(
        &mut self,
        id: u64,
        name: &str,
        granted: Permissions,
        invited_by: Option<&str>,
    ) -> (SessionHandle, mpsc::Receiver<HostControl>) {
        let (out, to_viewer) = mpsc::channel(8);
        let events = self.feed.with(|e| e.events.clone());
        let removed = CancellationToken::new();
        let entry = Entry {
            id: ParticipantId(id),
            technician: name.into(),
            verified: None,
            invited_by: invited_by.map(Into::into),
            grants: Arc::new(watch::channel(granted).0),
            out,
            removed: removed.clone(),
            recorder: Some(Recorder::new(events, ParticipantId(id), Arc::default())),
            wants_control: false,
        };
        let handle = self.roster.handle(&entry);
        self.feed.send(record_for(
            id,
            EventKind::Connected { technician: name.into(), verified: None, asked: granted, granted },
        ));
        self.feed.send(HostEvent::Live(handle.clone()));
        self.here.push((self.roster.join(entry), removed));
        self.list();
        self.wait_for(&format!("{name}: "));
        (handle, to_viewer)
    }

    /// Send the roster as the core's feed does.
    fn list(&self) {
        self.feed.send(HostEvent::Participants(self.roster.present()));
    }

    /// Ask the window through the core's own `access::ask`.
    fn ask(
        &self,
        verified: Option<VerifiedTechnician>,
        asked: Permissions,
        current: Permissions,
    ) -> tokio::task::JoinHandle<Option<Permissions>> {
        let to = self.feed.with(|e| e.access.clone());
        let asker = Asker { technician: "Sam".into(), verified, invited_by: None, offers_history: false };
        self.rt.spawn(async move { access::ask(&to, asker, asked, current).await.map(|c| c.granted) })
    }
}

/// A session record event of Sam's, as the core sends it.
fn record(kind: EventKind) -> HostEvent {
    record_for(1, kind)
}

fn record_for(id: u64, kind: EventKind) -> HostEvent {
    HostEvent::Session(ParticipantId(id), SessionEvent::new(std::time::SystemTime::now(), kind))
}

fn code() -> Code {
    Code::parse("482 913 5071").expect("code")
}

#[test]
fn code_shows_and_new_code_notifies() {
    let mut t = setup();
    assert!(t.shows("Connecting"));
    t.feed.send(HostEvent::Code { code: code(), expires_in: Duration::from_secs(600) });
    t.wait_for("482-913-5071");
    // The countdown runs on the real clock: a slow machine may take a few seconds to get here.
    assert!(t.shows("Expires in 10:00") || t.shows("Expires in 9:5"), "countdown shows");
    t.click("New code");
    assert!(t.shows("Getting a new code"));
    let notify = t.feed.with(|e| e.new_code.clone());
    let notified =
        t.rt.block_on(async { tokio::time::timeout(Duration::from_secs(1), notify.notified()).await });
    assert!(notified.is_ok(), "New code pokes the host's new_code Notify");
    // The host confirms and sends a fresh one.
    t.feed.send(HostEvent::CodeReplaced(tether_shared::net::pairing::Restart::Requested));
    t.feed.send(HostEvent::Code {
        code: Code::parse("482 111 2222").expect("code"),
        expires_in: Duration::from_secs(600),
    });
    t.wait_for("482-111-2222");
    assert!(t.harness.state().log().entries().iter().any(|e| e.text.contains("You asked for a new code")));
}

#[test]
fn too_many_wrong_codes_hide_the_code_warn_and_new_code_goes_on() {
    let mut t = setup();
    t.feed.send(HostEvent::Code { code: code(), expires_in: Duration::from_secs(600) });
    t.wait_for("482-913-5071");
    t.feed.send(HostEvent::CodeReplaced(tether_shared::net::pairing::Restart::WrongCode));
    t.feed.send(HostEvent::TooManyWrongCodes(3));
    t.wait_for("Someone entered a wrong code 3 times. If that was not your technician, do not share.");
    assert!(!t.shows("482-913-5071"), "no code is on screen");
    assert!(!t.shows("Copy"), "nothing to copy");
    t.click("New code");
    let notify = t.feed.with(|e| e.new_code.clone());
    let notified =
        t.rt.block_on(async { tokio::time::timeout(Duration::from_secs(1), notify.notified()).await });
    assert!(notified.is_ok(), "New code tells the host to go on");
    assert!(t.shows("Getting a new code"));
    assert!(!t.shows("do not share"), "the warning is gone once the user chose to go on");
    t.feed.send(HostEvent::Code {
        code: Code::parse("482 111 2222").expect("code"),
        expires_in: Duration::from_secs(600),
    });
    t.wait_for("482-111-2222");
    assert!(t.harness.state().log().entries().iter().any(|e| e.text.contains("wrong code 3 times")));
}

#[test]
fn unverified_name_is_marked_and_allow_grants_what_is_ticked() {
    let mut t = setup();
    let answer = t.ask(None, Permissions::ALL, Permissions::default());
    t.wait_for("Someone wants to connect");
    assert!(t.shows("Sam"));
    assert!(t.shows("(name not verified)"));
    assert!(!t.shows("Verified by"));
    // Pre-set to what was asked; the user takes files away.
    t.click("Send and receive files");
    t.click("Allow");
    let granted = t.rt.block_on(answer).expect("task");
    assert_eq!(granted, Some(Permissions { view: true, control: true, files: false }));
    assert!(!t.shows("Someone wants to connect"), "the dialog is gone");
}

#[test]
fn the_settings_file_names_the_help_desk_and_ticks_its_default_permissions() {
    let view_only = Permissions { view: true, control: false, files: false };
    let mut t = setup_with(|app| app.with_help_desk(Some("Example IT".into()), Some(view_only)));
    t.feed.send(HostEvent::Code { code: code(), expires_in: Duration::from_secs(600) });
    t.wait_for("482-913-5071");
    assert!(t.shows("Help from Example IT"));
    assert!(t.shows("Read this code to your technician at Example IT"));
    let answer = t.ask(None, Permissions::ALL, Permissions::default());
    t.wait_for("Someone wants to connect");
    // Only what the organization ticks by default; the user may still tick more.
    t.click("Allow");
    assert_eq!(t.rt.block_on(answer).expect("task"), Some(view_only));
    // One line for the whole exchange: the record's "connected" line says what was asked and allowed.
    let log: Vec<_> = t.harness.state().log().entries().iter().map(|e| e.text.clone()).collect();
    assert!(log.iter().all(|l| !l.contains("asks to") && !l.contains("You allowed")), "{log:?}");
}

#[test]
fn verified_account_is_marked_and_deny_denies() {
    let mut t = setup();
    let verified = VerifiedTechnician {
        verified_by: "relay.example.org".into(),
        ..VerifiedTechnician::new("alice@helpdesk", "Example Ltd")
    };
    let answer = t.ask(Some(verified), Permissions::VIEW_ONLY, Permissions::default());
    t.wait_for("Someone wants to connect");
    assert!(t.shows("alice@helpdesk"));
    assert!(t.shows("Verified by relay.example.org"), "the relay the host connected to");
    assert!(t.shows("Organization, as that relay states it: Example Ltd"), "the relay's word, marked so");
    assert!(!t.shows("(name not verified)"));
    t.click("Deny");
    // Deny at the start answers "what they have now": nothing, which refuses the session.
    assert_eq!(t.rt.block_on(answer).expect("task"), Some(Permissions::default()));
}

#[test]
fn revoking_control_mid_session_changes_the_session_permissions() {
    let mut t = setup();
    let (handle, _to_viewer) = t.connect(Permissions { view: true, control: true, files: false });
    assert!(t.shows("Untick to take it back at once"));
    t.click("Use your mouse and keyboard");
    assert_eq!(handle.permissions(), Permissions::VIEW_ONLY);
    assert!(t.harness.state().log().entries().iter().any(|e| e.text.contains("You took back")));
    // Switched back on: what was granted before may be given back.
    t.click("Use your mouse and keyboard");
    assert!(handle.permissions().control);
}

#[test]
fn mid_session_request_uses_the_same_dialog() {
    let mut t = setup();
    let (_handle, _to_viewer) = t.connect(Permissions::VIEW_ONLY);
    let answer = t.ask(None, Permissions { view: true, control: true, files: false }, Permissions::VIEW_ONLY);
    t.wait_for("asks for more access");
    assert!(t.shows("Your screen is being shared with Sam"), "the red bar stays");
    t.click("Allow");
    assert_eq!(
        t.rt.block_on(answer).expect("task"),
        Some(Permissions { view: true, control: true, files: false })
    );
}

#[test]
fn an_interrupted_connection_is_shown_until_it_is_back() {
    let mut t = setup();
    let _session = t.connect(Permissions::VIEW_ONLY);
    assert!(!t.shows("Reconnecting"));
    t.feed.send(HostEvent::Reconnecting);
    t.wait_for("The connection was interrupted. Reconnecting… Nothing is lost");
    assert!(t.shows("Your screen is being shared with Sam"), "the red bar stays");
    t.feed.send(HostEvent::Reconnected);
    t.wait_for("The connection is back.");
    assert!(!t.shows("Nothing is lost"), "the warning goes");
}

#[test]
fn chat_shows_incoming_and_sends_outgoing() {
    let mut t = setup();
    let (_handle, mut to_viewer) = t.connect(Permissions::VIEW_ONLY);
    let text = "Can you open the settings?".to_owned();
    t.feed.send(record(EventKind::Chat { from: Side::Technician, text }));
    t.wait_for("Can you open the settings?");
    let input = t.harness.get_by_role(Role::TextInput);
    input.focus();
    input.type_text("Which one?");
    t.settle();
    t.click("Send");
    match to_viewer.try_recv() {
        Ok(HostControl::Chat { text }) => assert_eq!(text, "Which one?"),
        other => panic!("expected the chat line for the viewer, got {other:?}"),
    }
    assert!(t.shows("Which one?"));
    let log = t.harness.state().log().entries();
    assert!(log.iter().any(|e| e.text == "Sam wrote: Can you open the settings?"));
    assert!(log.iter().any(|e| e.text == "You wrote: Which one?"));
}

#[test]
fn incoming_files_are_asked_about_and_logged() {
    let mut t = setup();
    let (_handle, _to_viewer) = t.connect(Permissions::ALL);
    let decision = t.ask_upload(&["fix.sh", "notes.txt"], 2, 1_500_000);
    t.wait_for("wants to send you files");
    assert!(t.shows("2 files (1.5 MB)"));
    assert!(t.shows("fix.sh"));
    assert!(t.shows("/home/user/Downloads/Tether"));
    t.click("Allow for this session");
    assert_eq!(t.rt.block_on(decision).expect("answered"), Decision::AllowForSession);
    let logged = t.harness.state().log().entries().iter().any(|e| {
        e.text == "You let Sam send you fix.sh, notes.txt (1.5 MB), and more files for the rest of this session."
    });
    assert!(logged, "the decision is in the session log");
    let file = |path: &str, size| FileRecord { path: path.into(), size, hash: FileHash([7; 32]) };
    t.feed.send(record(EventKind::Transfer(Transfer {
        direction: RecordDirection::Upload,
        what: "fix.sh, notes.txt".into(),
        outcome: Outcome::Completed {
            names: vec!["fix.sh".into(), "notes.txt".into()],
            files: vec![file("fix.sh", 1_000_000), file("notes.txt", 500_000)],
        },
    })));
    t.wait_for("You received fix.sh, notes.txt (2 files, 1.5 MB)");
}

#[test]
fn a_double_click_cannot_answer_the_next_question() {
    let mut t = setup();
    let (_handle, _to_viewer) = t.connect(Permissions::ALL);
    let mut decisions = Vec::new();
    for name in ["first.txt", "second.txt"] {
        decisions.push(t.ask_upload(&[name], 1, 10));
    }
    t.wait_for("first.txt");
    // Two clicks in quick succession, one frame apart: the first answers the first card...
    t.harness.get_by_label("Allow once").click();
    t.harness.step();
    assert_eq!(decisions[0].try_recv().expect("first answered"), Decision::AllowOnce);
    t.harness.step();
    assert!(t.shows("second.txt"), "the next question is up");
    // ...the second lands on the next card, which has not been shown long enough to take it.
    t.harness.get_by_label("Allow once").click();
    t.harness.step();
    assert!(decisions[1].try_recv().is_err(), "a click meant for the first card answered the second");
    assert!(t.shows("second.txt"));
    // Once it has been readable for a moment, it takes a click as usual.
    t.settle();
    t.click("Deny");
    assert_eq!(decisions[1].try_recv().expect("second answered"), Decision::Deny);
}

#[test]
fn a_question_the_technician_withdrew_leaves_the_screen() {
    let mut t = setup();
    let (_handle, _to_viewer) = t.connect(Permissions::ALL);
    let decision = t.ask_upload(&["tool.exe"], 1, 10);
    t.wait_for("tool.exe");
    assert!(t.shows("Allow once"));
    drop(decision); // the technician cancelled: the engine stopped waiting for the answer
    t.wait_for("stopped sending tool.exe before you answered");
    assert!(!t.shows("Allow once"), "no question is left that nobody waits for");
}

#[test]
fn files_moving_show_with_progress_and_each_stops_alone() {
    let mut t = setup();
    let (_handle, _to_viewer) = t.connect(Permissions::ALL);
    let (out_stop, in_stop) = (CancellationToken::new(), CancellationToken::new());
    let registry = t.feed.with(|e| e.transfers.clone());
    let out = registry.start(Direction::ToTechnician, "Shared/report.pdf".into(), out_stop.clone());
    let _in = registry.start(Direction::FromTechnician, "fix.sh".into(), in_stop.clone());
    out.progress(tether_shared::files::progress::Progress {
        done: 2_000_000,
        total: 8_000_000,
        rate: 1_000_000.0,
        eta: Some(Duration::from_secs(6)),
        files_done: 0,
        files_total: 1,
    });
    t.wait_for("Files moving now");
    assert!(t.shows("Sam is copying Shared/report.pdf from this computer"));
    assert!(t.shows("2.0 MB of 8.0 MB · 1.0 MB/s · 6 s left"));
    assert!(t.shows("Sam is sending you fix.sh"));
    assert!(t.shows("starting…"));
    // Stop on the first row stops that transfer alone.
    let stops = t.harness.query_all_by_label("Stop").collect::<Vec<_>>();
    assert_eq!(stops.len(), 2);
    stops[0].click();
    t.settle();
    assert!(out_stop.is_cancelled() && !in_stop.is_cancelled());
    // Finished transfers leave the list, and the section with the last one.
    drop(out);
    t.settle();
    assert!(!t.shows("Shared/report.pdf"));
    drop(_in);
    t.settle();
    assert!(!t.shows("Files moving now"));
}

#[test]
fn stop_cancels_and_the_end_offers_share_again() {
    let mut t = setup();
    let (_handle, _to_viewer) = t.connect(Permissions::VIEW_ONLY);
    t.click("Stop sharing");
    assert!(t.feed.with(|e| e.stop.is_cancelled()), "Stop cancels the host's token");
    let report = SessionReport {
        technician: "Sam".into(),
        granted: Permissions::VIEW_ONLY,
        frames_sent: 42,
        input_injected: 0,
        input_dropped: 3,
        end: EndReason::HostStopped,
        record: Vec::new(),
        record_confirmed: 0,
        record_session: [0; 32],
        inventories: Vec::new(),
    };
    let done = t.feed.with(|e| e.done.take()).expect("done");
    let _ = done.send(Ok(report));
    t.wait_for("Sharing has ended");
    assert!(t.shows("You stopped sharing"));
    assert!(!t.shows("Your screen is being shared"), "the red bar is gone");
    t.click("Share again");
    assert_eq!(t.feed.attempts(), 2);
    assert!(t.shows("Connecting"));
}

#[test]
fn the_bar_lists_everyone_and_the_user_gives_control_and_removes_one() {
    let mut t = setup();
    let (alice, _to_alice) = t.join(1, "Alice", Permissions::ALL, None);
    let (bob, _to_bob) = t.join(2, "Bob", Permissions::ALL, Some("Alice"));
    assert!(t.shows("Your screen is being shared with Alice, Bob"));
    assert!(t.shows("Bob: see the screen, use mouse and keyboard, files"));
    assert!(t.shows("invited by Alice"));
    // Alice is typing with Ctrl held; the user gives control to Bob: Alice's Ctrl is let go.
    let controller = t.roster.controller().clone();
    assert_eq!(controller.take(alice.id()), crate::controller::Take::Taken);
    let ctrl =
        tether_shared::input::InputEvent::Key { key: tether_shared::input::Key::Control, pressed: true };
    controller.inject(alice.id(), &ctrl).expect("Alice types");
    t.list();
    t.wait_for("Alice: see the screen, use mouse and keyboard, files (in control)");
    t.click("Give control to Bob");
    assert_eq!(controller.holder(), Some(bob.id()));
    assert!(t.sink.held().is_empty(), "Alice's held key was let go");
    t.list();
    t.wait_for("Bob: see the screen, use mouse and keyboard, files (in control)");
    // Removing Bob cuts Bob alone.
    t.click("Remove Bob");
    assert!(t.here[1].1.is_cancelled(), "Bob's session is told to end");
    assert!(!t.here[0].1.is_cancelled(), "Alice stays");
    assert!(t.harness.state().log().entries().iter().any(|e| e.text == "You removed Bob from the session."));
}

#[test]
fn an_invited_colleague_is_asked_about_with_who_invited_them_and_the_history_choice() {
    let mut t = setup();
    let (_alice, _to_alice) = t.join(1, "Alice", Permissions::ALL, None);
    let to = t.feed.with(|e| e.access.clone());
    let asker = Asker {
        technician: "Bob".into(),
        verified: None,
        invited_by: Some("Alice".into()),
        offers_history: true,
    };
    let answer = t
        .rt
        .spawn(async move { access::ask(&to, asker, Permissions::VIEW_ONLY, Permissions::default()).await });
    t.wait_for("Alice invited a colleague to help you");
    assert!(t.shows("Invited by Alice"));
    assert!(t.shows("Your screen is being shared with Alice"), "the red bar stays while asking");
    // The history is offered ticked; the user unticks it and allows.
    t.click("Show them the chat and the session log so far");
    t.click("Allow");
    let consent = t.rt.block_on(answer).expect("task").expect("answered");
    assert_eq!(consent, access::Consent { granted: Permissions::VIEW_ONLY, share_history: false });
}

#[test]
fn the_end_screen_saves_the_session_report_beside_its_record() {
    let incoming = tempfile::tempdir().expect("temp dir");
    let mut t = setup_in(incoming.path().to_str().expect("utf-8"), |app| app);
    let (_handle, _to_viewer) = t.connect(Permissions::VIEW_ONLY);
    let mut chain = tether_shared::record::chain::Chain::new(&[4; 32]);
    let kind = EventKind::Chat { from: Side::Host, text: "It prints again, thanks".into() };
    chain.append(SessionEvent::new(std::time::SystemTime::now(), kind));
    let report = SessionReport {
        technician: "Sam".into(),
        granted: Permissions::VIEW_ONLY,
        frames_sent: 1,
        input_injected: 0,
        input_dropped: 0,
        end: EndReason::ViewerLeft,
        record: chain.entries().to_vec(),
        record_confirmed: 1,
        record_session: [4; 32],
        inventories: Vec::new(),
    };
    let done = t.feed.with(|e| e.done.take()).expect("done");
    let _ = done.send(Ok(report));
    t.wait_for("Sharing has ended");
    t.click("Save report");
    assert!(t.harness.state().log().entries().iter().any(|e| e.text.starts_with("Report saved:")));
    let saved: Vec<_> =
        std::fs::read_dir(incoming.path()).expect("list").map(|e| e.expect("entry").path()).collect();
    let json = saved.iter().find(|p| p.extension().is_some_and(|e| e == "json")).expect("the record");
    let file =
        tether_shared::record::file::RecordFile::from_json(&std::fs::read_to_string(json).expect("read"))
            .expect("parses");
    file.verify().expect("verifies");
    let html = std::fs::read_to_string(json.with_extension("html")).expect("the report");
    assert!(html.contains("It prints again, thanks") && html.contains("The user&#39;s copy"));
}
